package binding

import (
	"context"
	"errors"

	"oneid/app/wechat"
	"oneid/models"
)

// HandleComponentPush takes a push to the component's authorisation-event
// URL: it checks the signature and decrypts it with the component's token and
// key, stores a component_verify_ticket, and turns the authorization events
// of a bound app into its status and an audit line in its tenant. An
// authorization of an app no workspace holds yet needs nothing here: the
// admin's return from the authorisation page binds it.
func (s *Service) HandleComponentPush(ctx context.Context, q wechat.CallbackQuery, body []byte) (*wechat.Event, error) {
	if !s.configured() {
		return nil, &Refusal{Reason: RefuseNotConfigured}
	}
	ev, err := s.wx.HandleComponentPush(ctx, q, body)
	if err != nil {
		return nil, err
	}
	var status, action string
	switch ev.InfoType {
	case wechat.InfoAuthorized:
		status, action = models.AppActive, models.AuditAppAuthorized
	case wechat.InfoUpdateAuthorized:
		status, action = models.AppActive, models.AuditAppAuthorizationUpdated
	case wechat.InfoUnauthorized:
		status, action = models.AppRevoked, models.AuditAppAuthorizationRevoked
	default:
		return ev, nil
	}
	db := s.db.WithContext(ctx)
	app, err := models.FindBoundApp(db, ev.AuthorizerAppID)
	if errors.Is(err, models.ErrNotFound) || (err == nil && app.BindingMode != models.ModeAuthorized) {
		return ev, nil
	}
	if err != nil {
		return nil, err
	}
	detail := "WeChat: " + ev.InfoType
	changed, err := models.SetAppStatus(db, app.TenantID, app.ID, status)
	if err != nil {
		return nil, err
	}
	if changed {
		detail += "; status " + app.Status + " → " + status
	}
	if err := s.audit(db, app.TenantID, wechatActor, action, app.AppID, detail); err != nil {
		return nil, err
	}
	return ev, nil
}
