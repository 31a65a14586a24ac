package wechattest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"oneid/app/wechat"
)

// serveControl is the JSON control API under /_sim/ (see README.md).
func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request, path string) {
	out, status, err := s.control(r, path)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if err != nil {
		if status == 0 {
			status = http.StatusBadRequest
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	if out == nil {
		out = map[string]bool{"ok": true}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("bad JSON: " + err.Error())
	}
	return nil
}

var errNotFound = errors.New("no such control endpoint")

type personReq struct {
	AppID    string `json:"appid"`
	Person   Person `json:"person"`
	Scope    string `json:"scope,omitempty"`
	Snapshot bool   `json:"snapshot,omitempty"`
	QRScene  string `json:"qr_scene,omitempty"`
}

func (s *Sim) control(r *http.Request, path string) (any, int, error) {
	post := r.Method == http.MethodPost
	parts := strings.Split(path, "/")
	switch {
	case path == "state" && r.Method == http.MethodGet:
		return s.State(), 0, nil

	case path == "calls" && r.Method == http.MethodGet:
		s.mu.Lock()
		defer s.mu.Unlock()
		out := map[string]int{}
		for k, v := range s.calls {
			out[k] = v
		}
		return out, 0, nil

	case path == "deliveries" && r.Method == http.MethodGet:
		return s.Deliveries(), 0, nil

	case path == "open-accounts" && post:
		var spec OpenAccountSpec
		if err := readJSON(r, &spec); err != nil {
			return nil, 0, err
		}
		return map[string]string{"open_appid": s.AddOpenAccount(spec)}, 0, nil

	case path == "apps" && post:
		var spec AppSpec
		if err := readJSON(r, &spec); err != nil {
			return nil, 0, err
		}
		info, err := s.AddApp(spec)
		return info, 0, err

	case len(parts) == 3 && parts[0] == "apps" && parts[2] == "callback" && post:
		var cb Callback
		if err := readJSON(r, &cb); err != nil {
			return nil, 0, err
		}
		return nil, 0, s.SetCallback(parts[1], cb)

	case len(parts) == 3 && parts[0] == "apps" && parts[2] == "bind" && post:
		var b struct {
			OpenAppID string `json:"open_appid"`
		}
		if err := readJSON(r, &b); err != nil {
			return nil, 0, err
		}
		return nil, 0, s.BindOpen(parts[1], b.OpenAppID)

	case path == "people" && post:
		var b struct {
			Blocked bool `json:"blocked"`
		}
		if err := readJSON(r, &b); err != nil {
			return nil, 0, err
		}
		p := s.AddPerson()
		if b.Blocked {
			s.Block(p)
		}
		return map[string]Person{"person": p}, 0, nil

	case len(parts) == 2 && parts[0] == "people" && r.Method == http.MethodGet:
		n, err := strconv.ParseUint(parts[1], 10, 64)
		if err != nil {
			return nil, 0, errors.New("person must be a number")
		}
		return s.Identities(Person(n)), 0, nil

	case path == "follower" && r.Method == http.MethodGet:
		k, _ := strconv.Atoi(r.URL.Query().Get("k"))
		appID := r.URL.Query().Get("appid")
		if _, ok := s.App(appID); !ok {
			return nil, http.StatusNotFound, errUnknownApp
		}
		p := s.Follower(appID, k)
		return map[string]any{"person": p, "openid": s.OpenID(appID, p)}, 0, nil

	case (path == "follow" || path == "unfollow") && post:
		var b personReq
		if err := readJSON(r, &b); err != nil {
			return nil, 0, err
		}
		if path == "follow" {
			d, err := s.Follow(b.AppID, b.Person, b.QRScene)
			return d, 0, err
		}
		d, err := s.Unfollow(b.AppID, b.Person)
		return d, 0, err

	case path == "codes/oauth" && post:
		var b personReq
		if err := readJSON(r, &b); err != nil {
			return nil, 0, err
		}
		if _, ok := s.App(b.AppID); !ok {
			return nil, http.StatusNotFound, errUnknownApp
		}
		if b.Scope == "" {
			b.Scope = wechat.ScopeBase
		}
		return map[string]string{"code": s.OAuthCode(b.AppID, b.Person, b.Scope, b.Snapshot)}, 0, nil

	case path == "codes/jscode" && post:
		var b personReq
		if err := readJSON(r, &b); err != nil {
			return nil, 0, err
		}
		if _, ok := s.App(b.AppID); !ok {
			return nil, http.StatusNotFound, errUnknownApp
		}
		return map[string]string{"code": s.JSCode(b.AppID, b.Person)}, 0, nil

	case path == "payments" && post:
		var b personReq
		if err := readJSON(r, &b); err != nil {
			return nil, 0, err
		}
		if _, ok := s.App(b.AppID); !ok {
			return nil, http.StatusNotFound, errUnknownApp
		}
		return s.Pay(b.AppID, b.Person), 0, nil

	case path == "push" && post:
		var b struct {
			AppID string       `json:"appid"`
			Event wechat.Event `json:"event"`
		}
		if err := readJSON(r, &b); err != nil {
			return nil, 0, err
		}
		d, err := s.Push(b.AppID, b.Event)
		return d, 0, err

	case path == "components" && post:
		var spec ComponentSpec
		if err := readJSON(r, &spec); err != nil {
			return nil, 0, err
		}
		out, err := s.AddComponent(spec)
		return out, 0, err

	case len(parts) == 3 && parts[0] == "components" && parts[2] == "ticket" && post:
		t, d, err := s.PushVerifyTicket(parts[1])
		return map[string]any{"ticket": t, "delivery": d}, 0, err

	case len(parts) == 3 && parts[0] == "components" && (parts[2] == "authorize" || parts[2] == "unauthorize") && post:
		var b struct {
			AppID string `json:"appid"`
		}
		if err := readJSON(r, &b); err != nil {
			return nil, 0, err
		}
		if parts[2] == "authorize" {
			c, err := s.Authorize(parts[1], b.AppID)
			return map[string]string{"auth_code": c}, 0, err
		}
		d, err := s.Unauthorize(parts[1], b.AppID)
		return d, 0, err

	case path == "faults" && post:
		var b struct {
			Fault
			LatencyMS int `json:"latency_ms"`
		}
		if err := readJSON(r, &b); err != nil {
			return nil, 0, err
		}
		if b.Path == "" {
			return nil, 0, errors.New("fault needs a path")
		}
		if b.ErrCode == 0 && b.HTTPStatus == 0 && b.LatencyMS > 0 && b.Times == 0 {
			s.SetLatency(b.Path, time.Duration(b.LatencyMS)*time.Millisecond)
			return nil, 0, nil
		}
		b.Fault.Latency = time.Duration(b.LatencyMS) * time.Millisecond
		s.Inject(b.Fault)
		return nil, 0, nil

	case path == "faults" && r.Method == http.MethodDelete:
		s.mu.Lock()
		s.faults = map[string][]*Fault{}
		s.latency = map[string]time.Duration{}
		s.mu.Unlock()
		return nil, 0, nil

	case path == "quota" && (post || r.Method == http.MethodDelete):
		var b struct {
			AppID   string `json:"appid"`
			Path    string `json:"path"`
			ErrCode int    `json:"errcode"`
		}
		if err := readJSON(r, &b); err != nil {
			return nil, 0, err
		}
		if post {
			s.ExhaustQuota(b.AppID, b.Path, b.ErrCode)
		} else {
			s.ClearQuota(b.AppID)
		}
		return nil, 0, nil

	case path == "clock" && post:
		var b struct {
			AdvanceSeconds int64 `json:"advance_seconds"`
		}
		if err := readJSON(r, &b); err != nil {
			return nil, 0, err
		}
		s.Advance(time.Duration(b.AdvanceSeconds) * time.Second)
		return map[string]int64{"now": s.Now().Unix()}, 0, nil

	case path == "tokens/rotate" && post:
		var b struct {
			AppID string `json:"appid"`
		}
		if err := readJSON(r, &b); err != nil {
			return nil, 0, err
		}
		if _, ok := s.App(b.AppID); !ok {
			return nil, http.StatusNotFound, errUnknownApp
		}
		s.ForceRefreshStable(b.AppID)
		return nil, 0, nil
	}
	return nil, http.StatusNotFound, errNotFound
}

// StateView is GET /_sim/state.
type StateView struct {
	URL          string            `json:"url"`
	Now          int64             `json:"now"`
	OpenAccounts []OpenAccountSpec `json:"open_accounts"`
	Apps         []AppInfo         `json:"apps"`
	Components   []ComponentSpec   `json:"components"`
}

// State lists the simulated world (secrets included: it is a simulator).
func (s *Sim) State() StateView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := StateView{URL: s.url, Now: s.now().Unix(), OpenAccounts: []OpenAccountSpec{}, Apps: []AppInfo{}, Components: []ComponentSpec{}}
	for _, o := range s.opens {
		v.OpenAccounts = append(v.OpenAccounts, OpenAccountSpec{OpenAppID: o.OpenAppID, Principal: o.Principal, Verified: o.Verified, CreatedByAPI: o.CreatedByAPI})
	}
	for _, id := range s.appOrder {
		v.Apps = append(v.Apps, s.apps[id].info())
	}
	for _, c := range s.comps {
		v.Components = append(v.Components, ComponentSpec{AppID: c.AppID, Secret: c.Secret, Token: c.Token, AESKey: c.AESKey, CallbackURL: c.CallbackURL})
	}
	return v
}

// Identities is a person's openid in every app and unionid in every open account.
type Identities struct {
	Person   Person            `json:"person"`
	OpenIDs  map[string]string `json:"openids"`
	UnionIDs map[string]string `json:"unionids"`
}

// Identities lists the person's ids everywhere.
func (s *Sim) Identities(p Person) Identities {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Identities{Person: p, OpenIDs: map[string]string{}, UnionIDs: map[string]string{}}
	for id, a := range s.apps {
		out.OpenIDs[id] = s.ids.encode(a.ns, p)
	}
	for id, o := range s.opens {
		out.UnionIDs[id] = s.ids.encode(o.ns, p)
	}
	return out
}
