package web

import (
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"oneid/models"
	"oneid/tenants"
	"oneid/views"
)

const (
	customersPageSize = 50
	timelineLength    = 100
	// listStatsFresh: older list stats are refreshed (in the background).
	listStatsFresh = 10 * time.Minute
)

// browseCache keeps, per tenant, what every list page needs and what rarely
// changes: the apps (for a few seconds) and the list stats (until the
// dashboard's stored figures change, checked every few seconds). Reading the
// stats means parsing the stored dashboard, which costs more than a page.
type browseCache struct {
	mu sync.Mutex
	m  map[int64]*browseEntry
	// asked is when this instance last asked for each tenant's dashboard
	// refresh on behalf of the list (see askRefresh).
	asked map[int64]time.Time
}

type browseEntry struct {
	apps      []models.BrowseApp
	appsAt    time.Time
	stats     *models.ListStats
	checkedAt time.Time
}

const (
	appsFor      = 5 * time.Second
	statsRecheck = 15 * time.Second
	// refreshAskEvery: while a tenant's list stats are stale, this instance
	// asks for a refresh (models.ClaimDashboardRefresh, a write) at most this
	// often, however many list pages are served meanwhile. It outlasts
	// statsRecheck, so the stats a finished refresh stored are seen before
	// the next ask; a refresh that failed is asked again this much later (the
	// claim's lease, dashboardLease, still decides across instances).
	refreshAskEvery = 30 * time.Second
	// refreshAsksKept bounds the tenants whose last ask is remembered.
	refreshAsksKept = 10000
)

// askRefresh reports whether the list should ask for the tenant's dashboard
// refresh now, and if so remembers that it did: false when this instance
// asked less than refreshAskEvery ago.
func (c *browseCache) askRefresh(tenantID int64, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if last, ok := c.asked[tenantID]; ok && !now.Before(last) && now.Sub(last) < refreshAskEvery {
		return false
	}
	if c.asked == nil {
		c.asked = map[int64]time.Time{}
	}
	if len(c.asked) >= refreshAsksKept {
		for id, at := range c.asked {
			if now.Sub(at) >= refreshAskEvery || now.Before(at) {
				delete(c.asked, id)
			}
		}
		if len(c.asked) >= refreshAsksKept {
			clear(c.asked) // that many tenants asked within the interval: start afresh rather than grow
		}
	}
	c.asked[tenantID] = now
	return true
}

func (c *browseCache) entry(tenantID int64) browseEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[tenantID]; e != nil {
		return *e
	}
	return browseEntry{}
}

func (c *browseCache) store(tenantID int64, update func(e *browseEntry)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[int64]*browseEntry{}
	}
	e := c.m[tenantID]
	if e == nil {
		e = &browseEntry{}
		c.m[tenantID] = e
	}
	update(e)
}

// apps are the tenant's apps, read again when older than appsFor or when
// the filter names an app the cached list lacks (one just bound).
func (c *browseCache) apps(db *gorm.DB, tenantID, wanted int64) ([]models.BrowseApp, error) {
	e := c.entry(tenantID)
	if e.apps != nil && time.Since(e.appsAt) < appsFor && (wanted == 0 || models.HasBrowseApp(e.apps, wanted)) {
		return e.apps, nil
	}
	apps, err := models.BrowseApps(db, tenantID)
	if err != nil {
		return nil, err
	}
	if apps == nil {
		apps = []models.BrowseApp{}
	}
	c.store(tenantID, func(e *browseEntry) { e.apps, e.appsAt = apps, time.Now() })
	return apps, nil
}

// stats are the tenant's list stats, or nil when none are stored yet.
func (c *browseCache) stats(db *gorm.DB, tenantID int64) (*models.ListStats, error) {
	e := c.entry(tenantID)
	if e.stats != nil && time.Since(e.checkedAt) < statsRecheck {
		return e.stats, nil
	}
	asOf, err := models.DashboardAsOf(db, tenantID)
	if err != nil || asOf.IsZero() {
		return nil, err
	}
	stats := e.stats
	if stats == nil || !stats.AsOf.Truncate(time.Microsecond).Equal(asOf.Truncate(time.Microsecond)) {
		if stats, err = models.LoadListStats(db, tenantID); err != nil || stats == nil {
			return nil, err
		}
	}
	c.store(tenantID, func(e *browseEntry) { e.stats, e.checkedAt = stats, time.Now() })
	return stats, nil
}

