package web_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/app/export"
	"oneid/app/jobs"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// seedIsolationExports gives an isolation tenant a ready export with its
// file, and a queued one: what the download and cancel probes aim at. The
// export's search is a marker: the Exports page shows it.
func seedIsolationExports(t *testing.T, h *harness, w *workspace, it *isoTenant) {
	t.Helper()
	now := h.clock.Now()
	marker := w.tenant.Slug + "-export-search"
	ne := models.NewExport{Shape: models.ExportProfiles, Filter: models.CustomerFilter{Query: marker}, Locale: "en", ExpectedRows: 1,
		Actor: models.AuditEvent{ActorUserID: w.people[models.RoleAdmin].ID, Actor: w.people[models.RoleAdmin].Email}}
	ready, err := models.StartExportJob(h.db, w.tenant.ID, ne, 2, now)
	if err != nil {
		t.Fatal(err)
	}
	file := w.tenant.Slug + "-file-content"
	err = h.db.Transaction(func(tx *gorm.DB) error {
		if err := models.AppendExportChunk(tx, w.tenant.ID, ready.ID, 0, deflate(t, file)); err != nil {
			return err
		}
		if err := tx.Model(&models.Job{}).Scopes(models.ForTenant(w.tenant.ID)).Where("id = ?", *ready.JobID).
			Updates(map[string]any{"state": models.JobSucceeded, "active_key": nil}).Error; err != nil {
			return err
		}
		return models.EndExportJob(tx, w.tenant.ID, ready.ID, models.ExportEnd{State: models.ExportReady,
			Stats: models.ExportStats{Rows: 1, Customers: 1}, Bytes: int64(len(file)), KeepUntil: now.Add(7 * 24 * time.Hour)},
			models.AuditEvent{}, now)
	})
	if err != nil {
		t.Fatal(err)
	}
	live, err := models.StartExportJob(h.db, w.tenant.ID, ne, 2, now)
	if err != nil {
		t.Fatal(err)
	}
	it.ids["export"] = strconv.FormatInt(ready.ID, 10)
	it.ids["export:live"] = strconv.FormatInt(live.ID, 10)
	it.markers = append(it.markers, marker, file)
}

// deflate compresses a file's content as an export chunk is stored.
func deflate(t *testing.T, s string) []byte {
	t.Helper()
	var out strings.Builder
	if err := export.Deflate(&out, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return []byte(out.String())
}

// csvRecords parses an export; a BOM is taken off first.
func csvRecords(t *testing.T, body string) [][]string {
	t.Helper()
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF")))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV: %v\n%.300s", err, body)
	}
	return recs
}

