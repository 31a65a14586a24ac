package models

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// CustomerFilter is what the customer list shows: a search, filters, a sort
// and a position. It lives in the URL (ParseCustomerFilter, Values), so a view
// can be shared and bookmarked.
type CustomerFilter struct {
	// Query finds a customer by its UnionID or the OpenID of one of its
	// identities (exactly), or else by the start of its nickname.
	Query      string
	AppID      int64  // has an identity in this app (apps.id)
	Kind       string // has an identity in an app of this kind
	Subscribed string // "yes": follows one of the apps in view (all, the app or the kind); "no": none
	Linked     string // "yes": has a UnionID; "no": unlinked
	Source     string // has an identity first seen this way (SourceSync…)
	// Days, inclusive, in China Standard Time; zero means open.
	FirstFrom, FirstTo Day
	LastFrom, LastTo   Day
	Sort               string // one of SortOrders(); "" is SortLastSeen
	// After (next page) or Before (previous page) is the cursor of the row the
	// page starts after or ends before; at most one is set.
	After, Before *Cursor
}

// Sort orders of the customer list.
const (
	SortLastSeen     = "last_seen"      // last seen, newest first (the default)
	SortLastSeenAsc  = "last_seen_asc"  // last seen, oldest first
	SortFirstSeen    = "first_seen"     // first seen, newest first
	SortFirstSeenAsc = "first_seen_asc" // first seen, oldest first
)

// SortOrders lists the sort orders in display order.
func SortOrders() []string {
	return []string{SortLastSeen, SortLastSeenAsc, SortFirstSeen, SortFirstSeenAsc}
}

// Kinds lists the app kinds in display order.
func Kinds() []string { return []string{KindService, KindSubscription, KindMiniProgram} }

// Day is a calendar day in China Standard Time, the zone the product's users
// live in; the zero Day is "no bound".
type Day struct{ t time.Time }

// BrowseZone is China Standard Time (UTC+8, no daylight saving): calendar days
// in filters and the dashboard are days there.
var BrowseZone = time.FixedZone("CST", 8*3600)

// ParseDay reads "2006-01-02".
func ParseDay(s string) (Day, error) {
	t, err := time.ParseInLocation("2006-01-02", s, BrowseZone)
	if err != nil || t.Year() < 2000 || t.Year() > 2100 {
		return Day{}, fmt.Errorf("models: %q is not a day between 2000-01-01 and 2100-12-31", s)
	}
	return Day{t}, nil
}

// DayOf is the day a moment falls on in China Standard Time.
func DayOf(t time.Time) Day {
	y, m, d := t.In(BrowseZone).Date()
	return Day{time.Date(y, m, d, 0, 0, 0, 0, BrowseZone)}
}

// IsZero reports an open bound.
func (d Day) IsZero() bool { return d.t.IsZero() }

// String is "2006-01-02", or "" for the zero Day.
func (d Day) String() string {
	if d.t.IsZero() {
		return ""
	}
	return d.t.Format("2006-01-02")
}

// Start is the day's first moment, in UTC.
func (d Day) Start() time.Time { return d.t.UTC() }

// End is the next day's first moment, in UTC (an exclusive bound).
func (d Day) End() time.Time { return d.t.AddDate(0, 0, 1).UTC() }

// Cursor names a row of the list in its sort order: the sort column's value
// and the id, which breaks ties.
type Cursor struct {
	At time.Time
	ID int64
}

// String is the cursor as the URL carries it: "<unix microseconds>.<id>".
func (c Cursor) String() string {
	return strconv.FormatInt(c.At.UnixMicro(), 10) + "." + strconv.FormatInt(c.ID, 10)
}

