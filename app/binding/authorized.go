package binding

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"oneid/app/wechat"
	"oneid/models"
)

// Authorized binding: the admin leaves for WeChat's authorisation page with a
// pre-auth code, consents, and comes back to OneID with an auth_code. The
// return is tied to the tenant and admin by a single-use server-side state in
// the redirect_uri, so a code cannot be replayed into another workspace.

// Configured reports whether OneID's third-party platform is set up, so
// authorized binding can be offered.
func (s *Service) Configured() bool { return s.configured() }

func (s *Service) configured() bool { return s.wx != nil && s.wx.ComponentAppID() != "" }

// StartAuthorization creates a pre-auth code and returns the URL of WeChat's
// authorisation page. returnURL builds the redirect_uri from the state.
func (s *Service) StartAuthorization(ctx context.Context, tenantID, userID int64, returnURL func(state string) string) (string, error) {
	if !s.configured() {
		return "", &Refusal{Reason: RefuseNotConfigured}
	}
	pre, _, err := s.wx.CreatePreAuthCode(ctx)
	if err != nil {
		return "", s.wechatRefusal(ctx, s.wx.ComponentAppID(), err)
	}
	state, err := models.CreateBindingState(s.db.WithContext(ctx), tenantID, userID, s.now())
	if err != nil {
		return "", err
	}
	return s.wx.ComponentLoginURL(pre, returnURL(state), wechat.AuthTypeBoth, ""), nil
}

// CompleteAuthorization is the return from the authorisation page. A state
// that is not this tenant's and this admin's, used or expired, is
// models.ErrNotFound. Otherwise it trades the auth code for the authorizer's
// tokens, reads its principal, verification and type, applies the principal
// rules, finds the open-platform account the app is bound to (open/get) and
// binds the app to the tenant.
func (s *Service) CompleteAuthorization(ctx context.Context, tenantID int64, who Actor, state, authCode string) (*models.App, error) {
	if err := models.ConsumeBindingState(s.db.WithContext(ctx), tenantID, who.UserID, state, s.now()); err != nil {
		return nil, err
	}
	if !s.configured() {
		return nil, &Refusal{Reason: RefuseNotConfigured}
	}
	if authCode == "" || len(authCode) > 512 {
		return nil, &Refusal{Reason: RefuseAuthCodeInvalid}
	}
	auth, err := s.wx.QueryAuth(ctx, authCode)
	if err != nil {
		return nil, s.wechatRefusal(ctx, "", err)
	}
	appID := auth.AuthorizerAppID
	au, err := s.wx.GetAuthorizer(ctx, appID)
	if err != nil {
		return nil, s.wechatRefusal(ctx, appID, err)
	}
	app := authorizedApp(appID, &au.AuthorizerInfo)

	app, err = s.bindAuthorized(ctx, tenantID, who, app)
	if err != nil {
		if _, refused := AsRefusal(err); refused {
			s.forgetIfUnowned(ctx, appID)
		}
		return nil, err
	}
	return app, nil
}

// authorizedApp is the app as WeChat describes it.
func authorizedApp(appID string, info *wechat.AuthorizerInfo) *models.App {
	kind := models.KindSubscription
	switch {
	case info.IsMiniProgram():
		kind = models.KindMiniProgram
	case info.ServiceTypeInfo.ID == 2:
		kind = models.KindService
	}
	name := info.NickName
	if name == "" {
		name = appID
	}
	return &models.App{AppID: appID, Kind: kind, Name: name, PrincipalName: info.PrincipalName,
		VerifyType: info.VerifyTypeInfo.ID, BindingMode: models.ModeAuthorized, GhID: info.UserName}
}

