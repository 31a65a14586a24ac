package models

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Dashboard is a tenant's figures (PRODUCT.md "Statistics the dashboard
// shows"), all read in one consistent snapshot of the database, so they agree
// with each other even while syncs write.
type Dashboard struct {
	AsOf   time.Time
	TookMS int64
	// Customers are the unique customers, Linked + Unlinked.
	Customers, Linked, Unlinked int64
	// Identities is the sum of the apps' identities; Identities − Customers is
	// the double counting UnionID removes.
	Identities int64
	Apps       []DashboardApp
	// Overlap[i][j] is how many customers have an identity in both Apps[i] and
	// Apps[j]; the diagonal holds each app's customers.
	Overlap [][]int64
	// NewPerDay counts customers first seen on each of the last 30 days (China
	// Standard Time), oldest first, today last.
	NewPerDay []DayCount
	// OverlapFromIdentities is set when the customer masks did not agree with
	// the identities (an app beyond 63, or masks being rebuilt) and the overlap
	// was computed from identities instead.
	OverlapFromIdentities bool
	// Stats are the histograms the customer list estimates its counts from.
	Stats *ListStats
}

// DashboardApp is one app's line of the dashboard.
type DashboardApp struct {
	ID          int64
	Name        string
	Kind        string
	Status      string
	Identities  int64
	Followers   int64 // subscribed identities (official accounts)
	WithUnionID int64 // identities whose customer is linked
}

// Coverage is the share of the app's identities that have a UnionID.
func (a DashboardApp) Coverage() float64 {
	if a.Identities == 0 {
		return 0
	}
	return float64(a.WithUnionID) / float64(a.Identities)
}

// DayCount is a day and a count.
type DayCount struct {
	Day   string // 2006-01-02
	Count int64
}

// newPerDayDays is how many days the new-customers chart covers.
const newPerDayDays = 30

