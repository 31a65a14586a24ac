package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"oneid/app/ingest"
	"oneid/models"
)

// The SIGKILL of a follower sync is TestSyncSurvivesSIGKILL (app/ingest):
// five kills at random moments of a 25,000-follower sync in real processes,
// the followers then stored exactly as the simulator lists them.

// killDuring starts `oneid serve`, waits until the job has committed some
// work and is still live, and kills the process with SIGKILL; it returns the
// job as the kill left it.
func killDuring(t *testing.T, w *world, ws *workspace, jobID, total int64, victim *proc) *models.Job {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var j models.Job
		if err := w.db.Scopes(models.ForTenant(ws.id)).Select("state", "processed").Where("id = ?", jobID).Take(&j).Error; err != nil {
			t.Fatal(err)
		}
		if !j.Live() {
			t.Fatalf("the job ended (%s) before it could be killed: make it larger", j.State)
		}
		if j.Processed > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the job did not start in 2 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	victim.kill()
	j := w.job(ws.id, jobID)
	if !j.Live() || j.Processed >= total {
		t.Fatalf("the kill came too late: %s, %d of %d", j.State, j.Processed, total)
	}
	t.Logf("killed %s (pid %d) with job %d at %d of %d", victim.name, victim.pid(), jobID, j.Processed, total)
	return j
}

