package views

import (
	"strconv"
	"time"
)

// ImportsView is the CSV import page: the format, the upload form, the
// outcome of the last upload (written, queued, or refused with its
// problems) and the workspace's recent imports.
type ImportsView struct {
	Apps []ImportApp // the bound apps, so an admin can check appids
	// Problems of a refused file; ProblemCount is every problem found
	// (more than shown when the list was cut).
	FileName     string
	Problems     []ImportProblemRow
	ProblemCount int
	Capped       bool   // the file had at least as many problems as were looked for
	Error        string // message key of a refusal before reading the file
	Done         *ImportResultView
	Recent       []ImportJobView
}

// ImportApp is a bound app as the import page lists it.
type ImportApp struct {
	AppID string
	Name  string
	Kind  string
}

// ImportProblemRow is one problem of a refused file. Key names the message
// (imports.problem.<key>); Args fill it.
type ImportProblemRow struct {
	Row    int // 0: the file as a whole
	Column string
	Key    string
	Args   []any
}

// ImportResultView counts what an import wrote.
type ImportResultView struct {
	File      string
	Lines     int
	Rows      int
	Created   int
	Linked    int
	Updated   int
	Unchanged int
}

// ImportJobView is an import that runs (or ran) as a job.
type ImportJobView struct {
	ID        int64
	File      string
	Actor     string
	State     string // queued, running, succeeded, failed, cancelled
	Processed int64
	Total     int64
	CreatedAt time.Time
	Result    ImportResultView
	Error     string
}

// Live reports an import still queued or running.
func (v ImportJobView) Live() bool { return v.State == "queued" || v.State == "running" }

func importJobHref(id int64) string { return "imports/" + strconv.FormatInt(id, 10) }

func importProgress(v ImportJobView) string {
	if v.Total <= 0 {
		return "0"
	}
	return strconv.FormatInt(v.Processed*1000/v.Total, 10)
}
