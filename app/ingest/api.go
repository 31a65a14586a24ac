package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gorm.io/gorm"

	"oneid/app/wechat"
	"oneid/models"
)

// Flows are the request-driven ways identities arrive: web OAuth in an
// official account's pages, and the tenant's own backend calling OneID's API
// (mini-program login, paid UnionID, customer look-up). It is safe for
// concurrent use.
type Flows struct {
	db        *gorm.DB
	wx        *wechat.Client
	sealer    *models.Sealer
	log       *slog.Logger
	now       func() time.Time
	publicURL string
}

// FlowsConfig is what Flows are built from.
type FlowsConfig struct {
	DB        *gorm.DB
	WeChat    *wechat.Client
	Sealer    *models.Sealer
	Log       *slog.Logger
	Now       func() time.Time
	PublicURL string // OneID's public base URL: OAuth callbacks and same-origin returns
}

// NewFlows builds the flows.
func NewFlows(cfg FlowsConfig) *Flows {
	f := &Flows{db: cfg.DB, wx: cfg.WeChat, sealer: cfg.Sealer, log: cfg.Log, now: cfg.Now,
		publicURL: strings.TrimRight(cfg.PublicURL, "/")}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = func() time.Time { return time.Now().UTC() }
	}
	return f
}

// API errors besides WeChat's own (*wechat.Error, passed through).
var (
	// ErrAppNotFound: the appid is not bound in the key's tenant (another
	// tenant's appid gets exactly this answer).
	ErrAppNotFound = errors.New("ingest: no such app in this workspace")
	// ErrWrongAppKind: the app exists but the call is for another kind of app.
	ErrWrongAppKind = errors.New("ingest: the call does not apply to this kind of app")
	// ErrNoWeChat: OneID has no WeChat client configured.
	ErrNoWeChat = errors.New("ingest: WeChat is not configured")
	// ErrWeChatUnreachable: WeChat did not answer (network, timeout, not JSON).
	ErrWeChatUnreachable = errors.New("ingest: WeChat could not be reached")
)

// wechatFailure keeps WeChat's own answers (*wechat.Error, with its errcode)
// as they are and marks every other failure of a call as unreachable.
func wechatFailure(err error) error {
	var we *wechat.Error
	if err == nil || errors.As(err, &we) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrWeChatUnreachable, err)
}

// InputError is a request field that is missing or malformed.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return "ingest: " + e.Field + ": " + e.Message }

// Identified is who a login or payment turned out to be.
type Identified struct {
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid"`
	CustomerID int64  `json:"customer_id"`
}

// boundApp finds one of the tenant's bound apps by its WeChat appid.
func (f *Flows) boundApp(ctx context.Context, tenantID int64, appID, kind string) (*models.App, error) {
	if appID == "" {
		return nil, &InputError{Field: "appid", Message: "is required"}
	}
	a, err := models.FindAppByAppID(f.db.WithContext(ctx), tenantID, appID)
	if errors.Is(err, models.ErrNotFound) || (err == nil && !a.IsBound()) {
		return nil, ErrAppNotFound
	}
	if err != nil {
		return nil, err
	}
	if kind != "" && a.Kind != kind {
		return nil, ErrWrongAppKind
	}
	return a, nil
}

// MiniProgramLogin trades a wx.login code for the user's openid (and unionid)
// through jscode2session and records the identity. The session key WeChat
// returns is a secret of the user's session: it is neither stored nor
// returned, and never logged.
func (f *Flows) MiniProgramLogin(ctx context.Context, tenantID int64, appID, code string) (*Identified, error) {
	a, err := f.boundApp(ctx, tenantID, appID, models.KindMiniProgram)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(code) == "" || len(code) > 256 {
		return nil, &InputError{Field: "code", Message: "is required (the code from wx.login)"}
	}
	if f.wx == nil {
		return nil, ErrNoWeChat
	}
	creds, err := CredentialsOf(f.sealer, a)
	if err != nil {
		return nil, err
	}
	sess, err := f.wx.Code2Session(ctx, creds, code)
	if err != nil {
		return nil, wechatFailure(err)
	}
	sess.SessionKey = ""
	o := models.Observation{AppID: a.ID, OpenID: sess.OpenID, UnionID: sess.UnionID, Source: models.SourceMiniProgram, At: f.now()}
	out, err := resolveOne(f.db.WithContext(ctx), tenantID, o)
	if err != nil {
		return nil, err
	}
	return &Identified{OpenID: sess.OpenID, UnionID: linkedUnionID(a, sess.UnionID), CustomerID: out.CustomerID}, nil
}

// PaidUnionID asks WeChat for the UnionID of a user who paid in the mini
// program within the last 5 minutes, and links the identity.
func (f *Flows) PaidUnionID(ctx context.Context, tenantID int64, appID, openID string, p wechat.Payment) (*Identified, error) {
	a, err := f.boundApp(ctx, tenantID, appID, models.KindMiniProgram)
	if err != nil {
		return nil, err
	}
	if !models.ValidWeChatID(openID) {
		return nil, &InputError{Field: "openid", Message: "is required and must be an OpenID"}
	}
	if p.TransactionID == "" && (p.MchID == "" || p.OutTradeNo == "") {
		return nil, &InputError{Field: "transaction_id", Message: "give transaction_id, or mch_id with out_trade_no"}
	}
	if f.wx == nil {
		return nil, ErrNoWeChat
	}
	creds, err := CredentialsOf(f.sealer, a)
	if err != nil {
		return nil, err
	}
	unionID, err := f.wx.PaidUnionID(ctx, creds, openID, p)
	if err != nil {
		return nil, wechatFailure(err)
	}
	o := models.Observation{AppID: a.ID, OpenID: openID, UnionID: unionID, Source: models.SourcePaid, At: f.now()}
	out, err := resolveOne(f.db.WithContext(ctx), tenantID, o)
	if err != nil {
		return nil, err
	}
	return &Identified{OpenID: openID, UnionID: linkedUnionID(a, unionID), CustomerID: out.CustomerID}, nil
}

