package wechat_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
)

func TestFollowerPagingAndInfo(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 25_001)
	c := w.client(t, nil)
	ctx := context.Background()

	var all []string
	seen := map[string]bool{}
	next := ""
	pages := 0
	for {
		page, err := c.UserList(ctx, w.app, next)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if page.Total != 25_001 {
			t.Fatalf("total = %d", page.Total)
		}
		if page.Count != len(page.Data.OpenIDs) || page.Count > 10_000 {
			t.Fatalf("count %d with %d ids", page.Count, len(page.Data.OpenIDs))
		}
		for _, id := range page.Data.OpenIDs {
			if len(id) != 28 || seen[id] {
				t.Fatalf("bad or repeated openid %q", id)
			}
			seen[id] = true
		}
		all = append(all, page.Data.OpenIDs...)
		if page.Done() {
			break
		}
		next = page.NextOpenID
	}
	if len(all) != 25_001 || pages != 3 {
		t.Fatalf("%d openids in %d pages; want 25001 in 3", len(all), pages)
	}

	// A total that is a multiple of the page size ends with an empty page.
	w2 := newWorld(t, 10_000)
	c2 := w2.client(t, nil)
	p1, err := c2.UserList(ctx, w2.app, "")
	if err != nil || p1.Count != 10_000 || p1.Done() {
		t.Fatalf("first page: %+v, %v", p1.Count, err)
	}
	p2, err := c2.UserList(ctx, w2.app, p1.NextOpenID)
	if err != nil || p2.Count != 0 || p2.NextOpenID != "" || !p2.Done() {
		t.Fatalf("final page: count %d next %q, %v", p2.Count, p2.NextOpenID, err)
	}

	users, err := c.UserInfoBatch(ctx, w.app, all[:100], "zh_CN")
	if err != nil || len(users) != 100 {
		t.Fatalf("batchget: %d users, %v", len(users), err)
	}
	withUnion, unsub := 0, 0
	langs := map[string]bool{}
	for i, u := range users {
		if u.OpenID != all[i] {
			t.Fatalf("user %d is %s, want %s (order kept)", i, u.OpenID, all[i])
		}
		if u.Subscribe == 1 {
			if u.UnionID == "" || u.SubscribeTime == 0 || u.SubscribeScene == "" || u.Language == "" {
				t.Fatalf("follower of a bound app lacks fields: %+v", u)
			}
			withUnion++
			langs[u.Language] = true
		} else {
			unsub++
			if u.UnionID != "" {
				t.Fatalf("subscribe=0 came with a unionid: %+v", u)
			}
		}
	}
	if withUnion < 90 || len(langs) < 2 {
		t.Fatalf("%d of 100 with unionid, languages %v: want a realistic mix", withUnion, langs)
	}
	one, err := c.UserInfo(ctx, w.app, all[0], "")
	if err != nil || one.OpenID != all[0] || one.Subscribe != users[0].Subscribe || one.UnionID != users[0].UnionID {
		t.Fatalf("user/info = %+v, %v; want it to agree with batchget", one, err)
	}

	if _, err := c.UserInfoBatch(ctx, w.app, make([]string, 101), ""); err == nil {
		t.Fatal("101 openids accepted")
	}
	if _, err := c.UserInfoBatch(ctx, w.app, []string{all[0], "oNotAnOpenIDOfThisAppAtAll__"}, ""); wechat.Code(err) != wechat.CodeInvalidOpenID {
		t.Fatalf("invalid openid in a batch: %v, want 40003", err)
	}
	other := w.sim.MustAddApp(wechattest.AppSpec{Name: "other", Principal: principal, OpenAppID: w.open, Followers: 10})
	foreign := w.sim.OpenID(other.AppID, w.sim.Follower(other.AppID, 0))
	if _, err := c.UserInfo(ctx, w.app, foreign, ""); wechat.Code(err) != wechat.CodeInvalidOpenID {
		t.Fatalf("another app's openid: %v, want 40003", err)
	}
}

