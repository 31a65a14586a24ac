package web

import (
	"bufio"
	"context"
	"errors"
	"io"
	"mime"
	"net/url"
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"

	"oneid/app/export"
	"oneid/models"
	"oneid/tenants"
	"oneid/views"
)

// CSV exports of customers (issue 7): the confirmation reached from the
// customer list, the export itself (streamed when small, a background job
// when large), the Exports page, downloads of kept files and cancellation.
// What is read and how it is written are models.ExportCustomers and views'
// encoders, joined in app/export.

const exportsPageSize = 30

var errExportGone = &pageError{fiber.StatusGone, "exports.gone.title", "exports.gone.message"}

// exportConfirmPage shows what an export of the list's filter would hold and
// how many rows, before anything leaves.
func (s *Server) exportConfirmPage(c *fiber.Ctx) error {
	v, err := s.exportConfirm(c, queryValues(c))
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if v.Problem != "" {
		status = fiber.StatusUnprocessableEntity
	}
	return s.render(c, status, views.ExportConfirmPage(v))
}

// exportRequest is an export as the confirmation form (or its address) asks
// for it: the filter, checked against the tenant's apps, the shape and the
// file's options.
type exportRequest struct {
	filter   models.CustomerFilter
	problems models.FilterProblems
	shape    string
	format   views.ExportFormat
	apps     []models.BrowseApp
}

func (s *Server) parseExport(c *fiber.Ctx, raw url.Values) (exportRequest, error) {
	r := exportRequest{shape: raw.Get("shape")}
	r.filter, r.problems = models.ParseCustomerFilter(raw)
	r.filter = r.filter.FirstPage()
	if !models.ValidExportShape(r.shape) {
		r.shape = models.ExportProfiles
	}
	apps, err := models.BrowseApps(s.dbFor(c), scope(c).TenantID)
	if err != nil {
		return r, err
	}
	r.apps = apps
	if r.filter.AppID != 0 && !models.HasBrowseApp(apps, r.filter.AppID) {
		r.problems["app"], r.filter.AppID = models.ProblemNoApp, 0
	}
	return r, nil
}

func (s *Server) exportConfirm(c *fiber.Ctx, raw url.Values) (views.ExportConfirmView, error) {
	sc := scope(c)
	r, err := s.parseExport(c, raw)
	if err != nil {
		return views.ExportConfirmView{}, err
	}
	base := tenantPath(sc.Slug, "customers")
	var options []views.AppOption
	for _, a := range r.apps {
		options = append(options, views.AppOption{ID: a.ID, Name: a.Name, Kind: a.Kind})
	}
	v := views.ExportConfirmView{
		Shape:     r.shape,
		Chips:     views.FilterChips(c.UserContext(), r.filter, options),
		Action:    base + "/export",
		Back:      withQuery(base, r.filter.Values()),
		Exports:   tenantPath(sc.Slug, "exports"),
		StreamMax: s.export.StreamMax,
		Slots:     s.export.Jobs,
		BOM:       raw.Get("bom") != "0",
		Machine:   raw.Get("headers") == "names",
	}
	params := r.filter.Values()
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Hidden = append(v.Hidden, views.HiddenField{Name: k, Value: params.Get(k)})
	}
	for _, shape := range models.ExportShapes() {
		q := r.filter.Values()
		q.Set("shape", shape)
		v.Shapes = append(v.Shapes, views.ShapeChoice{Shape: shape, Href: withQuery(base+"/export", q), Current: shape == r.shape})
	}
	if len(r.problems) > 0 {
		v.Problem = "exports.problem.filter"
		return v, nil
	}
	n, err := models.CountExport(c.UserContext(), s.dbFor(c), sc.TenantID, r.apps, r.shape, r.filter, 0)
	if err != nil {
		return v, err
	}
	v.Customers, v.Rows, v.Stream = n.Customers, n.Rows, n.Rows <= s.export.StreamMax
	return v, nil
}

