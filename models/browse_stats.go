package models

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"gorm.io/gorm"
)

// ListStats summarise a tenant's customers so the list can say about how many
// match a filter without counting them: how many customers have each
// combination of masks, and how many were first and last seen on each day.
// They are taken with the dashboard's figures (same snapshot, same "as of").
type ListStats struct {
	AsOf   time.Time
	Total  int64
	Groups []MaskGroup
	// FirstSeen and LastSeen count customers per day (China Standard Time),
	// in day order, days without any left out.
	FirstSeen []DayCount
	LastSeen  []DayCount
}

// MaskGroup is how many customers share one combination of masks.
type MaskGroup struct {
	AppMask, SubMask, SrcMask int64
	Unlinked                  bool
	N                         int64
}

// computeListStats reads the histograms; tx is the dashboard's snapshot.
func computeListStats(tx *gorm.DB, tenantID int64, now time.Time) (*ListStats, error) {
	s := &ListStats{AsOf: now.UTC()}
	err := tx.Raw(`SELECT app_mask, sub_mask, src_mask, open_account_id IS NULL AS unlinked, COUNT(*) AS n FROM customers`+
		hintFor(tx, "ix_customers_browse_last_seen")+` WHERE tenant_id = ? GROUP BY app_mask, sub_mask, src_mask, open_account_id IS NULL`, tenantID).
		Scan(&s.Groups).Error
	if err != nil {
		return nil, err
	}
	for _, g := range s.Groups {
		s.Total += g.N
	}
	for _, h := range []struct {
		col, index string
		dst        *[]DayCount
	}{{"first_seen_at", "ix_customers_browse_first_seen", &s.FirstSeen}, {"last_seen_at", "ix_customers_browse_last_seen", &s.LastSeen}} {
		day := "DATE(" + h.col + " + INTERVAL 8 HOUR)"
		if Dialect(tx) != DialectMySQL {
			day = "date(" + h.col + ", '+8 hours')"
		}
		var rows []struct {
			Day string
			N   int64
		}
		err := tx.Raw(`SELECT `+day+` AS day, COUNT(*) AS n FROM customers`+hintFor(tx, h.index)+
			` WHERE tenant_id = ? GROUP BY `+day, tenantID).Scan(&rows).Error
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if len(r.Day) >= 10 {
				*h.dst = append(*h.dst, DayCount{Day: r.Day[:10], Count: r.N})
			}
		}
		sort.Slice(*h.dst, func(i, j int) bool { return (*h.dst)[i].Day < (*h.dst)[j].Day })
	}
	return s, nil
}

// share is the fraction of customers seen (first or last) between two days.
func dayShare(days []DayCount, total int64, from, to Day) float64 {
	if total == 0 || (from.IsZero() && to.IsZero()) {
		return 1
	}
	lo, hi := from.String(), to.String()
	var n int64
	for _, d := range days {
		if (lo == "" || d.Day >= lo) && (hi == "" || d.Day <= hi) {
			n += d.Count
		}
	}
	return float64(n) / float64(total)
}

// estimate is about how many customers match f's masks and dates (the
// search is for the caller): the mask part exactly as of the stats, the date
// ranges as shares, taken as independent. ok is false when the stats cannot
// say (an app without a bit).
func (s *ListStats) estimate(f CustomerFilter, apps []BrowseApp) (float64, bool) {
	var viewMask int64
	narrowed := f.AppID != 0 || f.Kind != ""
	for _, a := range apps {
		if (f.AppID == 0 || a.ID == f.AppID) && (f.Kind == "" || a.Kind == f.Kind) {
			if a.Bit == nil || *a.Bit < 0 || *a.Bit >= MaxMaskedApps {
				return 0, false
			}
			viewMask |= 1 << *a.Bit
		}
	}
	var n int64
	for _, g := range s.Groups {
		switch {
		case narrowed && g.AppMask&viewMask == 0:
		case f.Subscribed == "yes" && g.SubMask&viewMask == 0:
		case f.Subscribed == "no" && g.SubMask&viewMask != 0:
		case f.Linked == "yes" && g.Unlinked, f.Linked == "no" && !g.Unlinked:
		case f.Source != "" && g.SrcMask&sourceBits[f.Source] == 0:
		default:
			n += g.N
		}
	}
	est := float64(n) * dayShare(s.FirstSeen, s.Total, f.FirstFrom, f.FirstTo) * dayShare(s.LastSeen, s.Total, f.LastFrom, f.LastTo)
	return est, true
}

// LoadListStats reads the stats stored with the tenant's dashboard figures;
// nil (and no error) when none are stored yet.
func LoadListStats(db *gorm.DB, tenantID int64) (*ListStats, error) {
	var bodies []string
	if err := db.Raw("SELECT body FROM dashboard_snapshots WHERE tenant_id = ? AND body <> ''", tenantID).Scan(&bodies).Error; err != nil {
		return nil, fmt.Errorf("models: load list stats: %w", err)
	}
	if len(bodies) == 0 {
		return nil, nil
	}
	var d struct{ Stats *ListStats }
	if err := json.Unmarshal([]byte(bodies[0]), &d); err != nil {
		return nil, fmt.Errorf("models: load list stats: %w", err)
	}
	return d.Stats, nil
}

// DashboardAsOf is when the tenant's stored figures were computed; the zero
// time when none are stored. It is what a cache of LoadListStats checks.
func DashboardAsOf(db *gorm.DB, tenantID int64) (time.Time, error) {
	var at []time.Time
	err := db.Raw("SELECT computed_at FROM dashboard_snapshots WHERE tenant_id = ? AND body <> ''", tenantID).Scan(&at).Error
	if err != nil {
		return time.Time{}, fmt.Errorf("models: dashboard time: %w", err)
	}
	if len(at) == 0 {
		return time.Time{}, nil
	}
	return at[0].UTC(), nil
}
