package web_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// The callback handler keeps an app's secrets in memory for 30 s. Unbinding
// or rebinding an app through the portal drops them on the instance that did
// it, so a push signed with the old secrets is refused at once, not 30 s later.
func TestCallbackSecretsAreForgottenWhenTheBindingChanges(t *testing.T) {
	comp := wechat.Component{AppID: "wxc1c1c1c1c1c1c1c1", Token: "componenttoken", AESKey: appsCompKey}
	w := newIngestWorld(t, dbtest.SQLite(t), func(o *ingestOptions) { o.component = comp })
	tid := w.ws.tenant.ID
	admin := w.signedIn(w.ws.people[models.RoleAdmin])
	xml := map[string]string{"Content-Type": "text/xml"}
	// push sends a new follow of appID to path, signed and encrypted with
	// token and key for cryptAppID (the app's own appid, or the platform's).
	push := func(t *testing.T, path, ghID, token, aesKey, cryptAppID string) int {
		t.Helper()
		ev := wechat.Event{ToUserName: ghID, FromUserName: "oForget" + strconv.FormatInt(time.Now().UnixNano(), 10),
			CreateTime: time.Now().Unix(), MsgType: "event", Event: wechat.EventSubscribe}
		cr, err := wechat.NewCrypter(aesKey, cryptAppID)
		if err != nil {
			t.Fatal(err)
		}
		q := signedQuery(token)
		body, msgSig, err := wechat.SealPush(token, cr, ghID, q.Get("timestamp"), q.Get("nonce"), ev.XML())
		if err != nil {
			t.Fatal(err)
		}
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", msgSig)
		status, _, _ := w.send(t, http.MethodPost, path+"?"+q.Encode(), string(body), xml)
		return status
	}
	unbind := func(t *testing.T, id int64) {
		t.Helper()
		p := w.ws.path("apps/" + strconv.FormatInt(id, 10) + "/unbind")
		admin.get(p)
		if r := admin.post(p, url.Values{"confirm": {"yes"}}); r.status != http.StatusSeeOther {
			t.Fatalf("unbind: %d\n%s", r.status, r.body)
		}
	}

	t.Run("SelfManaged", func(t *testing.T) {
		info := w.sim.MustAddApp(wechattest.AppSpec{Name: "换令牌服务号", Principal: w.ws.tenant.PrincipalName})
		bind := func(t *testing.T, token string) *models.App {
			t.Helper()
			admin.get(w.ws.path("apps/new"))
			r := admin.post(w.ws.path("apps/self-managed"), url.Values{"appid": {info.AppID}, "secret": {info.Secret},
				"kind": {models.KindService}, "name": {info.Name}, "principal": {info.Principal}, "verified": {"yes"},
				"callback_token": {token}, "aes_key": {ingestAESKey}})
			if r.status != http.StatusSeeOther {
				t.Fatalf("bind: %d\n%s", r.status, r.body)
			}
			a, err := models.FindAppByAppID(w.db, tid, info.AppID)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		send := func(t *testing.T, key, token string) int {
			t.Helper()
			return push(t, "/wechat/callback/"+key, info.UserName, token, ingestAESKey, info.AppID)
		}

		app := bind(t, "oldtoken1")
		if got := send(t, app.CallbackKey, "oldtoken1"); got != http.StatusOK {
			t.Fatalf("bound app: %d", got)
		}
		// Unbound through the portal: the old secrets are refused at once.
		unbind(t, app.ID)
		if got := send(t, app.CallbackKey, "oldtoken1"); got != http.StatusNotFound {
			t.Fatalf("after unbinding: %d, want 404", got)
		}

		// Rebound with a new token: the row and its callback key are reused.
		app2 := bind(t, "newtoken2")
		if app2.ID != app.ID || app2.CallbackKey != app.CallbackKey {
			t.Fatalf("rebinding made another row: %d %q", app2.ID, app2.CallbackKey)
		}
		if got := send(t, app.CallbackKey, "newtoken2"); got != http.StatusOK {
			t.Fatalf("new token: %d", got)
		}
		// Unbound behind this instance's back (as another instance would):
		// the secrets this instance holds still work until they expire...
		if err := models.UnbindApp(w.db, tid, app.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if got := send(t, app.CallbackKey, "newtoken2"); got != http.StatusOK {
			t.Fatalf("unbound elsewhere, cached here: %d, want 200 until the cache expires", got)
		}
		// ...until this instance rebinds it with yet another token.
		bind(t, "thirdtoken3")
		if got := send(t, app.CallbackKey, "newtoken2"); got != http.StatusForbidden {
			t.Fatalf("replaced token: %d, want 403", got)
		}
		if got := send(t, app.CallbackKey, "thirdtoken3"); got != http.StatusOK {
			t.Fatalf("third token: %d", got)
		}
	})

	t.Run("Authorized", func(t *testing.T) {
		app := &models.App{AppID: "wxa1a1a1a1a1a1a1a1", Kind: models.KindService, Name: "authorized oa", PrincipalName: w.ws.tenant.PrincipalName,
			BindingMode: models.ModeAuthorized, GhID: "gh_a1a1a1a1a1a1", OpenAccountID: &w.open.ID}
		if err := models.BindApp(w.db, tid, app); err != nil {
			t.Fatal(err)
		}
		// Its pushes arrive by callback key and by appid (the platform's
		// $APPID$ URL); both are kept in memory.
		paths := []string{"/wechat/callback/" + app.CallbackKey, "/wechat/callback/" + app.AppID}
		for _, p := range paths {
			if got := push(t, p, app.GhID, comp.Token, comp.AESKey, comp.AppID); got != http.StatusOK {
				t.Fatalf("%s: %d", p, got)
			}
		}
		unbind(t, app.ID)
		for _, p := range paths {
			if got := push(t, p, app.GhID, comp.Token, comp.AESKey, comp.AppID); got != http.StatusNotFound {
				t.Fatalf("%s after unbinding: %d, want 404", p, got)
			}
		}
	})
}
