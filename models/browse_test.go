package models_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"oneid/migrations/dbtest"
	"oneid/models"
)

// truth is a customer as computed straight from the tables, to check the list
// and the dashboard against.
type truth struct {
	id                    int64
	unionID               string
	nickname              string
	first, last           time.Time
	apps, followed        map[int64]bool
	sources               map[string]bool
	openIDs               []string
	linkedIdentityPerApps map[int64]bool
}

func loadTruth(t *testing.T, db *gorm.DB, tenantID int64) map[int64]*truth {
	t.Helper()
	var cs []models.Customer
	if err := db.Scopes(models.ForTenant(tenantID)).Find(&cs).Error; err != nil {
		t.Fatal(err)
	}
	out := map[int64]*truth{}
	for _, c := range cs {
		tr := &truth{id: c.ID, nickname: c.Nickname, first: c.FirstSeenAt, last: c.LastSeenAt,
			apps: map[int64]bool{}, followed: map[int64]bool{}, sources: map[string]bool{}, linkedIdentityPerApps: map[int64]bool{}}
		if c.UnionID != nil {
			tr.unionID = *c.UnionID
		}
		out[c.ID] = tr
	}
	var ids []models.Identity
	if err := db.Scopes(models.ForTenant(tenantID)).Find(&ids).Error; err != nil {
		t.Fatal(err)
	}
	for _, i := range ids {
		tr := out[i.CustomerID]
		tr.apps[i.AppID] = true
		if i.Subscribed {
			tr.followed[i.AppID] = true
		}
		tr.sources[i.Source] = true
		tr.openIDs = append(tr.openIDs, i.OpenID)
		if i.UnionID != nil {
			tr.linkedIdentityPerApps[i.AppID] = true
		}
	}
	return out
}

// matches is the filter's meaning, written the slow and obvious way.
func (tr *truth) matches(f models.CustomerFilter, apps []models.BrowseApp) bool {
	var inView []int64
	for _, a := range apps {
		if (f.AppID == 0 || a.ID == f.AppID) && (f.Kind == "" || a.Kind == f.Kind) {
			inView = append(inView, a.ID)
		}
	}
	if f.AppID != 0 || f.Kind != "" {
		any := false
		for _, id := range inView {
			any = any || tr.apps[id]
		}
		if !any {
			return false
		}
	}
	if f.Subscribed != "" {
		follows := false
		for _, id := range inView {
			follows = follows || tr.followed[id]
		}
		if follows != (f.Subscribed == "yes") {
			return false
		}
	}
	if f.Linked != "" && (tr.unionID != "") != (f.Linked == "yes") {
		return false
	}
	if f.Source != "" && !tr.sources[f.Source] {
		return false
	}
	in := func(at time.Time, from, to models.Day) bool {
		return (from.IsZero() || !at.Before(from.Start())) && (to.IsZero() || at.Before(to.End()))
	}
	if !in(tr.first, f.FirstFrom, f.FirstTo) || !in(tr.last, f.LastFrom, f.LastTo) {
		return false
	}
	return true
}

// hit: the customer holds the id searched for.
func (tr *truth) hit(q string) bool {
	found := tr.unionID == q
	for _, o := range tr.openIDs {
		found = found || o == q
	}
	return found
}

func expectedOrder(all map[int64]*truth, f models.CustomerFilter, apps []models.BrowseApp) []int64 {
	// A search for an id someone holds finds those customers (then filtered);
	// anything else is a nickname prefix.
	byID := false
	for _, tr := range all {
		byID = byID || (f.Query != "" && tr.hit(f.Query))
	}
	var rows []*truth
	for _, tr := range all {
		switch {
		case !tr.matches(f, apps):
		case f.Query == "":
			rows = append(rows, tr)
		case byID && tr.hit(f.Query):
			rows = append(rows, tr)
		case !byID && strings.HasPrefix(tr.nickname, f.Query):
			rows = append(rows, tr)
		}
	}
	key := func(tr *truth) time.Time {
		if f.Sort == models.SortFirstSeen || f.Sort == models.SortFirstSeenAsc {
			return tr.first
		}
		return tr.last
	}
	asc := f.Sort == models.SortLastSeenAsc || f.Sort == models.SortFirstSeenAsc
	sort.Slice(rows, func(i, j int) bool {
		a, b := key(rows[i]), key(rows[j])
		if !a.Equal(b) {
			return a.Before(b) == asc
		}
		return (rows[i].id < rows[j].id) == asc
	})
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.id
	}
	return ids
}

