package web

import (
	"errors"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"oneid/app/ingest"
	"oneid/app/wechat"
	"oneid/models"
	"oneid/tenants"
	"oneid/views"
)

// Web OAuth in official accounts' H5 pages. The tenant's page sends a visitor
// to /oauth/<key>/start?scope=…&return=…; OneID stores a single-use state
// bound to the app and its tenant and sends the visitor to WeChat, whose
// answer comes back to /oauth/<key>/callback. Both are public: the visitor is
// a WeChat user, not a OneID member.

// oauthStart sends the visitor to WeChat's authorize page.
func (s *Server) oauthStart(c *fiber.Ctx) error {
	target, err := s.flows.StartOAuth(c.UserContext(), c.Params("key"), c.Query("scope"), c.Query("return"))
	switch {
	case errors.Is(err, ingest.ErrOAuthScope):
		return s.oauthPage(c, fiber.StatusBadRequest, "scope", "")
	case errors.Is(err, ingest.ErrReturnRefused):
		s.log.Warn("oauth: return URL refused", "request_id", requestID(c))
		return s.oauthPage(c, fiber.StatusBadRequest, "return", "")
	case errors.Is(err, ingest.ErrNoWeChat):
		return s.oauthPage(c, fiber.StatusServiceUnavailable, "wechat", "")
	case err != nil:
		return err
	}
	return c.Redirect(target, fiber.StatusFound)
}

// oauthCallback is WeChat's return: the code is exchanged, the identity
// recorded, and the visitor sent on to the tenant's page.
func (s *Server) oauthCallback(c *fiber.Ctx) error {
	res, err := s.flows.FinishOAuth(c.UserContext(), c.Params("key"), c.Query("code"), c.Query("state"))
	back := ""
	if res != nil {
		back = res.ReturnURL
	}
	var we *wechat.Error
	switch {
	case errors.Is(err, models.ErrNotFound):
		return err
	case errors.Is(err, ingest.ErrOAuthState):
		return s.oauthPage(c, fiber.StatusBadRequest, "state", "")
	case errors.Is(err, ingest.ErrOAuthDenied):
		return s.oauthPage(c, fiber.StatusOK, "denied", back)
	case errors.As(err, &we) && (we.Code == wechat.CodeInvalidCode || we.Code == wechat.CodeCodeUsed || we.Code == wechat.CodeCodeExpired || we.Code == 41008):
		return s.oauthPage(c, fiber.StatusBadRequest, "code", back)
	case errors.As(err, &we), errors.Is(err, ingest.ErrWeChatUnreachable), errors.Is(err, ingest.ErrNoWeChat):
		s.log.Warn("oauth: exchange failed", "request_id", requestID(c), "errcode", wechat.Code(err), "err", err)
		return s.oauthPage(c, fiber.StatusBadGateway, "wechat", back)
	case err != nil:
		return err
	case res.Snapshot:
		return s.oauthPage(c, fiber.StatusOK, "snapshot", back)
	case res.ReturnURL == "":
		return s.oauthPage(c, fiber.StatusOK, "done", "")
	}
	return c.Redirect(res.ReturnURL, fiber.StatusFound)
}

func (s *Server) oauthPage(c *fiber.Ctx, status int, reason, back string) error {
	v := views.OAuthPageView{Status: status, Reason: reason, Back: back,
		Title: "oauth." + reason + ".title", Message: "oauth." + reason + ".message"}
	return s.render(c, status, views.OAuthPage(v))
}

// oauthSettingsPage shows an official account's OAuth URLs and return hosts.
func (s *Server) oauthSettingsPage(c *fiber.Ctx) error {
	v, err := s.oauthSettings(c)
	if err != nil {
		return err
	}
	v.Saved = c.Query("saved") == "1"
	return s.render(c, fiber.StatusOK, views.OAuthSettingsPage(*v))
}

// saveOAuthHosts replaces the hosts an app's OAuth may return visitors to.
func (s *Server) saveOAuthHosts(c *fiber.Ctx) error {
	v, err := s.oauthSettings(c)
	if err != nil {
		return err
	}
	v.Hosts = c.FormValue("hosts")
	var hosts []string
	for _, line := range strings.FieldsFunc(v.Hosts, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == ' ' }) {
		h, ok := models.NormalizeReturnHost(line)
		if !ok {
			v.Error, v.BadHost = "oauth.settings.bad_host", line
			return invalid(views.OAuthSettingsPage(*v))
		}
		hosts = append(hosts, h)
	}
	if len(hosts) > models.MaxOAuthReturnHosts {
		v.Error = "oauth.settings.too_many"
		return invalid(views.OAuthSettingsPage(*v))
	}
	sc := scope(c)
	db := s.dbFor(c)
	err = models.RetryTx(c.UserContext(), db, func(tx *gorm.DB) error {
		if err := models.SetOAuthReturnHosts(tx, sc.TenantID, v.AppID, hosts, s.now()); err != nil {
			return err
		}
		return models.RecordAudit(tx, sc.TenantID, s.actor(c).Event(models.AuditOAuthHostsChanged, v.WeChatAppID,
			strings.Join(hosts, " "), s.now()))
	})
	if err != nil {
		return err
	}
	return redirect(c, tenantPath(sc.Slug, "apps/"+c.Params("id")+"/oauth?saved=1"))
}

// oauthSettings loads the page's app: one of the tenant's bound official accounts.
func (s *Server) oauthSettings(c *fiber.Ctx) (*views.OAuthSettingsView, error) {
	id, err := c.ParamsInt("id")
	if err != nil || id <= 0 {
		return nil, models.ErrNotFound
	}
	sc := scope(c)
	db := s.dbFor(c)
	a, err := models.FindApp(db, sc.TenantID, int64(id))
	if err != nil {
		return nil, err
	}
	if !a.IsBound() || !a.IsOfficialAccount() {
		return nil, models.ErrNotFound
	}
	hosts, err := models.OAuthReturnHosts(db, sc.TenantID, a.ID)
	if err != nil {
		return nil, err
	}
	own := ""
	if u, err := url.Parse(s.cfg.PublicURL); err == nil {
		own = u.Host
	}
	return &views.OAuthSettingsView{AppID: a.ID, AppName: a.Name, WeChatAppID: a.AppID,
		StartURL:    s.flows.OAuthStartURL(a.CallbackKey) + "?scope=snsapi_userinfo&return=",
		RedirectURI: s.flows.OAuthRedirectURI(a.CallbackKey), OAuthDomain: own, OwnHost: own,
		Hosts: strings.Join(hosts, "\n"), CanManage: s.authz.Grants(sc.Role, sc.TenantID, tenants.AppsWrite)}, nil
}
