package web

import (
	"errors"
	"io"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"oneid/app/ingest"
	"oneid/models"
	"oneid/views"
)

// CSV imports of identities (admins). The file is checked whole first; a
// refused file shows every problem and writes nothing. A small file is
// written during the upload; a large one runs as a job whose page shows its
// progress. The rules and the audit are in app/ingest.

// shownImportProblems bounds the problems listed on the page.
const shownImportProblems = 200

func (s *Server) importsPage(c *fiber.Ctx) error {
	v, err := s.importsView(c)
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, views.ImportsPage(*v))
}

// importFile takes an upload: written, queued (→ its job page), or refused.
func (s *Server) importFile(c *fiber.Ctx) error {
	v, err := s.importsView(c)
	if err != nil {
		return err
	}
	fh, err := c.FormFile("file")
	if err != nil || fh.Size == 0 {
		v.Error = "imports.error.no_file"
		return invalid(views.ImportsPage(*v))
	}
	if fh.Size > ingest.MaxImportBytes {
		v.Error = "imports.error.too_large"
		return invalid(views.ImportsPage(*v))
	}
	f, err := fh.Open()
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(f, ingest.MaxImportBytes+1))
	f.Close()
	if err != nil {
		return err
	}
	sc := scope(c)
	out, problems, err := s.importer.Import(c.UserContext(), sc.TenantID, s.actor(c), fh.Filename, data)
	switch {
	case errors.Is(err, ingest.ErrImportRunning):
		v.Error = "imports.error.running"
		return refused(fiber.StatusConflict, views.ImportsPage(*v))
	case err != nil:
		return err
	case len(problems) > 0:
		v.FileName, v.ProblemCount, v.Capped = fh.Filename, len(problems), len(problems) >= 1000
		for i, p := range problems {
			if i == shownImportProblems {
				break
			}
			v.Problems = append(v.Problems, importProblemRow(p))
		}
		return invalid(views.ImportsPage(*v))
	case out.Job != nil:
		return redirect(c, tenantPath(sc.Slug, "imports/"+strconv.FormatInt(out.Job.ID, 10)))
	}
	r := importResultView(*out.Result)
	v.Done = &r
	if v.Recent, err = s.recentImports(c); err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, views.ImportsPage(*v))
}

// importJobPage is a queued import's progress; htmx asks for the status only.
func (s *Server) importJobPage(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	j, err := models.FindJob(s.dbFor(c), scope(c).TenantID, id)
	if err != nil {
		return err
	}
	if j.Kind != ingest.ImportKind {
		return models.ErrNotFound
	}
	v := importJobView(j)
	if c.Get("HX-Request") == "true" {
		return s.render(c, fiber.StatusOK, views.ImportJobStatus(v))
	}
	return s.render(c, fiber.StatusOK, views.ImportJobPage(v))
}

func (s *Server) importsView(c *fiber.Ctx) (*views.ImportsView, error) {
	apps, err := models.ListApps(s.dbFor(c), scope(c).TenantID)
	if err != nil {
		return nil, err
	}
	v := &views.ImportsView{}
	for _, a := range apps {
		if a.IsBound() {
			v.Apps = append(v.Apps, views.ImportApp{AppID: a.AppID, Name: a.Name, Kind: a.Kind})
		}
	}
	if v.Recent, err = s.recentImports(c); err != nil {
		return nil, err
	}
	return v, nil
}

func (s *Server) recentImports(c *fiber.Ctx) ([]views.ImportJobView, error) {
	jobs, err := models.RecentJobs(s.dbFor(c), scope(c).TenantID, ingest.ImportKind, "", 20)
	if err != nil {
		return nil, err
	}
	out := make([]views.ImportJobView, len(jobs))
	for i := range jobs {
		out[i] = importJobView(&jobs[i])
	}
	return out, nil
}

func importJobView(j *models.Job) views.ImportJobView {
	res := ingest.ParseImportResult(j.Result)
	if j.Result == "" {
		res = ingest.ParseImportResult(j.Checkpoint)
	}
	file := ingest.ParseImportResult(j.Params).File // the params name the file as the result does
	v := views.ImportJobView{ID: j.ID, File: file, Actor: j.Actor, State: j.State, Processed: j.Processed, Total: j.Total,
		CreatedAt: j.CreatedAt, Result: importResultView(res)}
	if j.State == models.JobFailed {
		v.Error = j.Error
	}
	return v
}

func importResultView(r ingest.ImportResult) views.ImportResultView {
	return views.ImportResultView{File: r.File, Lines: r.Lines, Rows: r.Rows, Created: r.Created, Linked: r.Linked,
		Updated: r.Updated, Unchanged: r.Unchanged}
}

// importProblemRow gives each problem the values its message shows.
func importProblemRow(p ingest.ImportProblem) views.ImportProblemRow {
	row := views.ImportProblemRow{Row: p.Row, Column: p.Column, Key: p.Problem}
	switch p.Problem {
	case ingest.ProblemTooLarge:
		row.Args = []any{strconv.Itoa(ingest.MaxImportBytes >> 20)}
	case ingest.ProblemTooManyRows:
		row.Args = []any{strconv.Itoa(ingest.MaxImportRows)}
	case ingest.ProblemDuplicateCol, ingest.ProblemMissingColumn:
		row.Args = []any{p.Column}
	case ingest.ProblemBadCSV, ingest.ProblemUnknownColumn, ingest.ProblemFieldCount, ingest.ProblemUnknownApp,
		ingest.ProblemBadID, ingest.ProblemBadSubscribed, ingest.ProblemBadTime:
		row.Args = []any{p.Value}
	case ingest.ProblemConflict, ingest.ProblemUnionIDTwice:
		row.Args = []any{p.Value, p.OtherRow}
	}
	return row
}