// ComputeDashboard works the figures out from the tables, in one read-only
// transaction (REPEATABLE READ on MySQL: one snapshot for every query).
//
// At a million customers it costs about a second: it reads the customers'
// (tenant, last seen, …, masks) index once and the identities' (app,
// subscribed) index once, and never joins identities to themselves — the
// overlap between apps comes from the customers' app masks.
func ComputeDashboard(db *gorm.DB, tenantID int64, now time.Time) (*Dashboard, error) {
	if tenantID <= 0 {
		return nil, fmt.Errorf("%w: dashboard of tenant %d", ErrUnscopedQuery, tenantID)
	}
	start := time.Now()
	d := &Dashboard{AsOf: now.UTC()}
	opts := &sql.TxOptions{ReadOnly: true}
	if Dialect(db) == DialectMySQL {
		opts.Isolation = sql.LevelRepeatableRead
	}
	err := db.Transaction(func(tx *gorm.DB) error {
		return d.compute(tx, tenantID, now)
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("models: dashboard of tenant %d: %w", tenantID, err)
	}
	d.TookMS = time.Since(start).Milliseconds()
	return d, nil
}

func (d *Dashboard) compute(tx *gorm.DB, tenantID int64, now time.Time) error {
	apps, err := BrowseApps(tx, tenantID)
	if err != nil {
		return err
	}
	index := map[int64]int{}
	d.Apps = make([]DashboardApp, len(apps))
	for i, a := range apps {
		index[a.ID] = i
		d.Apps[i] = DashboardApp{ID: a.ID, Name: a.Name, Kind: a.Kind, Status: a.Status}
	}

	// Identities and followers per app, from the (app_id, subscribed) index
	// alone, one app at a time (each statement stays short on a busy server).
	// The tenant is named through its apps (an app has one tenant): testing
	// identities.tenant_id would read every row.
	type appCount struct {
		AppID      int64
		Subscribed bool
		N          int64
	}
	var perApp []appCount
	for _, a := range apps {
		var rows []appCount
		err := tx.Raw(`SELECT app_id, subscribed, COUNT(*) AS n FROM identities
WHERE app_id = ? AND app_id IN (SELECT id FROM apps WHERE tenant_id = ?) GROUP BY app_id, subscribed`, a.ID, tenantID).Scan(&rows).Error
		if err != nil {
			return err
		}
		perApp = append(perApp, rows...)
	}
	for _, r := range perApp {
		a := &d.Apps[index[r.AppID]]
		a.Identities += r.N
		if r.Subscribed {
			a.Followers += r.N
		}
		d.Identities += r.N
	}

	// Customers by masks (and per day): totals, coverage and overlap.
	d.Stats, err = computeListStats(tx, tenantID, now)
	if err != nil {
		return err
	}
	groups := d.Stats.Groups
	n := len(apps)
	d.Overlap = make([][]int64, n)
	for i := range d.Overlap {
		d.Overlap[i] = make([]int64, n)
	}
	bitApps := make([][]int, MaxMaskedApps) // bit → app indexes
	for i, a := range apps {
		if a.Bit != nil && *a.Bit >= 0 && *a.Bit < MaxMaskedApps {
			bitApps[*a.Bit] = append(bitApps[*a.Bit], i)
		}
	}
	inMask := make([]int64, n)
	linkedInMask := make([]int64, n)
	for _, g := range groups {
		d.Customers += g.N
		if g.Unlinked {
			d.Unlinked += g.N
		} else {
			d.Linked += g.N
		}
		var member []int
		for b := 0; b < MaxMaskedApps; b++ {
			if g.AppMask&(1<<b) != 0 {
				member = append(member, bitApps[b]...)
			}
		}
		for _, i := range member {
			inMask[i] += g.N
			if !g.Unlinked {
				linkedInMask[i] += g.N
			}
			for _, j := range member {
				d.Overlap[i][j] += g.N
			}
		}
	}
	// Each customer has at most one identity per app, so an app's customers by
	// mask equal its identities, unless the masks are behind.
	agree := true
	for i := range d.Apps {
		if inMask[i] != d.Apps[i].Identities {
			agree = false
		}
		d.Apps[i].WithUnionID = linkedInMask[i]
	}
	if !agree {
		if err := d.overlapFromIdentities(tx, tenantID, index); err != nil {
			return err
		}
	}
	d.newCustomersPerDay(now)
	return nil
}

// overlapFromIdentities is the slow, exact way: every identity's (customer,
// app), in customer order. Only used when the masks disagree.
func (d *Dashboard) overlapFromIdentities(tx *gorm.DB, tenantID int64, index map[int64]int) error {
	d.OverlapFromIdentities = true
	n := len(d.Apps)
	for i := range d.Overlap {
		d.Overlap[i] = make([]int64, n)
		d.Apps[i].WithUnionID = 0
	}
	rows, err := tx.Raw(`SELECT customer_id, app_id, unionid IS NOT NULL AS linked FROM identities
WHERE tenant_id = ? ORDER BY customer_id`, tenantID).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	var cur int64 = -1
	member := make([]bool, n)
	var list []int
	flush := func() {
		for _, i := range list {
			for _, j := range list {
				d.Overlap[i][j]++
			}
			member[i] = false
		}
		list = list[:0]
	}
	for rows.Next() {
		var cid, appID int64
		var linked bool
		if err := rows.Scan(&cid, &appID, &linked); err != nil {
			return err
		}
		if cid != cur {
			flush()
			cur = cid
		}
		i, ok := index[appID]
		if !ok {
			continue
		}
		if linked {
			d.Apps[i].WithUnionID++
		}
		if !member[i] {
			member[i] = true
			list = append(list, i)
		}
	}
	flush()
	return rows.Err()
}

// newCustomersPerDay counts customers by the day they were first seen, over
// the last 30 days in China Standard Time.
func (d *Dashboard) newCustomersPerDay(now time.Time) {
	counts := map[string]int64{}
	for _, c := range d.Stats.FirstSeen {
		counts[c.Day] = c.Count
	}
	first := DayOf(now).t.AddDate(0, 0, -(newPerDayDays - 1))
	d.NewPerDay = make([]DayCount, newPerDayDays)
	for i := range d.NewPerDay {
		s := Day{first.AddDate(0, 0, i)}.String()
		d.NewPerDay[i] = DayCount{Day: s, Count: counts[s]}
	}
}

func hintFor(db *gorm.DB, index string) string {
	if Dialect(db) != DialectMySQL {
		return ""
	}
	return " FORCE INDEX (" + index + ")"
}

// dashboardSnapshot is a stored Dashboard.
type dashboardSnapshot struct {
	ID              int64 `gorm:"primaryKey"`
	TenantID        int64
	ComputedAt      time.Time
	TookMS          int64 `gorm:"column:took_ms"`
	Body            string
	RefreshingUntil *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

func (dashboardSnapshot) TableName() string { return "dashboard_snapshots" }

// EstimateCustomers is about how many customers a tenant has, without
// counting them on MySQL (an index dive; InnoDB caps it at half the table).
func EstimateCustomers(db *gorm.DB, tenantID int64) (int64, error) {
	q := &listQuery{db: db, tenantID: tenantID, mysql: Dialect(db) == DialectMySQL}
	if !q.mysql {
		var n int64
		err := db.Model(&Customer{}).Scopes(ForTenant(tenantID)).Count(&n).Error
		return n, err
	}
	return q.explainRows("ix_customers_browse_last_seen", "tenant_id = ?", []any{tenantID})
}

// RefreshDashboard computes the figures and stores them as the tenant's
// snapshot (see LoadDashboard), releasing any refresh claim.
func RefreshDashboard(db *gorm.DB, tenantID int64, now time.Time) (*Dashboard, error) {
	d, err := ComputeDashboard(db, tenantID, now)
	if err != nil {
		return nil, err
	}
	return d, SaveDashboard(db, tenantID, d)
}

// SaveDashboard stores figures as the tenant's snapshot, releasing any
// refresh claim.
func SaveDashboard(db *gorm.DB, tenantID int64, d *Dashboard) error {
	body, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("models: store dashboard: %w", err)
	}
	at := time.Now().UTC()
	row := dashboardSnapshot{TenantID: tenantID, ComputedAt: d.AsOf, TookMS: d.TookMS, Body: string(body), CreatedAt: at, UpdatedAt: at}
	err = db.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "tenant_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"computed_at", "took_ms", "body", "refreshing_until", "updated_at"}),
	}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("models: store dashboard: %w", err)
	}
	return nil
}

