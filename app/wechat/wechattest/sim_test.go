package wechattest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
)

const fixtureJSON = `{
  "seed": "fixture-test",
  "open_accounts": [
    {"id": "acme", "principal": "示例科技（上海）有限公司", "verified": true}
  ],
  "apps": [
    {"name": "示例服务号", "type": "service", "principal": "示例科技（上海）有限公司", "open_account": "acme", "followers": 12000},
    {"name": "示例小程序", "type": "miniprogram", "principal": "示例科技（上海）有限公司", "open_account": "acme"},
    {"name": "个人订阅号", "type": "subscription", "principal": "个人", "verify_type": -1, "followers": 3}
  ],
  "components": [
    {"token": "comptoken", "aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
  ]
}`

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func call(t *testing.T, method, url string, body any, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	resp, err := wechattest.LoopbackOnly(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
	return resp.StatusCode
}

func TestStandaloneWithFixtureAndControlAPI(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "world.json")
	if err := os.WriteFile(path, []byte(fixtureJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- wechattest.Main(ctx, []string{"--addr", "127.0.0.1:0", "--fixture", path}, out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Main: %v", err)
		}
	}()
	var base string
	deadline := time.Now().Add(3 * time.Second)
	for base == "" && time.Now().Before(deadline) {
		if first, _, ok := strings.Cut(out.String(), "\n"); ok {
			base = strings.TrimPrefix(first, "wxsim listening on ")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("no URL printed: %q", out.String())
	}

	var st wechattest.StateView
	call(t, "GET", base+"/_sim/state", nil, &st)
	if len(st.Apps) != 3 || len(st.OpenAccounts) != 1 || len(st.Components) != 1 {
		t.Fatalf("state = %+v", st)
	}
	svc, mp := st.Apps[0], st.Apps[1]
	if svc.OpenAppID != st.OpenAccounts[0].OpenAppID || svc.Followers != 12000 || mp.Type != "miniprogram" {
		t.Fatalf("fixture not applied: %+v", st.Apps)
	}
	if !strings.Contains(out.String(), "app "+svc.AppID+" secret="+svc.Secret) {
		t.Fatalf("credentials not printed:\n%s", out.String())
	}

	c := wechat.New(wechat.Config{APIBase: base, HTTPClient: wechattest.LoopbackOnly(t), Tokens: wechat.NewMemoryStore()})
	ctxb := context.Background()
	app := wechat.App{AppID: svc.AppID, Secret: svc.Secret}
	page, err := c.UserList(ctxb, app, "")
	if err != nil || page.Total != 12000 || page.Count != 10000 {
		t.Fatalf("user/get on the fixture: %+v, %v", page, err)
	}

	// People, codes, apps and faults through the control API.
	var person struct {
		Person wechattest.Person `json:"person"`
	}
	if code := call(t, "POST", base+"/_sim/people", map[string]any{}, &person); code != 200 || person.Person == 0 {
		t.Fatalf("add person: %d %+v", code, person)
	}
	var jc struct {
		Code string `json:"code"`
	}
	call(t, "POST", base+"/_sim/codes/jscode", map[string]any{"appid": mp.AppID, "person": person.Person}, &jc)
	sess, err := c.Code2Session(ctxb, wechat.App{AppID: mp.AppID, Secret: mp.Secret}, jc.Code)
	if err != nil || sess.UnionID == "" {
		t.Fatalf("code from the control API: %+v, %v", sess, err)
	}
	var ids wechattest.Identities
	call(t, "GET", base+"/_sim/people/"+itoa(uint64(person.Person)), nil, &ids)
	if ids.OpenIDs[mp.AppID] != sess.OpenID || ids.UnionIDs[svc.OpenAppID] != sess.UnionID {
		t.Fatalf("identities %+v do not match the session %+v", ids, sess)
	}

	var added wechattest.AppInfo
	if code := call(t, "POST", base+"/_sim/apps", map[string]any{"name": "新号", "principal": "示例科技（上海）有限公司", "followers": 7}, &added); code != 200 || added.AppID == "" {
		t.Fatalf("add app: %d %+v", code, added)
	}
	if code := call(t, "POST", base+"/_sim/apps", map[string]any{"name": "x", "bogus": 1}, nil); code != 400 {
		t.Fatalf("unknown field accepted: %d", code)
	}
	call(t, "POST", base+"/_sim/faults", map[string]any{"path": "cgi-bin/user/get", "errcode": 45009}, nil)
	if _, err := c.UserList(ctxb, app, ""); !wechat.IsQuota(err) {
		t.Fatalf("injected fault: %v", err)
	}
	call(t, "POST", base+"/_sim/quota", map[string]any{"appid": svc.AppID, "path": "cgi-bin/user/info", "errcode": 45011}, nil)
	if _, err := c.UserInfo(ctxb, app, page.Data.OpenIDs[0], ""); wechat.Code(err) != 45011 {
		t.Fatalf("exhausted quota: %v", err)
	}
	call(t, "DELETE", base+"/_sim/quota", map[string]any{"appid": svc.AppID}, nil)
	if _, err := c.UserInfo(ctxb, app, page.Data.OpenIDs[0], ""); err != nil {
		t.Fatalf("after clearing the quota: %v", err)
	}
	var calls map[string]int
	call(t, "GET", base+"/_sim/calls", nil, &calls)
	if calls["cgi-bin/user/get"] != 2 || calls["cgi-bin/stable_token"] != 1 {
		t.Fatalf("calls = %v", calls)
	}
	if code := call(t, "GET", base+"/_sim/nope", nil, nil); code != 404 {
		t.Fatalf("unknown control path: %d", code)
	}
}

func TestMainRefusesNonLoopbackAddr(t *testing.T) {
	err := wechattest.Main(context.Background(), []string{"--addr", "0.0.0.0:9100"}, io.Discard)
	if err == nil {
		t.Fatal("wxsim listened beyond loopback")
	}
}

func TestFixtureErrors(t *testing.T) {
	for name, f := range map[string]string{
		"UnknownField":       `{"apps":[{"name":"a","colour":"red"}]}`,
		"UnknownOpenAccount": `{"apps":[{"name":"a","open_account":"nope"}]}`,
		"BadType":            `{"apps":[{"name":"a","type":"website"}]}`,
		"BadAESKey":          `{"components":[{"token":"t","aes_key":"short"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			fx, err := wechattest.ParseFixture([]byte(f))
			if err == nil {
				s := wechattest.Start(t)
				err = s.Apply(fx)
			}
			if err == nil {
				t.Fatal("fixture accepted")
			}
		})
	}
}

func TestClockAndFaultHTTP(t *testing.T) {
	s := wechattest.Start(t)
	a := s.MustAddApp(wechattest.AppSpec{Name: "a", Principal: "p", Followers: 1})
	c := s.Client(t, nil)
	app := wechat.App{AppID: a.AppID, Secret: a.Secret}
	s.FailNextHTTP("cgi-bin/stable_token", 500, 1)
	if _, err := c.AccessToken(context.Background(), app); err != nil {
		t.Fatalf("one 500 is retried: %v", err)
	}
	before := s.Now()
	s.Advance(time.Hour)
	if d := s.Now().Sub(before); d < time.Hour {
		t.Fatalf("clock moved %s", d)
	}
	// The 2000-a-day cap of cgi-bin/token.
	s2 := wechattest.Start(t, wechattest.WithDailyLimit("cgi-bin/token", 2))
	b := s2.MustAddApp(wechattest.AppSpec{Name: "b", Principal: "p"})
	c2 := s2.Client(t, nil)
	var last error
	for range 3 {
		_, last = c2.ClientCredentialToken(context.Background(), b.AppID, b.Secret)
	}
	if wechat.Code(last) != wechat.CodeDailyQuota {
		t.Fatalf("third token of a 2-a-day app: %v, want 45009", last)
	}
}

func itoa(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