func TestIDsAreDeterministicAndLinkedByUnionID(t *testing.T) {
	t.Parallel()
	sim := wechattest.Start(t)
	open := sim.AddOpenAccount(wechattest.OpenAccountSpec{Name: "acme", Principal: principal, Verified: true})
	a := sim.MustAddApp(wechattest.AppSpec{Name: "a", Principal: principal, OpenAppID: open, Followers: 1000})
	b := sim.MustAddApp(wechattest.AppSpec{Name: "b", Type: wechattest.TypeMiniProgram, Principal: principal, OpenAppID: open})
	if len(a.AppID) != 18 || a.AppID[:2] != "wx" {
		t.Fatalf("appid %q is not wx + 16 hex", a.AppID)
	}
	p := sim.Follower(a.AppID, 700) // in the half shared with the next app of the account
	oa, ob := sim.OpenID(a.AppID, p), sim.OpenID(b.AppID, p)
	if oa == ob || len(oa) != 28 || len(ob) != 28 {
		t.Fatalf("openids %q %q: want 28 characters, different per app", oa, ob)
	}
	if got, ok := sim.PersonOf(a.AppID, oa); !ok || got != p {
		t.Fatal("openid does not map back to its person")
	}
	if _, ok := sim.PersonOf(b.AppID, oa); ok {
		t.Fatal("an openid of app a is accepted by app b")
	}
	again := wechattest.Start(t)
	open2 := again.AddOpenAccount(wechattest.OpenAccountSpec{Name: "acme", Principal: principal, Verified: true})
	a2 := again.MustAddApp(wechattest.AppSpec{Name: "a", Principal: principal, OpenAppID: open2, Followers: 1000})
	if a2.AppID != a.AppID || again.OpenID(a2.AppID, p) != oa || open2 != open {
		t.Fatal("ids differ between two simulators with the same seed")
	}

	// The same person seen by the OA (user/info) and the mini program
	// (jscode2session) has one unionid.
	c := wechat.New(sim.Config(wechattest.LoopbackOnly(t), wechat.NewMemoryStore()))
	ctx := context.Background()
	info, err := c.UserInfo(ctx, wechat.App{AppID: a.AppID, Secret: a.Secret}, oa, "")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.Code2Session(ctx, wechat.App{AppID: b.AppID, Secret: b.Secret}, sim.JSCode(b.AppID, p))
	if err != nil {
		t.Fatal(err)
	}
	if sess.OpenID != ob || info.Subscribe == 1 && sess.UnionID != info.UnionID || sess.UnionID != sim.UnionID(open, p) {
		t.Fatalf("session %+v / info %+v: one unionid per person expected", sess, info)
	}
}