// LoadDashboard reads the tenant's stored figures; ErrNotFound when none were
// stored yet. Refreshing reports whether a refresh is claimed and running.
func LoadDashboard(db *gorm.DB, tenantID int64, now time.Time) (d *Dashboard, refreshing bool, err error) {
	var row dashboardSnapshot
	err = db.Scopes(ForTenant(tenantID)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, false, ErrNotFound
	}
	if err != nil {
		return nil, false, fmt.Errorf("models: load dashboard: %w", err)
	}
	if row.Body == "" {
		// Only a claim: the first figures are being computed.
		return nil, row.RefreshingUntil != nil && row.RefreshingUntil.After(now), ErrNotFound
	}
	d = &Dashboard{}
	if err := json.Unmarshal([]byte(row.Body), d); err != nil {
		return nil, false, fmt.Errorf("models: load dashboard: %w", err)
	}
	return d, row.RefreshingUntil != nil && row.RefreshingUntil.After(now), nil
}

// ClaimDashboardRefresh takes the tenant's refresh for lease, so that of many
// instances and requests only one recomputes; false if another holds it. A
// tenant with no figures stored yet gets an empty row to hold the claim.
func ClaimDashboardRefresh(db *gorm.DB, tenantID int64, now time.Time, lease time.Duration) (bool, error) {
	res := db.Model(&dashboardSnapshot{}).Scopes(ForTenant(tenantID)).
		Where("refreshing_until IS NULL OR refreshing_until < ?", now).
		UpdateColumn("refreshing_until", now.Add(lease))
	if res.Error != nil {
		return false, fmt.Errorf("models: claim dashboard refresh: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	until := now.Add(lease)
	row := dashboardSnapshot{TenantID: tenantID, ComputedAt: now, RefreshingUntil: &until, CreatedAt: now, UpdatedAt: now}
	err := db.Create(&row).Error
	if isDuplicateKey(err) {
		return false, nil // there is a row, and someone holds it
	}
	if err != nil {
		return false, fmt.Errorf("models: claim dashboard refresh: %w", err)
	}
	return true, nil
}
