package models

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Exports read the customers the list shows for a filter (planList: the same
// conditions), a batch of customers at a time by keyset on the customer id,
// and each batch's identities by customer id. Rows are read with raw column
// scans into one byte arena per batch, and the next batch is read while the
// caller writes the current one, so memory holds two batches whatever the
// size.
//
// The file is in customer id order (the order customers were first
// recorded), not in the list's sort: walking customers by id reads the
// customers and then their identities nearly in the order they are stored,
// where the list's order would visit every identity page at random, batch
// after batch: several times slower at a million customers.

// Export shapes: what one line of an export file is.
const (
	ExportProfiles   = "profiles"   // a customer, with one OpenID column per app
	ExportIdentities = "identities" // an identity (app, OpenID) with its customer
)

// ExportShapes lists the shapes in display order.
func ExportShapes() []string { return []string{ExportProfiles, ExportIdentities} }

// ValidExportShape reports one of ExportShapes.
func ValidExportShape(s string) bool { return s == ExportProfiles || s == ExportIdentities }

// Customers read per query: big enough that a round trip is nothing beside
// the rows, small enough that a batch is a few megabytes.
const (
	exportBatchMySQL  = 10000
	exportBatchSQLite = 2000
	// An identities batch of customers holds about three times as many rows.
	exportIdentityBatch = 4000
)

// ProfileRow is one customer of a profiles export. Byte slices point into the
// batch's arena: valid while the batch is.
type ProfileRow struct {
	ID        int64
	UnionID   []byte // nil for an unlinked customer
	Nickname  []byte
	FirstSeen time.Time
	LastSeen  time.Time
	// OpenIDs has one entry per app of the export (ExportBatch.Apps order):
	// the customer's OpenID there, nil if none; several, one a line.
	OpenIDs [][]byte
}

// IdentityRow is one identity of an identities export.
type IdentityRow struct {
	CustomerID    int64
	UnionID       []byte // the customer's; nil when unlinked
	App           int    // index into ExportBatch.Apps
	OpenID        []byte
	Subscribed    bool
	SubscribeTime time.Time // zero when unknown
	Source        []byte
	FirstSeen     time.Time
	LastSeen      time.Time
}

// ExportBatch is one batch of an export: the customers of one keyset step and,
// by shape, their profile rows or their identities.
type ExportBatch struct {
	Shape      string
	Apps       []BrowseApp
	Profiles   []ProfileRow  // ExportProfiles
	Identities []IdentityRow // ExportIdentities
	// Customers is how many customers the batch covers; LastID is its last
	// customer's id, after which an export resumes.
	Customers int
	LastID    int64

	arena    []byte
	openIDs  [][]byte
	ids      []int64 // the customers' ids, ascending
	next     int     // where the search for the next identity's customer starts
	identBuf []IdentityRow
}

// Rows is how many lines the batch writes.
func (b *ExportBatch) Rows() int {
	if b.Shape == ExportIdentities {
		return len(b.Identities)
	}
	return len(b.Profiles)
}

// ExportRequest says what to export.
type ExportRequest struct {
	Shape  string
	Filter CustomerFilter // its sort and position are ignored
	// AfterID resumes the walk after this customer id (a job's checkpoint).
	AfterID int64
	// BatchSize overrides the customers read per query (tests use small ones).
	BatchSize int
}

// ExportStats is what an export read.
type ExportStats struct {
	Customers int64
	Rows      int64
}

// ExportCustomers reads the tenant's customers matching the filter, in the
// list's order, and calls write for each batch, in order. The batch is valid
// until write returns; meanwhile the next one is read. apps are the tenant's
// (BrowseApps): an export's columns. An error from write stops the export
// and is returned.
func ExportCustomers(ctx context.Context, db *gorm.DB, tenantID int64, apps []BrowseApp, req ExportRequest,
	write func(*ExportBatch) error) (ExportStats, error) {
	var st ExportStats
	if tenantID <= 0 {
		return st, fmt.Errorf("%w: export customers of tenant %d", ErrUnscopedQuery, tenantID)
	}
	if !ValidExportShape(req.Shape) {
		return st, fmt.Errorf("models: export: unknown shape %q", req.Shape)
	}
	db = db.WithContext(ctx)
	f := req.Filter.FirstPage()
	q, err := planList(db, tenantID, f, apps)
	if err != nil || q.none {
		return st, err
	}
	size := req.BatchSize
	switch {
	case size > 0:
	case !q.mysql:
		size = exportBatchSQLite
	case req.Shape == ExportIdentities:
		size = exportIdentityBatch
	default:
		size = exportBatchMySQL
	}
	r := &exportReader{q: q, tenantID: tenantID, apps: apps, shape: req.Shape, size: size, appIndex: map[int64]int{}}
	for i, a := range apps {
		r.appIndex[a.ID] = i
	}

	// Three stages, each on its own goroutine and connection, pass batches
	// along: one reads the next customers while another reads the identities
	// of the customers before, while the caller writes the batch before that.
	// Three batches go round, so memory holds three whatever the size.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const inFlight = 3
	free := make(chan *ExportBatch, inFlight)
	for range inFlight {
		free <- &ExportBatch{}
	}
	customers := make(chan *ExportBatch, 1)
	full := make(chan *ExportBatch, 1)
	errs := make(chan error, 2)
	// done ends a stage; an error stops the others.
	done := func(err error) {
		if err != nil {
			cancel()
		}
		errs <- err
	}
	send := func(to chan<- *ExportBatch, b *ExportBatch) bool {
		select {
		case to <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer close(customers)
		after := req.AfterID
		for {
			var b *ExportBatch
			select {
			case b = <-free:
			case <-ctx.Done():
				done(ctx.Err())
				return
			}
			if err := r.readCustomers(b, after); err != nil {
				done(err)
				return
			}
			if b.Customers == 0 || !send(customers, b) {
				done(ctx.Err())
				return
			}
			if b.Customers < size {
				done(nil)
				return
			}
			after = b.LastID
		}
	}()
	go func() {
		defer close(full)
		for b := range customers {
			if err := r.readIdentities(b); err != nil {
				done(err)
				return
			}
			if !send(full, b) {
				done(ctx.Err())
				return
			}
		}
		done(nil)
	}()
	var werr error
	for b := range full {
		if werr == nil {
			if werr = write(b); werr != nil {
				cancel()
			} else {
				st.Customers += int64(b.Customers)
				st.Rows += int64(b.Rows())
			}
		}
		free <- b
	}
	rerr := errors.Join(<-errs, <-errs)
	if werr != nil {
		return st, werr
	}
	if rerr != nil {
		return st, fmt.Errorf("models: export customers: %w", rerr)
	}
	return st, nil
}

// exportReader reads the batches of one export.
type exportReader struct {
	q        *listQuery
	tenantID int64
	apps     []BrowseApp
	appIndex map[int64]int
	shape    string
	size     int
	// dense: the last batch's customers filled most of the ids it spanned,
	// so the next one is read straight from the table, up to lastID, the
	// tenant's highest customer id.
	dense  bool
	lastID int64
}

// readCustomers fills b with the customers after the id.
func (r *exportReader) readCustomers(b *ExportBatch, after int64) error {
	b.Apps, b.Shape = r.apps, r.shape
	b.Profiles, b.Identities, b.Customers = b.Profiles[:0], nil, 0
	b.arena, b.openIDs, b.ids = b.arena[:0], b.openIDs[:0], b.ids[:0]
	b.next = 0
	dense := r.dense
	if err := r.scanCustomers(b, after, r.size); err != nil {
		return err
	}
	if dense && len(b.ids) < r.size {
		// The table ended at the tenant's highest id as it was when the walk
		// began: customers added since come through the index.
		r.dense = false
		if n := len(b.ids); n > 0 {
			after = b.ids[n-1]
		}
		if err := r.scanCustomers(b, after, r.size-len(b.ids)); err != nil {
			return err
		}
	}
	b.Customers = len(b.Profiles)
	if b.Customers == 0 {
		return nil
	}
	b.LastID = b.Profiles[b.Customers-1].ID
	return r.learnDensity(b)
}

// scanCustomers appends up to limit customers after the id to the batch.
func (r *exportReader) scanCustomers(b *ExportBatch, after int64, limit int) error {
	query, args := r.customersSQL(after, limit)
	rows, err := r.q.db.Raw(query, args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		id          int64
		union, nick sql.RawBytes
		first, last time.Time
	)
	for rows.Next() {
		if err := rows.Scan(&id, &union, &nick, &first, &last); err != nil {
			return err
		}
		p := ProfileRow{ID: id, FirstSeen: first, LastSeen: last}
		p.UnionID, p.Nickname = b.keep(union), b.keep(nick)
		if p.Nickname == nil {
			p.Nickname = []byte{}
		}
		b.Profiles = append(b.Profiles, p)
		b.ids = append(b.ids, id)
	}
	return rows.Err()
}

// readIdentities adds the identities of the batch's customers: their OpenIDs
// to the profiles, or the identity rows.
func (r *exportReader) readIdentities(b *ExportBatch) error {
	if r.shape == ExportProfiles {
		return r.readOpenIDs(b)
	}
	return r.readIdentityRows(b)
}

// exportIndex is what the export walks customers by: the tenant's, by id.
const exportIndex = "ix_customers_tenant_id"

// customersSQL selects the next batch of customers after the id: the list's
// conditions, in id order. A search that found its customers (by id, or a
// nickname few share) reads them through its own index; anything else walks
// the tenant's customers by id, testing the conditions on each: through the
// tenant's index, or, where the tenant's customers fill the id range (a large
// tenant), straight along the table, which is twice as fast as an index
// entry and a row for each.
func (r *exportReader) customersSQL(after int64, limit int) (string, []any) {
	q := r.q
	index, extra, extraArgs := exportIndex, []string{"id > ?"}, []any{after}
	switch {
	case q.idSet != nil || q.exact:
		index = q.index
	case r.dense && q.mysql:
		index = "PRIMARY"
		extra, extraArgs = append(extra, "id <= ?"), append(extraArgs, r.lastID)
	}
	where, args := q.where(true, extra, extraArgs)
	return "SELECT id, unionid, nickname, first_seen_at, last_seen_at FROM customers" + q.hint(index) +
		" WHERE " + where + " ORDER BY id LIMIT ?", append(args, limit)
}

// denseShare: a batch whose customers are at least this share of the ids it
// spans is dense. Where other tenants' customers are interleaved, or the
// filter keeps few, reading along the table would read mostly rows that are
// then left out.
const denseShare = 0.5

// learnDensity notes whether the batch just read was dense, for the next.
func (r *exportReader) learnDensity(b *ExportBatch) error {
	if len(b.ids) < r.size || r.q.idSet != nil || r.q.exact {
		return nil
	}
	span := b.ids[len(b.ids)-1] - b.ids[0] + 1
	r.dense = float64(len(b.ids)) >= denseShare*float64(span)
	if r.dense && r.lastID == 0 {
		err := r.q.db.Raw("SELECT COALESCE(MAX(id), 0) FROM customers"+r.q.hint(exportIndex)+" WHERE tenant_id = ?", r.tenantID).
			Scan(&r.lastID).Error
		if err != nil {
			return fmt.Errorf("models: last customer of tenant %d: %w", r.tenantID, err)
		}
	}
	return nil
}

// customer finds a customer of the batch by id. Identities mostly come in
// customer order, so it looks just ahead of the last one first.
func (b *ExportBatch) customer(id int64) (int, bool) {
	if k := b.next; k < len(b.ids) && b.ids[k] == id {
		return k, true
	}
	if k := b.next + 1; k < len(b.ids) && b.ids[k] == id {
		b.next = k
		return k, true
	}
	k, ok := slices.BinarySearch(b.ids, id)
	if ok {
		b.next = k
	}
	return k, ok
}

// app is the export column of an app id: a short scan beats a map for the
// handful of apps a tenant has.
func (r *exportReader) app(id int64) (int, bool) {
	if len(r.apps) > 16 {
		k, ok := r.appIndex[id]
		return k, ok
	}
	for k := range r.apps {
		if r.apps[k].ID == id {
			return k, true
		}
	}
	return 0, false
}

// keep copies raw column bytes into the arena; nil stays nil (SQL NULL).
func (b *ExportBatch) keep(raw sql.RawBytes) []byte {
	if raw == nil {
		return nil
	}
	start := len(b.arena)
	b.arena = append(b.arena, raw...)
	return b.arena[start:len(b.arena):len(b.arena)]
}

// identitiesSQL selects cols of the identities of the batch's customers (ids,
// ascending): the range of their ids when the batch is dense (every customer
// of the tenant, or most), else the list of them. The ids are integers read
// from the database, written into the statement.
func (r *exportReader) identitiesSQL(cols string, ids []int64) string {
	var sb strings.Builder
	var num [20]byte
	sb.Grow(len(cols) + 80 + 9*len(ids))
	sb.WriteString("SELECT ")
	sb.WriteString(cols)
	sb.WriteString(" FROM identities WHERE tenant_id = ")
	sb.WriteString(strconv.FormatInt(r.tenantID, 10))
	if lo, hi := ids[0], ids[len(ids)-1]; hi-lo < 2*int64(len(ids)) {
		sb.WriteString(" AND customer_id BETWEEN ")
		sb.Write(strconv.AppendInt(num[:0], lo, 10))
		sb.WriteString(" AND ")
		sb.Write(strconv.AppendInt(num[:0], hi, 10))
		return sb.String()
	}
	sb.WriteString(" AND customer_id IN (")
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.Write(strconv.AppendInt(num[:0], id, 10))
	}
	sb.WriteString(")")
	return sb.String()
}

// readOpenIDs fills each profile's OpenID per app.
func (r *exportReader) readOpenIDs(b *ExportBatch) error {
	n := len(r.apps)
	need := b.Customers * n
	if cap(b.openIDs) < need {
		b.openIDs = make([][]byte, need)
	}
	b.openIDs = b.openIDs[:need]
	clear(b.openIDs)
	for i := range b.Profiles {
		b.Profiles[i].OpenIDs = b.openIDs[i*n : (i+1)*n : (i+1)*n]
	}
	rows, err := r.q.db.Raw(r.identitiesSQL("customer_id, app_id, openid", b.ids)).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		cust, app int64
		openid    sql.RawBytes
	)
	for rows.Next() {
		if err := rows.Scan(&cust, &app, &openid); err != nil {
			return err
		}
		i, ok := b.customer(cust)
		a, known := r.app(app)
		if !ok || !known {
			continue // an app added since the export started
		}
		cell := &b.Profiles[i].OpenIDs[a]
		if *cell == nil {
			*cell = b.keep(openid)
			continue
		}
		// A second OpenID in one app (rare): both, one a line.
		start := len(b.arena)
		b.arena = append(b.arena, *cell...)
		b.arena = append(b.arena, '\n')
		b.arena = append(b.arena, openid...)
		*cell = b.arena[start:len(b.arena):len(b.arena)]
	}
	return rows.Err()
}