// seededTenant is a generated tenant with its customer masks built, as the
// seed command leaves it.
func seededTenant(t *testing.T, db *gorm.DB, slug string, n int) (int64, []models.BrowseApp) {
	t.Helper()
	id := insertTenant(t, db, slug)
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	if _, err := models.Seed(context.Background(), db, id, models.SeedOptions{Customers: n, Seed: 7, Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := models.RebuildCustomerMasks(context.Background(), db, id, nil); err != nil {
		t.Fatal(err)
	}
	apps, err := models.BrowseApps(db, id)
	if err != nil {
		t.Fatal(err)
	}
	return id, apps
}

// seededTenantWithStats is seededTenant with its truth and its dashboard
// (and so its list stats) computed.
func seededTenantWithStats(t *testing.T, db *gorm.DB, slug string, n int) (int64, []models.BrowseApp, map[int64]*truth, *models.Dashboard) {
	t.Helper()
	tenant, apps := seededTenant(t, db, slug, n)
	d, err := models.ComputeDashboard(db, tenant, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return tenant, apps, loadTruth(t, db, tenant), d
}

func day(t *testing.T, s string) models.Day {
	t.Helper()
	d, err := models.ParseDay(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestListWalksEveryFilterInOrder pages forward and back through the list
// under each filter and compares with the filter's meaning computed from the
// tables: same customers, same order, no duplicates or gaps, and the count.
func TestListWalksEveryFilterInOrder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		tenant, apps := seededTenant(t, db, "browse-walk", 400)
		other, _ := seededTenant(t, db, "browse-other", 60)
		all := loadTruth(t, db, tenant)
		theirs := loadTruth(t, db, other)
		var someOpenID, someUnionID, someNick string
		for _, tr := range all {
			if tr.unionID != "" && len(tr.openIDs) > 1 && someUnionID == "" {
				someUnionID, someOpenID = tr.unionID, tr.openIDs[1]
			}
			if tr.nickname != "" && someNick == "" {
				someNick = string([]rune(tr.nickname)[:1])
			}
		}
		var theirOpenID string
		for _, tr := range theirs {
			theirOpenID = tr.openIDs[0]
			break
		}
		filters := map[string]models.CustomerFilter{
			"everyone":              {},
			"oldest first":          {Sort: models.SortLastSeenAsc},
			"by first seen":         {Sort: models.SortFirstSeen},
			"by first seen, oldest": {Sort: models.SortFirstSeenAsc},
			"one app":               {AppID: apps[1].ID},
			"the unlinked app":      {AppID: apps[5].ID},
			"mini-programs":         {Kind: models.KindMiniProgram},
			"following":             {Subscribed: "yes"},
			"not following":         {Subscribed: "no"},
			"following the app":     {AppID: apps[0].ID, Subscribed: "yes"},
			"not following the app": {AppID: apps[0].ID, Subscribed: "no"},
			"linked":                {Linked: "yes"},
			"unlinked":              {Linked: "no", Sort: models.SortFirstSeen},
			"by oauth":              {Source: models.SourceOAuth},
			"first seen in a range": {FirstFrom: day(t, "2025-12-01"), FirstTo: day(t, "2026-02-15")},
			"last seen since":       {LastFrom: day(t, "2026-02-01"), Sort: models.SortFirstSeenAsc},
			"seen in both ranges":   {FirstFrom: day(t, "2025-06-01"), LastTo: day(t, "2026-03-01"), Kind: models.KindSubscription},
			"nickname prefix":       {Query: someNick},
			"unionid":               {Query: someUnionID},
			"openid":                {Query: someOpenID},
			"another tenant's id":   {Query: theirOpenID},
			"nobody":                {Query: "zzzz-nobody"},
		}
		for name, f := range filters {
			t.Run(name, func(t *testing.T) {
				want := expectedOrder(all, f, apps)
				page := walkList(t, db, tenant, f, apps, models.ListOptions{Limit: 37}, want)
				if !page.Total.Exact || page.Total.N != int64(len(want)) {
					t.Errorf("total %+v, want exactly %d", page.Total, len(want))
				}
			})
		}
	})
}

// walkList pages forward through the list from the filter's first page,
// checks the customers and their order against want, then pages back from
// the last page checking each previous page. It returns the first page.
func walkList(t *testing.T, db *gorm.DB, tenant int64, f models.CustomerFilter, apps []models.BrowseApp, opt models.ListOptions, want []int64) models.CustomerPage {
	t.Helper()
	var got []int64
	page, err := models.ListCustomers(db, tenant, f, apps, opt)
	if err != nil {
		t.Fatal(err)
	}
	first := page
	if page.Prev != nil {
		t.Error("the first page has a previous page")
	}
	pages := []models.CustomerPage{page}
	for {
		got = append(got, rowIDs(page.Rows)...)
		if page.Next == nil {
			break
		}
		if len(pages) > 100 {
			t.Fatal("too many pages")
		}
		page, err = models.ListCustomers(db, tenant, *page.Next, apps, opt)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, page)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("forward walk:\n got %v\nwant %v", got, want)
	}
	// And back from the last page: each previous page is the one before.
	for i := len(pages) - 1; i > 0; i-- {
		if pages[i].Prev == nil {
			t.Fatalf("page %d has no previous page", i)
		}
		back, err := models.ListCustomers(db, tenant, *pages[i].Prev, apps, opt)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(rowIDs(back.Rows)) != fmt.Sprint(rowIDs(pages[i-1].Rows)) {
			t.Fatalf("previous of page %d:\n got %v\nwant %v", i, rowIDs(back.Rows), rowIDs(pages[i-1].Rows))
		}
		if (back.Prev == nil) != (i-1 == 0) {
			t.Fatalf("previous of page %d: has previous = %v", i, back.Prev != nil)
		}
	}
	return first
}

func rowIDs(rows []models.CustomerRow) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

// TestListCountsExactlyWhileCheapAndEstimatesAbove: up to the cap the total
// is exact; above it, it comes from the list stats (exactly, for filters on
// masks or on one date range, as of the stats), or is "at least the cap".
func TestListCountsExactlyWhileCheapAndEstimatesAbove(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		tenant, apps, all, d := seededTenantWithStats(t, db, "browse-count", 600)
		if d.Stats == nil || d.Stats.Total != 600 {
			t.Fatalf("stats %+v", d.Stats)
		}
		exactFromStats := []models.CustomerFilter{{}, {AppID: apps[0].ID}, {Linked: "yes"}, {Subscribed: "no"},
			{Kind: models.KindMiniProgram, Subscribed: "no"}, {Kind: models.KindSubscription, Subscribed: "yes"}, {Source: models.SourceMiniProgram, Linked: "yes"},
			{FirstFrom: day(t, "2025-12-01")}, {LastFrom: day(t, "2025-10-01"), LastTo: day(t, "2026-02-28"), Sort: models.SortFirstSeen}}
		for _, f := range exactFromStats {
			want := int64(len(expectedOrder(all, f, apps)))
			if want <= 60 {
				t.Fatalf("%+v: only %d match; pick a broader filter", f, want)
			}
			est, err := models.ListCustomers(db, tenant, f, apps, models.ListOptions{CountCap: 10, Stats: d.Stats})
			if err != nil {
				t.Fatal(err)
			}
			if est.Total.Exact || est.Total.AtLeast || !est.Total.AsOf.Equal(d.Stats.AsOf) {
				t.Errorf("%+v: %+v, want an estimate as of the stats", f, est.Total)
			}
			// Two significant digits of the true count.
			if lo, hi := float64(want)*0.94, float64(want)*1.06; float64(est.Total.N) < lo || float64(est.Total.N) > hi {
				t.Errorf("%+v: estimated %d, truly %d", f, est.Total.N, want)
			}
			bare, err := models.ListCustomers(db, tenant, f, apps, models.ListOptions{CountCap: 10})
			if err != nil {
				t.Fatal(err)
			}
			if !bare.Total.AtLeast || bare.Total.N != 10 {
				t.Errorf("%+v without stats: %+v, want at least 10", f, bare.Total)
			}
			exact, err := models.ListCustomers(db, tenant, f, apps, models.ListOptions{CountCap: 1000, Stats: d.Stats})
			if err != nil {
				t.Fatal(err)
			}
			if !exact.Total.Exact || exact.Total.N != want {
				t.Errorf("%+v under the cap: %+v, want exactly %d", f, exact.Total, want)
			}
		}
		// A nickname prefix few customers share is counted through the
		// nickname index, exactly.
		var nick string
		for _, tr := range all {
			if r := []rune(tr.nickname); len(r) > 0 && string(r[0]) != "L" {
				nick = string(r[0])
				break
			}
		}
		f := models.CustomerFilter{Query: nick}
		want := len(expectedOrder(all, f, apps))
		page, err := models.ListCustomers(db, tenant, f, apps, models.ListOptions{CountCap: 3, Stats: d.Stats})
		if err != nil {
			t.Fatal(err)
		}
		if !page.Total.Exact || page.Total.N != int64(want) {
			t.Errorf("nickname %q: %+v, truly %d", nick, page.Total, want)
		}
	})
}

