package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"oneid/migrations/dbtest"
	"oneid/models"
	"oneid/views"
)

// seededCustomer is one generated customer of a workspace, with its ids.
type seededCustomer struct {
	id      int64
	unionID string
	openIDs []string
	cursor  string
}

// seedCustomers gives a workspace n generated customers (models.Seed, as the
// seed command does) and returns a linked one with two or more identities.
func seedCustomers(t testing.TB, h *harness, w *workspace, n int) seededCustomer {
	t.Helper()
	ctx := context.Background()
	if _, err := models.Seed(ctx, h.db, w.tenant.ID, models.SeedOptions{Customers: n, Seed: uint64(w.tenant.ID), Now: h.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := models.RebuildCustomerMasks(ctx, h.db, w.tenant.ID, nil); err != nil {
		t.Fatal(err)
	}
	var cs []models.Customer
	if err := h.db.Scopes(models.ForTenant(w.tenant.ID)).Where("unionid IS NOT NULL").Order("id").Find(&cs).Error; err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		ids, err := models.IdentitiesOfCustomer(h.db, w.tenant.ID, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) < 2 {
			continue
		}
		sc := seededCustomer{id: c.ID, unionID: *c.UnionID, cursor: models.Cursor{At: c.LastSeenAt, ID: c.ID}.String()}
		for _, i := range ids {
			sc.openIDs = append(sc.openIDs, i.OpenID)
		}
		return sc
	}
	t.Fatal("no linked customer with two identities was generated")
	return seededCustomer{}
}

// seedIsolationCustomers adds customers to an isolation tenant: their ids for
// the probes; a nickname of its own, the UnionID and all OpenIDs but the one
// the probes search for (a search box shows what was typed) as markers.
func seedIsolationCustomers(t *testing.T, h *harness, w *workspace, it *isoTenant) {
	t.Helper()
	c := seedCustomers(t, h, w, 12)
	nick := w.tenant.Slug + "-顾客"
	if err := h.db.Exec("UPDATE customers SET nickname = ? WHERE tenant_id = ? AND id = ?", nick, w.tenant.ID, c.id).Error; err != nil {
		t.Fatal(err)
	}
	it.ids["customer"] = strconv.FormatInt(c.id, 10)
	it.ids["customer-openid"] = c.openIDs[0]
	it.ids["customer-cursor"] = c.cursor
	it.markers = append(it.markers, nick, c.unionID)
	it.markers = append(it.markers, c.openIDs[1:]...)
}

// customersList probes the list: A's workspace is 404; B's list searched for
// A's customer's OpenID, or positioned at A's customer, is B's own page.
func customersList(a, b *isoTenant) []probe {
	own := func(q url.Values) probe {
		return probe{path: "/t/" + b.slug + "/customers?" + q.Encode(), want: wantOwn}
	}
	return []probe{
		{path: a.path("customers"), want: wantNotFound},
		own(url.Values{"q": {a.ids["customer-openid"]}}),
		own(url.Values{"after": {a.ids["customer-cursor"]}, "sort": {"last_seen_asc"}}),
	}
}

func TestCustomerListPagesFiltersAndFragments(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	w := h.workspace("Browse Co")
	seedCustomers(t, h, w, 130)
	c := h.signedIn(w.people[models.RoleMarketer])

	r := c.get(w.path("customers"))
	if r.status != http.StatusOK || strings.Count(r.body, `data-testid="customer-row"`) != 50 {
		t.Fatalf("first page: %d, %d rows", r.status, strings.Count(r.body, `data-testid="customer-row"`))
	}
	if !strings.Contains(r.body, `data-testid="customer-filters"`) || !strings.Contains(r.body, `data-total="130" data-exact="true"`) {
		t.Fatal("the page lacks the filter form or the exact total")
	}
	if !strings.Contains(r.body, `data-testid="customers-export"`) {
		t.Fatal("a marketer's list of 130 customers has no export control")
	}
	// A search that matches no one offers nothing to export.
	if r := c.get(w.path("customers?q=nobody-by-this-name")); r.status != http.StatusOK ||
		!strings.Contains(r.body, `data-testid="customers-empty"`) || strings.Contains(r.body, `data-testid="customers-export"`) {
		t.Fatalf("empty result: %d, export control shown: %v", r.status, strings.Contains(r.body, `data-testid="customers-export"`))
	}
	next := regexp.MustCompile(`href="([^"]*)"[^>]*data-testid="page-next"`).FindStringSubmatch(r.body)
	if next == nil || !strings.Contains(next[1], "after=") {
		t.Fatal("no next-page link with a cursor")
	}

	// htmx asks for the results alone; the address to push is the short one.
	c.header.Set("HX-Request", "true")
	frag := c.get(strings.ReplaceAll(next[1], "&amp;", "&"))
	c.header.Del("HX-Request")
	if frag.status != http.StatusOK || strings.Contains(frag.body, "<html") || !strings.HasPrefix(strings.TrimSpace(frag.body), `<section id="customer-results"`) {
		t.Fatalf("htmx fragment: %d %.200s", frag.status, frag.body)
	}
	if push := frag.header.Get("HX-Push-Url"); !strings.Contains(push, "after=") || !strings.Contains(frag.body, `data-testid="page-prev"`) {
		t.Fatalf("fragment push url %q, or no previous link", push)
	}

	// A submitted form (every field, most empty) goes to the short address.
	r = c.get(w.path("customers?q=&app=&kind=&sub=yes&linked=&source=&first_from=&first_to=&last_from=&last_to=&sort=last_seen"))
	if r.status != http.StatusSeeOther || r.location() != w.path("customers?sub=yes") {
		t.Fatalf("form submission: %d → %q", r.status, r.location())
	}

	// Bad values: 422 with the form and clear messages, not a 500.
	r = c.get(w.path("customers?kind=shop&first_from=2026-13-01&after=xyz"))
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad filter: %d", r.status)
	}
	for _, want := range []string{`data-testid="problem-kind"`, `data-testid="problem-first_from"`, `data-testid="alert-error"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("bad filter page lacks %s", want)
		}
	}
	// Through htmx the refusal still arrives (htmx swaps only 2xx).
	c.header.Set("HX-Request", "true")
	frag = c.get(w.path("customers?first_from=2026-02-01&first_to=2026-01-01"))
	c.header.Del("HX-Request")
	if frag.status != http.StatusOK || !strings.Contains(frag.body, `data-testid="alert-error"`) {
		t.Fatalf("htmx bad filter: %d %.300s", frag.status, frag.body)
	}
	// Another workspace's (or no) app: a message, not a 404 or a leak.
	if r := c.get(w.path("customers?app=999999")); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="problem-app"`) {
		t.Fatalf("unknown app: %d", r.status)
	}
}