// exportCustomers is the confirmed export: audited first, then streamed
// straight to the browser when it is small, or handed to a background job.
func (s *Server) exportCustomers(c *fiber.Ctx) error {
	sc := scope(c)
	db := s.dbFor(c)
	raw := postValues(c)
	r, err := s.parseExport(c, raw)
	if err != nil {
		return err
	}
	r.format = views.ExportFormat{BOM: raw.Get("bom") == "1", MachineNames: raw.Get("headers") == "names"}
	if len(r.problems) > 0 || !models.ValidExportShape(raw.Get("shape")) {
		v, err := s.exportConfirm(c, raw)
		if err != nil {
			return err
		}
		v.Problem = "exports.problem.filter"
		return invalid(views.ExportConfirmPage(v))
	}
	// Counting up to the limit is enough to choose; it stays cheap however
	// many customers match.
	n, err := models.CountExport(c.UserContext(), db, sc.TenantID, r.apps, r.shape, r.filter, s.export.StreamMax)
	if err != nil {
		return err
	}
	ne := models.NewExport{Shape: r.shape, Filter: r.filter, BOM: r.format.BOM, MachineNames: r.format.MachineNames,
		Locale: string(views.LocaleOf(c.UserContext())), ExpectedRows: n.Rows, Actor: s.auditActor(c)}
	if n.Capped {
		return s.startExportJob(c, r, ne)
	}
	if !s.streams.take(sc.TenantID) {
		v, err := s.exportConfirm(c, raw)
		if err != nil {
			return err
		}
		v.Problem, v.Slots = "exports.problem.streams_busy", MaxStreamsPerWorkspace
		return refused(fiber.StatusTooManyRequests, views.ExportConfirmPage(v))
	}
	rec, err := models.StartStreamedExport(db, sc.TenantID, ne, s.now())
	if err != nil {
		s.streams.give(sc.TenantID)
		return err
	}
	s.streamExport(c, rec, r) // gives the slot back when the file is written
	return nil
}

// startExportJob queues a large export and shows it on the Exports page.
func (s *Server) startExportJob(c *fiber.Ctx, r exportRequest, ne models.NewExport) error {
	sc := scope(c)
	if !s.authz.Grants(sc.Role, sc.TenantID, tenants.ExportsWrite) {
		return errForbidden
	}
	db := s.dbFor(c)
	exact, err := models.CountExport(c.UserContext(), db, sc.TenantID, r.apps, r.shape, r.filter, 0)
	if err != nil {
		return err
	}
	ne.ExpectedRows = exact.Rows
	_, err = models.StartExportJob(db, sc.TenantID, ne, s.export.Jobs, s.now())
	if errors.Is(err, models.ErrExportsBusy) {
		v, err := s.exportConfirm(c, postValues(c))
		if err != nil {
			return err
		}
		v.Problem = "exports.problem.busy"
		return refused(fiber.StatusConflict, views.ExportConfirmPage(v))
	}
	if err != nil {
		return err
	}
	return redirect(c, tenantPath(sc.Slug, "exports")+"?done=started")
}

// streamExport writes the export as the response body, a batch at a time,
// each pushed to the network as it is written. The response is already
// committed when rows are read, so a failure half-way closes the connection:
// the browser then reports an incomplete download rather than keeping a
// short file as if it were whole.
func (s *Server) streamExport(c *fiber.Ctx, rec *models.Export, r exportRequest) {
	sc := scope(c)
	// The stream is written after the handler returns, when c is no longer
	// ours: take what it needs now.
	ctx := views.WithLocale(context.WithoutCancel(c.UserContext()), views.LocaleOf(c.UserContext()))
	conn := c.Context().Conn()
	tenantID, now, who := sc.TenantID, s.now, s.auditActor(c)
	req := models.ExportRequest{Shape: r.shape, Filter: r.filter}
	setAttachment(c, export.FileName(sc.Slug, r.shape, now()))
	// fasthttp runs the writer in every case, also when the browser has gone
	// (its writes then fail), so the slot is always given back.
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.streams.give(tenantID)
		out := &countWriter{w: w}
		enc := views.NewExportEncoder(ctx, out, r.shape, r.apps, r.format)
		// The header goes out at once: the download starts before the
		// first batch is read.
		err := enc.Flush()
		if err == nil {
			err = w.Flush()
		}
		var st models.ExportStats
		if err == nil {
			st, err = export.Write(ctx, s.db, tenantID, r.apps, req, enc, w.Flush)
		}
		if ferr := models.FinishStreamedExport(s.db.WithContext(ctx), tenantID, rec, st, out.n, err, who, now()); ferr != nil {
			s.log.Error("export: record the end of a streamed export", "export", rec.ID, "err", ferr)
		}
		if err != nil {
			s.log.Warn("export: streamed export stopped", "export", rec.ID, "tenant_id", tenantID, "rows", st.Rows, "err", err)
			_ = conn.Close()
		}
	})
}

// setAttachment makes the response a CSV file download named name.
func setAttachment(c *fiber.Ctx, name string) {
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": name}))
}

// countWriter counts the bytes of a file on their way out.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// auditActor is the signed-in person, their address and the request, for an
// audit line.
func (s *Server) auditActor(c *fiber.Ctx) models.AuditEvent {
	return s.actor(c).Event("", "", "", time.Time{})
}

// postValues is the submitted form as url.Values.
func postValues(c *fiber.Ctx) url.Values {
	v := url.Values{}
	c.Request().PostArgs().VisitAll(func(k, val []byte) { v.Add(string(k), string(val)) })
	return v
}
