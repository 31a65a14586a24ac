package web

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"oneid/app/ingest"
	"oneid/app/wechat"
	"oneid/models"
	"oneid/tenants"
)

// apiPrefix starts the JSON API for tenants' own systems (API.md). Its
// routes are authenticated by an API key, never by a session cookie, so the
// CSRF check does not apply to them.
const apiPrefix = "/api/"

// apiMaxBody bounds a JSON request; every request body is a few fields.
const apiMaxBody = 16 << 10

const apiKeyLocal = "oneid.apikey"

// apiKeyOf is the key a request passed requireAPIKey with.
func apiKeyOf(c *fiber.Ctx) *models.APIKey {
	k, _ := c.Locals(apiKeyLocal).(*models.APIKey)
	return k
}

// requireAPIKey admits a request that presents a live API key as
// "Authorization: Bearer <key>", within the key's rate limit. The key names
// the tenant: every call works inside it, and another tenant's appid or
// customer answers exactly like one that does not exist.
func (s *Server) requireAPIKey(c *fiber.Ctx) error {
	scheme, key, _ := strings.Cut(strings.TrimSpace(c.Get(fiber.HeaderAuthorization)), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="oneid"`)
		return apiFail(c, fiber.StatusUnauthorized, "unauthorized", "send the API key as Authorization: Bearer <key>", 0)
	}
	db := s.dbFor(c)
	k, err := models.FindAPIKey(db, strings.TrimSpace(key))
	if errors.Is(err, models.ErrNotFound) {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="oneid", error="invalid_token"`)
		return apiFail(c, fiber.StatusUnauthorized, "unauthorized", "the API key is unknown or revoked", 0)
	}
	if err != nil {
		return err
	}
	if ok, wait := s.apiLimiter.allow(k.ID); !ok {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(wait.Seconds()+0.999)))
		return apiFail(c, fiber.StatusTooManyRequests, "rate_limited", "too many requests for this API key; retry after the time in Retry-After", 0)
	}
	tenant, err := models.FindTenant(db, k.TenantID)
	if err != nil {
		return err
	}
	if tenant.Suspended() {
		return apiFail(c, fiber.StatusForbidden, "workspace_suspended", "this workspace is suspended", 0)
	}
	if err := models.TouchAPIKey(db, k, s.now()); err != nil {
		s.log.Warn("api: touch key", "request_id", requestID(c), "err", err)
	}
	st := state(c)
	st.scope = &tenants.Scope{TenantID: tenant.ID, Slug: tenant.Slug, Name: tenant.Name}
	c.SetUserContext(tenants.WithScope(c.UserContext(), *st.scope))
	c.Locals(apiKeyLocal, k)
	return c.Next()
}

// apiError is the body of every failed API call.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code          string `json:"code"`
	Message       string `json:"message"`
	WeChatErrCode int    `json:"wechat_errcode,omitempty"`
	RequestID     string `json:"request_id,omitempty"`
}

func apiFail(c *fiber.Ctx, status int, code, message string, wechatCode int) error {
	c.Status(status)
	return c.JSON(apiError{Error: apiErrorBody{Code: code, Message: message, WeChatErrCode: wechatCode, RequestID: requestID(c)}})
}

// apiFailure maps an error to the API's answer; handleError sends every error
// of an /api/ path here, so the API answers JSON even to a panic or a 404.
func (s *Server) apiFailure(c *fiber.Ctx, err error) error {
	var in *ingest.InputError
	var we *wechat.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &in):
		return apiFail(c, fiber.StatusBadRequest, "invalid_request", in.Field+": "+in.Message, 0)
	case errors.Is(err, ingest.ErrAppNotFound):
		return apiFail(c, fiber.StatusNotFound, "app_not_found", "no app with this appid is bound in your workspace", 0)
	case errors.Is(err, ingest.ErrWrongAppKind):
		return apiFail(c, fiber.StatusBadRequest, "wrong_app_kind", "this call is for mini-programs; the appid is another kind of app", 0)
	case errors.Is(err, models.ErrAmbiguousUnionID):
		return apiFail(c, fiber.StatusConflict, "ambiguous_unionid", "the unionid is held in more than one of your open-platform accounts; add appid to pick one", 0)
	case errors.Is(err, models.ErrNotFound):
		return apiFail(c, fiber.StatusNotFound, "not_found", "no such customer", 0)
	case errors.As(err, &we):
		status, code := wechatStatus(we)
		return apiFail(c, status, code, "WeChat refused the call: "+we.Msg, we.Code)
	case errors.Is(err, ingest.ErrWeChatUnreachable), errors.Is(err, ingest.ErrNoWeChat):
		s.log.Warn("api: wechat unreachable", "request_id", requestID(c), "err", err)
		return apiFail(c, fiber.StatusBadGateway, "wechat_unavailable", "WeChat could not be reached; retry later", 0)
	case models.IsUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("api: database unavailable", "request_id", requestID(c), "err", err)
		c.Set(fiber.HeaderRetryAfter, "5")
		return apiFail(c, fiber.StatusServiceUnavailable, "unavailable", "OneID cannot reach its database just now; retry in a few seconds", 0)
	case errors.As(err, &fe) && fe.Code == fiber.StatusNotFound:
		return apiFail(c, fiber.StatusNotFound, "no_such_endpoint", "there is no such API endpoint (see API.md)", 0)
	case errors.As(err, &fe) && fe.Code == fiber.StatusMethodNotAllowed:
		return apiFail(c, fiber.StatusMethodNotAllowed, "method_not_allowed", "this endpoint does not take that method", 0)
	case errors.As(err, &fe) && fe.Code < 500:
		return apiFail(c, fe.Code, "invalid_request", fe.Message, 0)
	}
	s.log.Error("api request failed", "request_id", requestID(c), "method", c.Method(), "path", loggedPath(c), "err", err)
	return apiFail(c, fiber.StatusInternalServerError, "internal", "OneID could not finish the request; quote request_id to support", 0)
}

