package views

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
)

// SyncView is an app's follower sync as the Apps page and the app page show
// it: the last sync and, while one is live, its progress; after a failure,
// why it stopped.
type SyncView struct {
	AppID    int64
	Syncable bool // a bound official account
	CanSync  bool // the viewer may start and cancel syncs
	// State of the latest sync job: "" (never synced), queued, running,
	// succeeded, failed or cancelled.
	State      string
	Cancelling bool // cancelled by an admin; the runner has not stopped yet
	Processed  int64
	Total      int64
	Rate       float64 // followers per second
	Remaining  time.Duration
	// HasRemaining is false while there is no rate to estimate from.
	HasRemaining bool
	ErrorKind    string // models.JobError* of a failed sync
	ErrorCode    int
	Resumable    bool // starting again resumes the failed sync from where it stopped
	LastSyncAt   time.Time
	// FollowerCount is shown out of band when a polled sync has just ended,
	// so the followers column catches up without reloading the page.
	FollowerCount int64
	Ended         bool
}

// Live reports a sync that is queued or running.
func (v SyncView) Live() bool { return v.State == "queued" || v.State == "running" }

// SyncSchedule is the app page's scheduled-sync form.
type SyncSchedule struct {
	AppID      int64
	Enabled    bool
	EveryHours int
	NextRunAt  time.Time
	Intervals  []int
}

// syncHref is the progress fragment (GET), the start (POST) and, with rest,
// cancel and schedule.
func syncHref(ctx context.Context, appID int64, rest string) string {
	return appHref(ctx, appID, "sync"+rest)
}

func syncDOMID(appID int64) string { return "sync-" + strconv.FormatInt(appID, 10) }

func followersDOMID(appID int64) string { return "followers-" + strconv.FormatInt(appID, 10) }

// progressText is "12,345 of 1,000,000 (1.2%)".
func progressText(ctx context.Context, v SyncView) string {
	if v.Total <= 0 {
		return Tf(ctx, "sync.listed", FormatCount(v.Processed))
	}
	pct := float64(v.Processed) / float64(v.Total) * 100
	return Tf(ctx, "sync.progress", FormatCount(v.Processed), FormatCount(v.Total), strconv.FormatFloat(math.Min(pct, 100), 'f', 1, 64))
}

// progressMax and progressValue feed <progress>: a total not known yet
// leaves it indeterminate.
func progressMax(v SyncView) string { return strconv.FormatInt(max(v.Total, 1), 10) }

func progressValue(v SyncView) string {
	return strconv.FormatInt(min(v.Processed, max(v.Total, 1)), 10)
}

// rateText is "8,532 followers/s".
func rateText(ctx context.Context, v SyncView) string {
	return Tf(ctx, "sync.rate", FormatCount(int64(math.Round(v.Rate))))
}

// leftText is a rough time left: "less than a minute left", "about 4 min
// left", "about 2 h 5 min left".
func leftText(ctx context.Context, d time.Duration) string {
	switch {
	case d < time.Minute:
		return T(ctx, "sync.left_under_minute")
	case d < time.Hour:
		return Tf(ctx, "sync.left", Tf(ctx, "sync.dur.minutes", int(math.Ceil(d.Minutes()))))
	default:
		m := int(math.Ceil(d.Minutes()))
		return Tf(ctx, "sync.left", Tf(ctx, "sync.dur.hours", m/60, m%60))
	}
}

// syncErrorText says why a sync stopped and what to do.
func syncErrorText(ctx context.Context, v SyncView) string {
	key := "sync.failed." + v.ErrorKind
	if v.ErrorKind == "quota" && (v.ErrorCode == 45009 || v.ErrorCode == 45011) {
		key += "_" + strconv.Itoa(v.ErrorCode)
	}
	if !Has(ctx, key) {
		key = "sync.failed.internal"
	}
	msg := T(ctx, key)
	if v.ErrorCode != 0 {
		msg += " " + Tf(ctx, "apps.refused.errcode", v.ErrorCode)
	}
	return msg
}

func intervalLabel(ctx context.Context, hours int) string {
	if k := fmt.Sprintf("sync.every.%d", hours); Has(ctx, k) {
		return T(ctx, k)
	}
	return Tf(ctx, "sync.every.hours", hours)
}