func TestOAuthCodes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 10)
	c := w.client(t, nil)
	ctx := context.Background()
	p := w.sim.AddPerson()

	u, err := c.AuthorizeURL(w.app, "https://portal.example/cb?x=1", wechat.ScopeUserInfo, "abc123")
	if err != nil || !strings.HasPrefix(u, w.sim.URL()+"/connect/oauth2/authorize?appid="+w.app.AppID+"&redirect_uri=") || !strings.HasSuffix(u, "&response_type=code&scope=snsapi_userinfo&state=abc123#wechat_redirect") {
		t.Fatalf("authorize URL %q, %v", u, err)
	}
	if _, err := c.AuthorizeURL(w.app, "https://x", wechat.ScopeBase, "bad state!"); err == nil {
		t.Fatal("state with punctuation accepted")
	}

	// The authorize page redirects back with a code for the chosen person.
	noFollow := wechattest.LoopbackOnly(t)
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Get(strings.TrimSuffix(u, "#wechat_redirect") + "&sim_person=" + itoa(uint64(p)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Host != "portal.example" || loc.Query().Get("state") != "abc123" || loc.Query().Get("x") != "1" {
		t.Fatalf("redirect %d to %s", resp.StatusCode, loc)
	}
	tok, err := c.OAuthExchange(ctx, w.app, loc.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.OpenID != w.sim.OpenID(w.app.AppID, p) || tok.UnionID != w.sim.UnionID(w.open, p) || tok.Snapshot() || tok.Scope != wechat.ScopeUserInfo {
		t.Fatalf("exchange = %+v", tok)
	}
	prof, err := c.SNSUserInfo(ctx, tok.AccessToken, tok.OpenID, "")
	if err != nil || prof.UnionID != tok.UnionID || prof.Nickname == "" || prof.Sex != 0 || prof.City != "" {
		t.Fatalf("sns/userinfo = %+v, %v", prof, err)
	}
	again, err := c.OAuthRefresh(ctx, w.app, tok.RefreshToken)
	if err != nil || again.OpenID != tok.OpenID || again.AccessToken == tok.AccessToken {
		t.Fatalf("refresh = %+v, %v", again, err)
	}

	cases := []struct {
		name string
		code func() string
		want int
	}{
		{"Invalid", func() string { return "not-a-code" }, wechat.CodeInvalidCode},
		{"Used", func() string {
			code := w.sim.OAuthCode(w.app.AppID, p, wechat.ScopeBase, false)
			if _, err := c.OAuthExchange(ctx, w.app, code); err != nil {
				t.Fatal(err)
			}
			return code
		}, wechat.CodeCodeUsed},
		{"OtherApp", func() string {
			other := w.sim.MustAddApp(wechattest.AppSpec{Name: "other-" + t.Name(), Principal: principal})
			return w.sim.OAuthCode(other.AppID, p, wechat.ScopeBase, false)
		}, wechat.CodeInvalidCode},
		{"Missing", func() string { return "" }, 41008},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.OAuthExchange(ctx, w.app, tc.code())
			if wechat.Code(err) != tc.want {
				t.Fatalf("err = %v, want %d", err, tc.want)
			}
		})
	}
	t.Run("Expired", func(t *testing.T) {
		sim := wechattest.Start(t)
		a := sim.MustAddApp(wechattest.AppSpec{Name: "x", Principal: principal})
		cc := wechat.New(sim.Config(wechattest.LoopbackOnly(t), nil))
		code := sim.OAuthCode(a.AppID, 1, wechat.ScopeBase, false)
		sim.Advance(5*time.Minute + time.Second)
		if _, err := cc.OAuthExchange(ctx, wechat.App{AppID: a.AppID, Secret: a.Secret}, code); wechat.Code(err) != wechat.CodeCodeExpired {
			t.Fatalf("err = %v, want 42003", err)
		}
	})
	t.Run("BaseScopeHasNoUnionID", func(t *testing.T) {
		tok, err := c.OAuthExchange(ctx, w.app, w.sim.OAuthCode(w.app.AppID, p, wechat.ScopeBase, false))
		if err != nil || tok.UnionID != "" || tok.OpenID == "" {
			t.Fatalf("snsapi_base = %+v, %v", tok, err)
		}
		if _, err := c.SNSUserInfo(ctx, tok.AccessToken, tok.OpenID, ""); wechat.Code(err) != wechat.CodeUnauthorized {
			t.Fatalf("sns/userinfo with a base token: %v, want 48001", err)
		}
	})
	t.Run("SnapshotUserIsVirtual", func(t *testing.T) {
		tok, err := c.OAuthExchange(ctx, w.app, w.sim.OAuthCode(w.app.AppID, p, wechat.ScopeUserInfo, true))
		if err != nil || !tok.Snapshot() || tok.OpenID == w.sim.OpenID(w.app.AppID, p) {
			t.Fatalf("snapshot = %+v, %v: want is_snapshotuser=1 and a virtual openid", tok, err)
		}
	})
	t.Run("WrongSecretIsConfig", func(t *testing.T) {
		bad := w.app
		bad.Secret = "0123"
		_, err := c.OAuthExchange(ctx, bad, w.sim.OAuthCode(w.app.AppID, p, wechat.ScopeBase, false))
		if !wechat.IsConfig(err) {
			t.Fatalf("err = %v, want a configuration error", err)
		}
	})
}