func TestListRefusesAnUnscopedCall(t *testing.T) {
	db := dbtest.SQLite(t)
	if _, err := models.ListCustomers(db, 0, models.CustomerFilter{}, nil, models.ListOptions{}); err == nil {
		t.Fatal("tenant 0 listed")
	}
}

func TestParseCustomerFilter(t *testing.T) {
	cases := []struct {
		query    string
		problems string // sorted "field=code" list
		canon    string // Values().Encode() when fine
	}{
		{"", "", ""},
		{"q=%20%E7%8E%8B%20&sort=last_seen", "", "q=%E7%8E%8B"},
		{"app=12&kind=service&sub=yes&linked=no&source=oauth", "", "app=12&kind=service&linked=no&source=oauth&sub=yes"},
		{"first_from=2026-01-01&first_to=2026-01-31&last_from=2026-02-01&sort=first_seen_asc", "", "first_from=2026-01-01&first_to=2026-01-31&last_from=2026-02-01&sort=first_seen_asc"},
		{"after=1767225600000000.42", "", "after=1767225600000000.42"},
		{"app=x&kind=shop&sub=maybe&linked=1&source=ftp&sort=name", "app=no_app kind=not_choice linked=not_choice sort=not_choice source=not_choice sub=not_choice", ""},
		{"first_from=2026-02-30&last_to=yesterday", "first_from=not_day last_to=not_day", ""},
		{"first_from=2026-03-01&first_to=2026-02-01", "first_to=day_order", ""},
		{"first_from=1999-12-31", "first_from=not_day", ""},
		{"after=abc&before=1.2", "after=cursor", ""},
		{"after=1.2&before=1.3", "before=cursor", ""},
		{"after=-5.2", "after=cursor", ""},
		{"after=5.0", "after=cursor", ""},
		{"q=" + strings.Repeat("x", 101), "q=too_long", ""},
		{"app=-3", "app=no_app", ""},
	}
	for _, c := range cases {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		f, problems := models.ParseCustomerFilter(q)
		var got []string
		for k, v := range problems {
			got = append(got, k+"="+v)
		}
		sort.Strings(got)
		if strings.Join(got, " ") != c.problems {
			t.Errorf("%q: problems %v, want %q", c.query, got, c.problems)
		}
		if c.problems == "" && f.Values().Encode() != c.canon {
			t.Errorf("%q: canonical %q, want %q", c.query, f.Values().Encode(), c.canon)
		}
	}
}

