package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"oneid/app/ingest"
	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// A full sync stores exactly the simulator's followers, with their unionids;
// a second pass with nothing changed changes nothing; followers who left
// between passes are marked unsubscribed.
func TestSyncMatchesTheFollowerList(t *testing.T) {
	t.Parallel()
	w := newSyncWorld(t, dbtest.MySQL(t), wechattest.Start(t))
	// Three pages of user/get (10,000 a page), the last one partial.
	a := w.app("linked", 23_456, true, 0)
	s := w.syncer(ingest.SyncConfig{Fetchers: 6, Writers: 2})

	first := w.syncNow(a, s)
	if first.State != models.JobSucceeded || first.Processed != 23_456 || first.Total != 23_456 {
		t.Fatalf("first sync: %s processed %d of %d: %s", first.State, first.Processed, first.Total, first.Error)
	}
	want := w.followers(a, true)
	w.checkMatches(a, want)
	if n := w.count(&models.Customer{}, ""); n != int64(len(want)) {
		t.Errorf("%d customers for %d followers with distinct unionids", n, len(want))
	}
	app, _ := models.FindApp(w.db, w.tenant, a.ID)
	if app.FollowerCount != 23_456 || app.LastSyncAt == nil {
		t.Errorf("app after the sync: follower_count %d, last_sync_at %v", app.FollowerCount, app.LastSyncAt)
	}
	res := ingest.ParseSyncResult(first.Result)
	if res != (ingest.SyncResult{Listed: 23_456, Subscribed: 23_456, Complete: true}) {
		t.Errorf("result %+v", res)
	}

	t.Run("ResyncChangesNothing", func(t *testing.T) {
		before := map[string]string{}
		for _, table := range []string{"identities", "customers", "customer_events"} {
			before[table] = w.table(table, "last_sync_pass")
		}
		again := w.syncNow(a, s)
		if again.State != models.JobSucceeded || again.Processed != 23_456 {
			t.Fatalf("re-sync: %+v", again)
		}
		for table, was := range before {
			if now := w.table(table, "last_sync_pass"); now != was {
				t.Errorf("re-sync changed %s", table)
			}
		}
		for _, r := range w.identities(a) {
			if r.LastSyncPass != again.ID {
				t.Fatalf("identity %s is not marked with the pass %d: %d", r.OpenID, again.ID, r.LastSyncPass)
			}
		}
	})

	t.Run("FollowersWhoLeftAreMarkedUnsubscribed", func(t *testing.T) {
		gone := map[string]bool{}
		for _, k := range []int{0, 9_999, 10_000, 23_455} {
			if _, err := w.sim.Unfollow(a.AppID, want[k].person); err != nil {
				t.Fatal(err)
			}
			gone[want[k].openID] = true
		}
		j := w.syncNow(a, s)
		if j.State != models.JobSucceeded || j.Processed != 23_452 {
			t.Fatalf("third sync: %+v", j)
		}
		if r := ingest.ParseSyncResult(j.Result); r.Unsubscribed != 4 || r.Subscribed != 23_452 {
			t.Fatalf("result %+v, want 4 marked unsubscribed", r)
		}
		got := w.identities(a)
		if len(got) != 23_456 {
			t.Fatalf("%d identities: unsubscribing must keep them", len(got))
		}
		for id, r := range got {
			if r.Subscribed == gone[id] {
				t.Errorf("%s subscribed=%v, gone=%v", id, r.Subscribed, gone[id])
			}
		}
		if n := w.count(&models.CustomerEvent{}, "kind = ?", models.EventUnfollowed); n != 4 {
			t.Errorf("%d unfollowed events, want 4", n)
		}
		app, _ := models.FindApp(w.db, w.tenant, a.ID)
		if app.FollowerCount != 23_452 {
			t.Errorf("follower_count %d", app.FollowerCount)
		}
	})

	if got, want := fmt.Sprint(w.auditActions()), "[sync_started sync_finished sync_started sync_finished sync_started sync_finished]"; got != want {
		t.Errorf("audit %s, want %s", got, want)
	}
}

