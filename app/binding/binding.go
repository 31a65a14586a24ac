// Package binding binds a tenant's WeChat apps and open-platform accounts:
// authorized binding through OneID's third-party platform (pre-auth code,
// the authorisation page, api_query_auth, authorizer info, open/get, create
// and bind), self-managed binding with an AppSecret that must obtain a token,
// secrets sealed at rest, unbinding, WeChat's authorization events and the
// token health an admin sees. It enforces PRODUCT.md rules 1, 3, 6 and 7 and
// knows nothing of HTTP: the portal's handlers call it, tests drive it against
// the simulator.
package binding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"oneid/app/wechat"
	"oneid/models"
)

// Service binds apps. It is safe for concurrent use.
type Service struct {
	db     *gorm.DB
	wx     *wechat.Client
	sealer *models.Sealer
	now    func() time.Time
	log    *slog.Logger
	forget func(key string)
}

// Config is what a Service is built from.
type Config struct {
	DB     *gorm.DB
	WeChat *wechat.Client // nil: every call to WeChat is refused as not configured
	Sealer *models.Sealer
	Now    func() time.Time
	Log    *slog.Logger
	// ForgetCallback is called, after an app was bound, rebound or unbound,
	// with each key its pushes may arrive under (its callback key and its
	// appid): the portal drops the callback secrets it keeps in memory for
	// them (ingest.Callbacks.ForgetApp). Nil: nothing is told.
	ForgetCallback func(key string)
}