// customersPage is the customer list. The filter lives in the URL; htmx asks
// for the results alone (HX-Request) and the whole page is served otherwise,
// so it works without JavaScript and every view can be bookmarked.
func (s *Server) customersPage(c *fiber.Ctx) error {
	sc := scope(c)
	db := s.dbFor(c)
	raw := queryValues(c)
	f, problems := models.ParseCustomerFilter(raw)
	apps, err := s.browse.apps(db, sc.TenantID, f.AppID)
	if err != nil {
		return err
	}
	if f.AppID != 0 && !models.HasBrowseApp(apps, f.AppID) {
		problems["app"], f.AppID = models.ProblemNoApp, 0
	}
	base := tenantPath(sc.Slug, "customers")
	canonical := withQuery(base, f.Values())
	// A submitted form names every field, empty ones too: send the browser to
	// the short address of the same view, the one worth bookmarking.
	if len(problems) == 0 && !isHTMX(c) && hasEmptyParam(raw) {
		return redirect(c, canonical)
	}

	v := views.CustomersView{
		Form:     filterForm(raw, problems),
		Kinds:    models.Kinds(),
		Sources:  models.Sources(),
		Sorts:    models.SortOrders(),
		Narrowed: f.Narrowed(),
		Clear:    base,
		Masked:   !s.seesWholeIDs(sc),
		Deleted:  raw.Get("deleted") == "1",
	}
	for _, a := range apps {
		v.Apps = append(v.Apps, views.AppOption{ID: a.ID, Name: a.Name, Kind: a.Kind})
	}
	if s.authz.Grants(sc.Role, sc.TenantID, tenants.CustomersExport) {
		v.Export = withQuery(base+"/export", f.FirstPage().Values())
	}
	status := fiber.StatusOK
	if len(problems) > 0 {
		v.Exact, v.Problem = true, resultsProblem(problems)
		status = fiber.StatusUnprocessableEntity
	} else {
		stats, err := s.browse.stats(db, sc.TenantID)
		if err != nil {
			return err
		}
		page, err := models.ListCustomers(db, sc.TenantID, f, apps, models.ListOptions{Limit: customersPageSize, Stats: stats})
		if err != nil {
			return err
		}
		// Estimates come from the stats kept with the dashboard: keep them
		// reasonably fresh, and make them for a tenant that has none. Stale
		// stats stay stale for every page served until a refresh is stored:
		// ask once in a while, not on each page.
		now := s.now()
		if ((stats == nil && page.Total.AtLeast) || (stats != nil && now.Sub(stats.AsOf) > listStatsFresh)) &&
			s.browse.askRefresh(sc.TenantID, now) {
			s.refreshDashboardLater(sc.TenantID)
		}
		v.Total, v.Exact, v.AtLeast, v.AsOf = page.Total.N, page.Total.Exact, page.Total.AtLeast, page.Total.AsOf
		from := "?" + url.Values{"from": {f.Values().Encode()}}.Encode()
		v.Rows = make([]views.CustomerListRow, 0, len(page.Rows))
		for _, r := range page.Rows {
			v.Rows = append(v.Rows, listRow(r, apps, base+"/"+strconv.FormatInt(r.ID, 10)+from, v.Masked))
		}
		if page.Next != nil {
			v.Next = withQuery(base, page.Next.Values())
		}
		if page.Prev != nil {
			v.Prev = withQuery(base, page.Prev.Values())
			v.First = withQuery(base, f.FirstPage().Values())
		}
	}
	if isHTMX(c) {
		// htmx swaps only 2xx answers; the refusal is shown in the results.
		c.Set("HX-Push-Url", canonical)
		c.Vary("HX-Request")
		return s.render(c, fiber.StatusOK, views.CustomerResults(v))
	}
	c.Vary("HX-Request")
	return s.render(c, status, views.CustomersPage(v))
}