// An app in no open-platform account: every follower an unlinked customer;
// followers who left between user/get and batchget (subscribe=0) are stored
// unsubscribed and, like every non-follower, without a unionid.
func TestSyncUnlinkedAppAndLeaversInTheList(t *testing.T) {
	t.Parallel()
	w := newSyncWorld(t, dbtest.MySQL(t), wechattest.Start(t))
	a := w.app("alone", 3_000, false, 50)
	j := w.syncNow(a, w.syncer(ingest.SyncConfig{}))
	if j.State != models.JobSucceeded {
		t.Fatalf("sync: %+v", j)
	}
	got := w.identities(a)
	if len(got) != 3_000 {
		t.Fatalf("%d identities for 3,000 listed", len(got))
	}
	unsub := 0
	for _, r := range got {
		if r.UnionID != nil {
			t.Fatalf("%s has a unionid in an app of no open account", r.OpenID)
		}
		if !r.Subscribed {
			unsub++
		}
	}
	res := ingest.ParseSyncResult(j.Result)
	if unsub == 0 || unsub > 300 || res.Subscribed != int64(3_000-unsub) {
		t.Fatalf("%d answered subscribe=0; result %+v", unsub, res)
	}
	if n := w.count(&models.Customer{}, "unlinked_reason = ?", models.UnlinkedNoOpenAccount); n != 3_000 {
		t.Errorf("%d unlinked customers (no open account), want 3,000", n)
	}
}

