package binding

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"gorm.io/gorm"

	"oneid/app/wechat"
	"oneid/models"
)

// Self-managed binding: the admin types the AppID and AppSecret, and declares
// the principal and verification WeChat would otherwise report. The secret
// must obtain a token (stable_token) before anything is saved.

// SelfManaged is the self-managed binding form, already checked for shape.
type SelfManaged struct {
	AppID     string
	Secret    string
	Kind      string
	Name      string
	Principal string
	Verified  bool
	// Official accounts only: the callback token and EncodingAESKey the admin
	// also enters in WeChat's console.
	CallbackToken string
	AESKey        string
	// OpenAccountID is the tenant's open-platform account the app belongs
	// to; 0 binds it with none (its customers are never linked by UnionID).
	OpenAccountID int64
}

var (
	appIDShape         = regexp.MustCompile(`^wx[0-9a-f]{16}$`)
	secretShape        = regexp.MustCompile(`^[0-9A-Za-z]{16,64}$`)
	callbackTokenShape = regexp.MustCompile(`^[0-9A-Za-z]{3,32}$`)
	aesKeyShape        = regexp.MustCompile(`^[0-9A-Za-z]{43}$`)
)

// Field problems of the self-managed and open-platform forms.
const (
	ProblemRequired      = "required"
	ProblemTooLong       = "too_long"
	ProblemAppID         = "appid"
	ProblemSecret        = "secret"
	ProblemKind          = "kind"
	ProblemCallbackToken = "callback_token"
	ProblemAESKey        = "aes_key"
)

// ValidAppID reports the shape of an appid or open_appid: wx and 16 hex digits.
func ValidAppID(s string) bool { return appIDShape.MatchString(s) }

// ValidSecret reports the shape of an AppSecret (32 hex digits at WeChat;
// any 16–64 letters and digits are let through to WeChat to judge).
func ValidSecret(s string) bool { return secretShape.MatchString(s) }

// ValidCallbackToken reports WeChat's rule for the callback token: 3–32 letters or digits.
func ValidCallbackToken(s string) bool { return callbackTokenShape.MatchString(s) }

// ValidAESKey reports whether s is an EncodingAESKey: 43 letters and digits
// that decode to a 32-byte key.
func ValidAESKey(s string) bool {
	if !aesKeyShape.MatchString(s) {
		return false
	}
	_, err := wechat.NewCrypter(s, "wx0000000000000000")
	return err == nil
}

// ValidKind reports one of the three app kinds.
func ValidKind(k string) bool {
	return k == models.KindSubscription || k == models.KindService || k == models.KindMiniProgram
}

// Problems checks the form's shape: field → problem. Empty means it may go to WeChat.
func (in *SelfManaged) Problems() map[string]string {
	p := map[string]string{}
	add := func(field, problem string) {
		if _, ok := p[field]; !ok {
			p[field] = problem
		}
	}
	switch {
	case in.AppID == "":
		add("appid", ProblemRequired)
	case !ValidAppID(in.AppID):
		add("appid", ProblemAppID)
	}
	switch {
	case in.Secret == "":
		add("secret", ProblemRequired)
	case !ValidSecret(in.Secret):
		add("secret", ProblemSecret)
	}
	if !ValidKind(in.Kind) {
		add("kind", ProblemKind)
	}
	checkText := func(field, v string, max int) {
		switch {
		case strings.TrimSpace(v) == "":
			add(field, ProblemRequired)
		case len([]rune(v)) > max:
			add(field, ProblemTooLong)
		}
	}
	checkText("name", in.Name, 100)
	checkText("principal", in.Principal, 200)
	if in.Kind == models.KindService || in.Kind == models.KindSubscription {
		switch {
		case in.CallbackToken == "":
			add("callback_token", ProblemRequired)
		case !ValidCallbackToken(in.CallbackToken):
			add("callback_token", ProblemCallbackToken)
		}
		switch {
		case in.AESKey == "":
			add("aes_key", ProblemRequired)
		case !ValidAESKey(in.AESKey):
			add("aes_key", ProblemAESKey)
		}
	}
	return p
}

// ProblemsError is a form with field problems; nothing was saved.
type ProblemsError map[string]string

func (p ProblemsError) Error() string { return fmt.Sprintf("binding: form has %d problems", len(p)) }

