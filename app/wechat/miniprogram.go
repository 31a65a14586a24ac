package wechat

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
)

// Session is the answer of jscode2session. The session key is a secret: keep it
// out of logs and pages.
type Session struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
	UnionID    string `json:"unionid"`
}

// Code2Session trades a mini-program login code (wx.login) for the user's
// openid, session key and, on a bound app, unionid.
func (c *Client) Code2Session(ctx context.Context, app App, jsCode string) (*Session, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var r struct {
		apiStatus
		Session
	}
	if app.Authorized {
		q := url.Values{"appid": {app.AppID}, "js_code": {jsCode}, "grant_type": {"authorization_code"}, "component_appid": {c.component.AppID}}
		if err := c.withComponentToken(ctx, call{endpoint: "sns/component/jscode2session", query: q}, &r); err != nil {
			return nil, err
		}
		return &r.Session, nil
	}
	q := url.Values{"appid": {app.AppID}, "secret": {app.Secret}, "js_code": {jsCode}, "grant_type": {"authorization_code"}}
	if err := c.do(ctx, call{endpoint: "sns/jscode2session", query: q}, &r); err != nil {
		return nil, err
	}
	return &r.Session, nil
}

// Payment names a payment for PaidUnionID: a transaction id, or a merchant id
// with the merchant's order number.
type Payment struct {
	TransactionID string
	MchID         string
	OutTradeNo    string
}

// PaidUnionID returns the unionid of a user who paid within the last 5 minutes.
func (c *Client) PaidUnionID(ctx context.Context, app App, openID string, p Payment) (string, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	q := url.Values{"openid": {openID}}
	switch {
	case p.TransactionID != "":
		q.Set("transaction_id", p.TransactionID)
	case p.MchID != "" && p.OutTradeNo != "":
		q.Set("mch_id", p.MchID)
		q.Set("out_trade_no", p.OutTradeNo)
	}
	var r struct {
		apiStatus
		UnionID string `json:"unionid"`
	}
	if err := c.withToken(ctx, app, call{endpoint: "wxa/getpaidunionid", query: q}, &r); err != nil {
		return "", err
	}
	return r.UnionID, nil
}

// ErrBadUserData is returned when encryptedData does not decrypt or belongs to another app.
var ErrBadUserData = errors.New("wechat: encrypted user data does not decrypt for this app")

// DecryptUserData opens a mini-program encryptedData blob (AES-128-CBC with the
// session key, PKCS#7) and checks its watermark names appID.
func DecryptUserData(appID, sessionKey, encryptedData, iv string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != 16 {
		return nil, ErrBadUserData
	}
	ivb, err := base64.StdEncoding.DecodeString(iv)
	if err != nil || len(ivb) != aes.BlockSize {
		return nil, ErrBadUserData
	}
	data, err := base64.StdEncoding.DecodeString(encryptedData)
	if err != nil || len(data) == 0 || len(data)%aes.BlockSize != 0 || len(data) > 64<<10 {
		return nil, ErrBadUserData
	}
	block, _ := aes.NewCipher(key)
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, ivb).CryptBlocks(plain, data)
	plain, err = unpad(plain, aes.BlockSize)
	if err != nil {
		return nil, ErrBadUserData
	}
	var w struct {
		Watermark struct {
			AppID string `json:"appid"`
		} `json:"watermark"`
	}
	if json.Unmarshal(plain, &w) != nil || w.Watermark.AppID != appID {
		return nil, ErrBadUserData
	}
	return plain, nil
}