// wechatStatus is the HTTP status and error code for a WeChat refusal:
// the caller's input (a code or openid WeChat rejects) is theirs to fix,
// quotas are 429, the app's setup in WeChat is a 502 for their admin.
func wechatStatus(we *wechat.Error) (int, string) {
	switch {
	case wechat.IsQuota(we):
		return fiber.StatusTooManyRequests, "wechat_quota"
	case wechat.IsConfig(we):
		return fiber.StatusBadGateway, "app_misconfigured"
	case we.Code == 0 || wechat.Retryable(we):
		return fiber.StatusBadGateway, "wechat_unavailable"
	}
	switch we.Code {
	case wechat.CodeInvalidCode, wechat.CodeCodeUsed, wechat.CodeCodeExpired, wechat.CodeCodeBlocked, 41008,
		wechat.CodeInvalidOpenID, 89300, wechat.CodeOpenNotExists:
		return fiber.StatusBadRequest, "wechat_rejected"
	}
	return fiber.StatusBadGateway, "wechat_error"
}

// decodeAPIBody reads a JSON object into v, refusing unknown fields, trailing
// data and anything but application/json.
func decodeAPIBody(c *fiber.Ctx, v any) error {
	if ct := strings.ToLower(c.Get(fiber.HeaderContentType)); !strings.HasPrefix(ct, fiber.MIMEApplicationJSON) {
		return &ingest.InputError{Field: "body", Message: "send Content-Type: application/json"}
	}
	body := c.Body()
	if len(body) > apiMaxBody {
		return &ingest.InputError{Field: "body", Message: "is too large"}
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &ingest.InputError{Field: "body", Message: "is not the JSON object this endpoint takes: " + err.Error()}
	}
	if dec.More() {
		return &ingest.InputError{Field: "body", Message: "has data after the JSON object"}
	}
	return nil
}

type miniProgramLoginRequest struct {
	AppID string `json:"appid"`
	Code  string `json:"code"`
}

// apiMiniProgramLogin is POST /api/v1/miniprogram/login.
func (s *Server) apiMiniProgramLogin(c *fiber.Ctx) error {
	var in miniProgramLoginRequest
	if err := decodeAPIBody(c, &in); err != nil {
		return err
	}
	who, err := s.flows.MiniProgramLogin(c.UserContext(), apiKeyOf(c).TenantID, in.AppID, in.Code)
	if err != nil {
		return err
	}
	return c.JSON(who)
}

type paidUnionIDRequest struct {
	AppID         string `json:"appid"`
	OpenID        string `json:"openid"`
	TransactionID string `json:"transaction_id"`
	MchID         string `json:"mch_id"`
	OutTradeNo    string `json:"out_trade_no"`
}

// apiPaidUnionID is POST /api/v1/paid-unionid.
func (s *Server) apiPaidUnionID(c *fiber.Ctx) error {
	var in paidUnionIDRequest
	if err := decodeAPIBody(c, &in); err != nil {
		return err
	}
	pay := wechat.Payment{TransactionID: in.TransactionID, MchID: in.MchID, OutTradeNo: in.OutTradeNo}
	who, err := s.flows.PaidUnionID(c.UserContext(), apiKeyOf(c).TenantID, in.AppID, in.OpenID, pay)
	if err != nil {
		return err
	}
	return c.JSON(who)
}

// apiCustomer is GET /api/v1/customers?unionid=…|appid=…&openid=….
func (s *Server) apiCustomer(c *fiber.Ctx) error {
	q := ingest.CustomerQuery{UnionID: c.Query("unionid"), OpenID: c.Query("openid"), AppID: c.Query("appid")}
	found, err := s.flows.LookupCustomer(c.UserContext(), apiKeyOf(c).TenantID, q)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"customer": found})
}