func TestMiniProgramLoginAndPaidUnionID(t *testing.T) {
	t.Parallel()
	sim := wechattest.Start(t)
	open := sim.AddOpenAccount(wechattest.OpenAccountSpec{Name: "acme", Principal: principal, Verified: true})
	mp := sim.MustAddApp(wechattest.AppSpec{Name: "mp", Type: wechattest.TypeMiniProgram, Principal: principal, OpenAppID: open})
	lone := sim.MustAddApp(wechattest.AppSpec{Name: "lone", Type: wechattest.TypeMiniProgram, Principal: principal})
	c := wechat.New(sim.Config(wechattest.LoopbackOnly(t), wechat.NewMemoryStore()))
	app := wechat.App{AppID: mp.AppID, Secret: mp.Secret}
	ctx := context.Background()
	p := sim.AddPerson()

	code := sim.JSCode(mp.AppID, p)
	s, err := c.Code2Session(ctx, app, code)
	if err != nil || s.OpenID != sim.OpenID(mp.AppID, p) || s.UnionID != sim.UnionID(open, p) || s.SessionKey == "" {
		t.Fatalf("jscode2session = %+v, %v", s, err)
	}
	if _, err := c.Code2Session(ctx, app, code); wechat.Code(err) != wechat.CodeCodeUsed {
		t.Fatalf("reused code: %v, want 40163", err)
	}
	if _, err := c.Code2Session(ctx, app, "0bogus"); wechat.Code(err) != wechat.CodeInvalidCode {
		t.Fatalf("bogus code: %v, want 40029", err)
	}
	ls, err := c.Code2Session(ctx, wechat.App{AppID: lone.AppID, Secret: lone.Secret}, sim.JSCode(lone.AppID, p))
	if err != nil || ls.UnionID != "" {
		t.Fatalf("unbound app: %+v, %v; want no unionid", ls, err)
	}
	blocked := sim.AddPerson()
	sim.Block(blocked)
	if _, err := c.Code2Session(ctx, app, sim.JSCode(mp.AppID, blocked)); wechat.Code(err) != wechat.CodeCodeBlocked {
		t.Fatalf("blocked user: %v, want 40226", err)
	}
	var last error
	for range 101 {
		_, last = c.Code2Session(ctx, app, sim.JSCode(mp.AppID, p))
	}
	if !wechat.IsQuota(last) || wechat.Code(last) != wechat.CodeMinuteQuota {
		t.Fatalf("101 more logins in a minute: %v, want 45011", last)
	}
	stale := sim.JSCode(mp.AppID, p)
	sim.Advance(6 * time.Minute)
	if _, err := c.Code2Session(ctx, app, stale); wechat.Code(err) != wechat.CodeCodeExpired {
		t.Fatalf("expired code: %v, want 42003", err)
	}

	pay := sim.Pay(mp.AppID, p)
	openID := sim.OpenID(mp.AppID, p)
	u, err := c.PaidUnionID(ctx, app, openID, wechat.Payment{TransactionID: pay.TransactionID})
	if err != nil || u != sim.UnionID(open, p) {
		t.Fatalf("getpaidunionid = %q, %v", u, err)
	}
	if u, err := c.PaidUnionID(ctx, app, openID, wechat.Payment{MchID: pay.MchID, OutTradeNo: pay.OutTradeNo}); err != nil || u == "" {
		t.Fatalf("by merchant order: %q, %v", u, err)
	}
	sim.Advance(5*time.Minute + time.Second)
	if _, err := c.PaidUnionID(ctx, app, openID, wechat.Payment{TransactionID: pay.TransactionID}); wechat.Code(err) != 89300 {
		t.Fatalf("after 5 minutes: %v, want 89300", err)
	}
	lp := sim.Pay(lone.AppID, p)
	if _, err := c.PaidUnionID(ctx, wechat.App{AppID: lone.AppID, Secret: lone.Secret}, sim.OpenID(lone.AppID, p), wechat.Payment{TransactionID: lp.TransactionID}); wechat.Code(err) != wechat.CodeOpenNotExists {
		t.Fatalf("unbound app: %v, want 89002", err)
	}
}