func TestViewersSeeIDsMaskedEverywhere(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	w := h.workspace("Mask Co")
	cust := seedCustomers(t, h, w, 40)
	profile := w.path("customers/" + strconv.FormatInt(cust.id, 10))
	pages := map[string]string{
		"list":              w.path("customers"),
		"search by openid":  w.path("customers?q=" + url.QueryEscape(cust.openIDs[0])),
		"search by unionid": w.path("customers?q=" + url.QueryEscape(cust.unionID)),
		"profile":           profile,
	}
	whole := append([]string{cust.unionID}, cust.openIDs...)
	for _, role := range []string{models.RoleViewer, models.RoleMarketer, models.RoleAdmin} {
		c := h.signedIn(w.people[role])
		for name, path := range pages {
			r := c.get(path)
			if r.status != http.StatusOK {
				t.Fatalf("%s as %s: %d", name, role, r.status)
			}
			// What the page shows: its text. (The search box and the links
			// keep what the person typed, which is theirs already.)
			text := tagsAndAttributes.ReplaceAllString(r.body, " ")
			if strings.HasPrefix(name, "search") {
				shown := cust.unionID
				if name == "search by openid" {
					shown = cust.openIDs[0]
				}
				if !strings.Contains(text, shown) && !strings.Contains(text, models.MaskID(shown)) {
					t.Errorf("%s as %s: the customer is not found", name, role)
				}
			}
			for _, id := range whole {
				shown := strings.Contains(text, id)
				if role == models.RoleViewer && shown {
					t.Errorf("%s as viewer shows the whole id %s", name, id)
				}
			}
			if role == models.RoleViewer && !strings.Contains(r.body, `data-testid="masked-note"`) {
				t.Errorf("%s as viewer does not say ids are masked", name)
			}
		}
		r := c.get(profile)
		for _, id := range whole {
			if role != models.RoleViewer && !strings.Contains(r.body, id) {
				t.Errorf("profile as %s lacks the whole id %s", role, id)
			}
			if role == models.RoleViewer && !strings.Contains(r.body, models.MaskID(id)) {
				t.Errorf("profile as viewer lacks the masked id %s", models.MaskID(id))
			}
		}
		if copyBtn := strings.Contains(r.body, `data-testid="identity-openid-copy"`); copyBtn == (role == models.RoleViewer) {
			t.Errorf("profile as %s: copy buttons shown = %v", role, copyBtn)
		}
	}
}

