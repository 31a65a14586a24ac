package faults_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"oneid/app/export"
	"oneid/app/ingest"
	"oneid/app/wechat/wechattest"
	"oneid/models"
	"oneid/views"
)

// getOn fetches path from one named instance; the next request goes to the
// other one, so the alternation goes on.
func (b *browser) getOn(base, path string) *page {
	b.t.Helper()
	if b.lastBase == base {
		b.get(path) // the other one first: never twice in a row
	}
	for i, u := range b.bases {
		if u == base {
			b.next = i
		}
	}
	return b.get(path)
}

// Two `oneid serve` processes on one MySQL database, one browser whose
// consecutive requests alternate between them: sign-up, sign-out and
// sign-in, an app bound through the self-managed form and one through
// OneID's third-party platform (started on one instance, back from WeChat's
// page on the other, the verify ticket pushed to one), a push to each
// instance, a follower sync, the customer list and a profile, and a
// background export whose file is downloaded from the instance that did not
// write it. Sessions and CSRF tokens hold across instances, WeChat's token
// is fetched once for both, the sync job runs once, in one instance.
func TestTwoInstancesShareOneDatabase(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	followers := pick(3000, 30000)
	// OneID's third-party platform, for the authorized binding.
	comp, err := w.sim.AddComponent(wechattest.ComponentSpec{Token: "componenttoken", AESKey: aesKey})
	if err != nil {
		t.Fatal(err)
	}
	// Exports over 100 rows run as jobs.
	env := w.env("ONEID_EXPORT_STREAM_MAX=100", "ONEID_WECHAT_COMPONENT_APPID="+comp.AppID,
		"ONEID_WECHAT_COMPONENT_SECRET="+comp.Secret, "ONEID_WECHAT_COMPONENT_TOKEN="+comp.Token,
		"ONEID_WECHAT_COMPONENT_AES_KEY="+comp.AESKey)
	a := startOneID(t, "A", env)
	b := startOneID(t, "B", env)
	procs := map[string]*proc{a.base: a, b.base: b}
	br := newBrowser(t, a.base, b.base)
	start := time.Now()

	// Sign up on one instance, sign out on the other, sign in again.
	ws := signUp(t, w, br, "Fault Twins")
	br.mustGet(ws.path("dashboard"))
	br.post("/signout", nil).redirected(t, "sign out")
	if p := br.get(ws.path("dashboard")); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/signin") {
		t.Fatalf("signed out, the dashboard answered %d %q", p.status, p.location)
	}
	signIn(t, br, ws)

	// Bind: the secret is proven with one stable_token call.
	info, app := bindApp(t, w, br, ws, "双实例服务号", followers)
	if n := w.sim.Calls("cgi-bin/stable_token"); n != 1 {
		t.Fatalf("binding made %d stable_token calls, want 1", n)
	}
	br.mustGet(ws.path("apps/" + strconv.FormatInt(app.ID, 10)))

	// Authorized binding: WeChat's verify ticket reaches one instance, the
	// admin starts on one and comes back from WeChat's page to the other.
	w.sim.SetComponentCallback(comp.AppID, a.base+"/wechat/component")
	if _, d, err := w.sim.PushVerifyTicket(comp.AppID); err != nil || !d.OK {
		t.Fatalf("verify ticket to A: %+v %v", d, err)
	}
	authorized := w.sim.MustAddApp(wechattest.AppSpec{Name: "双实例授权号", Principal: principal,
		OpenAppID: w.sim.AddOpenAccount(wechattest.OpenAccountSpec{Name: "authorized open", Principal: principal, Verified: true})})
	br.mustGet(ws.path("apps/new"))
	consent := br.post(ws.path("apps/authorize"), nil).redirected(t, "start the authorization")
	if !strings.HasPrefix(consent, w.sim.URL()) {
		t.Fatalf("the authorization went to %q, not to WeChat's page", consent)
	}
	back := simConsent(t, consent+"&sim_appid="+authorized.AppID)
	u, err := url.Parse(back)
	if err != nil {
		t.Fatal(err)
	}
	br.get(u.RequestURI()).redirected(t, "come back from WeChat's page") // on the next instance, whichever started
	bound, err := models.FindAppByAppID(w.db, ws.id, authorized.AppID)
	if err != nil || bound.BindingMode != models.ModeAuthorized || !bound.IsBound() {
		t.Fatalf("the authorized app: %+v %v", bound, err)
	}
	if n := w.sim.Calls("cgi-bin/component/api_component_token"); n != 1 {
		t.Fatalf("%d component token fetches for two instances, want 1", n)
	}

	// A push to each instance: each stores its event and its worker asks
	// user/info for the UnionID, with the one token both share.
	var pushed []string
	for _, p := range []*proc{a, b} {
		if err := w.sim.SetCallback(info.AppID, wechattest.Callback{URL: p.base + "/wechat/callback/" + app.CallbackKey,
			Token: "faulttoken", AESKey: aesKey}); err != nil {
			t.Fatal(err)
		}
		person := w.sim.AddPerson()
		d, err := w.sim.Follow(info.AppID, person, "")
		if err != nil || !d.OK {
			t.Fatalf("push to %s: %+v %v", p.name, d, err)
		}
		pushed = append(pushed, w.sim.OpenID(info.AppID, person))
	}
	waitFor(t, "both pushes resolved with their UnionID", 20*time.Second, func() bool {
		return w.count(&models.Identity{}, ws.id, "openid IN ? AND unionid IS NOT NULL AND unionid <> ''", pushed) == 2
	})

	// The sync: started on one instance, run by exactly one.
	br.mustGet(ws.path("apps"))
	br.post(ws.path("apps/"+strconv.FormatInt(app.ID, 10)+"/sync"), url.Values{"back": {"app"}}).redirected(t, "start the sync")
	var job models.Job
	if err := w.db.Scopes(models.ForTenant(ws.id)).Where("kind = ? AND subject = ?", ingest.SyncKind, ingest.SyncSubject(app.ID)).
		Order("id DESC").First(&job).Error; err != nil {
		t.Fatal(err)
	}
	syncStart := time.Now()
	for {
		// The progress fragment, from either instance, as the page polls it.
		br.mustGet(ws.path("apps/" + strconv.FormatInt(app.ID, 10) + "/sync"))
		if j := w.job(ws.id, job.ID); !j.Live() {
			break
		}
		if time.Since(syncStart) > 3*time.Minute {
			t.Fatal("the sync did not end in 3 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	j := w.job(ws.id, job.ID)
	res := ingest.ParseSyncResult(j.Result)
	if j.State != models.JobSucceeded || j.Attempts != 1 || !res.Complete || res.Listed < int64(followers) {
		t.Fatalf("sync: %s after %d claims, result %+v: %s", j.State, j.Attempts, res, j.Error)
	}
	ran := runners(t, procs, job.ID)
	if len(ran) != 1 {
		t.Fatalf("the sync started in %d instances, want 1", len(ran))
	}
	ids := w.count(&models.Identity{}, ws.id, "app_id = ?", app.ID)
	if ids != res.Listed {
		t.Fatalf("%d identities of the app for %d listed followers", ids, res.Listed)
	}
	t.Logf("sync of %d followers in %v, run by %s", res.Listed, time.Since(syncStart).Round(time.Millisecond), procs[ran[0]].name)
	if n := w.sim.Calls("cgi-bin/stable_token"); n != 2 {
		t.Fatalf("%d stable_token calls in all, want 2: the binding's proof and one token for both instances", n)
	}
	var stored int64
	w.db.Table("wechat_tokens").Where("app_id = ?", info.AppID).Count(&stored)
	if stored != 1 {
		t.Fatalf("%d stored tokens, want 1", stored)
	}

	// Browsing: the list, a profile, the dashboard.
	var c models.Customer
	if err := w.db.Scopes(models.ForTenant(ws.id)).Order("id").First(&c).Error; err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"customers", "customers?q=" + url.QueryEscape(pushed[0]), "customers/" + strconv.FormatInt(c.ID, 10),
		"dashboard", "customers/" + strconv.FormatInt(c.ID, 10)} {
		br.mustGet(ws.path(path))
	}

	// A background export: queued on one instance, written by a job in one
	// of them, downloaded from the other.
	br.mustGet(ws.path("customers/export"))
	br.post(ws.path("customers/export"), url.Values{"shape": {models.ExportProfiles}, "bom": {"1"}, "headers": {"labels"}}).
		redirected(t, "start the export")
	exports, err := models.ListExports(w.db, ws.id, 0, 10)
	if err != nil || len(exports.Exports) != 1 || exports.Exports[0].JobID == nil {
		t.Fatalf("exports: %+v %v", exports, err)
	}
	e := exports.Exports[0]
	w.waitJob(ws.id, *e.JobID, "the export", 2*time.Minute, func(j *models.Job) bool { return !j.Live() })
	ran = runners(t, procs, *e.JobID)
	if len(ran) != 1 {
		t.Fatalf("the export started in %d instances, want 1", len(ran))
	}
	writer := ran[0]
	other := a.base
	if writer == a.base {
		other = b.base
	}
	br.getOn(writer, ws.path("exports"))
	dl := br.getOn(other, ws.path("exports/"+strconv.FormatInt(e.ID, 10)+"/download"))
	if dl.status != http.StatusOK || !strings.HasPrefix(dl.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("download from %s: %d %s\n%s", procs[other].name, dl.status, dl.header.Get("Content-Type"), tail(dl.body, 1000))
	}
	customers := w.count(&models.Customer{}, ws.id, "")
	if rows := countCSV([]byte(dl.body)) - 1; int64(rows) != customers {
		t.Fatalf("the file has %d rows for %d customers", rows, customers)
	}
	if direct := directExport(t, w, ws.id, e.ID); !bytes.Equal([]byte(dl.body), direct) {
		t.Fatalf("the file (%d bytes) differs from a direct export (%d bytes)", len(dl.body), len(direct))
	}
	dl2 := br.getOn(writer, ws.path("exports/"+strconv.FormatInt(e.ID, 10)+"/download"))
	if dl2.status != http.StatusOK || dl2.body != dl.body {
		t.Fatalf("the writer's download: %d, %d bytes (other: %d)", dl2.status, len(dl2.body), len(dl.body))
	}
	t.Logf("export of %d rows written by %s, downloaded from %s and %s", customers, procs[writer].name, procs[other].name, procs[writer].name)

	br.mustGet(ws.path("apps"))

	// Signed out on one instance is signed out on both.
	br.post("/signout", nil).redirected(t, "sign out")
	for range 2 {
		if p := br.get(ws.path("customers")); p.status != http.StatusSeeOther {
			t.Fatalf("after signing out, %s answered %d", p.base, p.status)
		}
	}
	if br.requests < 30 {
		t.Fatalf("only %d requests alternated", br.requests)
	}
	t.Logf("%d requests alternating between two instances in %v", br.requests, time.Since(start).Round(time.Millisecond))
}

// simConsent opens WeChat's authorization page, which consents at once
// (sim_appid) and redirects back to OneID; it returns where to.
func simConsent(t *testing.T, page string) string {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode/100 == 3 && loc != "" {
		return loc
	}
	t.Fatalf("WeChat's page answered %d without a redirect", res.StatusCode)
	return ""
}

// runners are the instances whose log says they started job id.
func runners(t *testing.T, procs map[string]*proc, id int64) []string {
	t.Helper()
	var out []string
	for base, p := range procs {
		if p.log.has("jobs: start", map[string]any{"job": id}) {
			out = append(out, base)
		}
	}
	return out
}

// directExport is a kept export written again straight from the database.
func directExport(t *testing.T, w *world, tenantID, exportID int64) []byte {
	t.Helper()
	e, err := models.FindExport(w.db, tenantID, exportID)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := models.BrowseApps(w.db, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	ctx := views.WithLocale(context.Background(), views.Locale(e.Locale))
	enc := views.NewExportEncoder(ctx, &buf, e.Shape, apps, export.Format(e))
	req := models.ExportRequest{Shape: e.Shape}
	if e.Filter != "" {
		t.Fatalf("export %d has a filter %q; directExport writes whole tenants", e.ID, e.Filter)
	}
	if _, err := export.Write(ctx, w.db, tenantID, apps, req, enc, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
