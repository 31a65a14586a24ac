package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/wechat"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// signedQuery is the query WeChat puts on a push or verification.
func signedQuery(token string, extra ...string) url.Values {
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "2718281828"
	q := url.Values{"signature": {wechat.Signature(token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return q
}

func TestCallbackURLVerification(t *testing.T) {
	w := newIngestWorld(t, dbtest.SQLite(t))
	_, app := w.bindApp(t, "verify oa", appSetup{})
	token := "tok" + strconv.FormatInt(w.ws.tenant.ID, 10) + "verifyoa"
	path := "/wechat/callback/" + app.CallbackKey + "?"

	t.Run("AnswersEchostr", func(t *testing.T) {
		status, _, body := w.fetch(t, path+signedQuery(token, "echostr", "8214392876531").Encode())
		if status != http.StatusOK || body != "8214392876531" {
			t.Fatalf("%d %q", status, body)
		}
	})
	t.Run("RefusesAnotherToken", func(t *testing.T) {
		status, _, body := w.fetch(t, path+signedQuery("not-the-token", "echostr", "8214392876531").Encode())
		if status != http.StatusForbidden || strings.Contains(body, "8214392876531") {
			t.Fatalf("%d %q", status, body)
		}
	})
	t.Run("UnknownKeyIsABare404", func(t *testing.T) {
		status, _, body := w.fetch(t, "/wechat/callback/0123456789abcdef0123456789abcdef?"+signedQuery(token, "echostr", "1").Encode())
		if status != http.StatusNotFound || body != "not found" {
			t.Fatalf("%d %q", status, body)
		}
	})
	t.Run("MiniProgramHasNoCallback", func(t *testing.T) {
		_, mini := w.bindApp(t, "verify mini", appSetup{kind: models.KindMiniProgram})
		if status, _, _ := w.fetch(t, "/wechat/callback/"+mini.CallbackKey+"?"+signedQuery(token, "echostr", "1").Encode()); status != http.StatusNotFound {
			t.Fatalf("%d", status)
		}
	})
}

// Follows and unfollows pushed by the simulator, signed and encrypted (safe
// mode) or plain, reach the identities; the person's UnionID comes from
// user/info.
func TestCallbackEventsFromTheSimulator(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		w := newIngestWorld(t, db)
		for _, mode := range []struct {
			name      string
			plaintext bool
		}{{"SafeMode", false}, {"Plaintext", true}} {
			t.Run(mode.name, func(t *testing.T) {
				info, app := w.bindApp(t, "oa "+mode.name, appSetup{plaintext: mode.plaintext})
				p := w.sim.AddPerson()
				d, err := w.sim.Follow(info.AppID, p, "spring-campaign")
				if err != nil || !d.OK || d.Attempts != 1 || d.Reply != "success" {
					t.Fatalf("follow push: %+v %v", d, err)
				}
				w.process(t)
				openID := w.sim.OpenID(info.AppID, p)
				id := w.identity(t, w.ws.tenant.ID, app.ID, openID)
				if id == nil || !id.Subscribed || id.Source != models.SourceEvent || id.SubscribeScene != "ADD_SCENE_QR_CODE" {
					t.Fatalf("after follow: %+v", id)
				}
				c := w.customer(t, w.ws.tenant.ID, id.CustomerID)
				if c.UnionID == nil || *c.UnionID != w.sim.UnionID(w.open.OpenAppID, p) {
					t.Fatalf("customer not linked by user/info: %+v", c)
				}
				if d, err := w.sim.Unfollow(info.AppID, p); err != nil || !d.OK {
					t.Fatalf("unfollow push: %+v %v", d, err)
				}
				w.process(t)
				id = w.identity(t, w.ws.tenant.ID, app.ID, openID)
				if id.Subscribed || id.UnsubscribedAt == nil || id.CustomerID != c.ID {
					t.Fatalf("after unfollow: %+v", id)
				}
			})
		}
		t.Run("ScanOfAFollower", func(t *testing.T) {
			info, app := w.bindApp(t, "oa scan", appSetup{})
			p := w.sim.AddPerson()
			if _, err := w.sim.Follow(info.AppID, p, ""); err != nil {
				t.Fatal(err)
			}
			// Drop the follow so the scan is the first OneID hears of them.
			if err := db.Exec("DELETE FROM callback_events WHERE tenant_id = ? AND app_id = ?", w.ws.tenant.ID, app.ID).Error; err != nil {
				t.Fatal(err)
			}
			openID := w.sim.OpenID(info.AppID, p)
			d, err := w.sim.Push(info.AppID, wechat.Event{ToUserName: info.UserName, FromUserName: openID,
				CreateTime: time.Now().Unix(), MsgType: "event", Event: wechat.EventScan, EventKey: "42", Ticket: "gQH"})
			if err != nil || !d.OK {
				t.Fatalf("%+v %v", d, err)
			}
			w.process(t)
			id := w.identity(t, w.ws.tenant.ID, app.ID, openID)
			if id == nil || !id.Subscribed || id.UnionID == nil {
				t.Fatalf("after scan: %+v", id)
			}
		})
	})
}

// WeChat retries a push it got no answer to; a retry (same FromUserName,
// CreateTime and Event) is stored and processed once.
func TestCallbackRetriesAreProcessedOnce(t *testing.T) {
	w := newIngestWorld(t, dbtest.MySQL(t))
	info, app := w.bindApp(t, "oa retries", appSetup{})
	p := w.sim.AddPerson()
	openID := w.sim.OpenID(info.AppID, p)
	ev := wechat.Event{ToUserName: info.UserName, FromUserName: openID, CreateTime: time.Now().Unix(), MsgType: "event", Event: wechat.EventSubscribe}
	for i := 0; i < 3; i++ {
		if d, err := w.sim.Push(info.AppID, ev); err != nil || !d.OK || d.Reply != "success" {
			t.Fatalf("attempt %d: %+v %v", i, d, err)
		}
		if i == 1 {
			w.process(t) // a retry after the first was resolved, too
		}
	}
	if n := w.rows("callback_events"); n != 1 {
		t.Fatalf("%d inbox rows for one push", n)
	}
	w.process(t)
	id := w.identity(t, w.ws.tenant.ID, app.ID, openID)
	if id == nil {
		t.Fatal("no identity")
	}
	var followed int64
	w.db.Model(&models.CustomerEvent{}).Scopes(models.ForTenant(w.ws.tenant.ID)).
		Where("customer_id = ? AND kind = ?", id.CustomerID, models.EventFollowed).Count(&followed)
	if followed != 1 {
		t.Fatalf("%d followed events on the timeline", followed)
	}
	// Another event of the same second is another push.
	ev.Event = wechat.EventUnsubscribe
	if d, _ := w.sim.Push(info.AppID, ev); !d.OK {
		t.Fatalf("%+v", d)
	}
	if n := w.rows("callback_events"); n != 2 {
		t.Fatalf("%d inbox rows", n)
	}
}

// A push that does not verify is refused and stores nothing.
func TestCallbackRefusesPushesThatDoNotVerify(t *testing.T) {
	w := newIngestWorld(t, dbtest.SQLite(t))
	info, app := w.bindApp(t, "oa strict", appSetup{})
	_, plainApp := w.bindApp(t, "oa plain", appSetup{plaintext: true})
	token := "tok" + strconv.FormatInt(w.ws.tenant.ID, 10) + "oastrict"
	ev := wechat.Event{ToUserName: info.UserName, FromUserName: w.sim.OpenID(info.AppID, w.sim.AddPerson()),
		CreateTime: time.Now().Unix(), MsgType: "event", Event: wechat.EventSubscribe}
	cr, _ := wechat.NewCrypter(ingestAESKey, info.AppID)
	q := signedQuery(token)
	body, msgSig, err := wechat.SealPush(token, cr, info.UserName, q.Get("timestamp"), q.Get("nonce"), ev.XML())
	if err != nil {
		t.Fatal(err)
	}
	q.Set("encrypt_type", "aes")
	path := "/wechat/callback/" + app.CallbackKey + "?"
	xml := map[string]string{"Content-Type": "text/xml"}

	cases := []struct {
		name   string
		target string
		body   string
		want   int
	}{
		{"WrongSignature", path + with(q, "signature", strings.Repeat("0", 40), "msg_signature", msgSig).Encode(), string(body), http.StatusForbidden},
		{"WrongMsgSignature", path + with(q, "msg_signature", strings.Repeat("a", 40)).Encode(), string(body), http.StatusForbidden},
		{"NoSignatureAtAll", path + "timestamp=1&nonce=2&encrypt_type=aes", string(body), http.StatusForbidden},
		{"PlaintextToASafeModeApp", path + signedQuery(token).Encode(), string(ev.XML()), http.StatusBadRequest},
		{"AnotherAppsCiphertext", "/wechat/callback/" + plainApp.CallbackKey + "?" + with(q, "msg_signature", msgSig).Encode(), string(body), http.StatusForbidden},
		{"Garbage", path + with(q, "msg_signature", msgSig).Encode(), "<xml><Encrypt>bm9wZQ==</Encrypt>", http.StatusBadRequest},
		{"TooLarge", path + with(q, "msg_signature", msgSig).Encode(), strings.Repeat("x", wechat.MaxCallbackBody+1), http.StatusRequestEntityTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, _, reply := w.send(t, http.MethodPost, c.target, c.body, xml)
			if status != c.want || reply == "success" {
				t.Fatalf("%d %q, want %d", status, reply, c.want)
			}
		})
	}
	if n := w.rows("callback_events"); n != 0 {
		t.Fatalf("refused pushes stored %d rows", n)
	}
	// The same push, signed right, goes in.
	if status, _, reply := w.send(t, http.MethodPost, path+with(q, "msg_signature", msgSig).Encode(), string(body), xml); status != http.StatusOK || reply != "success" {
		t.Fatalf("%d %q", status, reply)
	}
	if n := w.rows("callback_events"); n != 1 {
		t.Fatalf("%d rows", n)
	}
}

