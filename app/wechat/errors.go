package wechat

import (
	"errors"
	"fmt"
)

// Error is a failure answered by WeChat (or by the HTTP layer in front of it).
// Code is WeChat's errcode; Msg is its errmsg, kept for people to read and never
// compared. Status is the HTTP status when WeChat did not answer 200 (Code is
// then 0).
type Error struct {
	Endpoint string // the API path, e.g. "cgi-bin/user/get"
	Code     int
	Msg      string
	Status   int
}

// Error codes the client acts on. The full table is in WECHAT-API.md §9.
const (
	CodeBusy              = -1
	CodeInvalidCredential = 40001 // bad secret, or a stale/invalid access token
	CodeInvalidOpenID     = 40003
	CodeInvalidAppID      = 40013
	CodeInvalidToken      = 40014
	CodeInvalidCode       = 40029
	CodeInvalidRefresh    = 40030
	CodeInvalidSecret     = 40125
	CodeCodeUsed          = 40163
	CodeIPNotWhitelisted  = 40164
	CodeCodeBlocked       = 40226
	CodeSecretFrozen      = 40243
	CodeTokenExpired      = 42001
	CodeRefreshExpired    = 42002
	CodeCodeExpired       = 42003
	CodeDailyQuota        = 45009
	CodeMinuteQuota       = 45011
	CodeUnauthorized      = 48001
	CodeOpenAlreadyBound  = 89000
	CodeNotSameContractor = 89001
	CodeOpenNotExists     = 89002
	CodeOpenNotByAPI      = 89003
	CodeOpenBindLimit     = 89004
)

func (e *Error) Error() string {
	switch {
	case e.Status != 0 && e.Code == 0:
		return fmt.Sprintf("wechat: %s: HTTP %d", e.Endpoint, e.Status)
	case isQuotaCode(e.Code):
		return fmt.Sprintf("wechat: %s: API quota reached (errcode %d: %s)", e.Endpoint, e.Code, e.Msg)
	case isConfigCode(e.Code):
		return fmt.Sprintf("wechat: %s: configuration error (errcode %d: %s)", e.Endpoint, e.Code, e.Msg)
	default:
		return fmt.Sprintf("wechat: %s: errcode %d: %s", e.Endpoint, e.Code, e.Msg)
	}
}

// Kind names the class of the error for logs and messages: "quota", "config",
// "token", "retryable" or "api".
func (e *Error) Kind() string {
	switch {
	case isQuotaCode(e.Code):
		return "quota"
	case isConfigCode(e.Code):
		return "config"
	case isTokenCode(e.Code):
		return "token"
	case e.retryable():
		return "retryable"
	}
	return "api"
}

func (e *Error) retryable() bool {
	return e.Code == CodeBusy || (e.Code == 0 && e.Status >= 500)
}

func isQuotaCode(c int) bool { return c == CodeDailyQuota || c == CodeMinuteQuota }

// isConfigCode lists the answers that mean the app's setup is wrong (secret,
// appid, IP whitelist, component registration): an admin must act, and retrying
// only burns quota.
func isConfigCode(c int) bool {
	switch c {
	case CodeIPNotWhitelisted, CodeInvalidSecret, CodeInvalidAppID, CodeSecretFrozen,
		41002, 41004, // appid / secret missing
		89503, 89506, 89507, // IP awaits or was refused admin confirmation
		61004,        // component client IP not registered
		61003, 61023: // the app has not authorized the component, or cancelled it
		return true
	}
	return false
}

func isTokenCode(c int) bool {
	return c == CodeInvalidCredential || c == CodeInvalidToken || c == CodeTokenExpired
}

// Code returns the WeChat errcode inside err, or 0 when err is not a WeChat answer.
func Code(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// IsCode reports whether err is a WeChat answer with the given errcode.
func IsCode(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// IsConfig reports a configuration error (40164 IP whitelist, 40125 secret,
// 40013 appid and the like): show it to the admin, never retry it.
func IsConfig(err error) bool {
	var e *Error
	return errors.As(err, &e) && isConfigCode(e.Code)
}

// IsQuota reports 45009 (daily quota) or 45011 (minute quota).
func IsQuota(err error) bool {
	var e *Error
	return errors.As(err, &e) && isQuotaCode(e.Code)
}

// IsTokenInvalid reports 40001, 40014 or 42001: the access token is stale.
func IsTokenInvalid(err error) bool {
	var e *Error
	return errors.As(err, &e) && isTokenCode(e.Code)
}

// Retryable reports a transient failure: -1 (system busy) or an HTTP 5xx.
func Retryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.retryable()
}