// pushReceiver is a callback server that checks and decrypts pushes.
type pushReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []*wechat.Event
	fail   int // answer 500 to this many requests first
	hits   int
}

func newReceiver(t *testing.T, token string, cr *wechat.Crypter) *pushReceiver {
	pr := &pushReceiver{}
	pr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr.mu.Lock()
		defer pr.mu.Unlock()
		pr.hits++
		if pr.fail > 0 {
			pr.fail--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, wechat.MaxCallbackBody+1))
		plain, err := wechat.OpenPush(token, cr, wechat.ParseCallbackQuery(r.URL.Query().Get), body)
		if err != nil {
			t.Errorf("push refused: %v", err)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		ev, err := wechat.ParseEvent(plain)
		if err != nil {
			t.Errorf("push does not parse: %v", err)
		}
		pr.events = append(pr.events, ev)
		_, _ = w.Write([]byte("success"))
	}))
	t.Cleanup(pr.srv.Close)
	return pr
}

func TestFollowPushes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	const token, key = "cbtoken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	cr, _ := wechat.NewCrypter(key, w.app.AppID)
	rx := newReceiver(t, token, cr)
	if err := w.sim.SetCallback(w.app.AppID, wechattest.Callback{URL: rx.srv.URL + "/wechat/callback", Token: token, AESKey: key}); err != nil {
		t.Fatal(err)
	}
	p := w.sim.AddPerson()
	d, err := w.sim.Follow(w.app.AppID, p, "spring")
	if err != nil || !d.OK || d.Attempts != 1 {
		t.Fatalf("follow push: %+v, %v", d, err)
	}
	rx.fail = 2
	d, err = w.sim.Unfollow(w.app.AppID, p)
	if err != nil || !d.OK || d.Attempts != 3 {
		t.Fatalf("unfollow push with two failures: %+v, %v; want delivered on the 3rd attempt", d, err)
	}
	rx.fail = 3
	if d, _ := w.sim.Follow(w.app.AppID, p, ""); d.OK || d.Attempts != 3 {
		t.Fatalf("push to a failing server: %+v; want 3 attempts, not delivered", d)
	}
	if len(rx.events) != 2 {
		t.Fatalf("%d events received", len(rx.events))
	}
	sub, unsub := rx.events[0], rx.events[1]
	openID := w.sim.OpenID(w.app.AppID, p)
	if sub.Event != wechat.EventSubscribe || sub.FromUserName != openID || sub.Scene() != "spring" || sub.Ticket == "" || sub.ToUserName != w.oa.UserName {
		t.Fatalf("subscribe event %+v", sub)
	}
	if unsub.Event != wechat.EventUnsubscribe || unsub.FromUserName != openID {
		t.Fatalf("unsubscribe event %+v", unsub)
	}

	// Follow state is what the API reports afterwards: the last push failed,
	// but the person follows.
	c := w.client(t, nil)
	list, err := c.UserList(context.Background(), w.app, "")
	if err != nil || list.Total != 4 || list.Data.OpenIDs[3] != openID {
		t.Fatalf("list after follow: %+v, %v", list, err)
	}
	info, _ := c.UserInfo(context.Background(), w.app, openID, "")
	if info.Subscribe != 1 || info.SubscribeScene != "ADD_SCENE_SEARCH" {
		t.Fatalf("user/info after follow: %+v", info)
	}
	if _, err := w.sim.Unfollow(w.app.AppID, w.sim.Follower(w.app.AppID, 0)); err != nil {
		t.Fatal(err)
	}
	list, _ = c.UserList(context.Background(), w.app, "")
	if list.Total != 3 || list.Data.OpenIDs[0] == w.sim.OpenID(w.app.AppID, w.sim.Follower(w.app.AppID, 0)) {
		t.Fatalf("a generated follower who left is still listed: %+v", list)
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
