package views

import (
	"context"
	"strconv"
	"time"

	"oneid/models"
)

// AppRow is one app as the Apps page lists it.
type AppRow struct {
	ID            int64
	Kind          string // models.Kind*
	Name          string
	AppID         string
	Principal     string
	Verified      bool
	Declared      bool // principal and verification typed by the admin
	Mode          string
	Status        string // models.App*
	FollowerCount int64
	LastSyncAt    time.Time
	// SharedSecret warns that another system seems to refresh the AppSecret.
	SharedSecret bool
	// Sync is the app's follower sync: the last one, or the live one's progress.
	Sync SyncView
}

// OpenAccountGroup is an open-platform account with the apps bound to it.
type OpenAccountGroup struct {
	ID         int64
	OpenAppID  string
	Principal  string
	Verified   bool
	Declared   bool
	CreatedVia string
	Apps       []AppRow
}

// OpenTarget is an open-platform account an app can join, for a select.
type OpenTarget struct {
	ID        int64
	OpenAppID string
	Principal string
	Verified  bool
	Declared  bool
}

// BindingProblem is a refused binding as the page shows it. Reason picks the
// message ("apps.refused."+Reason); for principal problems both names are
// shown with the differing characters marked.
type BindingProblem struct {
	Reason        string
	Code          int
	AppName       string
	AppPrincipal  string
	AppDeclared   bool // the app's principal was typed by the admin
	OpenAppID     string
	OpenPrincipal string
	OpenDeclared  bool
	AppDiff       []models.DiffSpan
	OpenDiff      []models.DiffSpan
}

// ShowsNames reports whether the message shows the principal names.
func (p *BindingProblem) ShowsNames() bool {
	switch p.Reason {
	case models.PrincipalIndividual, models.PrincipalAppUnverified, models.PrincipalOpenUnverified, models.PrincipalMismatch:
		return p.AppPrincipal != "" || p.OpenPrincipal != ""
	}
	return false
}

// NewBindingProblem fills the marks of where two principal names differ.
func NewBindingProblem(p BindingProblem) *BindingProblem {
	if p.AppPrincipal != "" && p.OpenPrincipal != "" {
		p.AppDiff, p.OpenDiff = models.DiffPrincipals(p.AppPrincipal, p.OpenPrincipal)
	} else {
		p.AppDiff = []models.DiffSpan{{Text: p.AppPrincipal}}
		p.OpenDiff = []models.DiffSpan{{Text: p.OpenPrincipal}}
	}
	return &p
}

// AppsView is the Apps page: open-platform accounts with their apps, the apps
// in none (never linked by UnionID), and apps unbound earlier.
type AppsView struct {
	CanManage    bool
	OpenAccounts []OpenAccountGroup
	Unlinked     []AppRow
	Unbound      []AppRow
	Notice       string // message key of what just happened
	Problem      *BindingProblem
	// Targets are the accounts an authorized app bound to none may join
	// (open/bind); it may also create one (open/create).
	Targets []OpenTarget
}

// Empty reports a workspace with no app at all.
func (v AppsView) Empty() bool {
	return len(v.OpenAccounts) == 0 && len(v.Unlinked) == 0 && len(v.Unbound) == 0
}

// SelfManagedForm is the self-managed binding form. The AppSecret, callback
// token and EncodingAESKey are never echoed back.
type SelfManagedForm struct {
	AppID         string
	Kind          string
	Name          string
	Principal     string
	Verified      string // "yes", "no" or "" (not chosen)
	OpenAccountID string
	Errors        FieldErrors
}

// DeclareOpenForm declares the tenant's open-platform account.
type DeclareOpenForm struct {
	OpenAppID string
	Principal string
	Verified  string
	Errors    FieldErrors
}

// NewAppView is the page of the two ways to bind an app.
type NewAppView struct {
	ComponentConfigured bool
	SelfManaged         SelfManagedForm
	Declare             DeclareOpenForm
	OpenAccounts        []OpenTarget
	Problem             *BindingProblem
	// Section is the form a problem belongs to: "authorized", "self", "declare".
	Section string
}

// HealthView is an app's token health.
type HealthView struct {
	LastRefresh   time.Time
	Refreshes     int64
	Rejections    int64
	LastRejection time.Time
	SharedSecret  bool
	Errors        []ErrorCount
}

// ErrorCount is how often WeChat answered an errcode lately.
type ErrorCount struct {
	Code   int
	Count  int64
	LastAt time.Time
}

// AppView is one app's page: its facts, token health, callback URL and the
// admin's actions.
type AppView struct {
	App         AppRow
	Open        *OpenTarget
	CallbackURL string // self-managed official accounts: to paste into WeChat's console
	Health      HealthView
	CanManage   bool
	Targets     []OpenTarget // open-platform accounts an authorized app may join
	SecretError string       // message key of the replace-secret field
	Problem     *BindingProblem
	Notice      string
	Schedule    *SyncSchedule // an official account's scheduled sync, for admins
}

// IsSelfManaged reports an app bound by its AppSecret.
func (v AppView) IsSelfManaged() bool { return v.App.Mode == models.ModeSelfManaged }

// NeedsOpenAccount reports an app in no open-platform account: an authorized
// one is offered open/create and open/bind, a self-managed one the tenant's
// accounts to declare it in.
func (v AppView) NeedsOpenAccount() bool {
	if v.Open != nil || v.App.Status == models.AppUnbound {
		return false
	}
	return v.App.Mode == models.ModeAuthorized || len(v.Targets) > 0
}

// UnbindView is the confirmation before unbinding.
type UnbindView struct {
	App AppRow
}

func appHref(ctx context.Context, id int64, rest string) string {
	h := workspaceHref(ctx, "apps/"+strconv.FormatInt(id, 10))
	if rest != "" {
		h += "/" + rest
	}
	return h
}

// verifiedKey names a verification state.
func verifiedKey(verified bool) string {
	if verified {
		return "apps.verified"
	}
	return "apps.unverified"
}

// errcodeKind names what an errcode means for the health table.
func errcodeKind(code int) string {
	switch code {
	case 45009:
		return "apps.health.quota_daily"
	case 45011:
		return "apps.health.quota_minute"
	case 40001, 40125, 40243:
		return "apps.health.credential"
	case 40164:
		return "apps.health.ip"
	case 61023:
		return "apps.health.refresh_invalid"
	}
	return "apps.health.other"
}

// DiffSpanView is a run of a principal name, marked where it differs.
type DiffSpanView = models.DiffSpan

func kindOptions(ctx context.Context) []Option {
	out := []Option{{Value: "", Label: T(ctx, "apps.field.choose")}}
	for _, k := range []string{models.KindService, models.KindSubscription, models.KindMiniProgram} {
		out = append(out, Option{Value: k, Label: T(ctx, "apps.kind."+k)})
	}
	return out
}

func openOptions(ctx context.Context, targets []OpenTarget) []Option {
	out := []Option{{Value: "", Label: T(ctx, "apps.field.no_open")}}
	for _, o := range targets {
		label := o.Principal + " · " + o.OpenAppID + " · " + T(ctx, verifiedKey(o.Verified))
		if o.Declared {
			label += " (" + T(ctx, "apps.declared") + ")"
		}
		out = append(out, Option{Value: strconv.FormatInt(o.ID, 10), Label: label})
	}
	return out
}