// A running sync stops when cancelled; what it committed stays, the pass is
// not treated as full, and the next start is a new sync.
func TestSyncCancel(t *testing.T) {
	t.Parallel()
	w := newSyncWorld(t, dbtest.MySQL(t), wechattest.Start(t))
	a := w.app("slow", 25_000, true, 0)
	w.sim.SetLatency("cgi-bin/user/info/batchget", 20*time.Millisecond)
	s := w.syncer(ingest.SyncConfig{Fetchers: 2, Writers: 1})
	r := w.runner("canceller", s)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	j := w.start(a)
	w.waitJob(j.ID, "the first page", func(j *models.Job) bool { return j.Processed > 0 })
	if err := ingest.CancelSync(w.db, w.tenant, a.ID, w.admin, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	got := w.waitJob(j.ID, "the cancellation", func(j *models.Job) bool { return !j.Live() })
	stop()
	<-done
	if got.State != models.JobCancelled || got.Processed >= 25_000 || got.CancelledBy != w.admin.Email {
		t.Fatalf("cancelled sync: %+v", got)
	}
	if n := int64(len(w.identities(a))); n != got.Processed {
		t.Errorf("%d identities stored, %d committed as processed", n, got.Processed)
	}
	app, _ := models.FindApp(w.db, w.tenant, a.ID)
	if app.LastSyncAt != nil {
		t.Errorf("a cancelled sync recorded a sync time")
	}
	if err := ingest.CancelSync(w.db, w.tenant, a.ID, w.admin, time.Now().UTC()); !errors.Is(err, ingest.ErrNoLiveSync) {
		t.Errorf("cancel with nothing live: %v", err)
	}
	if got, want := fmt.Sprint(w.auditActions()), "[sync_started sync_cancelled]"; got != want {
		t.Errorf("audit %s, want %s", got, want)
	}
	if next := w.start(a); next.ID == j.ID {
		t.Errorf("a cancelled sync was resumed instead of started anew")
	}
}

// One live sync per app, however many instances run runners and however
// many admins press the button at once.
func TestSyncOneAtATimeAcrossRunners(t *testing.T) {
	t.Parallel()
	w := newSyncWorld(t, dbtest.MySQL(t), wechattest.Start(t))
	a := w.app("contended", 12_000, true, 0)
	w.sim.SetLatency("cgi-bin/user/info/batchget", 5*time.Millisecond)

	var wg sync.WaitGroup
	ids := make(chan int64, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, err := ingest.StartSync(w.db, w.tenant, a.ID, w.admin, time.Now().UTC())
			if err != nil && !errors.Is(err, models.ErrJobActive) {
				t.Errorf("start: %v", err)
			}
			if j != nil {
				ids <- j.ID
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[int64]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Fatalf("8 starts made %d live jobs", len(seen))
	}
	if n := w.count(&models.Job{}, ""); n != 1 {
		t.Fatalf("%d jobs in the table", n)
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	runners := make(chan struct{}, 2)
	for _, owner := range []string{"instance-a", "instance-b"} {
		r := w.runner(owner, w.syncer(ingest.SyncConfig{Fetchers: 4}))
		go func() { r.Run(ctx); runners <- struct{}{} }()
	}
	var id int64
	for k := range seen {
		id = k
	}
	j := w.waitJob(id, "the sync", func(j *models.Job) bool { return !j.Live() })
	stop()
	<-runners
	<-runners
	if j.State != models.JobSucceeded || j.Attempts != 1 || j.Processed != 12_000 {
		t.Fatalf("job: %+v", j)
	}
	// Two pages (the second partial, so the last): listed once each.
	if n := w.sim.Calls("cgi-bin/user/get"); n != 2 {
		t.Errorf("user/get was called %d times for 2 pages: two runners listed", n)
	}
	if n := w.sim.Calls("cgi-bin/user/info/batchget"); n != 120 {
		t.Errorf("batchget was called %d times for 120 batches", n)
	}
	w.checkMatches(a, w.followers(a, true))
}

// WeChat's quota stops the sync at once with a clear error, without a storm
// of retries, keeping the pages it fetched in full; once the quota is back,
// starting again resumes the same pass where it stopped.
func TestSyncQuotaStopsCleanlyAndResumes(t *testing.T) {
	t.Parallel()
	// 150 batchget calls a day: the first page (100 calls) and half the second.
	w := newSyncWorld(t, dbtest.MySQL(t), wechattest.Start(t, wechattest.WithDailyLimit("cgi-bin/user/info/batchget", 150)))
	a := w.app("quota", 21_000, true, 0)
	s := w.syncer(ingest.SyncConfig{Fetchers: 4, Writers: 1})
	j := w.syncNow(a, s)
	if j.State != models.JobFailed || j.ErrorKind != models.JobErrorQuota || j.ErrorCode != wechat.CodeDailyQuota || j.Attempts != 1 {
		t.Fatalf("failed job: %s kind %q code %d attempts %d: %s", j.State, j.ErrorKind, j.ErrorCode, j.Attempts, j.Error)
	}
	if j.Processed != 10_000 {
		t.Errorf("%d processed: the first page was fetched in full and should be kept", j.Processed)
	}
	if n := w.sim.Calls("cgi-bin/user/info/batchget"); n > 150+4 {
		t.Errorf("%d batchget calls for a quota of 150 (4 fetchers)", n)
	}
	errs, _ := models.RecentWechatErrors(w.db, a.AppID, time.Now())
	if len(errs) == 0 || errs[0].Code != wechat.CodeDailyQuota {
		t.Errorf("the app's health shows no quota error: %+v", errs)
	}
	app, _ := models.FindApp(w.db, w.tenant, a.ID)
	if app.LastSyncAt != nil {
		t.Errorf("a failed sync recorded a sync time")
	}

	w.sim.ClearQuota(a.AppID)
	pagesBefore := w.sim.Calls("cgi-bin/user/get")
	if resumed := w.syncNow(a, s); resumed.ID != j.ID || resumed.State != models.JobSucceeded || resumed.Processed != 21_000 {
		t.Fatalf("resumed: %+v", resumed)
	}
	if n := w.sim.Calls("cgi-bin/user/get") - pagesBefore; n != 2 {
		t.Errorf("the resumed sync listed %d pages, want the two it had not done", n)
	}
	w.checkMatches(a, w.followers(a, true))
	if got, want := fmt.Sprint(w.auditActions()), "[sync_started sync_failed sync_started sync_finished]"; got != want {
		t.Errorf("audit %s, want %s", got, want)
	}
}

// A configuration error (OneID's IP not whitelisted) fails at the token.
func TestSyncConfigErrorFailsAtOnce(t *testing.T) {
	t.Parallel()
	w := newSyncWorld(t, dbtest.MySQL(t), wechattest.Start(t))
	a := w.app("whitelist", 100, true, 0)
	w.sim.FailNext("cgi-bin/stable_token", wechat.CodeIPNotWhitelisted, 100)
	j := w.syncNow(a, w.syncer(ingest.SyncConfig{}))
	if j.State != models.JobFailed || j.ErrorKind != models.JobErrorConfig || j.ErrorCode != wechat.CodeIPNotWhitelisted || j.Attempts != 1 {
		t.Fatalf("job: %+v", j)
	}
	if n := w.sim.Calls("cgi-bin/stable_token"); n > 2 {
		t.Errorf("%d token calls", n)
	}
}

// Only bound official accounts are synced; another tenant's app is not found.
func TestSyncRefusals(t *testing.T) {
	t.Parallel()
	db := dbtest.MySQL(t)
	sim := wechattest.Start(t)
	w, other := newSyncWorld(t, db, sim), newSyncWorld(t, db, sim)
	a := w.app("mine", 10, true, 0)
	if _, err := ingest.StartSync(db, other.tenant, a.ID, other.admin, time.Now()); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("another tenant starts my sync: %v", err)
	}
	mp := &models.App{AppID: "wx00000000000000aa", Kind: models.KindMiniProgram, Name: "mp", BindingMode: models.ModeAuthorized}
	if err := models.BindApp(db, w.tenant, mp); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.StartSync(db, w.tenant, mp.ID, w.admin, time.Now()); !errors.Is(err, ingest.ErrNotSyncable) {
		t.Errorf("sync of a mini-program: %v", err)
	}
	if err := models.UnbindApp(db, w.tenant, a.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.StartSync(db, w.tenant, a.ID, w.admin, time.Now()); !errors.Is(err, ingest.ErrNotSyncable) {
		t.Errorf("sync of an unbound app: %v", err)
	}
	if n := w.count(&models.Job{}, ""); n != 0 {
		t.Errorf("%d jobs after refusals", n)
	}
}

// A due schedule enqueues one sync however many instances poll at once, and
// moves on by its interval; a schedule that is off enqueues nothing.
func TestSyncSchedules(t *testing.T) {
	t.Parallel()
	w := newSyncWorld(t, dbtest.MySQL(t), wechattest.Start(t))
	a, b := w.app("scheduled", 10, true, 0), w.app("manual", 10, true, 0)
	now := time.Now().UTC()
	if err := ingest.SetSyncSchedule(w.db, w.tenant, a.ID, true, 24, w.admin, now); err != nil {
		t.Fatal(err)
	}
	if err := ingest.SetSyncSchedule(w.db, w.tenant, b.ID, false, 24, w.admin, now); err != nil {
		t.Fatal(err)
	}
	if err := ingest.SetSyncSchedule(w.db, w.tenant, a.ID, true, 5, w.admin, now); !errors.Is(err, ingest.ErrBadInterval) {
		t.Errorf("an interval not offered: %v", err)
	}
	// Nothing is due yet.
	instances := []*ingest.Syncer{w.syncer(ingest.SyncConfig{}), w.syncer(ingest.SyncConfig{})}
	if n, err := instances[0].EnqueueDueSyncs(context.Background()); err != nil || n != 0 {
		t.Fatalf("before the time: %d %v", n, err)
	}
	// A day later both instances poll at once.
	due := now.Add(-time.Minute)
	if err := w.db.Model(&models.SyncSchedule{}).Scopes(models.ForTenant(w.tenant)).Where("app_id IN ?", []int64{a.ID, b.ID}).
		Update("next_run_at", due).Error; err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	counts := make([]int, len(instances))
	for i, s := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.EnqueueDueSyncs(context.Background())
			if err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
			counts[i] = n
		}()
	}
	wg.Wait()
	if counts[0]+counts[1] != 1 {
		t.Fatalf("the instances enqueued %v syncs, want 1 in all", counts)
	}
	if _, err := models.LiveJob(w.db, w.tenant, ingest.SyncKind, ingest.SyncSubject(a.ID)); err != nil {
		t.Fatalf("no live sync of the scheduled app: %v", err)
	}
	if _, err := models.LiveJob(w.db, w.tenant, ingest.SyncKind, ingest.SyncSubject(b.ID)); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("a sync of the app whose schedule is off: %v", err)
	}
	sc, _ := models.FindSyncSchedule(w.db, w.tenant, a.ID)
	if sc.NextRunAt == nil || sc.NextRunAt.Sub(now) < 23*time.Hour {
		t.Fatalf("next run %v, want a day on", sc.NextRunAt)
	}
	if got := fmt.Sprint(w.auditActions()); got != "[sync_schedule_changed sync_schedule_changed sync_started]" {
		t.Errorf("audit %s", got)
	}
}

// The embedded database (SQLite, `make run`) syncs too: its writers queue for
// the file, one page at a time.
func TestSyncOnSQLite(t *testing.T) {
	t.Parallel()
	w := newSyncWorld(t, dbtest.SQLite(t), wechattest.Start(t))
	a := w.app("embedded", 12_000, true, 0)
	s := w.syncer(ingest.SyncConfig{})
	if j := w.syncNow(a, s); j.State != models.JobSucceeded || j.Processed != 12_000 {
		t.Fatalf("sync: %+v", j)
	}
	w.checkMatches(a, w.followers(a, true))
	if j := w.syncNow(a, s); j.State != models.JobSucceeded {
		t.Fatalf("re-sync: %+v", j)
	}
}
