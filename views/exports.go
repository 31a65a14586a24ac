package views

import (
	"context"
	"strconv"
	"time"

	"oneid/models"
)

// FilterChip is one condition of a customer filter, in words.
type FilterChip struct {
	Label string
	Value string
}

// FilterChips says what a filter narrows the customers to; none for all of
// them. apps name the app a filter may hold.
func FilterChips(ctx context.Context, f models.CustomerFilter, apps []AppOption) []FilterChip {
	var chips []FilterChip
	add := func(key, value string) {
		if value != "" {
			chips = append(chips, FilterChip{Label: T(ctx, key), Value: value})
		}
	}
	add("customers.search", f.Query)
	if f.AppID != 0 {
		name := "#" + strconv.FormatInt(f.AppID, 10)
		for _, a := range apps {
			if a.ID == f.AppID {
				name = a.Name
			}
		}
		add("customers.app", name)
	}
	if f.Kind != "" {
		add("customers.kind", kindLabel(ctx, f.Kind))
	}
	yesNo := func(label, value, yes, no string) {
		switch value {
		case "yes":
			add(label, T(ctx, yes))
		case "no":
			add(label, T(ctx, no))
		}
	}
	yesNo("customers.subscribed", f.Subscribed, "customers.subscribed_yes", "customers.subscribed_no")
	yesNo("customers.linked", f.Linked, "customers.linked_yes", "customers.linked_no")
	if f.Source != "" {
		add("customers.source", sourceLabel(ctx, f.Source))
	}
	span := func(from, to models.Day) string {
		switch {
		case from.IsZero() && to.IsZero():
			return ""
		case to.IsZero():
			return from.String() + " –"
		case from.IsZero():
			return "– " + to.String()
		}
		return from.String() + " – " + to.String()
	}
	add("customers.first_seen", span(f.FirstFrom, f.FirstTo))
	add("customers.last_seen", span(f.LastFrom, f.LastTo))
	return chips
}

// ExportConfirmView is the step before an export: what it holds and how many
// rows, how it will be delivered, and the file's options.
type ExportConfirmView struct {
	Shape  string
	Shapes []ShapeChoice
	Chips  []FilterChip
	// Hidden carries the filter through the form, as URL parameters.
	Hidden    []HiddenField
	Customers int64
	Rows      int64
	// Stream: the file downloads at once; else it runs in the background.
	Stream    bool
	StreamMax int64
	Action    string
	Back      string
	Exports   string // the Exports page
	// Problem is a message key shown instead of the count (a refused
	// filter, every background slot busy).
	Problem string
	// Slots is how many background exports may run at once.
	Slots   int
	BOM     bool
	Machine bool
}

// problemText is the confirmation's refusal in words.
func (v ExportConfirmView) problemText(ctx context.Context) string {
	if v.Problem == "exports.problem.busy" || v.Problem == "exports.problem.streams_busy" {
		return Tf(ctx, v.Problem, v.Slots)
	}
	return T(ctx, v.Problem)
}

// ShapeChoice is one shape the confirmation offers, with the link to it.
type ShapeChoice struct {
	Shape   string
	Href    string
	Current bool
}

// HiddenField is a name and value carried through a form.
type HiddenField struct{ Name, Value string }

// ExportsView is the Exports page: the workspace's exports, newest first.
type ExportsView struct {
	Rows []ExportRow
	// Live: something is queued or running; the list refreshes itself.
	Live   bool
	Older  string
	Newest string
	Self   string // the page's own address, for the refresh
	Notice string // message key of what just happened
	Kind   string // alert kind of the notice
	Keep   time.Duration
}

// ExportRow is one export in the list.
type ExportRow struct {
	ID       int64
	At       time.Time
	Actor    string
	Shape    string
	Chips    []FilterChip
	Delivery string
	State    string
	Rows     int64 // written so far, or in all
	Expected int64
	// Progress of a background export: Done of Total, as a percentage.
	Done, Total int64
	Percent     int
	Remaining   time.Duration // estimated; zero while unknown
	Bytes       int64
	Download    string // link to the file, when it can be downloaded
	ExpiresAt   time.Time
	Cancel      string // where to post a cancellation, when it can be cancelled
	Error       string
}

// Live reports a row still in progress.
func (r ExportRow) Live() bool {
	return r.State == models.ExportQueued || r.State == models.ExportRunning || r.State == models.ExportStreaming
}

// shapeLabel names a shape.
func shapeLabel(ctx context.Context, shape string) string { return T(ctx, "exports.shape."+shape) }

// exportStateLabel names a state.
func exportStateLabel(ctx context.Context, r ExportRow) string {
	if r.Delivery == models.DeliveryStream && r.State == models.ExportDone {
		return T(ctx, "exports.state.downloaded")
	}
	return T(ctx, "exports.state."+r.State)
}

// FormatBytes shows a size in KB, MB or GB.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 0, 64) + " KB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// formatRemaining says about how long is left, in minutes or seconds.
func formatRemaining(ctx context.Context, d time.Duration) string {
	if d >= time.Minute {
		return Tf(ctx, "exports.remaining_min", int(d.Round(time.Minute)/time.Minute))
	}
	return Tf(ctx, "exports.remaining_sec", max(int(d.Round(time.Second)/time.Second), 1))
}

// keepDays is the file retention in whole days (at least one).
func keepDays(d time.Duration) string {
	return strconv.Itoa(max(int(d.Round(24*time.Hour)/(24*time.Hour)), 1))
}