// BindSelfManaged binds an app by its AppSecret: the principal rules on the
// declared values, one owner per appid, then the secret must obtain a token;
// only then are the app and its sealed secrets saved.
func (s *Service) BindSelfManaged(ctx context.Context, tenantID int64, who Actor, in SelfManaged) (*models.App, error) {
	if p := in.Problems(); len(p) > 0 {
		return nil, ProblemsError(p)
	}
	db := s.db.WithContext(ctx)
	verify := models.VerifyNone
	if in.Verified {
		verify = 0
	}
	app := &models.App{AppID: in.AppID, Kind: in.Kind, Name: in.Name, PrincipalName: in.Principal,
		VerifyType: verify, Declared: true, BindingMode: models.ModeSelfManaged}
	if in.Kind == models.KindMiniProgram {
		in.CallbackToken, in.AESKey = "", ""
	}
	if r := appRefusal(app); r != nil {
		return nil, r
	}
	var open *models.OpenAccount
	if in.OpenAccountID != 0 {
		var err error
		if open, err = models.FindOpenAccount(db, tenantID, in.OpenAccountID); err != nil {
			return nil, err
		}
		if r := principalRefusal(app, open); r != nil {
			return nil, r
		}
		app.OpenAccountID = &open.ID
	}
	if prev, err := models.FindAppByAppID(db, tenantID, in.AppID); err == nil && prev.IsBound() {
		return nil, &Refusal{Reason: RefuseAlreadyBound, AppName: prev.Name}
	} else if err != nil && !errors.Is(err, models.ErrNotFound) {
		return nil, err
	}
	if held, err := models.AppBoundElsewhere(db, tenantID, in.AppID); err != nil {
		return nil, err
	} else if held {
		return nil, &Refusal{Reason: RefuseHeldElsewhere, AppName: app.Name}
	}
	if err := s.proveSecret(ctx, in.AppID, in.Secret); err != nil {
		return nil, err
	}
	if err := s.sealInto(app, tenantID, in); err != nil {
		return nil, err
	}
	detail := fmt.Sprintf("self-managed; %s; declared principal %s", app.Kind, app.PrincipalName)
	if open != nil {
		detail += "; open_appid " + open.OpenAppID
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		if err := models.BindApp(tx, tenantID, app); err != nil {
			return err
		}
		return s.audit(tx, tenantID, who, models.AuditAppBound, app.AppID, detail)
	})
	// A rebinding reuses the row and its callback key, with the new token and key.
	s.forgetCallback(app)
	if errors.Is(err, models.ErrAppHeldElsewhere) {
		return nil, &Refusal{Reason: RefuseHeldElsewhere, AppName: app.Name, Err: err}
	}
	if err != nil {
		return nil, err
	}
	return app, nil
}

// proveSecret asks WeChat for a stable token with the secret: it must work
// before OneID keeps it. Without force_refresh the call does not disturb
// another system that holds the same secret.
func (s *Service) proveSecret(ctx context.Context, appID, secret string) error {
	if s.wx == nil {
		return &Refusal{Reason: RefuseWeChatUnavailable, Err: errors.New("binding: no WeChat client")}
	}
	if _, err := s.wx.StableToken(ctx, appID, secret, false); err != nil {
		return s.wechatRefusal(ctx, appID, err)
	}
	return nil
}

func (s *Service) sealInto(app *models.App, tenantID int64, in SelfManaged) error {
	var err error
	if app.SecretSealed, err = models.SealAppSecret(s.sealer, tenantID, in.AppID, models.ColAppSecret, in.Secret); err != nil {
		return err
	}
	if in.CallbackToken != "" {
		if app.CallbackTokenSealed, err = models.SealAppSecret(s.sealer, tenantID, in.AppID, models.ColCallbackToken, in.CallbackToken); err != nil {
			return err
		}
	}
	if in.AESKey != "" {
		if app.AESKeySealed, err = models.SealAppSecret(s.sealer, tenantID, in.AppID, models.ColAESKey, in.AESKey); err != nil {
			return err
		}
	}
	return nil
}