func (s *Service) bindAuthorized(ctx context.Context, tenantID int64, who Actor, app *models.App) (*models.App, error) {
	db := s.db.WithContext(ctx)
	if r := appRefusal(app); r != nil {
		return nil, r
	}
	if held, err := models.AppBoundElsewhere(db, tenantID, app.AppID); err != nil {
		return nil, err
	} else if held {
		return nil, &Refusal{Reason: RefuseHeldElsewhere, AppName: app.Name}
	}
	prev, err := models.FindAppByAppID(db, tenantID, app.AppID)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return nil, err
	}

	// Which open-platform account WeChat has the app in, if any. An
	// authorization without the open-platform permission set cannot tell: the
	// app is bound without one, and the page says what to grant.
	openAppID, err := s.wx.OpenGet(ctx, wechat.App{AppID: app.AppID, Authorized: true})
	if err != nil && !wechat.IsCode(err, wechat.CodeUnauthorized) {
		return nil, s.wechatRefusal(ctx, app.AppID, err)
	}
	var open *models.OpenAccount
	newOpen := false
	if openAppID != "" {
		open, err = models.FindOpenAccountByOpenAppID(db, tenantID, openAppID)
		switch {
		case errors.Is(err, models.ErrNotFound):
			// WeChat binds only apps of the same contractor to an open account,
			// and its console only once the account is verified: the account's
			// principal and verification are the app's.
			open = &models.OpenAccount{OpenAppID: openAppID, PrincipalName: app.PrincipalName, Verified: true, CreatedVia: models.OpenViaExisting}
			newOpen = true
		case err != nil:
			return nil, err
		case prev == nil || prev.OpenAccountID == nil || *prev.OpenAccountID != open.ID:
			// Joining an account the tenant knows: rule 1 against what OneID holds of it.
			if r := principalRefusal(app, open); r != nil {
				return nil, r
			}
		}
	}

	detail := fmt.Sprintf("authorized; %s; principal %s", app.Kind, app.PrincipalName)
	if open != nil {
		detail += "; open_appid " + open.OpenAppID
	}
	err = s.transaction(ctx, func(tx *gorm.DB) error {
		if newOpen {
			if err := models.CreateOpenAccount(tx, tenantID, open); err != nil {
				return err
			}
		}
		if open != nil {
			app.OpenAccountID = &open.ID
		} else if prev != nil {
			app.OpenAccountID = prev.OpenAccountID // the admin may have joined it since
		}
		if err := models.BindApp(tx, tenantID, app); err != nil {
			return err
		}
		if newOpen {
			if err := s.audit(tx, tenantID, who, models.AuditOpenAccountCreated, open.OpenAppID, "found by open/get; principal "+open.PrincipalName); err != nil {
				return err
			}
		}
		return s.audit(tx, tenantID, who, models.AuditAppBound, app.AppID, detail)
	})
	// A rebinding reuses the row and its callback key; its secrets and mode
	// (own token, or the platform's) may be new.
	s.forgetCallback(app)
	switch {
	case errors.Is(err, models.ErrAppHeldElsewhere):
		return nil, &Refusal{Reason: RefuseHeldElsewhere, AppName: app.Name, Err: err}
	case errors.Is(err, models.ErrOpenAccountHeldElsewhere):
		return nil, &Refusal{Reason: RefuseOpenHeldElsewhere, AppName: app.Name, OpenAppID: openAppID, Err: err}
	case err != nil:
		return nil, err
	}
	return app, nil
}

// forgetIfUnowned drops the tokens api_query_auth stored for an app OneID
// then refused, unless a workspace holds the app (they are its tokens too).
func (s *Service) forgetIfUnowned(ctx context.Context, appID string) {
	db := s.db.WithContext(ctx)
	if _, err := models.FindBoundApp(db, appID); !errors.Is(err, models.ErrNotFound) {
		return
	}
	if err := models.ForgetWechatTokens(db, appID); err != nil {
		s.log.WarnContext(ctx, "binding: forget tokens of a refused app", "appid", appID, "err", err)
	}
}

// authorizedBoundApp loads a bound app that open/create and open/bind can act
// for: authorized, and in no open-platform account yet.
func (s *Service) authorizedBoundApp(ctx context.Context, tenantID, id int64) (*models.App, error) {
	app, err := models.FindApp(s.db.WithContext(ctx), tenantID, id)
	if err != nil {
		return nil, err
	}
	switch {
	case !app.IsBound():
		return nil, models.ErrNotFound
	case app.OpenAccountID != nil:
		return nil, &Refusal{Reason: RefuseHasOpenAccount, AppName: app.Name}
	case app.BindingMode != models.ModeAuthorized:
		return nil, &Refusal{Reason: RefuseNotAuthorizedMode, AppName: app.Name}
	}
	if r := appRefusal(app); r != nil {
		return nil, r
	}
	return app, nil
}

