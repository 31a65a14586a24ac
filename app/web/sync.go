package web

import (
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"oneid/app/ingest"
	"oneid/models"
	"oneid/tenants"
	"oneid/views"
)

// Follower syncs of an app: start, cancel, the schedule, and the progress
// fragment the Apps page polls. The rules and the audit are in app/ingest;
// the sync itself runs in a job runner of any instance.

// syncStatus is the sync cell of an app, for htmx to swap while it runs.
func (s *Server) syncStatus(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	app, err := models.FindApp(s.dbFor(c), sc.TenantID, id)
	if err != nil {
		return err
	}
	row := syncRow(app)
	if err := s.withSyncState(c, []*views.AppRow{&row}); err != nil {
		return err
	}
	v := row.Sync
	v.Ended = !v.Live()
	return s.render(c, fiber.StatusOK, views.SyncStatus(v, syncBack(c.Query("back"))))
}

// syncRow is the part of an app's row its sync state needs.
func syncRow(a *models.App) views.AppRow {
	row := views.AppRow{ID: a.ID, Kind: a.Kind, Status: a.Status, FollowerCount: a.FollowerCount}
	if a.LastSyncAt != nil {
		row.LastSyncAt = *a.LastSyncAt
	}
	return row
}

func (s *Server) startSync(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	done := "sync_started"
	_, err = ingest.StartSync(s.dbFor(c), sc.TenantID, id, s.actor(c), s.now())
	switch {
	case errors.Is(err, models.ErrJobActive):
		done = "sync_active"
	case errors.Is(err, ingest.ErrNotSyncable):
		done = "sync_not_syncable"
	case err != nil:
		return err
	}
	return redirect(c, s.syncReturn(c, id)+"?done="+done)
}

func (s *Server) cancelSync(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	done := "sync_cancelled"
	err = ingest.CancelSync(s.dbFor(c), sc.TenantID, id, s.actor(c), s.now())
	switch {
	case errors.Is(err, ingest.ErrNoLiveSync):
		done = "sync_not_live"
	case err != nil:
		return err
	}
	return redirect(c, s.syncReturn(c, id)+"?done="+done)
}

func (s *Server) scheduleSync(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	every, err := strconv.Atoi(c.FormValue("every"))
	if err != nil || !models.ValidSyncInterval(every) {
		every = models.DefaultSyncInterval
	}
	done := "sync_schedule"
	err = ingest.SetSyncSchedule(s.dbFor(c), sc.TenantID, id, c.FormValue("enabled") == "on", every, s.actor(c), s.now())
	switch {
	case errors.Is(err, ingest.ErrNotSyncable):
		done = "sync_not_syncable"
	case err != nil:
		return err
	}
	return redirect(c, tenantPath(sc.Slug, "apps/"+strconv.FormatInt(id, 10))+"?done="+done)
}

// syncBack is the page a sync button returns to: the app's page or the list.
func syncBack(back string) string {
	if back == "app" {
		return "app"
	}
	return "apps"
}

func (s *Server) syncReturn(c *fiber.Ctx, appID int64) string {
	slug := scope(c).Slug
	if syncBack(c.FormValue("back")) == "app" {
		return tenantPath(slug, "apps/"+strconv.FormatInt(appID, 10))
	}
	return tenantPath(slug, "apps")
}

// withSyncState fills the Sync of each row from its app's latest sync job, in
// one query.
func (s *Server) withSyncState(c *fiber.Ctx, rows []*views.AppRow) error {
	sc := scope(c)
	subjects := make([]string, 0, len(rows))
	for _, r := range rows {
		subjects = append(subjects, ingest.SyncSubject(r.ID))
	}
	latest, err := models.LatestJobs(s.dbFor(c), sc.TenantID, ingest.SyncKind, subjects)
	if err != nil {
		return err
	}
	canSync := s.authz.Grants(sc.Role, sc.TenantID, tenants.SyncWrite)
	for _, r := range rows {
		v := views.SyncView{AppID: r.ID, CanSync: canSync, LastSyncAt: r.LastSyncAt, FollowerCount: r.FollowerCount,
			Syncable: (r.Kind == models.KindService || r.Kind == models.KindSubscription) && r.Status != models.AppUnbound}
		if j, ok := latest[ingest.SyncSubject(r.ID)]; ok {
			v.State, v.Cancelling = j.State, j.CancelRequested && j.Live()
			v.Processed, v.Total, v.Rate = j.Processed, j.Total, j.Rate
			v.Remaining, v.HasRemaining = j.Remaining()
			v.ErrorKind, v.ErrorCode = j.ErrorKind, j.ErrorCode
			v.Resumable = j.State == models.JobFailed && j.Checkpoint != ""
		}
		r.Sync = v
	}
	return nil
}

// withSyncViews fills the sync state of every app on the Apps page.
func (s *Server) withSyncViews(c *fiber.Ctx, v *views.AppsView) error {
	var rows []*views.AppRow
	for g := range v.OpenAccounts {
		for i := range v.OpenAccounts[g].Apps {
			rows = append(rows, &v.OpenAccounts[g].Apps[i])
		}
	}
	for i := range v.Unlinked {
		rows = append(rows, &v.Unlinked[i])
	}
	if len(rows) == 0 {
		return nil
	}
	return s.withSyncState(c, rows)
}

// withSyncSchedule adds an official account's sync state and, for those who
// may change it, its schedule to the app page.
func (s *Server) withSyncSchedule(c *fiber.Ctx, v *views.AppView) error {
	if err := s.withSyncState(c, []*views.AppRow{&v.App}); err != nil {
		return err
	}
	if !v.App.Sync.Syncable || !v.App.Sync.CanSync {
		return nil
	}
	sc := scope(c)
	sched, err := models.FindSyncSchedule(s.dbFor(c), sc.TenantID, v.App.ID)
	if err != nil {
		return err
	}
	v.Schedule = &views.SyncSchedule{AppID: v.App.ID, Enabled: sched.Enabled, EveryHours: sched.EveryHours,
		Intervals: models.SyncIntervals}
	if sched.NextRunAt != nil {
		v.Schedule.NextRunAt = *sched.NextRunAt
	}
	return nil
}