// ReplaceSecret gives a self-managed app a new AppSecret, once it has
// obtained a token.
func (s *Service) ReplaceSecret(ctx context.Context, tenantID int64, who Actor, id int64, secret string) error {
	app, err := models.FindApp(s.db.WithContext(ctx), tenantID, id)
	if err != nil {
		return err
	}
	if !app.IsBound() || app.BindingMode != models.ModeSelfManaged {
		return models.ErrNotFound
	}
	switch {
	case secret == "":
		return ProblemsError{"secret": ProblemRequired}
	case !ValidSecret(secret):
		return ProblemsError{"secret": ProblemSecret}
	}
	if err := s.proveSecret(ctx, app.AppID, secret); err != nil {
		return err
	}
	sealed, err := models.SealAppSecret(s.sealer, tenantID, app.AppID, models.ColAppSecret, secret)
	if err != nil {
		return err
	}
	return s.transaction(ctx, func(tx *gorm.DB) error {
		if err := models.ReplaceAppSecret(tx, tenantID, app.ID, sealed); err != nil {
			return err
		}
		return s.audit(tx, tenantID, who, models.AuditAppSecretReplaced, app.AppID, "AppSecret replaced; a token was obtained with it")
	})
}

// Unbind releases an app from the tenant: the appid is free again, its
// secrets and OneID's tokens for it are erased, its identities are kept.
func (s *Service) Unbind(ctx context.Context, tenantID int64, who Actor, id int64) (*models.App, error) {
	app, err := models.FindApp(s.db.WithContext(ctx), tenantID, id)
	if err != nil {
		return nil, err
	}
	if !app.IsBound() {
		return nil, models.ErrNotFound
	}
	err = s.transaction(ctx, func(tx *gorm.DB) error {
		if err := models.UnbindApp(tx, tenantID, app.ID, s.now()); err != nil {
			return err
		}
		if err := models.ForgetWechatTokens(tx, app.AppID); err != nil {
			return err
		}
		return s.audit(tx, tenantID, who, models.AuditAppUnbound, app.AppID, app.Name+"; identities kept")
	})
	// The app's callback URL must stop taking pushes now, not when this
	// instance's copy of its secrets expires.
	s.forgetCallback(app)
	if err != nil {
		return nil, err
	}
	return app, nil
}

// DeclaredOpenAccount is the form by which an admin declares the tenant's
// open-platform account for self-managed apps.
type DeclaredOpenAccount struct {
	OpenAppID string
	Principal string
	Verified  bool
}

// Problems checks the form's shape.
func (in *DeclaredOpenAccount) Problems() map[string]string {
	p := map[string]string{}
	switch {
	case in.OpenAppID == "":
		p["open_appid"] = ProblemRequired
	case !ValidAppID(in.OpenAppID):
		p["open_appid"] = ProblemAppID
	}
	switch {
	case strings.TrimSpace(in.Principal) == "":
		p["open_principal"] = ProblemRequired
	case len([]rune(in.Principal)) > 200:
		p["open_principal"] = ProblemTooLong
	}
	return p
}

// DeclareOpenAccount records an open-platform account as the admin declares
// it, or updates the declared facts of one the tenant has.
func (s *Service) DeclareOpenAccount(ctx context.Context, tenantID int64, who Actor, in DeclaredOpenAccount) (*models.OpenAccount, error) {
	if p := in.Problems(); len(p) > 0 {
		return nil, ProblemsError(p)
	}
	if models.IsIndividualPrincipal(in.Principal) {
		return nil, &Refusal{Reason: RefuseIndividual, OpenAppID: in.OpenAppID, OpenPrincipal: in.Principal, OpenDeclared: true}
	}
	detail := "declared principal " + in.Principal
	if in.Verified {
		detail += "; declared verified"
	} else {
		detail += "; declared not verified"
	}
	var out *models.OpenAccount
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		existing, err := models.FindOpenAccountByOpenAppID(tx, tenantID, in.OpenAppID)
		switch {
		case err == nil:
			if err := models.DeclareOpenAccountFacts(tx, tenantID, existing.ID, in.Principal, in.Verified); err != nil {
				return err
			}
			out = existing
		case errors.Is(err, models.ErrNotFound):
			out = &models.OpenAccount{OpenAppID: in.OpenAppID, PrincipalName: in.Principal, Verified: in.Verified,
				Declared: true, CreatedVia: models.OpenViaDeclared}
			if err := models.CreateOpenAccount(tx, tenantID, out); err != nil {
				return err
			}
		default:
			return err
		}
		return s.audit(tx, tenantID, who, models.AuditOpenAccountDeclared, in.OpenAppID, detail)
	})
	if errors.Is(err, models.ErrOpenAccountHeldElsewhere) {
		return nil, &Refusal{Reason: RefuseOpenHeldElsewhere, OpenAppID: in.OpenAppID, Err: err}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