// listed walks the customer list of a filter, page by page: the customers an
// export of the filter must hold (it holds them in id order).
func listed(t *testing.T, db *gorm.DB, tenantID int64, f models.CustomerFilter) []int64 {
	t.Helper()
	apps, err := models.BrowseApps(db, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for page := &f; page != nil; {
		p, err := models.ListCustomers(db, tenantID, *page, apps, models.ListOptions{Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Rows {
			ids = append(ids, r.ID)
		}
		page = p.Next
	}
	return ids
}

func exportForm(shape string, filter url.Values, extra ...string) url.Values {
	form := url.Values{"shape": {shape}}
	for k, vs := range filter {
		form[k] = vs
	}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return form
}

// TestExportStreamsTheListAsCSV: a marketer confirms and downloads both
// shapes of a filtered list; parsed with encoding/csv, the files hold the
// list's customers (in id order), each once, every identity of them once, as
// the tables say, and nothing of another workspace; the export is audited
// with its filter, shape and rows, and listed on the Exports page.
func TestExportStreamsTheListAsCSV(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		h := newHarness(t, db)
		w, other := h.workspace("Export Co"), h.workspace("Other Co")
		seedCustomers(t, h, w, 140)
		seedCustomers(t, h, other, 30)
		c := h.signedIn(w.people[models.RoleMarketer]).fresh()
		filter := url.Values{"sub": {"yes"}, "sort": {"first_seen"}}
		f, _ := models.ParseCustomerFilter(filter)
		want := listed(t, h.db, w.tenant.ID, f)
		slices.Sort(want)
		if len(want) < 20 {
			t.Fatalf("only %d customers follow", len(want))
		}

		// The list offers the export of its filter; the confirmation counts.
		list := c.get(w.path("customers?" + filter.Encode()))
		link := regexp.MustCompile(`href="([^"]*)"[^>]*data-testid="customers-export"`).FindStringSubmatch(list.body)
		if link == nil {
			t.Fatal("no export control on the customer list")
		}
		confirm := c.get(strings.ReplaceAll(link[1], "&amp;", "&"))
		if confirm.status != http.StatusOK || !strings.Contains(confirm.body, `data-rows="`+strconv.Itoa(len(want))+`"`) ||
			!strings.Contains(confirm.body, `data-stream="true"`) {
			t.Fatalf("confirmation: %d\n%.2000s", confirm.status, confirm.body)
		}

		r := c.post(w.path("customers/export"), exportForm("profiles", filter, "bom", "1", "headers", "labels"))
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
			!strings.Contains(r.header.Get("Content-Disposition"), `attachment; filename=export-co-customers-`) {
			t.Fatalf("profiles: %d %v\n%.300s", r.status, r.header, r.body)
		}
		if !strings.HasPrefix(r.body, "\uFEFF") {
			t.Error("no byte order mark")
		}
		recs := csvRecords(t, r.body)
		apps, _ := models.BrowseApps(h.db, w.tenant.ID)
		header := recs[0]
		if header[0] != "客户ID" || header[1] != "UnionID" || len(header) != 5+len(apps) || header[5] != apps[0].Name+" OpenID" {
			t.Fatalf("header %q", header)
		}
		var got []int64
		for _, rec := range recs[1:] {
			id, err := strconv.ParseInt(rec[0], 10, 64)
			if err != nil {
				t.Fatalf("row %q", rec)
			}
			got = append(got, id)
			cu, err := models.FindCustomer(h.db, w.tenant.ID, id)
			if err != nil {
				t.Fatalf("customer %d of the file: %v", id, err)
			}
			union := ""
			if cu.UnionID != nil {
				union = *cu.UnionID
			}
			if rec[1] != union || strings.TrimPrefix(rec[2], "'") != cu.Nickname ||
				rec[3] != cu.FirstSeenAt.In(models.BrowseZone).Format("2006-01-02 15:04:05") {
				t.Errorf("customer %d: %q", id, rec[:5])
			}
			ids, _ := models.IdentitiesOfCustomer(h.db, w.tenant.ID, id)
			byApp := map[int64]string{}
			for _, i := range ids {
				byApp[i.AppID] = i.OpenID
			}
			for k, a := range apps {
				if strings.TrimPrefix(rec[5+k], "'") != byApp[a.ID] {
					t.Errorf("customer %d, app %d: %q, want %q", id, a.ID, rec[5+k], byApp[a.ID])
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("the file holds %d customers %v…, the list %d %v…", len(got), got[:min(5, len(got))], len(want), want[:5])
		}

		// Identities, machine names, no BOM.
		r = c.post(w.path("customers/export"), exportForm("identities", filter, "headers", "names"))
		if r.status != http.StatusOK || strings.HasPrefix(r.body, "\uFEFF") {
			t.Fatalf("identities: %d %.100q", r.status, r.body)
		}
		recs = csvRecords(t, r.body)
		if strings.Join(recs[0], ",") != "customer_id,unionid,app_name,appid,openid,subscribed,subscribe_time,source,first_seen_at,last_seen_at" {
			t.Fatalf("machine header %q", recs[0])
		}
		var wantLines, gotLines []string
		in := map[int64]bool{}
		for _, id := range want {
			in[id] = true
			ids, _ := models.IdentitiesOfCustomer(h.db, w.tenant.ID, id)
			for _, i := range ids {
				wantLines = append(wantLines, strconv.FormatInt(id, 10)+" "+i.OpenID+" "+strconv.FormatBool(i.Subscribed)+" "+i.Source)
			}
		}
		for _, rec := range recs[1:] {
			gotLines = append(gotLines, rec[0]+" "+strings.TrimPrefix(rec[4], "'")+" "+rec[5]+" "+rec[7])
		}
		slices.Sort(wantLines)
		slices.Sort(gotLines)
		if !slices.Equal(gotLines, wantLines) {
			t.Fatalf("identities: %d lines, want %d", len(gotLines), len(wantLines))
		}

		// Nothing of the other workspace.
		var theirs []models.Identity
		h.db.Scopes(models.ForTenant(other.tenant.ID)).Find(&theirs)
		for _, i := range theirs {
			if strings.Contains(r.body, i.OpenID) {
				t.Fatalf("the export holds the other workspace's OpenID %s", i.OpenID)
			}
		}

		// Audited with filter, shape and rows; listed.
		audit, _ := models.ListAudit(h.db, w.tenant.ID, 0, 50)
		var lines []string
		for _, e := range audit.Events {
			if e.Action == models.AuditExportStreamed {
				lines = append(lines, e.Target+" | "+e.Detail+" | "+e.Actor)
			}
		}
		wantAudit := []string{
			"sort=first_seen&sub=yes | identities, " + strconv.Itoa(len(wantLines)) + " rows",
			"sort=first_seen&sub=yes | profiles, " + strconv.Itoa(len(want)) + " rows",
		}
		if len(lines) != 2 || !strings.HasPrefix(lines[0], wantAudit[0][:strings.Index(wantAudit[0], "|")]) ||
			!strings.Contains(lines[0], "identities, "+strconv.Itoa(len(wantLines))+" rows") ||
			!strings.Contains(lines[1], "profiles, "+strconv.Itoa(len(want))+" rows") || !strings.Contains(lines[1], w.people[models.RoleMarketer].Email) {
			t.Fatalf("audit lines %q", lines)
		}
		page := c.get(w.path("exports"))
		if page.status != http.StatusOK || strings.Count(page.body, `data-testid="export-row"`) != 2 ||
			!strings.Contains(page.body, `data-state="done"`) {
			t.Fatalf("exports page: %d\n%.2000s", page.status, page.body)
		}
	})
}

// TestLargeExportRunsAsAJob: above the limit an export is a background job;
// the Exports page shows its progress, then its file, which downloads the
// same bytes a direct download gives; two jobs at once are the most; the
// file of another workspace's export is a 404, and an expired one is gone.
func TestLargeExportRunsAsAJob(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		h := newHarness(t, db)
		cfg := h.cfg
		cfg.Export.StreamMax = 25
		_, small := h.instance(cfg)
		w, other := h.workspace("Jobs Co"), h.workspace("Else Co")
		seedCustomers(t, h, w, 90)
		marketer := h.signedIn(w.people[models.RoleMarketer]).on(small).fresh()

		confirm := marketer.get(w.path("customers/export?shape=identities"))
		if !strings.Contains(confirm.body, `data-stream="false"`) {
			t.Fatalf("the confirmation does not say it runs in the background:\n%.2000s", confirm.body)
		}
		r := marketer.post(w.path("customers/export"), exportForm("identities", nil, "bom", "1"))
		if r.status != http.StatusSeeOther || r.location() != w.path("exports?done=started") {
			t.Fatalf("large export: %d → %q\n%.500s", r.status, r.location(), r.body)
		}
		page := marketer.get(r.location())
		if !strings.Contains(page.body, `data-state="queued"`) || !strings.Contains(page.body, `hx-trigger="every 2s"`) ||
			!strings.Contains(page.body, `data-testid="export-progress"`) {
			t.Fatalf("queued export:\n%.3000s", page.body)
		}
		marketer.post(w.path("customers/export"), exportForm("profiles", nil))
		if r := marketer.post(w.path("customers/export"), exportForm("profiles", nil)); r.status != http.StatusConflict ||
			!strings.Contains(r.body, "本工作区已有 2 个后台导出正在进行") {
			t.Fatalf("a third export at once: %d", r.status)
		}

		runner := jobs.New(jobs.Config{DB: h.db, Now: h.clock.Now})
		runner.Register(export.New(export.Config{DB: h.db, Now: h.clock.Now, BatchSize: 20}).Kind())
		if err := runner.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		page = marketer.get(w.path("exports"))
		links := regexp.MustCompile(`href="([^"]*/download)"`).FindAllStringSubmatch(page.body, -1)
		if len(links) != 2 || strings.Contains(page.body, `hx-trigger`) {
			t.Fatalf("after the jobs: %d downloads\n%.3000s", len(links), page.body)
		}
		// Newest first: the profiles, then the identities.
		file := marketer.get(links[1][1])
		if file.status != http.StatusOK || file.header.Get("Content-Length") != strconv.Itoa(len(file.body)) {
			t.Fatalf("download: %d, %q for %d bytes", file.status, file.header.Get("Content-Length"), len(file.body))
		}
		// The same export straight to the browser gives the same bytes.
		direct := h.signedIn(w.people[models.RoleAdmin]).fresh().post(w.path("customers/export"), exportForm("identities", nil, "bom", "1"))
		if direct.status != http.StatusOK || direct.body != file.body {
			t.Fatalf("the kept file (%d bytes) differs from the direct export (%d bytes, %d)", len(file.body), len(direct.body), direct.status)
		}
		if recs := csvRecords(t, file.body); int64(len(recs)-1) != h.count("identities", w.tenant.ID) {
			t.Fatalf("%d identities in the file, %d in the table", len(recs)-1, h.count("identities", w.tenant.ID))
		}
		if !h.audited(w.tenant.ID, models.AuditExportReady, "") || !h.audited(w.tenant.ID, models.AuditExportDownloaded, "") {
			t.Fatal("the job's end or the download is not in the audit log")
		}

		// Another workspace's admin, with this export's id: 404.
		id := strings.Split(links[1][1], "/")[4]
		stranger := h.signedIn(other.people[models.RoleAdmin]).on(small)
		if r := stranger.get(other.path("exports/" + id + "/download")); r.status != http.StatusNotFound {
			t.Fatalf("another workspace's download: %d", r.status)
		}
		// Expired and swept: gone.
		h.clock.Advance(8 * 24 * time.Hour)
		if n, err := models.SweepExpiredExports(h.db, h.clock.Now()); err != nil || n != 2 {
			t.Fatalf("swept %d: %v", n, err)
		}
		marketer = h.signedIn(w.people[models.RoleMarketer]).on(small)
		if r := marketer.get(links[1][1]); r.status != http.StatusGone {
			t.Fatalf("an expired download: %d", r.status)
		}
		if h.count("export_chunks", w.tenant.ID) != 0 {
			t.Fatal("the sweeper left chunks")
		}
	})
}

// A running export can be cancelled; its file goes.
func TestCancelExport(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	cfg := h.cfg
	cfg.Export.StreamMax = 5
	_, small := h.instance(cfg)
	w := h.workspace("Cancel Co")
	seedCustomers(t, h, w, 20)
	admin := h.signedIn(w.people[models.RoleAdmin]).on(small).fresh()
	admin.post(w.path("customers/export"), exportForm("profiles", nil))
	page := admin.get(w.path("exports"))
	cancel := regexp.MustCompile(`action="([^"]*/cancel)"`).FindStringSubmatch(page.body)
	if cancel == nil {
		t.Fatalf("no cancel button:\n%.2000s", page.body)
	}
	if r := admin.post(cancel[1], nil); r.status != http.StatusSeeOther || !strings.HasSuffix(r.location(), "?done=cancelled") {
		t.Fatalf("cancel: %d %q", r.status, r.location())
	}
	if r := admin.post(cancel[1], nil); !strings.HasSuffix(r.location(), "?done=not_live") {
		t.Fatalf("cancel again: %q", r.location())
	}
	page = admin.get(w.path("exports"))
	if !strings.Contains(page.body, `data-state="cancelled"`) || !h.audited(w.tenant.ID, models.AuditExportCancelled, "") {
		t.Fatalf("after cancelling:\n%.2000s", page.body)
	}
}

// Viewers see no export control, and every export route refuses them.
func TestViewersCannotExport(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	w := h.workspace("Viewer Co")
	seedCustomers(t, h, w, 10)
	viewer := h.signedIn(w.people[models.RoleViewer]).fresh()
	list := viewer.get(w.path("customers"))
	if list.status != http.StatusOK || strings.Contains(list.body, "customers-export") || strings.Contains(list.body, "customers/export") {
		t.Fatalf("the viewer's list offers an export (%d)", list.status)
	}
	for _, r := range []*response{
		viewer.get(w.path("customers/export")),
		viewer.post(w.path("customers/export"), exportForm("profiles", nil)),
		viewer.get(w.path("exports")),
	} {
		if r.status != http.StatusForbidden || strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("a viewer got %d %s", r.status, r.header.Get("Content-Type"))
		}
	}
	if h.audited(w.tenant.ID, models.AuditExportStreamed, "") || h.count("exports", w.tenant.ID) != 0 {
		t.Fatal("a refused export was recorded")
	}
}

// Cells a spreadsheet would run arrive neutralised, through the whole route.
func TestExportNeutralisesFormulas(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	w := h.workspace("Formula Co")
	c := seedCustomers(t, h, w, 5)
	evil := "=HYPERLINK(\"http://x\",\"点我\")\n  @SUM(1)"
	if err := h.db.Exec("UPDATE customers SET nickname = ? WHERE tenant_id = ? AND id = ?", evil, w.tenant.ID, c.id).Error; err != nil {
		t.Fatal(err)
	}
	admin := h.signedIn(w.people[models.RoleAdmin]).fresh()
	r := admin.post(w.path("customers/export"), exportForm("profiles", url.Values{"q": {c.unionID}}, "bom", "1"))
	recs := csvRecords(t, r.body)
	if len(recs) != 2 || recs[1][2] != "'"+strings.ReplaceAll(evil, "\n", "\n'") {
		t.Fatalf("records %q", recs)
	}
}