// New builds a Service.
func New(cfg Config) *Service {
	s := &Service{db: cfg.DB, wx: cfg.WeChat, sealer: cfg.Sealer, now: cfg.Now, log: cfg.Log, forget: cfg.ForgetCallback}
	if s.now == nil {
		s.now = func() time.Time { return time.Now().UTC() }
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// forgetCallback tells the portal that the app's callback secrets or binding
// may have changed: under its callback key, and under its appid, by which an
// authorized app's pushes also arrive (the platform's $APPID$ URL). It is
// called whether or not the change committed: forgetting costs one read.
func (s *Service) forgetCallback(app *models.App) {
	if s.forget == nil || app == nil {
		return
	}
	if app.CallbackKey != "" {
		s.forget(app.CallbackKey)
	}
	if app.AppID != "" {
		s.forget(app.AppID)
	}
}

// Actor is who acts, as the audit log records it.
type Actor struct {
	UserID    int64
	Email     string
	IP        string
	RequestID string
}

// Event is the audit line of what who did to target, at (zero: now).
func (a Actor) Event(action, target, detail string, at time.Time) models.AuditEvent {
	return models.AuditEvent{ActorUserID: a.UserID, Actor: a.Email, Action: action, Target: target, Detail: detail,
		IP: a.IP, RequestID: a.RequestID, CreatedAt: at}
}

// wechatActor is the actor of WeChat's own notices.
var wechatActor = Actor{Email: "WeChat"}

func (s *Service) audit(db *gorm.DB, tenantID int64, who Actor, action, target, detail string) error {
	return models.RecordAudit(db, tenantID, who.Event(action, target, detail, s.now()))
}

// Reasons a binding is refused. The portal shows each with its own message;
// a refusal has written nothing.
const (
	RefuseIndividual        = models.PrincipalIndividual     // a principal is a person (个人)
	RefuseAppUnverified     = models.PrincipalAppUnverified  // the app is not verified
	RefuseOpenUnverified    = models.PrincipalOpenUnverified // the open-platform account is not verified
	RefusePrincipalMismatch = models.PrincipalMismatch       // the principal names differ (or WeChat's 89001)
	RefuseHeldElsewhere     = "held_elsewhere"               // another workspace holds the appid
	RefuseOpenHeldElsewhere = "open_held_elsewhere"          // another workspace holds the open_appid
	RefuseAlreadyBound      = "already_bound"                // this workspace has the app bound already
	RefuseWrongSecret       = "wrong_secret"                 // the AppSecret obtains no token
	RefuseAppIDUnknown      = "appid_unknown"                // WeChat does not know the appid (40013)
	RefuseIPNotWhitelisted  = "ip_not_whitelisted"           // OneID's IP is not in the app's whitelist (40164)
	RefuseQuota             = "quota"                        // WeChat's API quota is used up for today (45009/45011)
	RefuseNotConfigured     = "not_configured"               // OneID's third-party platform is not configured
	RefuseNoTicket          = "no_ticket"                    // WeChat has not pushed the verify ticket yet
	RefuseAuthCodeInvalid   = "auth_code_invalid"            // the authorisation came back expired or used
	RefuseNoOpenPermission  = "no_open_permission"           // the authorization lacks permission set 24/25 (48001)
	RefuseOpenAlreadyBound  = "open_already_bound"           // WeChat has the app in an open account already (89000)
	RefuseOpenNotByAPI      = "open_not_by_api"              // WeChat binds only to accounts made by the API (89003)
	RefuseOpenLimit         = "open_limit"                   // the open account has its maximum of apps (89004)
	RefuseNotAuthorizedMode = "not_authorized_mode"          // open/create and bind need an authorized app
	RefuseHasOpenAccount    = "has_open_account"             // the app is in an open-platform account already
	RefuseWeChatUnavailable = "wechat_unavailable"           // WeChat failed or could not be reached
)

// Refusal is a binding OneID refuses, with what the admin needs to see: for a
// principal problem both names, for a WeChat answer its errcode.
type Refusal struct {
	Reason        string
	AppName       string
	AppPrincipal  string
	AppDeclared   bool // the app's principal and verification are the admin's declaration
	OpenAppID     string
	OpenPrincipal string
	OpenDeclared  bool
	Code          int   // WeChat's errcode, when WeChat refused
	Err           error // the underlying failure, for the log
}

func (r *Refusal) Error() string {
	msg := "binding: refused: " + r.Reason
	if r.Code != 0 {
		msg += fmt.Sprintf(" (errcode %d)", r.Code)
	}
	if r.Err != nil {
		msg += ": " + r.Err.Error()
	}
	return msg
}

func (r *Refusal) Unwrap() error { return r.Err }

// AsRefusal finds a Refusal in err.
func AsRefusal(err error) (*Refusal, bool) {
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}

// principalRefusal applies rule 1 to an app and an open-platform account.
func principalRefusal(app *models.App, open *models.OpenAccount) *Refusal {
	reason := models.CheckPrincipals(
		models.PrincipalParty{Principal: app.PrincipalName, Verified: app.Verified()},
		models.PrincipalParty{Principal: open.PrincipalName, Verified: open.Verified},
	)
	if reason == "" {
		return nil
	}
	return &Refusal{Reason: reason, AppName: app.Name, AppPrincipal: app.PrincipalName, AppDeclared: app.Declared,
		OpenAppID: open.OpenAppID, OpenPrincipal: open.PrincipalName, OpenDeclared: open.Declared}
}

// appRefusal applies the rules an app must meet to be bound at all: it is
// verified and not a person's.
func appRefusal(app *models.App) *Refusal {
	switch {
	case models.IsIndividualPrincipal(app.PrincipalName):
		return &Refusal{Reason: RefuseIndividual, AppName: app.Name, AppPrincipal: app.PrincipalName, AppDeclared: app.Declared}
	case !app.Verified():
		return &Refusal{Reason: RefuseAppUnverified, AppName: app.Name, AppPrincipal: app.PrincipalName, AppDeclared: app.Declared}
	}
	return nil
}

// wechatRefusal turns a failed WeChat call into the refusal the admin sees,
// and counts errors worth showing on the app's health. Errors of OneID's own
// database pass through.
func (s *Service) wechatRefusal(ctx context.Context, appID string, err error) error {
	if err == nil {
		return nil
	}
	var we *wechat.Error
	if !errors.As(err, &we) {
		switch {
		case errors.Is(err, wechat.ErrNoVerifyTicket):
			return &Refusal{Reason: RefuseNoTicket, Err: err}
		case errors.Is(err, wechat.ErrNotAuthorized):
			return &Refusal{Reason: RefuseNotAuthorizedMode, Err: err}
		}
		s.log.WarnContext(ctx, "binding: wechat call failed", "appid", appID, "err", err)
		return &Refusal{Reason: RefuseWeChatUnavailable, Err: err}
	}
	if appID != "" && noteworthy(we.Code) {
		if nerr := models.NoteWechatError(s.db.WithContext(ctx), appID, we.Code, s.now()); nerr != nil {
			s.log.WarnContext(ctx, "binding: count wechat error", "appid", appID, "err", nerr)
		}
	}
	r := &Refusal{Code: we.Code, Err: err}
	switch we.Code {
	case wechat.CodeInvalidCredential, wechat.CodeInvalidSecret, 41004, wechat.CodeSecretFrozen:
		r.Reason = RefuseWrongSecret
	case wechat.CodeInvalidAppID, 41002:
		r.Reason = RefuseAppIDUnknown
	case wechat.CodeIPNotWhitelisted, 61004:
		r.Reason = RefuseIPNotWhitelisted
	case wechat.CodeDailyQuota, wechat.CodeMinuteQuota:
		r.Reason = RefuseQuota
	case 61009, 61010:
		r.Reason = RefuseAuthCodeInvalid
	case wechat.CodeUnauthorized:
		r.Reason = RefuseNoOpenPermission
	case wechat.CodeNotSameContractor:
		r.Reason = RefusePrincipalMismatch
	case wechat.CodeOpenAlreadyBound:
		r.Reason = RefuseOpenAlreadyBound
	case wechat.CodeOpenNotByAPI:
		r.Reason = RefuseOpenNotByAPI
	case wechat.CodeOpenBindLimit:
		r.Reason = RefuseOpenLimit
	case 61003, 61023:
		r.Reason = RefuseNotAuthorizedMode
	default:
		r.Reason = RefuseWeChatUnavailable
	}
	return r
}

// noteworthy are the errcodes an app's health shows: quota, credentials and setup.
func noteworthy(code int) bool {
	switch code {
	case wechat.CodeDailyQuota, wechat.CodeMinuteQuota, wechat.CodeInvalidCredential, wechat.CodeInvalidSecret,
		wechat.CodeIPNotWhitelisted, wechat.CodeSecretFrozen, 61023:
		return true
	}
	return false
}

// transaction runs fn in one transaction, retried on deadlock.
func (s *Service) transaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return models.RetryTx(ctx, s.db.WithContext(ctx), fn)
}