// FuzzParseCustomerFilter: no query string makes the parser panic, a filter
// it accepts survives the trip through the URL unchanged, and the canonical
// form is stable.
func FuzzParseCustomerFilter(f *testing.F) {
	for _, s := range []string{"", "q=王&app=3&sort=first_seen", "after=1767225600000000.42&sub=no", "first_from=2026-01-01&first_to=2025-01-01",
		"q=%ff%fe", "before=9999999999999999999.1", "linked=yes&linked=no", "source=import&kind=miniprogram&last_to=2100-12-31"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		filter, problems := models.ParseCustomerFilter(q)
		again, problems2 := models.ParseCustomerFilter(filter.Values())
		if len(problems2) != 0 {
			t.Fatalf("%q: its own canonical form %q is refused: %v", raw, filter.Values().Encode(), problems2)
		}
		if fmt.Sprint(again.Values()) != fmt.Sprint(filter.Values()) {
			t.Fatalf("%q: %v became %v", raw, filter.Values(), again.Values())
		}
		_ = problems
	})
}

func TestMaskID(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "",
		"oAbCdEfGhIjKlMnOpQrStUvWx3kQ": "••••x3kQ",
		"abc":                          "••••",
		"abcd":                         "••••",
		"abcde":                        "••••bcde",
		"用户标识号码五":                      "••••识号码五",
	} {
		if got := models.MaskID(in); got != want {
			t.Errorf("MaskID(%q) = %q, want %q", in, got, want)
		}
	}
}

