package models

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

// resolver runs one chunk of Resolve inside one transaction attempt.
type resolver struct {
	tx         *gorm.DB
	tenantID   int64
	now        time.Time
	mysql      bool
	returning  bool // INSERT … RETURNING works here
	idsChecked bool // innodb_autoinc_lock_mode checked
	// perStatement rows go in one INSERT: MySQL is as fast with 250 as with
	// 1,000; SQLite's driver binds each value separately and slows down more
	// than linearly past about 100 rows (measured: 161 ms per 1,000 rows in one
	// statement, 50 ms in statements of 100).
	perStatement int
	apps         map[int64]resolveApp
	plans        []*identityPlan
	// expectWrites: the chunk before this one (in the same call) was mostly
	// new identities, so this one likely is too (a first sync of a large
	// account): the read without locks is skipped and the chunk goes straight
	// to its transaction, whose locking read plans it anyway.
	expectWrites bool
}

// run reads, plans and writes one chunk, then fills its outcomes. The read
// and the plan need no transaction; a chunk of known, unchanged identities
// ends there (one SELECT), or with one UPDATE of last_sync_pass in a new pass.
// Only a chunk that writes opens a transaction (retried whole on deadlock),
// where lockIdentities reads and plans it again under lock. A chunk expected
// to write (expectWrites) skips the first read: reading new identities twice
// was a fifth of a first sync's statements' time.
func (r *resolver) run(db *gorm.DB, obs []Observation, chunk []int, out []Outcome) error {
	r.plans = planObservations(obs, chunk, r.apps)
	if err := r.ensureAppBits(db); err != nil {
		return err
	}
	r.tx = db
	writes, marks := true, false
	if !r.expectWrites {
		if err := r.readIdentities(); err != nil {
			return err
		}
		writes = false
		for _, p := range r.plans {
			p.compute(r.tenantID, r.now)
			writes, marks = writes || p.writes(), marks || p.markPass
		}
	}
	ctx := db.Statement.Context
	switch {
	case writes:
		err := RetryTx(ctx, db, func(tx *gorm.DB) error {
			r.tx = tx
			return r.lockAndWrite()
		}, readCommitted(db)...)
		if err != nil {
			return err
		}
	case marks:
		// A blind write of one column: no lock to take, nothing to decide.
		err := RetryTx(ctx, db, func(tx *gorm.DB) error {
			r.tx = tx
			return r.markPass()
		})
		if err != nil {
			return err
		}
	}
	for _, p := range r.plans {
		for _, i := range p.outAt {
			out[i] = Outcome{Change: p.change, CustomerID: p.next.CustomerID, IdentityID: p.next.ID}
		}
	}
	return nil
}

// lockAndWrite is the transaction of a chunk that writes.
func (r *resolver) lockAndWrite() error {
	if err := r.lockIdentities(); err != nil {
		return err
	}
	// New identities may be added by another writer between the locking read
	// and the insert. Rather than start over (and race again), roll back to
	// before the writes, lock the identities that now exist, plan them as
	// known, and write again: each round turns the colliding ones into locked,
	// known rows, so it converges (in one extra round, nearly always).
	for round := 0; ; round++ {
		savepoint := r.countNew() > 0
		if savepoint {
			if err := r.tx.SavePoint("resolve_writes").Error; err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
		}
		err := r.write()
		if err == nil {
			return nil
		}
		if !savepoint || !errors.Is(err, errIdentityTaken) || round >= 8 {
			return err
		}
		if err := r.tx.RollbackTo("resolve_writes").Error; err != nil {
			return fmt.Errorf("rollback to savepoint: %w", err)
		}
		if err := r.adoptTaken(); err != nil {
			return err
		}
	}
}

// errIdentityTaken: an identity planned as new was added by someone else.
var errIdentityTaken = fmt.Errorf("%w: an identity was added meanwhile", ErrTxConflict)