// customerPage is one customer's profile.
func (s *Server) customerPage(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	db := s.dbFor(c)
	apps, err := s.browse.apps(db, sc.TenantID, 0)
	if err != nil {
		return err
	}
	p, err := models.LoadProfile(db, sc.TenantID, id, timelineLength, apps)
	if err != nil {
		return err
	}
	v := s.profileView(c, p)
	return s.render(c, fiber.StatusOK, views.ProfilePage(v))
}

// deleteCustomerPage asks an admin to confirm an erasure.
func (s *Server) deleteCustomerPage(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	db := s.dbFor(c)
	p, err := models.LoadProfile(db, sc.TenantID, id, 1, nil)
	if err != nil {
		return err
	}
	events, err := models.CountTimeline(db, sc.TenantID, id)
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, views.DeleteCustomerPage(views.DeleteCustomerView{
		Profile: s.profileView(c, p),
		Events:  int(events),
		Action:  tenantPath(sc.Slug, "customers/"+strconv.FormatInt(id, 10)+"/delete"),
	}))
}

// deleteCustomer erases a customer, its identities and timeline (PIPL
// deletion request), audited in the same transaction.
func (s *Server) deleteCustomer(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if form(c, "confirm") != "yes" {
		if _, err := models.FindCustomer(s.dbFor(c), sc.TenantID, id); err != nil {
			return err
		}
		return redirect(c, tenantPath(sc.Slug, "customers/"+strconv.FormatInt(id, 10)+"/delete"))
	}
	if _, err := models.EraseCustomer(s.dbFor(c), sc.TenantID, id, s.auditActor(c)); err != nil {
		return err
	}
	return redirect(c, tenantPath(sc.Slug, "customers")+"?deleted=1")
}

// seesWholeIDs: OpenIDs and UnionIDs are personal data. Whole ones go to the
// roles trusted to take personal data out of the system (PRODUCT.md rule 8,
// customers:export: marketers and admins); everyone else (viewers) sees the
// last four characters.
func (s *Server) seesWholeIDs(sc tenants.Scope) bool {
	return s.authz.Grants(sc.Role, sc.TenantID, tenants.CustomersExport)
}

func (s *Server) profileView(c *fiber.Ctx, p *models.Profile) views.ProfileView {
	sc := scope(c)
	masked := !s.seesWholeIDs(sc)
	show := func(id string) string {
		if masked {
			return models.MaskID(id)
		}
		return id
	}
	cu := p.Customer
	idStr := strconv.FormatInt(cu.ID, 10)
	v := views.ProfileView{
		ID: cu.ID, Nickname: cu.Nickname, FirstSeen: cu.FirstSeenAt, LastSeen: cu.LastSeenAt,
		IdentityCount: len(p.Identities), Masked: masked,
		CanDelete:  s.authz.Grants(sc.Role, sc.TenantID, tenants.CustomersDelete),
		Back:       tenantPath(sc.Slug, "customers"),
		DeleteHref: tenantPath(sc.Slug, "customers/"+idStr+"/delete"),
	}
	if cu.UnionID != nil {
		v.UnionID = show(*cu.UnionID)
	} else if cu.UnlinkedReason != nil {
		v.UnlinkedReason = *cu.UnlinkedReason
	}
	if cu.ProfileAt != nil {
		v.ProfileAt = *cu.ProfileAt
	}
	// The list the profile was opened from, rebuilt from a checked filter so
	// the link cannot lead anywhere else.
	if from, err := url.ParseQuery(c.Query("from")); err == nil {
		if f, problems := models.ParseCustomerFilter(from); len(problems) == 0 {
			v.Back = withQuery(v.Back, f.Values())
		}
	}
	byApp := map[int64]int{}
	for _, i := range p.Identities {
		k, ok := byApp[i.AppID]
		if !ok {
			a := p.Apps[i.AppID]
			v.Apps = append(v.Apps, views.ProfileApp{Name: a.Name, Kind: a.Kind, Status: a.Status})
			k = len(v.Apps) - 1
			byApp[i.AppID] = k
		}
		iv := views.IdentityView{
			OpenID: show(i.OpenID), Subscribed: i.Subscribed, Subscribable: p.Apps[i.AppID].Kind != models.KindMiniProgram,
			SubscribeScene: i.SubscribeScene, Source: i.Source, FirstSeen: i.FirstSeenAt, LastSeen: i.LastSeenAt,
		}
		if i.SubscribeTime != nil {
			iv.SubscribeTime = *i.SubscribeTime
		}
		if i.UnsubscribedAt != nil {
			iv.UnsubscribedAt = *i.UnsubscribedAt
		}
		v.Apps[k].Identities = append(v.Apps[k].Identities, iv)
	}
	for _, e := range p.Timeline {
		te := views.TimelineEntry{At: e.OccurredAt, Kind: e.Kind, OpenID: show(e.OpenID), Detail: e.Detail}
		if e.AppID != nil {
			te.App = p.Apps[*e.AppID].Name
		}
		v.Timeline = append(v.Timeline, te)
	}
	return v
}

