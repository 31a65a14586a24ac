package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"gorm.io/gorm"

	"oneid/app/wechat"
	"oneid/models"
)

// OAuth errors, each with its own page.
var (
	// ErrOAuthScope: the start URL asked for a scope WeChat does not have.
	ErrOAuthScope = errors.New("ingest: oauth scope must be snsapi_base or snsapi_userinfo")
	// ErrReturnRefused: the return URL is not OneID's nor one of the app's hosts.
	ErrReturnRefused = errors.New("ingest: the return URL is not on an allowed host")
	// ErrOAuthState: the state is unknown, used, expired, or another app's.
	ErrOAuthState = errors.New("ingest: the oauth state is not valid for this app")
	// ErrOAuthDenied: the visitor came back without a code (declined consent).
	ErrOAuthDenied = errors.New("ingest: the visitor did not consent")
)

// OAuthResult is where a finished OAuth trip leads.
type OAuthResult struct {
	ReturnURL  string // the checked page to send the visitor to; "" for OneID's own "done" page
	Snapshot   bool   // a snapshot-page (virtual) user: nothing was stored
	CustomerID int64
	OpenID     string
}

// OAuthApp is the official account whose OAuth URLs end in key (its callback
// key): bound, an official account. Anything else is ErrNotFound.
func (f *Flows) OAuthApp(ctx context.Context, key string) (*models.App, error) {
	a, err := models.FindAppByCallbackKey(f.db.WithContext(ctx), key)
	if err != nil {
		return nil, err
	}
	if !a.IsOfficialAccount() {
		return nil, models.ErrNotFound
	}
	return a, nil
}

// OAuthRedirectURI is the callback WeChat sends the visitor back to. Its host
// is what the admin registers as the account's web OAuth domain (网页授权域名).
func (f *Flows) OAuthRedirectURI(key string) string {
	return f.publicURL + "/oauth/" + url.PathEscape(key) + "/callback"
}

// OAuthStartURL is the URL a tenant's H5 page sends visitors to.
func (f *Flows) OAuthStartURL(key string) string {
	return f.publicURL + "/oauth/" + url.PathEscape(key) + "/start"
}

// StartOAuth begins a visitor's trip: it checks the scope and return URL,
// stores a single-use state bound to the app and its tenant, and returns
// WeChat's authorize URL.
func (f *Flows) StartOAuth(ctx context.Context, key, scope, returnURL string) (string, error) {
	a, err := f.OAuthApp(ctx, key)
	if err != nil {
		return "", err
	}
	if scope == "" {
		scope = wechat.ScopeBase
	}
	if scope != wechat.ScopeBase && scope != wechat.ScopeUserInfo {
		return "", ErrOAuthScope
	}
	db := f.db.WithContext(ctx)
	ret := ""
	if returnURL != "" {
		hosts, err := models.OAuthReturnHosts(db, a.TenantID, a.ID)
		if err != nil {
			return "", err
		}
		var ok bool
		if ret, ok = CheckReturnURL(f.publicURL, hosts, returnURL); !ok {
			return "", ErrReturnRefused
		}
	}
	if f.wx == nil {
		return "", ErrNoWeChat
	}
	// Expired states and tickets are purged by SweepOAuth, off the visitor's request.
	state, err := models.CreateOAuthState(db, a.TenantID, a.ID, scope, ret, f.now())
	if err != nil {
		return "", err
	}
	creds := wechat.App{AppID: a.AppID, Authorized: a.BindingMode == models.ModeAuthorized}
	return f.wx.AuthorizeURL(creds, f.OAuthRedirectURI(key), scope, state)
}