func (r *resolver) write() error {
	for _, step := range []func() error{
		r.writeLinkedCustomers,
		r.writeKeptUnlinkedCustomers,
		r.insertUnlinkedCustomers,
		r.insertIdentities,
		r.rewriteIdentities,
		r.markPass,
		r.dropEmptiedCustomers,
		r.insertEvents,
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// ensureAppBits gives the chunk's apps their bit in the customer masks
// (migration 0030) if one has none yet: once per app, on first use.
func (r *resolver) ensureAppBits(db *gorm.DB) error {
	missing := false
	for _, p := range r.plans {
		missing = missing || p.app.MaskBit == nil
	}
	if !missing {
		return nil
	}
	bits := map[int64]int{}
	err := RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		clear(bits)
		return assignAppBits(tx, r.tenantID, bits)
	})
	if err != nil {
		return err
	}
	apps := make(map[int64]resolveApp, len(r.apps))
	for id, a := range r.apps {
		if b, ok := bits[id]; ok {
			a.MaskBit = &b
		}
		apps[id] = a
	}
	r.apps = apps
	for _, p := range r.plans {
		p.app = apps[p.key.appID]
	}
	return nil
}

func (r *resolver) countNew() int {
	n := 0
	for _, p := range r.plans {
		if p.isNew() {
			n++
		}
	}
	return n
}

func (r *resolver) scoped(model any) *gorm.DB {
	return r.tx.Model(model).Scopes(ForTenant(r.tenantID))
}

func (r *resolver) readIdentities() error {
	rows, err := r.identitiesByKey(func(*identityPlan) bool { return true }, false)
	if err != nil {
		return fmt.Errorf("read identities: %w", err)
	}
	r.setCurrent(rows, func(*identityPlan) bool { return true })
	return nil
}

// setCurrent gives the plans chosen by which their stored identity from rows
// (nil if absent).
func (r *resolver) setCurrent(rows []Identity, which func(*identityPlan) bool) {
	byKey := make(map[identityKey]*Identity, len(rows))
	for i := range rows {
		byKey[identityKey{appID: rows[i].AppID, openID: rows[i].OpenID}] = &rows[i]
	}
	for _, p := range r.plans {
		if which(p) {
			p.cur = byKey[p.key]
		}
	}
}