func TestProfileShowsIdentitiesByAppAndTimeline(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	w := h.workspace("Profile Co")
	cust := seedCustomers(t, h, w, 20)
	c := h.signedIn(w.people[models.RoleMarketer])
	r := c.get(w.path("customers/"+strconv.FormatInt(cust.id, 10)) + "?from=" + url.QueryEscape("sub=yes&sort=first_seen"))
	if r.status != http.StatusOK {
		t.Fatalf("profile: %d", r.status)
	}
	if n := strings.Count(r.body, `data-testid="identity-row"`); n != len(cust.openIDs) {
		t.Errorf("%d identity rows, want %d", n, len(cust.openIDs))
	}
	if !strings.Contains(r.body, `data-testid="timeline-event"`) || !strings.Contains(r.body, `data-testid="profile-app"`) {
		t.Error("no timeline or app groups")
	}
	if !strings.Contains(r.body, `href="`+w.path("customers?sort=first_seen&amp;sub=yes")+`"`) {
		t.Error("the back link does not return to the list it came from")
	}
	if strings.Contains(r.body, `data-testid="delete-customer"`) {
		t.Error("a marketer is offered deletion")
	}
	// A back link is rebuilt from a checked filter: nothing else gets through.
	r = c.get(w.path("customers/"+strconv.FormatInt(cust.id, 10)) + "?from=" + url.QueryEscape("//evil.example/&kind=shop"))
	if !strings.Contains(r.body, `data-testid="back-to-list"`) || strings.Contains(r.body, "evil.example") {
		t.Error("a crafted back link was followed")
	}
	if r := c.get(w.path("customers/0")); r.status != http.StatusNotFound {
		t.Errorf("customer 0: %d", r.status)
	}
	if r := c.get(w.path("customers/abc")); r.status != http.StatusNotFound {
		t.Errorf("customer abc: %d", r.status)
	}
}