// CreateOpenAccount creates an open-platform account for an authorized app
// that has none (open/create). WeChat makes it unverified, with the app's
// principal, and binds the app to it.
func (s *Service) CreateOpenAccount(ctx context.Context, tenantID int64, who Actor, id int64) (*models.OpenAccount, error) {
	app, err := s.authorizedBoundApp(ctx, tenantID, id)
	if err != nil {
		return nil, err
	}
	if !s.configured() {
		return nil, &Refusal{Reason: RefuseNotConfigured}
	}
	openAppID, err := s.wx.OpenCreate(ctx, wechat.App{AppID: app.AppID, Authorized: true})
	if err != nil {
		return nil, s.wechatRefusal(ctx, app.AppID, err)
	}
	open := &models.OpenAccount{OpenAppID: openAppID, PrincipalName: app.PrincipalName, Verified: false, CreatedVia: models.OpenViaAPI}
	err = s.transaction(ctx, func(tx *gorm.DB) error {
		if err := models.CreateOpenAccount(tx, tenantID, open); err != nil {
			return err
		}
		if err := models.SetAppOpenAccount(tx, tenantID, app.ID, open.ID); err != nil {
			return err
		}
		if err := s.audit(tx, tenantID, who, models.AuditOpenAccountCreated, openAppID, "open/create for "+app.AppID+"; principal "+open.PrincipalName+"; not verified"); err != nil {
			return err
		}
		return s.audit(tx, tenantID, who, models.AuditAppOpenBound, app.AppID, "open_appid "+openAppID)
	})
	if errors.Is(err, models.ErrOpenAccountHeldElsewhere) {
		return nil, &Refusal{Reason: RefuseOpenHeldElsewhere, OpenAppID: openAppID, Err: err}
	}
	if err != nil {
		return nil, err
	}
	return open, nil
}

// BindToOpenAccount puts an app that has no open-platform account into one of
// the tenant's, after the principal rules. An authorized app is bound at
// WeChat (open/bind); for a self-managed app OneID cannot call open/bind, so
// it records what the admin declares (the binding itself is made on
// open.weixin.qq.com).
func (s *Service) BindToOpenAccount(ctx context.Context, tenantID int64, who Actor, id, openAccountID int64) error {
	// Both are looked up in the tenant first: another tenant's ids are not found.
	app, err := models.FindApp(s.db.WithContext(ctx), tenantID, id)
	if err != nil {
		return err
	}
	open, err := models.FindOpenAccount(s.db.WithContext(ctx), tenantID, openAccountID)
	if err != nil {
		return err
	}
	if app.IsBound() && app.BindingMode == models.ModeSelfManaged && app.OpenAccountID == nil {
		return s.declareInOpenAccount(ctx, tenantID, who, app, open)
	}
	if app, err = s.authorizedBoundApp(ctx, tenantID, id); err != nil {
		return err
	}
	if r := principalRefusal(app, open); r != nil {
		return r
	}
	if !s.configured() {
		return &Refusal{Reason: RefuseNotConfigured}
	}
	if err := s.wx.OpenBind(ctx, wechat.App{AppID: app.AppID, Authorized: true}, open.OpenAppID); err != nil {
		err = s.wechatRefusal(ctx, app.AppID, err)
		if r, ok := AsRefusal(err); ok && r.Reason == RefusePrincipalMismatch {
			r.AppName, r.AppPrincipal, r.AppDeclared = app.Name, app.PrincipalName, app.Declared
			r.OpenAppID, r.OpenPrincipal, r.OpenDeclared = open.OpenAppID, open.PrincipalName, open.Declared
		}
		return err
	}
	return s.transaction(ctx, func(tx *gorm.DB) error {
		if err := models.SetAppOpenAccount(tx, tenantID, app.ID, open.ID); err != nil {
			return err
		}
		return s.audit(tx, tenantID, who, models.AuditAppOpenBound, app.AppID, "open/bind to "+open.OpenAppID)
	})
}

// declareInOpenAccount records that a self-managed app is in an open-platform
// account, as its admin declares, after the principal rules.
func (s *Service) declareInOpenAccount(ctx context.Context, tenantID int64, who Actor, app *models.App, open *models.OpenAccount) error {
	if r := appRefusal(app); r != nil {
		return r
	}
	if r := principalRefusal(app, open); r != nil {
		return r
	}
	return s.transaction(ctx, func(tx *gorm.DB) error {
		if err := models.SetAppOpenAccount(tx, tenantID, app.ID, open.ID); err != nil {
			return err
		}
		return s.audit(tx, tenantID, who, models.AuditAppOpenBound, app.AppID, "declared in "+open.OpenAppID)
	})
}