// identitiesByKey reads the identities of the plans chosen by which, through
// the unique index (app_id, openid), optionally locking them in that order.
func (r *resolver) identitiesByKey(which func(*identityPlan) bool, lock bool) ([]Identity, error) {
	appIDs, openIDs := r.keys(which)
	if len(openIDs) == 0 {
		return nil, nil
	}
	q := "SELECT " + identityColumnList + " FROM identities" + hintFor(r.tx, "ux_identities_app_openid") +
		" WHERE tenant_id = ? AND app_id IN " + marks(len(appIDs)) + " AND openid IN " + marks(len(openIDs))
	if lock {
		q += " ORDER BY app_id, openid"
		if r.mysql {
			q += " FOR UPDATE"
		}
	}
	rows, err := r.query(q, inArgs(inArgs([]any{r.tenantID}, appIDs), openIDs)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]Identity, 0, len(openIDs))
	for rows.Next() {
		var i Identity
		if err := scanIdentity(rows, &i); err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

// keys lists the apps and openids of the plans chosen by which. (app_id IN,
// openid IN) is a superset when a chunk spans apps; callers match by key.
func (r *resolver) keys(which func(*identityPlan) bool) (appIDs []int64, openIDs []string) {
	seen := map[int64]bool{}
	for _, p := range r.plans {
		if !which(p) {
			continue
		}
		if !seen[p.key.appID] {
			seen[p.key.appID] = true
			appIDs = append(appIDs, p.key.appID)
		}
		openIDs = append(openIDs, p.key.openID)
	}
	return appIDs, openIDs
}

// lockIdentities starts the transaction of a chunk that writes: it locks
// every identity of the chunk in one statement, in the unique index's order,
// reads them again under the lock and plans them afresh. Every writer takes
// its identity locks first and in this one order (customers come after, in
// (namespace, unionid) order), which keeps deadlocks rare; and whatever a
// concurrent writer did since the first read is now the starting point. A row
// another writer has inserted but not committed makes this wait, then shows up
// as known. Even a chunk of new identities takes this read: it then waits for
// writers inserting the same identities, instead of its INSERT meeting their
// rows later while holding customer locks.
//
// A chunk with nothing to write locks nothing: not writing a row read a moment
// ago is the same as having run just before whoever changes it next. Nor does
// one whose only write is the sync-pass mark: that UPDATE sets one column to a
// constant and decides nothing.
func (r *resolver) lockIdentities() error {
	all := func(*identityPlan) bool { return true }
	rows, err := r.identitiesByKey(all, true)
	if err != nil {
		return fmt.Errorf("lock identities: %w", err)
	}
	r.replan(rows, all)
	return nil
}

// adoptTaken locks the identities planned as new that exist by now, and plans
// every identity again (the others come out as before).
func (r *resolver) adoptTaken() error {
	rows, err := r.identitiesByKey((*identityPlan).isNew, true)
	if err != nil {
		return fmt.Errorf("lock identities added meanwhile: %w", err)
	}
	r.replan(rows, (*identityPlan).isNew)
	return nil
}

// replan plans again, from rows read under lock, the plans chosen by which
// (a plan whose identity is gone, erased meanwhile, becomes new again).
func (r *resolver) replan(rows []Identity, which func(*identityPlan) bool) {
	r.setCurrent(rows, which)
	for _, p := range r.plans {
		p.compute(r.tenantID, r.now)
	}
}

// writeLinkedCustomers creates or updates, in one upsert on the unique key
// (namespace, unionid), every linked customer the chunk touches, and learns
// their ids: from RETURNING where the engine has it, else by reading them
// back. Rows already there are merged monotonically (and locked), so
// concurrent writers of one customer all land.
func (r *resolver) writeLinkedCustomers() error {
	deltas := map[unionKey]*customerDelta{}
	var keys []unionKey
	add := func(k unionKey, d *customerDelta) {
		if have := deltas[k]; have != nil {
			have.merge(*d)
			return
		}
		c := *d
		c.reason = nil
		deltas[k] = &c
		keys = append(keys, k)
	}
	for _, p := range r.plans {
		switch {
		case p.dest == destLinked:
			add(p.link, p.delta)
		case p.dest == destKeep && p.delta != nil && linked(p.cur):
			add(unionKey{ns: *p.cur.OpenAccountID, unionID: *p.cur.UnionID}, p.delta)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Slice(keys, func(a, b int) bool {
		if keys[a].ns != keys[b].ns {
			return keys[a].ns < keys[b].ns
		}
		return keys[a].unionID < keys[b].unionID
	})
	ids := make(map[unionKey]int64, len(keys))
	for start := 0; start < len(keys); start += r.perStatement {
		part := keys[start:min(start+r.perStatement, len(keys))]
		b := newBulkInsert("customers", customerInsertColumns, len(part))
		for _, k := range part {
			ns, u := k.ns, k.unionID
			b.add(r.customerValues(&ns, &u, deltas[k])...)
		}
		upsert := r.upsertSuffix([]string{"open_account_id", "unionid"}, r.customerMerge(false))
		if !r.returning {
			if _, err := r.exec(b.with(upsert), b.args...); err != nil {
				return fmt.Errorf("upsert %d linked customers: %w", len(part), err)
			}
			continue
		}
		if err := r.scanCustomerIDs(ids, b.with(upsert+" RETURNING id, open_account_id, unionid"), b.args...); err != nil {
			return fmt.Errorf("upsert %d linked customers: %w", len(part), err)
		}
	}
	if !r.returning {
		if err := r.readCustomerIDs(keys, ids); err != nil {
			return err
		}
	}
	for _, p := range r.plans {
		switch {
		case p.dest == destLinked:
			id := ids[p.link]
			if id == 0 {
				return fmt.Errorf("%w: customer for a unionid in namespace %d vanished", ErrTxConflict, p.link.ns)
			}
			p.next.CustomerID = id
		case p.dest == destKeep && p.delta != nil && linked(p.cur):
			if ids[unionKey{ns: *p.cur.OpenAccountID, unionID: *p.cur.UnionID}] != p.cur.CustomerID {
				return fmt.Errorf("%w: customer %d replaced", ErrTxConflict, p.cur.CustomerID)
			}
		}
	}
	return nil
}

// readCustomerIDs reads back (locking) the ids of linked customers (MySQL,
// which has no INSERT … RETURNING).
func (r *resolver) readCustomerIDs(keys []unionKey, ids map[unionKey]int64) error {
	nsSet := map[int64]bool{}
	var nss []int64
	unionIDs := make([]string, 0, len(keys))
	for _, k := range keys {
		if !nsSet[k.ns] {
			nsSet[k.ns] = true
			nss = append(nss, k.ns)
		}
		unionIDs = append(unionIDs, k.unionID)
	}
	q := "SELECT id, open_account_id, unionid FROM customers" + hintFor(r.tx, "ux_customers_namespace_unionid") +
		" WHERE tenant_id = ? AND open_account_id IN " + marks(len(nss)) + " AND unionid IN " + marks(len(unionIDs)) +
		" ORDER BY open_account_id, unionid FOR UPDATE"
	if err := r.scanCustomerIDs(ids, q, inArgs(inArgs([]any{r.tenantID}, nss), unionIDs)...); err != nil {
		return fmt.Errorf("read linked customers: %w", err)
	}
	return nil
}

func (r *resolver) scanCustomerIDs(ids map[unionKey]int64, q string, args ...any) error {
	rows, err := r.query(q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var k unionKey
		if err := rows.Scan(&id, &k.ns, &k.unionID); err != nil {
			return err
		}
		ids[k] = id
	}
	return rows.Err()
}

// writeKeptUnlinkedCustomers updates unlinked customers whose identity stays:
// an upsert on the primary key merging like the linked ones. The identity is
// locked, and nobody deletes an unlinked customer without moving or deleting
// its identity, so the row is there and the insert half never runs.
func (r *resolver) writeKeptUnlinkedCustomers() error {
	var plans []*identityPlan
	for _, p := range r.plans {
		if p.dest == destKeep && p.delta != nil && !linked(p.cur) {
			plans = append(plans, p)
		}
	}
	if len(plans) == 0 {
		return nil
	}
	sort.Slice(plans, func(a, b int) bool { return plans[a].cur.CustomerID < plans[b].cur.CustomerID })
	upsert := r.upsertSuffix([]string{"id"}, r.customerMerge(true))
	for start := 0; start < len(plans); start += r.perStatement {
		part := plans[start:min(start+r.perStatement, len(plans))]
		b := newBulkInsert("customers", append([]string{"id"}, customerInsertColumns...), len(part))
		for _, p := range part {
			b.add(append([]any{p.cur.CustomerID}, r.customerValues(nil, nil, p.delta)...)...)
		}
		if _, err := r.exec(b.with(upsert), b.args...); err != nil {
			return fmt.Errorf("update %d unlinked customers: %w", len(part), err)
		}
	}
	return nil
}

// insertUnlinkedCustomers creates one customer per identity without a UnionID:
// nothing can collide with them, so a plain multi-row insert.
func (r *resolver) insertUnlinkedCustomers() error {
	var plans []*identityPlan
	for _, p := range r.plans {
		if p.dest == destNewUnlinked {
			plans = append(plans, p)
		}
	}
	for start := 0; start < len(plans); start += r.perStatement {
		part := plans[start:min(start+r.perStatement, len(plans))]
		b := newBulkInsert("customers", customerInsertColumns, len(part))
		for _, p := range part {
			b.add(r.customerValues(nil, nil, p.delta)...)
		}
		ids, err := r.insertReturningIDs(b)
		if err != nil {
			return fmt.Errorf("insert %d unlinked customers: %w", len(part), err)
		}
		for i, p := range part {
			p.next.CustomerID = ids[i]
		}
	}
	return nil
}

// insertIdentities adds the new identities with a plain insert on the unique
// key (app_id, openid). If another writer added one since the locking read,
// the key refuses it (after waiting for that writer to commit):
// errIdentityTaken, and run rolls back to its savepoint and adopts the row.
// (Not INSERT IGNORE or ON DUPLICATE KEY: a skipped row would have to be found
// by reading back, and with MariaDB's RETURNING it even counts as affected.)
func (r *resolver) insertIdentities() error {
	var plans []*identityPlan
	for _, p := range r.plans {
		if p.isNew() {
			plans = append(plans, p)
		}
	}
	for start := 0; start < len(plans); start += r.perStatement {
		part := plans[start:min(start+r.perStatement, len(plans))]
		b := newBulkInsert("identities", identityInsertColumns, len(part))
		for _, p := range part {
			b.add(identityValues(&p.next)...)
		}
		ids, err := r.insertReturningIDs(b)
		if err != nil {
			if isDuplicateKey(err) {
				return errIdentityTaken
			}
			return fmt.Errorf("insert %d identities: %w", len(part), err)
		}
		for i, p := range part {
			p.next.ID = ids[i]
		}
	}
	return nil
}

// identityRewriteColumns are what a rewrite of a known identity sets.
var identityRewriteColumns = []string{"customer_id", "unionid", "open_account_id", "unlinked_reason", "subscribed",
	"subscribe_time", "subscribe_scene", "unsubscribed_at", "nickname", "avatar_url", "profile_at",
	"first_seen_at", "last_seen_at", "last_sync_pass", "updated_at"}

// rewriteIdentities writes the changed known identities (locked above) with
// one upsert on the primary key: a multi-row UPDATE in one statement.
func (r *resolver) rewriteIdentities() error {
	var plans []*identityPlan
	for _, p := range r.plans {
		if p.cur != nil && p.writeRow {
			plans = append(plans, p)
		}
	}
	if len(plans) == 0 {
		return nil
	}
	sort.Slice(plans, func(a, b int) bool { return plans[a].cur.ID < plans[b].cur.ID })
	set := make([]string, len(identityRewriteColumns))
	for i, c := range identityRewriteColumns {
		set[i] = c + " = " + r.in(c)
	}
	upsert := r.upsertSuffix([]string{"id"}, set)
	for start := 0; start < len(plans); start += r.perStatement {
		part := plans[start:min(start+r.perStatement, len(plans))]
		b := newBulkInsert("identities", append([]string{"id"}, identityInsertColumns...), len(part))
		for _, p := range part {
			b.add(append([]any{p.cur.ID}, identityValues(&p.next)...)...)
		}
		if _, err := r.exec(b.with(upsert), b.args...); err != nil {
			return fmt.Errorf("update %d identities: %w", len(part), err)
		}
	}
	return nil
}

// markPass records that a sync pass listed identities it found unchanged:
// one narrow UPDATE per pass number (usually one), no updated_at.
func (r *resolver) markPass() error {
	byPass := map[int64][]int64{}
	for _, p := range r.plans {
		if p.markPass {
			byPass[p.next.LastSyncPass] = append(byPass[p.next.LastSyncPass], p.cur.ID)
		}
	}
	for pass, ids := range byPass {
		sortIDs(ids)
		_, err := r.exec("UPDATE identities SET last_sync_pass = ? WHERE tenant_id = ? AND id IN "+marks(len(ids)),
			inArgs([]any{pass, r.tenantID}, ids)...)
		if err != nil {
			return fmt.Errorf("mark %d identities seen in pass %d: %w", len(ids), pass, err)
		}
	}
	return nil
}

// dropEmptiedCustomers deletes the customers identities moved away from, once
// nothing is left on them, and hands their timeline to where the identity went.
func (r *resolver) dropEmptiedCustomers() error {
	to := map[int64]int64{}
	var from []int64
	for _, p := range r.plans {
		if p.fromEmpty != 0 {
			if _, dup := to[p.fromEmpty]; !dup {
				from = append(from, p.fromEmpty)
			}
			to[p.fromEmpty] = p.next.CustomerID
		}
	}
	if len(from) == 0 {
		return nil
	}
	sortIDs(from)
	var locked []int64
	err := lockingVia(r.tx, r.tenantID, "customers", "PRIMARY").Where("id IN ?", from).Order("id").
		Pluck("id", &locked).Error
	if err != nil {
		return fmt.Errorf("lock emptied customers: %w", err)
	}
	var used []int64
	err = lockingVia(r.tx, r.tenantID, "identities", "ix_identities_tenant_customer").
		Where("customer_id IN ?", locked).Pluck("customer_id", &used).Error
	if err != nil {
		return fmt.Errorf("check emptied customers: %w", err)
	}
	inUse := map[int64]bool{}
	for _, id := range used {
		inUse[id] = true
	}
	var empty, kept []int64
	for _, id := range locked {
		if inUse[id] {
			kept = append(kept, id)
		} else {
			empty = append(empty, id)
		}
	}
	// A linked customer that lost one identity of several (its app moved to
	// another open-platform account): rare, so its masks are simply recomputed.
	if err := RefreshCustomerMasks(r.tx, r.tenantID, kept); err != nil {
		return err
	}
	for start := 0; start < len(empty); start += 200 {
		part := empty[start:min(start+200, len(empty))]
		var q strings.Builder
		args := make([]any, 0, 2*len(part)+2)
		q.WriteString("UPDATE customer_events SET customer_id = CASE customer_id")
		for _, id := range part {
			q.WriteString(" WHEN ? THEN ?")
			args = append(args, id, to[id])
		}
		q.WriteString(" END WHERE tenant_id = ? AND customer_id IN ?")
		args = append(args, r.tenantID, part)
		if err := r.tx.Exec(q.String(), args...).Error; err != nil {
			return fmt.Errorf("move timelines of %d merged customers: %w", len(part), err)
		}
		if err := r.tx.Exec("DELETE FROM customers WHERE tenant_id = ? AND id IN ?", r.tenantID, part).Error; err != nil {
			return fmt.Errorf("delete %d emptied customers: %w", len(part), err)
		}
	}
	return nil
}

var eventColumns = []string{"tenant_id", "customer_id", "kind", "app_id", "openid", "detail", "occurred_at", "created_at"}

func (r *resolver) insertEvents() error {
	var events []*CustomerEvent
	var customers []int64
	for _, p := range r.plans {
		for i := range p.events {
			events = append(events, &p.events[i])
			customers = append(customers, p.next.CustomerID)
		}
	}
	for start := 0; start < len(events); start += r.perStatement {
		end := min(start+r.perStatement, len(events))
		b := newBulkInsert("customer_events", eventColumns, end-start)
		for i := start; i < end; i++ {
			e := events[i]
			b.add(r.tenantID, customers[i], e.Kind, e.AppID, e.OpenID, e.Detail, e.OccurredAt, r.now)
		}
		if _, err := r.exec(b.with(""), b.args...); err != nil {
			return fmt.Errorf("insert %d timeline events: %w", end-start, err)
		}
	}
	return nil
}

func sortIDs(ids []int64) { sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] }) }