// A background export killed half-way (SIGKILL of its process) resumes in
// the next process once the dead one's lease has run out, and its file is
// exactly a direct export of the database: no chunk lost or written twice.
// While it is dead nothing is served as its file.
func TestExportJobSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	n := pick(20_000, 200_000)
	env := w.env("ONEID_EXPORT_STREAM_MAX=1000")
	a := startOneID(t, "first", env)
	br := newBrowser(t, a.base)
	ws := signUp(t, w, br, "Fault Export Kill")
	seedStart := time.Now()
	if _, err := models.Seed(context.Background(), w.db, ws.id, models.SeedOptions{Customers: n, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d customers in %v", n, time.Since(seedStart).Round(time.Millisecond))
	br.mustGet(ws.path("customers/export?shape=identities"))
	br.post(ws.path("customers/export"), url.Values{"shape": {models.ExportIdentities}, "bom": {"1"}}).redirected(t, "start the export")
	exports, err := models.ListExports(w.db, ws.id, 0, 1)
	if err != nil || len(exports.Exports) != 1 || exports.Exports[0].JobID == nil {
		t.Fatalf("%+v %v", exports, err)
	}
	e := exports.Exports[0]
	jobID := *e.JobID
	killed := killDuring(t, w, ws, jobID, e.ExpectedRows, a)

	// Dead: the half-written file is not served (from another instance).
	b := startOneID(t, "second", env)
	br = newBrowser(t, b.base)
	signIn(t, br, ws)
	if p := br.get(ws.path("exports/" + strconv.FormatInt(e.ID, 10) + "/download")); p.status == http.StatusOK {
		t.Fatalf("the download of an export killed half-way answered 200 (%d bytes)", len(p.body))
	}
	restarted := time.Now()
	j := w.waitJob(ws.id, jobID, "the resumed export", 3*time.Minute, func(j *models.Job) bool { return !j.Live() })
	if j.State != models.JobSucceeded || j.Attempts != 2 {
		t.Fatalf("after the kill: %s after %d claims: %s", j.State, j.Attempts, j.Error)
	}
	got, err := models.FindExport(w.db, ws.id, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	identities := w.count(&models.Identity{}, ws.id, "")
	if got.State != models.ExportReady || got.RowCount != identities {
		t.Fatalf("export %s with %d rows for %d identities", got.State, got.RowCount, identities)
	}
	if !b.log.has("jobs: start", map[string]any{"job": jobID, "processed": killed.Processed}) {
		t.Errorf("the second process did not resume from the checkpoint (%d rows)", killed.Processed)
	}
	p := br.get(ws.path("exports/" + strconv.FormatInt(e.ID, 10) + "/download"))
	if p.status != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("download: %d %s", p.status, p.header.Get("Content-Type"))
	}
	if rows := countCSV([]byte(p.body)) - 1; int64(rows) != identities {
		t.Fatalf("the file has %d rows for %d identities", rows, identities)
	}
	if direct := directExport(t, w, ws.id, e.ID); !bytes.Equal([]byte(p.body), direct) {
		t.Fatalf("the file (%d bytes) differs from a direct export (%d bytes)", len(p.body), len(direct))
	}
	t.Logf("resumed from %d of %d rows and finished %v after the restart (the dead lease lasts 30 s); file of %d rows, %d bytes, equal to a direct export",
		killed.Processed, e.ExpectedRows, time.Since(restarted).Round(time.Millisecond), identities, len(p.body))
}

// A CSV import run as a job, killed half-way (SIGKILL), resumes in the next
// process from its last chunk: every row is there exactly once.
func TestImportJobSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rows := pick(15_000, 120_000)
	env := w.env()
	a := startOneID(t, "first", env)
	br := newBrowser(t, a.base)
	ws := signUp(t, w, br, "Fault Import Kill")
	info, app := bindApp(t, w, br, ws, "导入服务号", 10)
	var csv bytes.Buffer
	csv.WriteString("appid,openid,unionid,subscribed\n")
	for i := range rows {
		// Every fourth person has no UnionID.
		union := fmt.Sprintf("ukill%023d", i)
		if i%4 == 3 {
			union = ""
		}
		fmt.Fprintf(&csv, "%s,okill%023d,%s,%d\n", info.AppID, i, union, i%2)
	}
	br.mustGet(ws.path("imports"))
	loc := br.upload(ws.path("imports"), "kill.csv", csv.Bytes()).redirected(t, "upload the import")
	jobID, err := strconv.ParseInt(loc[strings.LastIndex(loc, "/")+1:], 10, 64)
	if err != nil {
		t.Fatalf("redirected to %q", loc)
	}
	killed := killDuring(t, w, ws, jobID, int64(rows), a)

	b := startOneID(t, "second", env)
	restarted := time.Now()
	j := w.waitJob(ws.id, jobID, "the resumed import", 3*time.Minute, func(j *models.Job) bool { return !j.Live() })
	if j.State != models.JobSucceeded || j.Processed != int64(rows) || j.Attempts != 2 {
		t.Fatalf("after the kill: %s, %d of %d rows after %d claims: %s", j.State, j.Processed, rows, j.Attempts, j.Error)
	}
	if !b.log.has("jobs: start", map[string]any{"job": jobID, "processed": killed.Processed}) {
		t.Errorf("the second process did not resume from the checkpoint (%d rows)", killed.Processed)
	}
	res := ingest.ParseImportResult(j.Result)
	ids := w.count(&models.Identity{}, ws.id, "app_id = ? AND openid LIKE 'okill%'", app.ID)
	distinct := int64(0)
	w.db.Model(&models.Identity{}).Scopes(models.ForTenant(ws.id)).Where("app_id = ? AND openid LIKE 'okill%'", app.ID).
		Distinct("openid").Count(&distinct)
	linked := w.count(&models.Identity{}, ws.id, "app_id = ? AND openid LIKE 'okill%' AND unionid LIKE 'ukill%'", app.ID)
	subscribed := w.count(&models.Identity{}, ws.id, "app_id = ? AND openid LIKE 'okill%' AND subscribed", app.ID)
	customers := w.count(&models.Customer{}, ws.id, "")
	wantLinked := int64(rows - rows/4)
	if ids != int64(rows) || distinct != ids || linked != wantLinked || subscribed != int64(rows/2) {
		t.Fatalf("%d identities (%d distinct) for %d rows; %d linked (want %d), %d subscribed (want %d)",
			ids, distinct, rows, linked, wantLinked, subscribed, rows/2)
	}
	// One customer per row (each person is in one app only), the app's 10
	// followers from the binding aside.
	if customers != int64(rows) {
		t.Fatalf("%d customers for %d rows", customers, rows)
	}
	t.Logf("import of %d rows killed at %d, finished %v after the restart (the dead lease lasts 30 s): %d identities, %d customers, result %+v",
		rows, killed.Processed, time.Since(restarted).Round(time.Millisecond), ids, customers, res)
}