// ParseCursor reads a cursor written by Cursor.String.
func ParseCursor(s string) (Cursor, error) {
	at, id, ok := strings.Cut(s, ".")
	micros, err1 := strconv.ParseInt(at, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	// Years 1970 to 2200 in microseconds; ids are positive.
	if !ok || err1 != nil || err2 != nil || micros < 0 || micros > 7258118400000000 || n <= 0 {
		return Cursor{}, fmt.Errorf("models: %q is not a list position", s)
	}
	return Cursor{At: time.UnixMicro(micros).UTC(), ID: n}, nil
}

// FilterProblems maps a URL parameter to what is wrong with it: one of the
// Problem… codes.
type FilterProblems map[string]string

// What can be wrong with a filter parameter.
const (
	ProblemTooLong   = "too_long"   // the search is longer than a nickname can be
	ProblemNotChoice = "not_choice" // not one of the offered values
	ProblemNotDay    = "not_day"    // not a day written 2006-01-02
	ProblemDayOrder  = "day_order"  // the range ends before it starts
	ProblemCursor    = "cursor"     // not a list position (a mangled link)
	ProblemNoApp     = "no_app"     // not one of the workspace's apps
)

// maxQueryRunes is the longest search: a nickname column holds 100 characters.
const maxQueryRunes = 100

// ParseCustomerFilter reads a filter from the URL's query. Every parameter is
// checked; the problems say which ones were refused (and are left at their
// default in the returned filter). Unknown parameters are ignored. Whether an
// app id is one of the tenant's is for the caller, who knows the apps.
func ParseCustomerFilter(q url.Values) (CustomerFilter, FilterProblems) {
	f := CustomerFilter{}
	bad := FilterProblems{}
	if s := strings.TrimSpace(strings.ToValidUTF8(q.Get("q"), "")); s != "" {
		if utf8.RuneCountInString(s) > maxQueryRunes || strings.ContainsAny(s, "\x00") {
			bad["q"] = ProblemTooLong
		} else {
			f.Query = s
		}
	}
	if s := q.Get("app"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			bad["app"] = ProblemNoApp
		} else {
			f.AppID = id
		}
	}
	choice := func(name string, options []string, dst *string) {
		s := q.Get(name)
		if s == "" {
			return
		}
		for _, o := range options {
			if s == o {
				*dst = s
				return
			}
		}
		bad[name] = ProblemNotChoice
	}
	choice("kind", Kinds(), &f.Kind)
	choice("sub", []string{"yes", "no"}, &f.Subscribed)
	choice("linked", []string{"yes", "no"}, &f.Linked)
	choice("source", Sources(), &f.Source)
	choice("sort", SortOrders(), &f.Sort)
	if f.Sort == SortLastSeen {
		f.Sort = ""
	}
	day := func(name string, dst *Day) {
		if s := q.Get(name); s != "" {
			d, err := ParseDay(s)
			if err != nil {
				bad[name] = ProblemNotDay
				return
			}
			*dst = d
		}
	}
	day("first_from", &f.FirstFrom)
	day("first_to", &f.FirstTo)
	day("last_from", &f.LastFrom)
	day("last_to", &f.LastTo)
	if !f.FirstFrom.IsZero() && !f.FirstTo.IsZero() && f.FirstTo.t.Before(f.FirstFrom.t) {
		bad["first_to"] = ProblemDayOrder
		f.FirstTo = Day{}
	}
	if !f.LastFrom.IsZero() && !f.LastTo.IsZero() && f.LastTo.t.Before(f.LastFrom.t) {
		bad["last_to"] = ProblemDayOrder
		f.LastTo = Day{}
	}
	cursor := func(name string) *Cursor {
		s := q.Get(name)
		if s == "" {
			return nil
		}
		c, err := ParseCursor(s)
		if err != nil {
			bad[name] = ProblemCursor
			return nil
		}
		return &c
	}
	f.After, f.Before = cursor("after"), cursor("before")
	if f.After != nil && f.Before != nil {
		bad["before"] = ProblemCursor
		f.Before = nil
	}
	return f, bad
}

// Values writes the filter back as URL parameters, leaving out defaults, so
// ParseCustomerFilter(f.Values()) gives f back.
func (f CustomerFilter) Values() url.Values {
	v := url.Values{}
	set := func(name, value string) {
		if value != "" {
			v.Set(name, value)
		}
	}
	set("q", f.Query)
	if f.AppID > 0 {
		v.Set("app", strconv.FormatInt(f.AppID, 10))
	}
	set("kind", f.Kind)
	set("sub", f.Subscribed)
	set("linked", f.Linked)
	set("source", f.Source)
	set("first_from", f.FirstFrom.String())
	set("first_to", f.FirstTo.String())
	set("last_from", f.LastFrom.String())
	set("last_to", f.LastTo.String())
	if f.Sort != SortLastSeen {
		set("sort", f.Sort)
	}
	if f.After != nil {
		v.Set("after", f.After.String())
	}
	if f.Before != nil {
		v.Set("before", f.Before.String())
	}
	return v
}

// FirstPage is the filter without its position.
func (f CustomerFilter) FirstPage() CustomerFilter {
	f.After, f.Before = nil, nil
	return f
}

// Narrowed reports whether anything but the sort and position is set.
func (f CustomerFilter) Narrowed() bool {
	f.Sort, f.After, f.Before = "", nil, nil
	return f != CustomerFilter{}
}

// sortColumn and descending describe the order.
func (f CustomerFilter) sortColumn() string {
	if f.Sort == SortFirstSeen || f.Sort == SortFirstSeenAsc {
		return "first_seen_at"
	}
	return "last_seen_at"
}

func (f CustomerFilter) descending() bool {
	return f.Sort != SortLastSeenAsc && f.Sort != SortFirstSeenAsc
}

// idLike is what an OpenID or UnionID looks like (WeChat's are 28 characters
// of base64url); a search that does not look like one is only a nickname.
var idLike = regexp.MustCompile(`^[A-Za-z0-9_-]{6,64}$`)