// readIdentityRows fills the batch's identity rows, ordered like the
// customers, then by app and OpenID.
func (r *exportReader) readIdentityRows(b *ExportBatch) error {
	rows, err := r.q.db.Raw(r.identitiesSQL(
		"customer_id, app_id, openid, subscribed, subscribe_time, source, first_seen_at, last_seen_at", b.ids)).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		cust, app      int64
		openid, source sql.RawBytes
		subscribed     bool
		subTime        sql.NullTime
		first, last    time.Time
	)
	out := b.identBuf[:0]
	inOrder := true
	for rows.Next() {
		if err := rows.Scan(&cust, &app, &openid, &subscribed, &subTime, &source, &first, &last); err != nil {
			return err
		}
		i, ok := b.customer(cust)
		a, known := r.app(app)
		if !ok || !known {
			continue
		}
		row := IdentityRow{CustomerID: cust, UnionID: b.Profiles[i].UnionID, App: a, OpenID: b.keep(openid),
			Subscribed: subscribed, Source: internSource(source, b), FirstSeen: first, LastSeen: last}
		if subTime.Valid {
			row.SubscribeTime = subTime.Time
		}
		if n := len(out); n > 0 && compareIdentityRows(&out[n-1], &row) > 0 {
			inOrder = false
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// The index hands them over in this order already; another engine's plan
	// may not.
	if !inOrder {
		slices.SortFunc(out, func(x, y IdentityRow) int { return compareIdentityRows(&x, &y) })
	}
	b.identBuf, b.Identities = out, out
	return nil
}

// compareIdentityRows orders identities by customer (ids ascending, as the
// batch), app, then OpenID.
func compareIdentityRows(x, y *IdentityRow) int {
	switch {
	case x.CustomerID != y.CustomerID:
		return cmp.Compare(x.CustomerID, y.CustomerID)
	case x.App != y.App:
		return cmp.Compare(x.App, y.App)
	}
	return bytes.Compare(x.OpenID, y.OpenID)
}

// sourceNames are the sources as bytes, shared by every row that has one.
var sourceNames = func() map[string][]byte {
	m := map[string][]byte{}
	for _, s := range Sources() {
		m[s] = []byte(s)
	}
	return m
}()

// internSource is a known source's shared bytes, or a copy in the arena.
func internSource(raw sql.RawBytes, b *ExportBatch) []byte {
	if s, ok := sourceNames[string(raw)]; ok {
		return s
	}
	return b.keep(raw)
}

// ExportCount is how many customers and lines an export of a filter holds.
type ExportCount struct {
	Customers int64
	Rows      int64
	// Capped: more than the cap asked for; the figures are the cap.
	Capped bool
}

// CountExport counts what an export of the filter writes, exactly: the
// confirmation says it before anything leaves. With capAt > 0 it stops
// counting lines past capAt (cheap: enough to choose between streaming and a
// background job).
func CountExport(ctx context.Context, db *gorm.DB, tenantID int64, apps []BrowseApp, shape string, f CustomerFilter, capAt int64) (ExportCount, error) {
	var c ExportCount
	if !ValidExportShape(shape) {
		return c, fmt.Errorf("models: count export: unknown shape %q", shape)
	}
	db = db.WithContext(ctx)
	q, err := planList(db, tenantID, f.FirstPage(), apps)
	if err != nil || q.none {
		return c, err
	}
	where, args := q.where(true, nil, nil)
	index := q.index
	if len(q.rangeSQL) == 0 && len(q.testSQL) == 0 && q.idSet == nil {
		// Nothing to test: the tenant's narrowest index counts fastest.
		index = exportIndex
	}
	customers := "SELECT id FROM customers" + q.hint(index) + " WHERE " + where
	limit := ""
	if capAt > 0 {
		limit = " LIMIT " + strconv.FormatInt(capAt+1, 10)
	}
	if err := db.Raw("SELECT COUNT(*) FROM ("+customers+limit+") t", args...).Scan(&c.Customers).Error; err != nil {
		return c, fmt.Errorf("models: count export: %w", err)
	}
	c.Rows = c.Customers
	// Identities are counted only for customers within the cap (more than
	// capAt customers hold more than capAt identities): so the count costs a
	// few times capAt index entries at most, and needs no LIMIT, which would
	// make the database gather every row before counting them.
	if shape == ExportIdentities && c.Customers > 0 && (capAt <= 0 || c.Customers <= capAt) {
		var sql string
		if !f.Narrowed() {
			// Every identity of the tenant belongs to one of its customers.
			sql, args = "SELECT COUNT(*) FROM identities WHERE tenant_id = ?", []any{tenantID}
		} else {
			sql = "SELECT COUNT(*) FROM identities ei WHERE ei.tenant_id = ? AND ei.customer_id IN (" + customers + ")"
			args = append([]any{tenantID}, args...)
		}
		if err := db.Raw(sql, args...).Scan(&c.Rows).Error; err != nil {
			return c, fmt.Errorf("models: count export: %w", err)
		}
	}
	if capAt > 0 && (c.Rows > capAt || c.Customers > capAt) {
		c.Capped = true
		c.Rows, c.Customers = min(c.Rows, capAt+1), min(c.Customers, capAt+1)
	}
	return c, nil
}
