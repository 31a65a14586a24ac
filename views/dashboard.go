package views

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
)

// DashboardView is the dashboard: true unique customers, the apps and how
// their audiences overlap, and new customers per day.
type DashboardView struct {
	AsOf       time.Time
	Refreshing bool // newer figures are being computed
	Customers  int64
	Linked     int64
	Unlinked   int64
	Identities int64
	Apps       []DashboardAppRow
	// Overlap[i][j]: customers with an identity in both Apps[i] and Apps[j];
	// the diagonal is each app's customers.
	Overlap   [][]int64
	NewPerDay []DayBar
	// FromIdentities notes that overlap was computed the slow way.
	FromIdentities bool
	// CustomersHref is the customer list; AppHref adds an app filter.
	CustomersHref string
	// Computing: a large workspace's first figures are being computed.
	Computing bool
}

// DashboardAppRow is one app's figures.
type DashboardAppRow struct {
	ID          int64
	Name        string
	Kind        string
	Status      string
	Identities  int64
	Followers   int64
	WithUnionID int64
	Href        string // the customer list filtered to the app
}

// DayBar is one day of the new-customers chart.
type DayBar struct {
	Day   string
	Count int64
}

// DoubleCounted is how many identities are the same person seen again in
// another app: what adding the apps' audiences up would overcount.
func (v DashboardView) DoubleCounted() int64 { return max(v.Identities-v.Customers, 0) }

// Coverage is the share of an app's identities that have a UnionID.
func (a DashboardAppRow) Coverage() float64 {
	if a.Identities == 0 {
		return 0
	}
	return float64(a.WithUnionID) / float64(a.Identities)
}

// subscribable: only official accounts have followers.
func (a DashboardAppRow) subscribable() bool { return a.Kind != "miniprogram" }

// percent writes a share as "42.3%".
func percent(x float64) string {
	if x <= 0 {
		return "0%"
	}
	if x >= 0.9995 {
		return "100%"
	}
	if x < 0.001 {
		return "<0.1%"
	}
	return strconv.FormatFloat(x*100, 'f', 1, 64) + "%"
}

// share is a/b as a percentage, "—" when b is zero.
func share(a, b int64) string {
	if b == 0 {
		return "—"
	}
	return percent(float64(a) / float64(b))
}

// overlapShare is the share of row app i's customers also in column app j.
func (v DashboardView) overlapShare(i, j int) float64 {
	if v.Overlap[i][i] == 0 {
		return 0
	}
	return float64(v.Overlap[i][j]) / float64(v.Overlap[i][i])
}

// heatClass buckets a share into ten shades (heat-0 … heat-9) of the
// stylesheet: the page's content policy allows no inline styles.
func heatClass(x float64) string {
	b := int(math.Floor(x * 10))
	return "heat-" + strconv.Itoa(min(max(b, 0), 9))
}

// Chart geometry of the new-customers bars, in SVG user units.
const (
	barChartW   = 720
	barChartH   = 180
	barChartTop = 14
	barChartBot = 22
)

// barGeom is one bar's rectangle.
type barGeom struct {
	X, Y, W, H string
	Label      string // the day under the bar, on some bars only
	LabelX     string
	Anchor     string // text-anchor of the label: the ends stay inside
	Title      string
}

func dayBars(ctx context.Context, days []DayBar) []barGeom {
	if len(days) == 0 {
		return nil
	}
	var top int64 = 1
	for _, d := range days {
		top = max(top, d.Count)
	}
	slot := float64(barChartW) / float64(len(days))
	w := slot * 0.72
	plot := float64(barChartH - barChartTop - barChartBot)
	out := make([]barGeom, len(days))
	for i, d := range days {
		h := plot * float64(d.Count) / float64(top)
		if d.Count > 0 && h < 1.5 {
			h = 1.5
		}
		x := float64(i)*slot + (slot-w)/2
		g := barGeom{X: f1(x), Y: f1(float64(barChartH-barChartBot) - h), W: f1(w), H: f1(h),
			Title: fmt.Sprintf("%s · %s", d.Day, Tf(ctx, "dashboard.new_on_day", FormatCount(d.Count)))}
		switch {
		case i == 0:
			g.Label, g.LabelX, g.Anchor = d.Day[5:], f1(x), "start"
		case i == len(days)-1:
			g.Label, g.LabelX, g.Anchor = d.Day[5:], f1(x+w), "end"
		case i%5 == 4 && i < len(days)-3:
			g.Label, g.LabelX, g.Anchor = d.Day[5:], f1(x+w/2), "middle"
		}
		out[i] = g
	}
	return out
}

// maxDay is the tallest bar's count, for the axis note.
func maxDay(days []DayBar) int64 {
	var top int64
	for _, d := range days {
		top = max(top, d.Count)
	}
	return top
}

func sumDays(days []DayBar) int64 {
	var n int64
	for _, d := range days {
		n += d.Count
	}
	return n
}

// coverageWidth is a coverage bar's filled width out of 100.
func coverageWidth(x float64) string { return f1(100 * min(max(x, 0), 1)) }

func f1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

func itoa(n int) string { return strconv.Itoa(n) }

// FormatTimeSeconds shows a moment to the second in China Standard Time.
func FormatTimeSeconds(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(displayZone).Format("2006-01-02 15:04:05")
}