// When the inbox cannot take an event in time (the database is locked), the
// push is refused with 503 well before WeChat's 5 s, so WeChat retries it;
// the retry after the database recovers is stored once.
func TestCallbackAnswersInTimeWhenTheDatabaseIsStuck(t *testing.T) {
	db := dbtest.MySQL(t)
	w := newIngestWorld(t, db, func(o *ingestOptions) { o.ackBudget = 700 * time.Millisecond })
	info, app := w.bindApp(t, "oa stuck", appSetup{plaintext: true})
	token := "tok" + strconv.FormatInt(w.ws.tenant.ID, 10) + "oastuck"
	ev := wechat.Event{ToUserName: info.UserName, FromUserName: w.sim.OpenID(info.AppID, w.sim.AddPerson()),
		CreateTime: time.Now().Unix(), MsgType: "event", Event: wechat.EventSubscribe}
	target := "/wechat/callback/" + app.CallbackKey + "?" + signedQuery(token).Encode()
	// Warm the app's secrets, as any earlier push would have.
	if status, _, _ := w.fetch(t, "/wechat/callback/"+app.CallbackKey+"?"+signedQuery(token, "echostr", "1").Encode()); status != http.StatusOK {
		t.Fatal(status)
	}

	sqlDB, _ := db.DB()
	conn, err := sqlDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "LOCK TABLES callback_events WRITE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	status, _, _ := w.send(t, http.MethodPost, target, string(ev.XML()), nil)
	took := time.Since(start)
	if status != http.StatusServiceUnavailable || took > 2*time.Second {
		t.Fatalf("with the inbox locked: %d after %v, want 503 within the budget", status, took)
	}
	if _, err := conn.ExecContext(context.Background(), "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		status, _, _ = w.send(t, http.MethodPost, target, string(ev.XML()), nil)
		return status == http.StatusOK
	})
	status, _, _ = w.send(t, http.MethodPost, target, string(ev.XML()), nil)
	if status != http.StatusOK || w.rows("callback_events") != 1 {
		t.Fatalf("%d, %d rows", status, w.rows("callback_events"))
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An app bound through OneID's third-party platform has no token of its own:
// its pushes are signed and encrypted with the platform's token and key, and
// the platform's appid is inside the ciphertext.
func TestCallbackOfAnAuthorizedApp(t *testing.T) {
	comp := wechat.Component{AppID: "wxc0c0c0c0c0c0c0c0", Token: "componenttoken", AESKey: appsCompKey}
	w := newIngestWorld(t, dbtest.SQLite(t), func(o *ingestOptions) { o.component = comp })
	app := &models.App{AppID: "wxa0a0a0a0a0a0a0a0", Kind: models.KindService, Name: "authorized oa", PrincipalName: w.ws.tenant.PrincipalName,
		BindingMode: models.ModeAuthorized, GhID: "gh_a0a0a0a0a0a0", OpenAccountID: &w.open.ID}
	if err := models.BindApp(w.db, w.ws.tenant.ID, app); err != nil {
		t.Fatal(err)
	}
	openID := "oAuthorizedUser0000000000001"
	ev := wechat.Event{ToUserName: app.GhID, FromUserName: openID, CreateTime: time.Now().Unix(), MsgType: "event", Event: wechat.EventSubscribe}
	seal := func(cr *wechat.Crypter) (string, string) {
		q := signedQuery(comp.Token)
		body, msgSig, err := wechat.SealPush(comp.Token, cr, app.GhID, q.Get("timestamp"), q.Get("nonce"), ev.XML())
		if err != nil {
			t.Fatal(err)
		}
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", msgSig)
		return "/wechat/callback/" + app.CallbackKey + "?" + q.Encode(), string(body)
	}
	// Sealed for the app's own appid: not what WeChat sends here, refused.
	own, _ := wechat.NewCrypter(comp.AESKey, app.AppID)
	target, body := seal(own)
	if status, _, _ := w.send(t, http.MethodPost, target, body, nil); status != http.StatusBadRequest {
		t.Fatalf("app's appid inside: %d", status)
	}
	platform, _ := wechat.NewCrypter(comp.AESKey, comp.AppID)
	target, body = seal(platform)
	if status, _, reply := w.send(t, http.MethodPost, target, body, nil); status != http.StatusOK || reply != "success" {
		t.Fatalf("%d %q", status, reply)
	}
	if n := w.rows("callback_events"); n != 1 {
		t.Fatalf("%d events", n)
	}
	// The platform's single message URL, /wechat/callback/$APPID$, reaches
	// the same app by its appid.
	ev.FromUserName, ev.CreateTime = "oAuthorizedUser0000000000002", ev.CreateTime+1
	target, body = seal(platform)
	byAppID := strings.Replace(target, "/wechat/callback/"+app.CallbackKey+"?", "/wechat/callback/"+app.AppID+"?", 1)
	if status, _, reply := w.send(t, http.MethodPost, byAppID, body, nil); status != http.StatusOK || reply != "success" {
		t.Fatalf("by appid: %d %q", status, reply)
	}
	if n := w.rows("callback_events"); n != 2 {
		t.Fatalf("%d events after the push by appid", n)
	}
	// A self-managed app is reached by its key only.
	self, _ := w.bindApp(t, "self oa", appSetup{})
	if status, _, _ := w.send(t, http.MethodPost, "/wechat/callback/"+self.AppID+"?"+signedQuery("x").Encode(), "<xml/>", nil); status != http.StatusNotFound {
		t.Fatalf("a self-managed app by appid: %d", status)
	}
}
