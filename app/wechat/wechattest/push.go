package wechattest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"oneid/app/wechat"
)

// Callback is where an app's pushes go: its server URL, token and, for safe
// mode, EncodingAESKey. Plaintext sends plaintext XML (plain mode).
type Callback struct {
	URL       string `json:"url"`
	Token     string `json:"token"`
	AESKey    string `json:"aes_key,omitempty"`
	Plaintext bool   `json:"plaintext,omitempty"`
	// CryptAppID is the appid sealed inside encrypted pushes (default the
	// app's own). An app authorized to a third-party platform has its pushes
	// sealed with the platform's token and key and the platform's appid.
	CryptAppID string `json:"crypt_appid,omitempty"`
}

// Delivery reports one push: WeChat tries 3 times, 5 s each, until the server
// answers 200.
type Delivery struct {
	AppID    string `json:"appid"`
	Event    string `json:"event"`
	Attempts int    `json:"attempts"`
	Status   int    `json:"status"`
	Reply    string `json:"reply,omitempty"`
	Error    string `json:"error,omitempty"`
	OK       bool   `json:"ok"`
}

// SetCallback configures the app's push URL; an empty URL turns pushes off.
func (s *Sim) SetCallback(appID string, cb Callback) error {
	if !cb.Plaintext && cb.URL != "" {
		if _, err := wechat.NewCrypter(cb.AESKey, firstNonEmpty(cb.CryptAppID, appID)); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		return errUnknownApp
	}
	if cb.URL == "" {
		a.callback = nil
		return nil
	}
	a.callback = &cb
	return nil
}

// Push delivers an event to the app's callback (signed, and encrypted unless
// the callback is plaintext). Without a callback it does nothing.
func (s *Sim) Push(appID string, ev wechat.Event) (Delivery, error) {
	s.mu.Lock()
	a := s.apps[appID]
	if a == nil {
		s.mu.Unlock()
		return Delivery{}, errUnknownApp
	}
	if a.callback == nil {
		s.mu.Unlock()
		return Delivery{AppID: appID, Event: ev.Event}, nil
	}
	cb := *a.callback
	ts := s.now().Unix()
	s.mu.Unlock()
	return s.deliver(cb, appID, ev.ToUserName, ev.FromUserName, ev, ts)
}

// PushComponent delivers a notice to the component's authorisation-event URL.
func (s *Sim) PushComponent(componentAppID string, ev wechat.Event) (Delivery, error) {
	s.mu.Lock()
	c := s.comps[componentAppID]
	if c == nil {
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("wechattest: unknown component %s", componentAppID)
	}
	cb := Callback{URL: c.CallbackURL, Token: c.Token, AESKey: c.AESKey}
	ts := s.now().Unix()
	s.mu.Unlock()
	if cb.URL == "" {
		return Delivery{AppID: componentAppID, Event: ev.InfoType}, nil
	}
	return s.deliver(cb, componentAppID, "", "", ev, ts)
}

func (s *Sim) pushAsync(componentAppID string, ev wechat.Event) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_, _ = s.PushComponent(componentAppID, ev)
	}()
}

func (s *Sim) deliver(cb Callback, appID, toUser, openID string, ev wechat.Event, ts int64) (Delivery, error) {
	d := Delivery{AppID: appID, Event: firstNonEmpty(ev.Event, ev.InfoType)}
	timestamp := strconv.FormatInt(ts, 10)
	nonce := strconv.FormatUint(mix(uint64(time.Now().UnixNano()))%1e10, 10)
	q := url.Values{"signature": {wechat.Signature(cb.Token, timestamp, nonce)}, "timestamp": {timestamp}, "nonce": {nonce}}
	if openID != "" {
		q.Set("openid", openID)
	}
	body := ev.XML()
	if !cb.Plaintext {
		cr, err := wechat.NewCrypter(cb.AESKey, firstNonEmpty(cb.CryptAppID, appID))
		if err != nil {
			return d, err
		}
		var msgSig string
		body, msgSig, err = wechat.SealPush(cb.Token, cr, toUser, timestamp, nonce, body)
		if err != nil {
			return d, err
		}
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", msgSig)
	}
	target, err := url.Parse(cb.URL)
	if err != nil {
		return d, err
	}
	tq := target.Query()
	for k, v := range q {
		tq[k] = v
	}
	target.RawQuery = tq.Encode()
	for d.Attempts < 3 {
		d.Attempts++
		ok := s.attempt(target.String(), body, &d)
		if ok {
			d.OK = true
			break
		}
	}
	s.mu.Lock()
	s.log = append(s.log, d)
	s.mu.Unlock()
	return d, nil
}

func (s *Sim) attempt(target string, body []byte, d *Delivery) bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.pushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		d.Error = err.Error()
		return false
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := s.push.Do(req)
	if err != nil {
		d.Status, d.Error = 0, err.Error()
		return false
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	d.Status, d.Reply, d.Error = resp.StatusCode, string(reply), ""
	return resp.StatusCode == http.StatusOK
}