// FinishOAuth completes a trip: the state must be this app's, unused and
// fresh; the code is exchanged; a snapshot-page user is refused with nothing
// stored; otherwise the identity is recorded (with nickname and avatar under
// snsapi_userinfo) and the checked return URL is given back.
func (f *Flows) FinishOAuth(ctx context.Context, key, code, state string) (*OAuthResult, error) {
	a, err := f.OAuthApp(ctx, key)
	if err != nil {
		return nil, err
	}
	db := f.db.WithContext(ctx)
	st, err := models.ConsumeOAuthState(db, a.TenantID, a.ID, state, f.now())
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrOAuthState
	}
	if err != nil {
		return nil, err
	}
	res := &OAuthResult{ReturnURL: st.ReturnURL}
	if code == "" {
		return res, ErrOAuthDenied
	}
	if f.wx == nil {
		return res, ErrNoWeChat
	}
	creds, err := CredentialsOf(f.sealer, a)
	if err != nil {
		return res, err
	}
	tok, err := f.wx.OAuthExchange(ctx, creds, code)
	if err != nil {
		return res, wechatFailure(err)
	}
	if tok.Snapshot() {
		res.Snapshot = true
		return res, nil
	}
	o := models.Observation{AppID: a.ID, OpenID: tok.OpenID, UnionID: tok.UnionID, Source: models.SourceOAuth, At: f.now()}
	if strings.Contains(tok.Scope, wechat.ScopeUserInfo) {
		u, err := f.wx.SNSUserInfo(ctx, tok.AccessToken, tok.OpenID, "zh_CN")
		switch {
		case err != nil:
			f.log.Warn("ingest: sns/userinfo", "app_id", a.ID, "errcode", wechat.Code(err), "err", err)
		case u.OpenID != "" && u.OpenID != tok.OpenID:
			f.log.Warn("ingest: sns/userinfo answered for another openid", "app_id", a.ID)
		default:
			o.Nickname, o.AvatarURL = u.Nickname, u.HeadImgURL
			if o.UnionID == "" {
				o.UnionID = u.UnionID
			}
		}
	} else if o.UnionID == "" {
		o.NoUnionIDReason = models.UnlinkedSnsapiBase
	}
	out, err := resolveOne(db, a.TenantID, o)
	if err != nil {
		return res, err
	}
	res.CustomerID, res.OpenID = out.CustomerID, tok.OpenID
	if res.ReturnURL != "" {
		ticket, err := models.CreateOAuthTicket(db, a.TenantID, a.ID, out.CustomerID, tok.OpenID, st.Scope, f.now())
		if err != nil {
			return res, err
		}
		res.ReturnURL = withTicket(res.ReturnURL, ticket)
	}
	return res, nil
}

// OAuthTicketParam is the query parameter of the return address that carries
// the ticket.
const OAuthTicketParam = "oneid_ticket"

// withTicket adds the ticket to a checked return address, replacing one the
// address may already carry.
func withTicket(ret, ticket string) string {
	u, err := url.Parse(ret)
	if err != nil { // CheckReturnURL parsed it already
		return ret
	}
	q := u.Query()
	q.Set(OAuthTicketParam, ticket)
	u.RawQuery = q.Encode()
	return u.String()
}

// OAuthVisitor is who a web OAuth trip identified, as the tenant's backend
// reads it by the ticket.
type OAuthVisitor struct {
	AppID    string         `json:"appid"`
	OpenID   string         `json:"openid"`
	Scope    string         `json:"scope"`
	Customer *FoundCustomer `json:"customer"`
}

// RedeemOAuthTicket trades a ticket, once and within its lifetime, for the
// visitor it names. Another tenant's, a used, an expired or an unknown ticket
// are all models.ErrNotFound.
func (f *Flows) RedeemOAuthTicket(ctx context.Context, tenantID int64, ticket string) (*OAuthVisitor, error) {
	if ticket == "" {
		return nil, &InputError{Field: "ticket", Message: "is required"}
	}
	db := f.db.WithContext(ctx)
	t, err := models.RedeemOAuthTicket(db, tenantID, ticket, f.now())
	if err != nil {
		return nil, err
	}
	a, err := models.FindApp(db, tenantID, t.AppID)
	if err != nil {
		return nil, err
	}
	c, err := models.FindCustomer(db, tenantID, t.CustomerID)
	if err != nil {
		return nil, err // erased since the trip
	}
	found, err := f.describeCustomer(db, tenantID, c)
	if err != nil {
		return nil, err
	}
	return &OAuthVisitor{AppID: a.AppID, OpenID: t.OpenID, Scope: t.Scope, Customer: found}, nil
}