// sqlRecorder keeps the SQL a handle runs, to tell which plan served a page.
type sqlRecorder struct {
	logger.Interface
	mu  sync.Mutex
	sql []string
}

func (r *sqlRecorder) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	s, _ := fc()
	r.mu.Lock()
	r.sql = append(r.sql, s)
	r.mu.Unlock()
}

func (r *sqlRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.sql
	r.sql = nil
	return out
}

// TestListSourcePlanMatchesTheMeaning: a source few customers hold is read
// from the source indexes, a union of one range per src_mask value the stats
// list and one for the values they do not. Whatever the stats say (they only
// choose the plan), the pages hold the filter's customers in order, forward
// and back; values missing from the stats (customers who gained a source
// since) are found by the last branch.
func TestListSourcePlanMatchesTheMeaning(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		tenant, apps, all, d := seededTenantWithStats(t, db, "browse-source", 400)
		// Stats of a tenant 1,000 times the size with the same groups: every
		// source is then rare enough for the source plan.
		inflated := func(keep func(g models.MaskGroup) bool) *models.ListStats {
			s := *d.Stats
			s.Total *= 1000
			s.Groups = nil
			for _, g := range d.Stats.Groups {
				if keep(g) {
					s.Groups = append(s.Groups, g)
				}
			}
			return &s
		}
		rec := &sqlRecorder{Interface: logger.Discard}
		traced := db.Session(&gorm.Session{Logger: rec})
		for _, src := range models.Sources() {
			for _, sort := range []string{"", models.SortFirstSeen, models.SortLastSeenAsc, models.SortFirstSeenAsc} {
				filters := []models.CustomerFilter{
					{Source: src, Sort: sort},
					{Source: src, Sort: sort, AppID: apps[0].ID, Subscribed: "yes"},
					{Source: src, Sort: sort, Linked: "no"},
					{Source: src, Sort: sort, LastFrom: day(t, "2026-01-01"), FirstTo: day(t, "2026-02-20")},
				}
				for i, f := range filters {
					want := expectedOrder(all, f, apps)
					name := fmt.Sprintf("%s/%s/%d", src, sort, i)
					// Every value the stats list, then only the first
					// (the rest come through the last branch).
					var held []int64
					for _, g := range d.Stats.Groups {
						if bit := models.SourceBit(src); g.SrcMask&bit != 0 && !slices.Contains(held, g.SrcMask) {
							held = append(held, g.SrcMask)
						}
					}
					variants := map[string]*models.ListStats{
						"every value": inflated(func(models.MaskGroup) bool { return true }),
					}
					if len(held) > 1 {
						variants["first value only"] = inflated(func(g models.MaskGroup) bool {
							return g.SrcMask&models.SourceBit(src) == 0 || g.SrcMask == held[0]
						})
					}
					for vname, stats := range variants {
						t.Run(name+"/"+vname, func(t *testing.T) {
							rec.take()
							walkList(t, traced, tenant, f, apps, models.ListOptions{Limit: 7, Stats: stats}, want)
							if len(held) == 0 {
								return
							}
							union := false
							for _, s := range rec.take() {
								union = union || strings.Contains(s, "UNION ALL") || (strings.Contains(s, "ix_customers_source_") && strings.Contains(s, "src_mask ="))
							}
							if !union {
								t.Error("the pages were not read by the source plan")
							}
						})
					}
				}
			}
		}
	})
}

