package views

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// CustomerFilterForm is the filter form as the person typed it: raw values, so
// a refused one is shown back with its message.
type CustomerFilterForm struct {
	Q, App, Kind, Sub, Linked, Source string
	FirstFrom, FirstTo                string
	LastFrom, LastTo                  string
	Sort                              string
	// Problems maps a field to the message key of what is wrong with it.
	Problems map[string]string
}

// AppOption is an app in the filter's select and in badges.
type AppOption struct {
	ID   int64
	Name string
	Kind string
}

// AppBadge is an app a customer has an identity in.
type AppBadge struct {
	Name    string
	Kind    string
	Follows bool
}

// CustomerListRow is one customer in the list.
type CustomerListRow struct {
	Key      string // the customer's number: picks the avatar's colour
	Href     string
	Nickname string
	// UnionID is whole or masked, as the role may see it; "" when unlinked.
	UnionID        string
	UnlinkedReason string // message key suffix, when unlinked
	// MatchedOpenID is the (whole or masked) OpenID a search found it by.
	MatchedOpenID string
	Apps          []AppBadge
	FirstSeen     time.Time
	LastSeen      time.Time
}

// CustomersView is the customer list: the filter, one page and how to move.
type CustomersView struct {
	Form    CustomerFilterForm
	Apps    []AppOption
	Kinds   []string
	Sources []string
	Sorts   []string
	Rows    []CustomerListRow
	Total   int64
	// Exact, or AtLeast (more than Total match), or else estimated as of AsOf.
	Exact    bool
	AtLeast  bool
	AsOf     time.Time
	Narrowed bool
	// Page links; "" when there is no such page.
	Next, Prev, First string
	// Clear is the list without any filter.
	Clear string
	// Masked is true when ids show only their last four characters.
	Masked bool
	// Deleted is set after a customer was erased.
	Deleted bool
	// Problem is the message key shown instead of results when the filter was
	// refused.
	Problem string
	// Export leads to the export of the current filter; "" for a role that
	// may not export.
	Export string
}

// IdentityView is one (app, OpenID) of a profile.
type IdentityView struct {
	OpenID         string // whole or masked
	Subscribed     bool
	Subscribable   bool // an official account (mini-programs have no followers)
	SubscribeTime  time.Time
	UnsubscribedAt time.Time
	SubscribeScene string
	Source         string
	FirstSeen      time.Time
	LastSeen       time.Time
}

// ProfileApp groups a profile's identities by app.
type ProfileApp struct {
	Name       string
	Kind       string
	Status     string
	Identities []IdentityView
}

// TimelineEntry is one event of a profile's timeline.
type TimelineEntry struct {
	At     time.Time
	Kind   string
	App    string
	OpenID string // whole or masked
	Detail string
}

// ProfileView is one customer's page.
type ProfileView struct {
	ID             int64
	Nickname       string
	UnionID        string // whole or masked; "" when unlinked
	UnlinkedReason string
	FirstSeen      time.Time
	LastSeen       time.Time
	ProfileAt      time.Time
	Apps           []ProfileApp
	IdentityCount  int
	Timeline       []TimelineEntry
	Masked         bool
	CanDelete      bool
	Back           string // the list this profile was opened from
	DeleteHref     string
}

// DeleteCustomerView is the confirmation step of an erasure.
type DeleteCustomerView struct {
	Profile ProfileView
	Events  int
	Action  string
}

// Initial is what the avatar circle shows: the first letter of the nickname,
// or "?" (avatars are WeChat URLs the page's policy does not load).
func Initial(nickname string) string {
	for _, r := range nickname {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return strings.ToUpper(string(r))
		}
	}
	if r, _ := utf8.DecodeRuneInString(nickname); r != utf8.RuneError && !unicode.IsSpace(r) {
		return string(r)
	}
	return "?"
}

// avatarTone picks one of eight colours for an avatar, stable per customer.
func avatarTone(key string) string {
	h := 0
	for _, r := range key {
		h = h*31 + int(r)
	}
	if h < 0 {
		h = -h
	}
	return "tone-" + strconv.Itoa(h%8)
}

// FormatCount writes a count with thousands separators: 1,234,567.
func FormatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// kindLabel names an app kind.
func kindLabel(ctx context.Context, kind string) string { return T(ctx, "kind."+kind) }

// sourceLabel names an identity source.
func sourceLabel(ctx context.Context, source string) string {
	if key := "source." + source; Has(ctx, key) {
		return T(ctx, key)
	}
	return source
}

// eventLabel names a timeline event kind.
func eventLabel(ctx context.Context, kind string) string {
	if key := "event." + kind; Has(ctx, key) {
		return T(ctx, key)
	}
	return kind
}

// reasonLabel says why a customer has no UnionID.
func reasonLabel(ctx context.Context, reason string) string {
	if key := "unlinked." + reason; reason != "" && Has(ctx, key) {
		return T(ctx, key)
	}
	return T(ctx, "unlinked.unknown")
}

// totalLabel is the count line above the list.
func totalLabel(ctx context.Context, v CustomersView) string {
	switch {
	case v.Exact:
		return Tf(ctx, "customers.total_exact", FormatCount(v.Total))
	case v.AtLeast:
		return Tf(ctx, "customers.total_at_least", FormatCount(v.Total))
	}
	return Tf(ctx, "customers.total_estimated", FormatCount(v.Total))
}

// estimateHint says where an estimate comes from.
func estimateHint(ctx context.Context, v CustomersView) string {
	if v.AtLeast || v.AsOf.IsZero() {
		return T(ctx, "customers.at_least_hint")
	}
	return Tf(ctx, "customers.estimate_hint", FormatTime(v.AsOf))
}

// problem is the message key of a field's problem, "" if none.
func (f CustomerFilterForm) problem(field string) string { return f.Problems[field] }

// profileTitle is the page title of a profile: the nickname, or the number.
func profileTitle(ctx context.Context, v ProfileView) string {
	if v.Nickname != "" {
		return v.Nickname
	}
	return Tf(ctx, "profile.title_number", v.ID)
}