// linkedUnionID is the unionid as OneID holds it: none for an app outside any
// open-platform account (it cannot be linked there).
func linkedUnionID(a *models.App, unionID string) string {
	if a.OpenAccountID == nil {
		return ""
	}
	return unionID
}

// CustomerQuery names a customer: by unionid (with appid to pick the
// open-platform account, when the tenant has several), or by appid + openid.
type CustomerQuery struct {
	UnionID string
	OpenID  string
	AppID   string
}

// FoundCustomer is a customer with the identities it holds, as the API shows it.
type FoundCustomer struct {
	ID             int64           `json:"id"`
	UnionID        string          `json:"unionid,omitempty"`
	OpenAppID      string          `json:"open_appid,omitempty"`
	UnlinkedReason string          `json:"unlinked_reason,omitempty"`
	Nickname       string          `json:"nickname,omitempty"`
	AvatarURL      string          `json:"avatar_url,omitempty"`
	FirstSeenAt    time.Time       `json:"first_seen_at"`
	LastSeenAt     time.Time       `json:"last_seen_at"`
	Identities     []FoundIdentity `json:"identities"`
}

// FoundIdentity is one (app, openid) of a found customer.
type FoundIdentity struct {
	AppID          string     `json:"appid"`
	AppKind        string     `json:"app_kind"`
	OpenID         string     `json:"openid"`
	Subscribed     bool       `json:"subscribed"`
	SubscribeTime  *time.Time `json:"subscribe_time,omitempty"`
	UnsubscribedAt *time.Time `json:"unsubscribed_at,omitempty"`
	Source         string     `json:"source"`
	FirstSeenAt    time.Time  `json:"first_seen_at"`
	LastSeenAt     time.Time  `json:"last_seen_at"`
}

// LookupCustomer finds a customer of the tenant. Nothing found, another
// tenant's ids and apps are all models.ErrNotFound; a unionid held in two of
// the tenant's open-platform accounts, asked without appid, is
// models.ErrAmbiguousUnionID.
func (f *Flows) LookupCustomer(ctx context.Context, tenantID int64, q CustomerQuery) (*FoundCustomer, error) {
	db := f.db.WithContext(ctx)
	var c *models.Customer
	var err error
	switch {
	case q.UnionID != "" && q.OpenID != "":
		return nil, &InputError{Field: "unionid", Message: "give unionid or openid, not both"}
	case q.UnionID != "":
		openAppID := ""
		if q.AppID != "" {
			a, err := f.boundApp(ctx, tenantID, q.AppID, "")
			if err != nil {
				return nil, err
			}
			if a.OpenAccountID == nil {
				return nil, models.ErrNotFound
			}
			open, err := models.FindOpenAccount(db, tenantID, *a.OpenAccountID)
			if err != nil {
				return nil, err
			}
			openAppID = open.OpenAppID
		}
		c, err = models.FindCustomerByUnionID(db, tenantID, openAppID, q.UnionID)
	case q.OpenID != "":
		if q.AppID == "" {
			return nil, &InputError{Field: "appid", Message: "is required with openid"}
		}
		if _, err := f.boundApp(ctx, tenantID, q.AppID, ""); err != nil {
			return nil, err
		}
		c, err = models.FindCustomerByOpenID(db, tenantID, q.AppID, q.OpenID)
	default:
		return nil, &InputError{Field: "unionid", Message: "give unionid, or appid with openid"}
	}
	if err != nil {
		return nil, err
	}
	return f.describeCustomer(db, tenantID, c)
}

func (f *Flows) describeCustomer(db *gorm.DB, tenantID int64, c *models.Customer) (*FoundCustomer, error) {
	ids, err := models.IdentitiesOfCustomer(db, tenantID, c.ID)
	if err != nil {
		return nil, err
	}
	apps, err := models.ListApps(db, tenantID)
	if err != nil {
		return nil, err
	}
	byID := map[int64]models.App{}
	for _, a := range apps {
		byID[a.ID] = a
	}
	out := &FoundCustomer{ID: c.ID, Nickname: c.Nickname, AvatarURL: c.AvatarURL,
		FirstSeenAt: c.FirstSeenAt.UTC(), LastSeenAt: c.LastSeenAt.UTC(), Identities: []FoundIdentity{}}
	if c.UnionID != nil {
		out.UnionID = *c.UnionID
		if c.OpenAccountID != nil {
			if open, err := models.FindOpenAccount(db, tenantID, *c.OpenAccountID); err == nil {
				out.OpenAppID = open.OpenAppID
			}
		}
	}
	if c.UnlinkedReason != nil {
		out.UnlinkedReason = *c.UnlinkedReason
	}
	for _, i := range ids {
		a := byID[i.AppID]
		out.Identities = append(out.Identities, FoundIdentity{AppID: a.AppID, AppKind: a.Kind, OpenID: i.OpenID,
			Subscribed: i.Subscribed, SubscribeTime: utcPtr(i.SubscribeTime), UnsubscribedAt: utcPtr(i.UnsubscribedAt),
			Source: i.Source, FirstSeenAt: i.FirstSeenAt.UTC(), LastSeenAt: i.LastSeenAt.UTC()})
	}
	return out, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