// TestListPrefixPlansMatchTheMeaning: a nickname prefix too common to count
// is read either by walking the sort order or, where that would read more
// entries, from the nickname index and sorted (planPrefix, MySQL). Both give
// the prefix's customers in order, forward and back, under every sort and
// with other filters.
func TestListPrefixPlansMatchTheMeaning(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		tenant, apps, all, d := seededTenantWithStats(t, db, "browse-prefix", 400)
		t.Cleanup(models.SetNicknameIndexMax(3))
		// The commonest first letter of a nickname.
		counts := map[string]int{}
		for _, tr := range all {
			if r := []rune(tr.nickname); len(r) > 0 {
				counts[string(r[0])]++
			}
		}
		prefix := ""
		for p, n := range counts {
			if n > counts[prefix] {
				prefix = p
			}
		}
		if counts[prefix] < 10 {
			t.Fatalf("the commonest first letter %q starts only %d nicknames", prefix, counts[prefix])
		}
		rec := &sqlRecorder{Interface: logger.Discard}
		traced := db.Session(&gorm.Session{Logger: rec})
		mysql := models.Dialect(db) == models.DialectMySQL
		// Stats of a tenant 1,000 times the size make the sort the cheaper
		// plan; of a tenant of one customer, the walk.
		huge, tiny := *d.Stats, *d.Stats
		huge.Total, tiny.Total = d.Stats.Total*1000, 1
		for plan, stats := range map[string]*models.ListStats{"sorted": &huge, "walked": &tiny} {
			for _, sort := range []string{"", models.SortFirstSeen, models.SortLastSeenAsc, models.SortFirstSeenAsc} {
				for i, f := range []models.CustomerFilter{
					{Query: prefix, Sort: sort},
					{Query: prefix, Sort: sort, LastFrom: day(t, "2026-01-01")},
					{Query: prefix, Sort: sort, AppID: apps[0].ID},
				} {
					t.Run(fmt.Sprintf("%s/%s/%d", plan, sort, i), func(t *testing.T) {
						rec.take()
						walkList(t, traced, tenant, f, apps, models.ListOptions{Limit: 4, Stats: stats}, expectedOrder(all, f, apps))
						if !mysql {
							return
						}
						fromNickname := false
						for _, s := range rec.take() {
							fromNickname = fromNickname || (strings.Contains(s, "FORCE INDEX (ix_customers_tenant_nickname)") && strings.Contains(s, "ORDER BY"))
						}
						if fromNickname != (plan == "sorted") {
							t.Errorf("pages read from the nickname index: %v, want %v", fromNickname, plan == "sorted")
						}
					})
				}
			}
		}
	})
}