// listRow is a customer as the list shows it.
func listRow(r models.CustomerRow, apps []models.BrowseApp, href string, masked bool) views.CustomerListRow {
	show := func(id string) string {
		if masked {
			return models.MaskID(id)
		}
		return id
	}
	row := views.CustomerListRow{Key: strconv.FormatInt(r.ID, 10), Href: href, Nickname: r.Nickname, FirstSeen: r.FirstSeenAt, LastSeen: r.LastSeenAt,
		MatchedOpenID: show(r.MatchedOpenID)}
	if r.UnionID != nil {
		row.UnionID = show(*r.UnionID)
	} else if r.UnlinkedReason != nil {
		row.UnlinkedReason = *r.UnlinkedReason
	}
	held := models.AppsOfMask(apps, r.AppMask)
	row.Apps = make([]views.AppBadge, 0, len(held))
	for _, a := range held {
		row.Apps = append(row.Apps, views.AppBadge{Name: a.Name, Kind: a.Kind, Follows: r.SubMask&(1<<*a.Bit) != 0})
	}
	return row
}

// filterForm is the form as typed, with the message key of each problem.
func filterForm(raw url.Values, problems models.FilterProblems) views.CustomerFilterForm {
	f := views.CustomerFilterForm{
		Q: raw.Get("q"), App: raw.Get("app"), Kind: raw.Get("kind"), Sub: raw.Get("sub"), Linked: raw.Get("linked"),
		Source: raw.Get("source"), FirstFrom: raw.Get("first_from"), FirstTo: raw.Get("first_to"),
		LastFrom: raw.Get("last_from"), LastTo: raw.Get("last_to"), Sort: raw.Get("sort"),
		Problems: map[string]string{},
	}
	for field, code := range problems {
		f.Problems[field] = "customers.problem." + code
	}
	return f
}

// resultsProblem is what the results area says instead of results when the
// filter was refused: a mangled page link, or fields marked in the form.
func resultsProblem(problems models.FilterProblems) string {
	switch {
	case len(problems) == 0:
		return ""
	case problems["after"] != "" || problems["before"] != "":
		return "customers.problem.cursor"
	}
	return "customers.problem.fix"
}

// queryValues is the request's query string as url.Values; pairs that do not
// decode are left out (the filter then reports what is missing or wrong).
func queryValues(c *fiber.Ctx) url.Values {
	v, _ := url.ParseQuery(string(c.Request().URI().QueryString()))
	if v == nil {
		v = url.Values{}
	}
	return v
}

func hasEmptyParam(v url.Values) bool {
	for _, vs := range v {
		for _, s := range vs {
			if s == "" {
				return true
			}
		}
	}
	return false
}

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// isHTMX: the request comes from htmx swapping part of the page (not restoring
// a whole page from history).
func isHTMX(c *fiber.Ctx) bool {
	return c.Get("HX-Request") == "true" && c.Get("HX-History-Restore-Request") != "true"
}