// resolveOne resolves a single observation and turns its refusal into an error.
func resolveOne(db *gorm.DB, tenantID int64, o models.Observation) (models.Outcome, error) {
	r, err := models.Resolve(db, tenantID, []models.Observation{o})
	if err != nil {
		return models.Outcome{}, err
	}
	out := r.Outcomes[0]
	if out.Err != nil {
		return out, fmt.Errorf("ingest: %w", out.Err)
	}
	return out, nil
}

// CheckReturnURL accepts where an OAuth trip may end: a path on OneID itself
// ("/…", not "//…"), or an absolute http(s) URL whose host is OneID's public
// host or one of hosts (exactly, port included). It returns the URL to
// redirect to. Anything else — other hosts, user-info tricks
// ("https://good@evil"), backslashes, control characters — is refused.
func CheckReturnURL(publicURL string, hosts []string, raw string) (string, bool) {
	if raw == "" || len(raw) > 1024 || strings.ContainsAny(raw, "\\\x00\r\n\t") {
		return "", false
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	pub, err := url.Parse(publicURL)
	if err != nil || pub.Host == "" {
		return "", false
	}
	if strings.HasPrefix(raw, "/") {
		if strings.HasPrefix(raw, "//") {
			return "", false
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
			return "", false
		}
		return pub.Scheme + "://" + pub.Host + u.RequestURI() + fragment(u), true
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	host := strings.ToLower(u.Host)
	allowed := host == strings.ToLower(pub.Host)
	for _, h := range hosts {
		if host == h {
			allowed = true
		}
	}
	if !allowed {
		return "", false
	}
	return u.String(), true
}

func fragment(u *url.URL) string {
	if u.Fragment == "" {
		return ""
	}
	return "#" + u.EscapedFragment()
}

// OAuthPurgeBatch is the most expired OAuth states, and as many tickets, one
// purge round deletes: each DELETE stays small.
const OAuthPurgeBatch = 1000

// PurgeOAuth is one purge round: it deletes up to OAuthPurgeBatch OAuth
// states, and as many tickets, that expired a lifetime or more before now,
// and returns how many of each went.
func PurgeOAuth(ctx context.Context, db *gorm.DB, now time.Time) (states, tickets int64, err error) {
	db = db.WithContext(ctx)
	if states, err = models.PurgeOAuthStates(db, now.Add(-models.OAuthStateLifetime), OAuthPurgeBatch); err != nil {
		return 0, 0, err
	}
	if tickets, err = models.PurgeOAuthTickets(db, now.Add(-models.OAuthTicketLifetime), OAuthPurgeBatch); err != nil {
		return states, 0, err
	}
	return states, tickets, nil
}

// SweepOAuth purges expired OAuth states and tickets every interval until
// ctx ends, round after round while a round was full; serve runs it on every
// instance (they pick the same oldest rows, which is harmless). The visitors'
// requests never wait for it.
func SweepOAuth(ctx context.Context, db *gorm.DB, log *slog.Logger, every time.Duration) {
	if every <= 0 {
		every = time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for ctx.Err() == nil {
		states, tickets, err := PurgeOAuth(ctx, db, time.Now().UTC())
		if err != nil && ctx.Err() == nil {
			log.Warn("ingest: purge expired oauth states and tickets", "err", err)
		}
		if err == nil && (states >= OAuthPurgeBatch || tickets >= OAuthPurgeBatch) {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}
