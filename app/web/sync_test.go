package web_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"oneid/app/ingest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// seedIsolationSync gives the workspace's service account a live sync, so
// that a cancellation aimed at it from another workspace would show.
func seedIsolationSync(t *testing.T, h *harness, w *workspace, it *isoTenant) {
	t.Helper()
	appID, _ := strconv.ParseInt(it.ids["app"], 10, 64)
	if _, err := ingest.StartSync(h.db, w.tenant.ID, appID, ingest.SyncActor{Email: "seed"}, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
}

// The sync buttons and the progress cell, over HTTP: an admin starts,
// follows and cancels a sync; a viewer watches without buttons.
func TestSyncScreens(t *testing.T) {
	h := newHarness(t, dbtest.MySQL(t))
	w := h.workspace("Sync Co")
	it := &isoTenant{slug: w.tenant.Slug, ids: map[string]string{}}
	seedIsolationApps(t, h, w, it)
	appID, _ := strconv.ParseInt(it.ids["app"], 10, 64)
	admin, viewer := h.signedIn(w.people[models.RoleAdmin]), h.signedIn(w.people[models.RoleViewer])
	fragment := w.path("apps/" + it.ids["app"] + "/sync?back=apps")
	admin.header.Set("Accept-Language", "en")
	viewer.header.Set("Accept-Language", "en")
	admin.get(w.path("apps")) // for the CSRF token
	viewer.get(w.path("apps"))

	r := admin.post(w.path("apps/"+it.ids["app"]+"/sync"), url.Values{"back": {"apps"}})
	if r.status != http.StatusSeeOther || r.location() != w.path("apps?done=sync_started") {
		t.Fatalf("start: %d → %q", r.status, r.location())
	}
	job, err := models.LiveJob(h.db, w.tenant.ID, ingest.SyncKind, ingest.SyncSubject(appID))
	if err != nil || job.State != models.JobQueued || job.Actor != w.people[models.RoleAdmin].Email {
		t.Fatalf("live job: %v %+v", err, job)
	}
	page := admin.get(w.path("apps?done=sync_started")).body
	for _, want := range []string{`data-testid="notice"`, `data-state="queued"`, `hx-get="` + fragment + `"`, `hx-trigger="every 2s"`, `data-testid="sync-cancel"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the Apps page lacks %s", want)
		}
	}
	if r := admin.post(w.path("apps/"+it.ids["app"]+"/sync"), url.Values{"back": {"app"}}); r.location() != w.path("apps/"+it.ids["app"]+"?done=sync_active") {
		t.Errorf("second start: %d → %q", r.status, r.location())
	}

	// A runner has it: 4,000 of 10,000 at 500 a second.
	now := time.Now().UTC()
	if _, ok, err := models.ClaimJob(h.db, w.tenant.ID, job.ID, "runner", now, now.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if err := models.SaveJobCheckpoint(h.db, w.tenant.ID, job.ID, "runner", "{}", 4000, now); err != nil {
		t.Fatal(err)
	}
	if _, err := models.RenewJobLease(h.db, w.tenant.ID, job.ID, "runner", now, now.Add(time.Minute), models.JobBeat{Total: 10_000, Rate: 50}); err != nil {
		t.Fatal(err)
	}
	body := viewer.get(fragment).body
	for _, want := range []string{`data-state="running"`, "4,000 of 10,000 (40.0%)", "50 followers/s", "about 2 min left", `max="10000"`, `value="4000"`, `hx-trigger="every 2s"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the progress fragment lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "sync-cancel") || strings.Contains(viewer.get(w.path("apps")).body, "sync-start") {
		t.Errorf("a viewer is offered sync buttons")
	}
	if r := viewer.post(w.path("apps/"+it.ids["app"]+"/sync/cancel"), url.Values{}); r.status != http.StatusForbidden {
		t.Errorf("a viewer cancels: %d", r.status)
	}

	r = admin.post(w.path("apps/"+it.ids["app"]+"/sync/cancel"), url.Values{"back": {"apps"}})
	if r.location() != w.path("apps?done=sync_cancelled") {
		t.Fatalf("cancel: %d → %q", r.status, r.location())
	}
	body = admin.get(fragment).body
	if !strings.Contains(body, "Cancelling…") || strings.Contains(body, "sync-cancel") {
		t.Errorf("a cancelled sync still running:\n%s", body)
	}
	if err := models.EndJob(h.db, w.tenant.ID, job.ID, "runner", models.JobEnd{State: models.JobCancelled}, now); err != nil {
		t.Fatal(err)
	}
	body = admin.get(fragment).body
	for _, want := range []string{`data-state="cancelled"`, "Cancelled after 4,000 of 10,000 followers.", `data-testid="sync-start"`, `hx-swap-oob="true"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the ended fragment lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "hx-trigger") {
		t.Errorf("an ended sync is still polled")
	}

	// Stopped by WeChat's daily quota: said so, and offered to resume.
	j2, err := ingest.StartSync(h.db, w.tenant.ID, appID, ingest.SyncActor{Email: "a"}, now)
	if err != nil {
		t.Fatal(err)
	}
	models.ClaimJob(h.db, w.tenant.ID, j2.ID, "runner", now, now.Add(time.Minute))
	models.SaveJobCheckpoint(h.db, w.tenant.ID, j2.ID, "runner", `{"cursor":"x"}`, 10, now)
	models.EndJob(h.db, w.tenant.ID, j2.ID, "runner", models.JobEnd{State: models.JobFailed, ErrorKind: models.JobErrorQuota, ErrorCode: 45009}, now)
	page = admin.get(w.path("apps/" + it.ids["app"])).body
	for _, want := range []string{`data-testid="sync-error" data-kind="quota" data-code="45009"`, "daily API quota", "Resume sync"} {
		if !strings.Contains(page, want) {
			t.Errorf("the app page lacks %q", want)
		}
	}

	// The schedule.
	r = admin.post(w.path("apps/"+it.ids["app"]+"/sync/schedule"), url.Values{"enabled": {"on"}, "every": {"72"}})
	if r.location() != w.path("apps/"+it.ids["app"]+"?done=sync_schedule") {
		t.Fatalf("schedule: %d → %q", r.status, r.location())
	}
	page = admin.get(w.path("apps/" + it.ids["app"])).body
	if !strings.Contains(page, `data-enabled="true"`) || !strings.Contains(page, "every 3 days") {
		t.Errorf("the schedule is not shown on")
	}
	sched, _ := models.FindSyncSchedule(h.db, w.tenant.ID, appID)
	if !sched.Enabled || sched.EveryHours != 72 || sched.NextRunAt == nil {
		t.Errorf("schedule %+v", sched)
	}
	if strings.Contains(viewer.get(w.path("apps/"+it.ids["app"])).body, "sync-schedule") {
		t.Errorf("a viewer sees the schedule form")
	}

	// A mini-program has no followers.
	mini := it.ids["app:authorized"]
	if r := admin.post(w.path("apps/"+mini+"/sync"), url.Values{}); r.location() != w.path("apps?done=sync_not_syncable") {
		t.Errorf("sync of a mini-program: %d → %q", r.status, r.location())
	}
	for _, action := range []string{models.AuditSyncStarted, models.AuditSyncScheduled} {
		if !h.audited(w.tenant.ID, action, "") {
			t.Errorf("no %s audit line", action)
		}
	}
}