func TestAdminErasesACustomerAfterConfirming(t *testing.T) {
	h := newHarness(t, dbtest.MySQL(t))
	w := h.workspace("Erase Co")
	cust := seedCustomers(t, h, w, 20)
	path := w.path("customers/" + strconv.FormatInt(cust.id, 10))

	marketer := h.signedIn(w.people[models.RoleMarketer]).fresh()
	if r := marketer.post(path+"/delete", url.Values{"confirm": {"yes"}}); r.status != http.StatusForbidden {
		t.Fatalf("a marketer deleting: %d", r.status)
	}
	admin := h.signedIn(w.people[models.RoleAdmin])
	r := admin.get(path)
	if !strings.Contains(r.body, `data-testid="delete-customer"`) {
		t.Fatal("the admin is not offered deletion")
	}
	r = admin.get(path + "/delete")
	if r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="delete-confirm"`) {
		t.Fatalf("confirmation page: %d", r.status)
	}
	if r := admin.post(path+"/delete", url.Values{"confirm": {"yes"}, "_csrf": {"forged"}}); r.status != http.StatusForbidden {
		t.Fatalf("a forged form: %d", r.status)
	}
	if r := admin.post(path+"/delete", nil); r.status != http.StatusSeeOther || r.location() != path+"/delete" {
		t.Fatalf("unconfirmed: %d → %s", r.status, r.location())
	}
	if _, err := models.FindCustomer(h.db, w.tenant.ID, cust.id); err != nil {
		t.Fatal("deleted without confirmation")
	}
	r = admin.post(path+"/delete", url.Values{"confirm": {"yes"}})
	if r.status != http.StatusSeeOther || r.location() != w.path("customers?deleted=1") {
		t.Fatalf("erase: %d → %s\n%s", r.status, r.location(), h.logs.String())
	}
	if _, err := models.FindCustomer(h.db, w.tenant.ID, cust.id); err == nil {
		t.Fatal("the customer is still there")
	}
	var left int64
	h.db.Raw("SELECT (SELECT COUNT(*) FROM identities WHERE tenant_id = ? AND customer_id = ?) + (SELECT COUNT(*) FROM customer_events WHERE tenant_id = ? AND customer_id = ?)",
		w.tenant.ID, cust.id, w.tenant.ID, cust.id).Scan(&left)
	if left != 0 {
		t.Fatalf("%d identities and events left", left)
	}
	page, err := models.ListAudit(h.db, w.tenant.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range page.Events {
		if e.Action == models.AuditCustomerDeleted {
			found = e.Target == "customer #"+strconv.FormatInt(cust.id, 10) && e.Actor == w.people[models.RoleAdmin].Email
			for _, id := range append(cust.openIDs, cust.unionID) {
				if strings.Contains(e.Target+e.Detail, id) {
					t.Error("the audit line keeps an erased id")
				}
			}
		}
	}
	if !found {
		t.Fatal("the erasure is not audited")
	}
	if r := admin.get(w.path("customers?deleted=1")); !strings.Contains(r.body, `data-testid="alert-info"`) {
		t.Error("no notice after deleting")
	}
	if r := admin.post(path+"/delete", url.Values{"confirm": {"yes"}}); r.status != http.StatusNotFound {
		t.Fatalf("deleting again: %d", r.status)
	}
}

func TestDashboardShowsTheFiguresAndRefreshesLargeOnesInTheBackground(t *testing.T) {
	h := newHarness(t, dbtest.MySQL(t))
	w := h.workspace("Dash Co")
	seedCustomers(t, h, w, 200)
	c := h.signedIn(w.people[models.RoleViewer])
	d, err := models.ComputeDashboard(h.db, w.tenant.ID, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := c.get(w.path("dashboard"))
	if r.status != http.StatusOK {
		t.Fatalf("dashboard: %d", r.status)
	}
	for _, want := range []string{`data-testid="stat-unique">200<`, `data-testid="stat-identities">` + views.FormatCount(d.Identities) + `<`,
		`data-testid="overlap"`, `data-testid="new-per-day"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("dashboard lacks %s", want)
		}
	}
	if n := strings.Count(r.body, `data-testid="overlap-cell"`); n != len(d.Apps)*(len(d.Apps)-1) {
		t.Errorf("%d overlap cells for %d apps", n, len(d.Apps))
	}
	// A tenant whose figures are slow to compute gets its stored snapshot,
	// with its time, and a refresh in the background.
	old := *d
	old.Customers, old.TookMS, old.AsOf = 123456, 4000, h.clock.Now().Add(-time.Hour)
	if err := models.SaveDashboard(h.db, w.tenant.ID, &old); err != nil {
		t.Fatal(err)
	}
	r = c.get(w.path("dashboard"))
	if !strings.Contains(r.body, `data-testid="stat-unique">123,456<`) || !strings.Contains(r.body, `data-testid="refreshing"`) {
		t.Fatalf("the stored snapshot is not shown as updating: %.400s", r.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _, err := models.LoadDashboard(h.db, w.tenant.ID, h.clock.Now())
		if err == nil && got.Customers == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the snapshot was not refreshed: %+v %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var tagsAndAttributes = regexp.MustCompile(`<[^>]*>`)
