package web

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"oneid/app/export"
	"oneid/models"
	"oneid/tenants"
	"oneid/views"
)

// The Exports page: the workspace's exports with the progress of background
// ones, downloads of their files and cancellation.

// exportsPage lists the workspace's exports, newest first; htmx refreshes the
// list while one is in progress.
func (s *Server) exportsPage(c *fiber.Ctx) error {
	sc := scope(c)
	db := s.dbFor(c)
	before, _ := strconv.ParseInt(c.Query("before"), 10, 64)
	page, err := models.ListExports(db, sc.TenantID, before, exportsPageSize)
	if err != nil {
		return err
	}
	apps, err := models.BrowseApps(db, sc.TenantID)
	if err != nil {
		return err
	}
	var options []views.AppOption
	for _, a := range apps {
		options = append(options, views.AppOption{ID: a.ID, Name: a.Name, Kind: a.Kind})
	}
	base := tenantPath(sc.Slug, "exports")
	v := views.ExportsView{Self: c.OriginalURL(), Keep: s.export.Keep}
	canCancel := s.authz.Grants(sc.Role, sc.TenantID, tenants.ExportsWrite)
	now := s.now()
	for _, e := range page.Exports {
		row := exportRow(c.UserContext(), e, options, base, now, canCancel)
		v.Live = v.Live || (row.Delivery == models.DeliveryJob && row.Live())
		v.Rows = append(v.Rows, row)
	}
	if page.Before > 0 {
		v.Older = base + "?before=" + strconv.FormatInt(page.Before, 10)
	}
	if before > 0 {
		v.Newest = base
	}
	switch c.Query("done") {
	case "started":
		v.Notice, v.Kind = "exports.notice.started", "success"
	case "cancelled":
		v.Notice, v.Kind = "exports.notice.cancelled", "info"
	case "not_live":
		v.Notice, v.Kind = "exports.notice.not_live", "warning"
	}
	c.Vary("HX-Request")
	if isHTMX(c) {
		return s.render(c, fiber.StatusOK, views.ExportList(v))
	}
	return s.render(c, fiber.StatusOK, views.ExportsPage(v))
}

// staleStream: a streamed export still "streaming" this long after it began
// has stopped without a word (a download takes at most the server's write
// timeout, 5 minutes).
const staleStream = 10 * time.Minute

// exportRow is an export as the list shows it.
func exportRow(ctx context.Context, e models.ExportWithJob, apps []views.AppOption, base string, now time.Time, canCancel bool) views.ExportRow {
	r := views.ExportRow{ID: e.ID, At: e.CreatedAt, Actor: e.Actor, Shape: e.Shape, Delivery: e.Delivery, State: e.State,
		Rows: e.RowCount, Expected: e.ExpectedRows, Bytes: e.Bytes}
	if raw, err := url.ParseQuery(e.Filter); err == nil {
		f, _ := models.ParseCustomerFilter(raw)
		r.Chips = views.FilterChips(ctx, f, apps)
	}
	if e.State == models.ExportStreaming && now.Sub(e.CreatedAt) > staleStream {
		// Its instance stopped before it could record the end.
		r.State = models.ExportFailed
	}
	self := base + "/" + strconv.FormatInt(e.ID, 10)
	live := e.State == models.ExportQueued || e.State == models.ExportRunning
	if e.Job != nil && live {
		r.Done, r.Total = e.Job.Processed, max(e.Job.Total, e.ExpectedRows, 1)
		r.Percent = int(min(max(r.Done*100/r.Total, 0), 99))
		if d, ok := e.Job.Remaining(); ok {
			r.Remaining = d
		}
	}
	if e.Downloadable(now) {
		r.Download, r.ExpiresAt = self+"/download", *e.ExpiresAt
	}
	if canCancel && e.Delivery == models.DeliveryJob && live {
		r.Cancel = self + "/cancel"
	}
	return r
}

// downloadExport sends a kept file, inflating its chunks as it goes, with
// the file's size so the browser shows progress. Another tenant's export is
// a 404 like one that does not exist; an expired file is gone (410).
func (s *Server) downloadExport(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	db := s.dbFor(c)
	e, err := models.FindExport(db, sc.TenantID, id)
	if err != nil {
		return err
	}
	now := s.now()
	if !e.Downloadable(now) {
		if e.State == models.ExportExpired || e.State == models.ExportReady {
			return errExportGone
		}
		return models.ErrNotFound
	}
	if err := models.RecordExportDownload(db, sc.TenantID, e, s.auditActor(c), now); err != nil {
		return err
	}
	ctx := context.WithoutCancel(c.UserContext())
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(export.Download(ctx, s.db, sc.TenantID, e, pw))
	}()
	setAttachment(c, export.FileName(sc.Slug, e.Shape, e.CreatedAt))
	c.Context().SetBodyStream(pr, int(e.Bytes))
	return nil
}

// cancelExport stops a background export.
func (s *Server) cancelExport(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	done := "cancelled"
	err = models.CancelExport(s.dbFor(c), sc.TenantID, id, s.auditActor(c), s.now())
	switch {
	case errors.Is(err, models.ErrJobNotLive):
		done = "not_live"
	case err != nil:
		return err
	}
	return redirect(c, tenantPath(sc.Slug, "exports")+"?done="+done)
}
