package models

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// resolver runs one chunk of Resolve inside one transaction attempt.
type resolver struct {
	tx       *gorm.DB
	tenantID int64
	now      time.Time
	mysql    bool
	apps     map[int64]resolveApp
	plans    []*identityPlan
}

// run reads, plans and writes one chunk, then fills its outcomes. A round trip
// is spent only where there is something to do: a chunk of known, unchanged
// identities costs one SELECT (and one UPDATE of last_sync_pass in a new pass).
func (r *resolver) run(obs []Observation, chunk []int, out []Outcome) error {
	r.plans = planObservations(obs, chunk, r.apps)
	if err := r.readIdentities(); err != nil {
		return err
	}
	for _, p := range r.plans {
		p.compute(r.tenantID, r.now)
	}
	if err := r.lockIdentities(); err != nil {
		return err
	}
	// New identities may be added by another writer between the read and the
	// insert. Rather than start over (and race again), roll back to before the
	// writes, lock the identities that now exist, plan them as known, and write
	// again: each round turns the colliding ones into locked, known rows, so it
	// converges (in one extra round, nearly always).
	for round := 0; ; round++ {
		savepoint := r.countNew() > 0
		if savepoint {
			if err := r.tx.SavePoint("resolve_writes").Error; err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
		}
		err := r.write()
		if err == nil {
			break
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
	for _, p := range r.plans {
		for _, i := range p.outAt {
			out[i] = Outcome{Change: p.change, CustomerID: p.next.CustomerID, IdentityID: p.next.ID}
		}
	}
	return nil
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

func (r *resolver) countNew() int {
	n := 0
	for _, p := range r.plans {
		if p.isNew() {
			n++
		}
	}
	return n
}

// adoptTaken locks the identities planned as new that exist by now, and plans
// every identity again (the others come out as before).
func (r *resolver) adoptTaken() error {
	appIDs, openIDs := r.keys((*identityPlan).isNew)
	var rows []Identity
	err := lockingVia(r.tx, r.tenantID, "identities", "ux_identities_app_openid").
		Where("app_id IN ? AND openid IN ?", appIDs, openIDs).Order("app_id, openid").Find(&rows).Error
	if err != nil {
		return fmt.Errorf("lock identities added meanwhile: %w", err)
	}
	return r.replan(rows, (*identityPlan).isNew)
}

func (r *resolver) scoped(model any) *gorm.DB {
	return r.tx.Model(model).Scopes(ForTenant(r.tenantID))
}

func (r *resolver) readIdentities() error {
	apps := map[int64]bool{}
	var appIDs []int64
	openIDs := make([]string, 0, len(r.plans))
	for _, p := range r.plans {
		if !apps[p.key.appID] {
			apps[p.key.appID] = true
			appIDs = append(appIDs, p.key.appID)
		}
		openIDs = append(openIDs, p.key.openID)
	}
	var rows []seenIdentity
	// One query for the chunk: (app_id IN, openid IN) is a superset when the
	// chunk spans apps, trimmed below; the unique index serves it either way.
	err := r.tx.Raw(`SELECT i.*, c.id AS c_id, c.open_account_id AS c_open_account_id, c.unlinked_reason AS c_unlinked_reason
FROM `+forceIndex(r.tx, "identities i", "ux_identities_app_openid")+` LEFT JOIN customers c ON c.id = i.customer_id
WHERE i.tenant_id = ? AND i.app_id IN ? AND i.openid IN ?`, r.tenantID, appIDs, openIDs).Scan(&rows).Error
	if err != nil {
		return fmt.Errorf("read identities: %w", err)
	}
	byKey := make(map[identityKey]*seenIdentity, len(rows))
	for i := range rows {
		byKey[identityKey{appID: rows[i].AppID, openID: rows[i].OpenID}] = &rows[i]
	}
	for _, p := range r.plans {
		p.cur = byKey[p.key]
	}
	return nil
}

// lockIdentities runs when the chunk will write anything: it locks every
// identity of the chunk in one statement, in the unique index's order, reads
// them again under the lock and plans them afresh. Every writer takes its
// identity locks first and in this one order (customers come after, in
// (namespace, unionid) order), which keeps deadlocks rare; and whatever a
// concurrent writer did before is now the starting point. A row another writer
// has inserted but not committed makes this wait, then shows up as known.
//
// A chunk with nothing to write locks nothing: not writing a row read a moment
// ago is the same as having run just before whoever changes it next.
func (r *resolver) lockIdentities() error {
	writes := false
	for _, p := range r.plans {
		writes = writes || p.isNew() || p.writeRow || p.delta != nil || p.markPass
	}
	if !writes {
		return nil
	}
	// Even when all are new: the read then waits for writers that are
	// inserting the same identities, instead of our INSERT meeting their rows
	// later, while holding other locks.
	appIDs, openIDs := r.keys(func(*identityPlan) bool { return true })
	var rows []Identity
	err := lockingVia(r.tx, r.tenantID, "identities", "ux_identities_app_openid").
		Where("app_id IN ? AND openid IN ?", appIDs, openIDs).Order("app_id, openid").Find(&rows).Error
	if err != nil {
		return fmt.Errorf("lock identities: %w", err)
	}
	return r.replan(rows, func(*identityPlan) bool { return true })
}

// replan plans again, from rows read under lock, the plans chosen by which.
func (r *resolver) replan(rows []Identity, which func(*identityPlan) bool) error {
	fresh, err := r.withCustomers(rows)
	if err != nil {
		return err
	}
	byKey := make(map[identityKey]*seenIdentity, len(fresh))
	for _, s := range fresh {
		byKey[identityKey{appID: s.AppID, openID: s.OpenID}] = s
	}
	for _, p := range r.plans {
		if which(p) {
			p.cur = byKey[p.key] // nil if erased meanwhile: the identity is new again
		}
		p.compute(r.tenantID, r.now)
	}
	return nil
}

// keys lists the apps and openids of the plans chosen by which.
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

// withCustomers adds to locked identity rows what planning needs of their
// customers. A locked identity's customer cannot go away or change namespace
// meanwhile (that takes the identity's lock), so a plain read is enough.
func (r *resolver) withCustomers(rows []Identity) ([]*seenIdentity, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	custIDs := make([]int64, 0, len(rows))
	for _, row := range rows {
		custIDs = append(custIDs, row.CustomerID)
	}
	var custs []struct {
		ID             int64
		OpenAccountID  *int64
		UnlinkedReason *string
	}
	if err := r.scoped(&Customer{}).Select("id", "open_account_id", "unlinked_reason").
		Where("id IN ?", custIDs).Find(&custs).Error; err != nil {
		return nil, fmt.Errorf("read customers of locked identities: %w", err)
	}
	out := make([]*seenIdentity, len(rows))
	onCustomer := make(map[int64][]*seenIdentity, len(rows))
	for i := range rows {
		out[i] = &seenIdentity{Identity: rows[i]}
		onCustomer[rows[i].CustomerID] = append(onCustomer[rows[i].CustomerID], out[i])
	}
	for _, c := range custs {
		for _, s := range onCustomer[c.ID] {
			id := c.ID
			s.CustomerRowID, s.CustomerNS, s.CustomerReason = &id, c.OpenAccountID, c.UnlinkedReason
		}
	}
	return out, nil
}

// writeLinkedCustomers creates or updates, in one upsert on the unique key
// (namespace, unionid), every linked customer the chunk touches, then reads
// their ids back (locking them). Rows already there are merged monotonically,
// so concurrent writers of one customer all land.
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
		case p.dest == destKeep && p.delta != nil && p.cur.customerLinked():
			add(unionKey{ns: *p.cur.CustomerNS, unionID: *p.cur.UnionID}, p.delta)
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
	rows := make([]Customer, len(keys))
	for i, k := range keys {
		ns, u := k.ns, k.unionID
		rows[i] = r.customerRow(deltas[k])
		rows[i].OpenAccountID, rows[i].UnionID = &ns, &u
	}
	upsert := clause.OnConflict{
		Columns:   []clause.Column{{Name: "open_account_id"}, {Name: "unionid"}},
		DoUpdates: r.customerMerge(false),
	}
	for start := 0; start < len(rows); start += insertChunk {
		part := rows[start:min(start+insertChunk, len(rows))]
		if err := r.tx.Clauses(upsert).Create(&part).Error; err != nil {
			return fmt.Errorf("upsert %d linked customers: %w", len(part), err)
		}
	}

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
	var got []Customer
	err := lockingVia(r.tx, r.tenantID, "customers", "ux_customers_namespace_unionid").
		Select("id", "open_account_id", "unionid").Where("open_account_id IN ? AND unionid IN ?", nss, unionIDs).
		Order("open_account_id, unionid").Find(&got).Error
	if err != nil {
		return fmt.Errorf("read linked customers: %w", err)
	}
	ids := make(map[unionKey]int64, len(got))
	for _, c := range got {
		ids[unionKey{ns: *c.OpenAccountID, unionID: *c.UnionID}] = c.ID
	}
	for _, p := range r.plans {
		switch {
		case p.dest == destLinked:
			id := ids[p.link]
			if id == 0 {
				return fmt.Errorf("%w: customer for unionid in namespace %d vanished", ErrTxConflict, p.link.ns)
			}
			p.next.CustomerID = id
		case p.dest == destKeep && p.delta != nil && p.cur.customerLinked():
			if ids[unionKey{ns: *p.cur.CustomerNS, unionID: *p.cur.UnionID}] != p.cur.CustomerID {
				return fmt.Errorf("%w: customer %d replaced", ErrTxConflict, p.cur.CustomerID)
			}
		}
	}
	return nil
}

// writeKeptUnlinkedCustomers updates unlinked customers whose identity stays:
// an upsert on the primary key merging like the linked ones. The identity is
// locked, and nobody deletes an unlinked customer without moving or deleting
// its identity, so the row is there and the insert half never runs.
func (r *resolver) writeKeptUnlinkedCustomers() error {
	var rows []Customer
	for _, p := range r.plans {
		if p.dest == destKeep && p.delta != nil && !p.cur.customerLinked() {
			c := r.customerRow(p.delta)
			c.ID = p.cur.CustomerID
			rows = append(rows, c)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].ID < rows[b].ID })
	upsert := clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoUpdates: r.customerMerge(true)}
	for start := 0; start < len(rows); start += insertChunk {
		part := rows[start:min(start+insertChunk, len(rows))]
		if err := r.tx.Clauses(upsert).Create(&part).Error; err != nil {
			return fmt.Errorf("update %d unlinked customers: %w", len(part), err)
		}
	}
	return nil
}

// insertUnlinkedCustomers creates one customer per identity without a UnionID.
// Nothing can collide with them, so a plain multi-row insert; gorm numbers the
// rows from the first insert id (MySQL hands out consecutive ids to one
// statement with innodb_autoinc_lock_mode 0 or 1, MariaDB's default), and on
// MySQL the numbering is checked before anything points at it.
func (r *resolver) insertUnlinkedCustomers() error {
	var plans []*identityPlan
	var rows []Customer
	for _, p := range r.plans {
		if p.dest == destNewUnlinked {
			c := r.customerRow(p.delta)
			plans = append(plans, p)
			rows = append(rows, c)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	for start := 0; start < len(rows); start += insertChunk {
		part := rows[start:min(start+insertChunk, len(rows))]
		if err := r.tx.Create(&part).Error; err != nil {
			return fmt.Errorf("insert %d unlinked customers: %w", len(part), err)
		}
	}
	ids := make([]int64, len(rows))
	for i, c := range rows {
		if c.ID == 0 {
			return fmt.Errorf("models: insert unlinked customers: no id assigned")
		}
		ids[i] = c.ID
		plans[i].next.CustomerID = c.ID
	}
	if r.mysql {
		var n int64
		err := r.scoped(&Customer{}).Where("id IN ? AND unionid IS NULL AND created_at = ?", ids, r.now).Count(&n).Error
		if err != nil {
			return fmt.Errorf("check unlinked customer ids: %w", err)
		}
		if n != int64(len(ids)) {
			return fmt.Errorf("models: %d new customers got non-consecutive ids (innodb_autoinc_lock_mode must be 0 or 1)", len(ids))
		}
	}
	return nil
}

// insertIdentities adds the new identities with a plain insert on the unique
// key (app_id, openid). If another writer added one since the read, the key
// refuses it (after waiting for that writer to commit): errIdentityTaken, and
// run rolls the writes back to its savepoint and adopts the identity.
// (Not ON DUPLICATE KEY: with MariaDB's RETURNING, which gorm uses, a skipped
// row still counts as affected, so the collision would go unnoticed.)
func (r *resolver) insertIdentities() error {
	var plans []*identityPlan
	var rows []Identity
	for _, p := range r.plans {
		if p.isNew() {
			plans = append(plans, p)
			rows = append(rows, p.next)
		}
	}
	for start := 0; start < len(rows); start += insertChunk {
		part := rows[start:min(start+insertChunk, len(rows))]
		if err := r.tx.Create(&part).Error; err != nil {
			if isDuplicateKey(err) {
				return errIdentityTaken
			}
			return fmt.Errorf("insert %d identities: %w", len(part), err)
		}
		for i := range part {
			plans[start+i].next.ID = part[i].ID
		}
	}
	return nil
}

// identityColumns are what a rewrite of a known identity sets.
var identityColumns = []string{"customer_id", "unionid", "subscribed", "subscribe_time", "subscribe_scene",
	"unsubscribed_at", "nickname", "avatar_url", "profile_at", "first_seen_at", "last_seen_at", "last_sync_pass", "updated_at"}

// rewriteIdentities writes the changed known identities (locked above) with
// one upsert on the primary key: a multi-row UPDATE in one statement.
func (r *resolver) rewriteIdentities() error {
	var rows []Identity
	for _, p := range r.plans {
		if p.cur != nil && p.writeRow {
			rows = append(rows, p.next)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].ID < rows[b].ID })
	upsert := clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoUpdates: clause.AssignmentColumns(identityColumns)}
	for start := 0; start < len(rows); start += insertChunk {
		part := rows[start:min(start+insertChunk, len(rows))]
		if err := r.tx.Clauses(upsert).Create(&part).Error; err != nil {
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
		err := r.scoped(&Identity{}).Where("id IN ?", ids).UpdateColumn("last_sync_pass", pass).Error
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
	var empty []int64
	for _, id := range locked {
		if !inUse[id] {
			empty = append(empty, id)
		}
	}
	if len(empty) == 0 {
		return nil
	}
	for start := 0; start < len(empty); start += 200 {
		part := empty[start:min(start+200, len(empty))]
		var sql strings.Builder
		args := make([]any, 0, 2*len(part)+2)
		sql.WriteString("UPDATE customer_events SET customer_id = CASE customer_id")
		for _, id := range part {
			sql.WriteString(" WHEN ? THEN ?")
			args = append(args, id, to[id])
		}
		sql.WriteString(" END WHERE tenant_id = ? AND customer_id IN ?")
		args = append(args, r.tenantID, part)
		if err := r.tx.Exec(sql.String(), args...).Error; err != nil {
			return fmt.Errorf("move timelines of %d merged customers: %w", len(part), err)
		}
	}
	if err := r.scoped(&Customer{}).Where("id IN ?", empty).Delete(&Customer{}).Error; err != nil {
		return fmt.Errorf("delete %d emptied customers: %w", len(empty), err)
	}
	return nil
}

func (r *resolver) insertEvents() error {
	var rows []CustomerEvent
	for _, p := range r.plans {
		for _, e := range p.events {
			e.TenantID, e.CustomerID, e.CreatedAt = r.tenantID, p.next.CustomerID, r.now
			rows = append(rows, e)
		}
	}
	for start := 0; start < len(rows); start += insertChunk {
		part := rows[start:min(start+insertChunk, len(rows))]
		if err := r.tx.Create(&part).Error; err != nil {
			return fmt.Errorf("insert %d timeline events: %w", len(part), err)
		}
	}
	return nil
}

// customerRow is a new customer holding a delta (the insert half of upserts).
func (r *resolver) customerRow(d *customerDelta) Customer {
	return Customer{TenantID: r.tenantID, UnlinkedReason: d.reason, Nickname: d.nickname, AvatarURL: d.avatar,
		ProfileAt: d.profileAt, FirstSeenAt: d.firstSeen, LastSeenAt: d.lastSeen, CreatedAt: r.now, UpdatedAt: r.now}
}

// customerMerge is the update half of the customer upserts: each column moves
// only forward, so concurrent writers of one customer commute. MySQL applies
// the assignments left to right (later ones see earlier results), so
// profile_at comes after the columns that compare against it.
func (r *resolver) customerMerge(withReason bool) []clause.Assignment {
	in := func(col string) string {
		if r.mysql {
			return "VALUES(" + col + ")"
		}
		return "excluded." + col
	}
	newer := fmt.Sprintf("%s IS NOT NULL AND (profile_at IS NULL OR %s >= profile_at)", in("profile_at"), in("profile_at"))
	set := func(col, sql string) clause.Assignment {
		return clause.Assignment{Column: clause.Column{Name: col}, Value: clause.Expr{SQL: sql}}
	}
	out := []clause.Assignment{
		set("nickname", fmt.Sprintf("CASE WHEN %s <> '' AND %s THEN %s ELSE nickname END", in("nickname"), newer, in("nickname"))),
		set("avatar_url", fmt.Sprintf("CASE WHEN %s <> '' AND %s THEN %s ELSE avatar_url END", in("avatar_url"), newer, in("avatar_url"))),
		set("profile_at", fmt.Sprintf("CASE WHEN %s THEN %s ELSE profile_at END", newer, in("profile_at"))),
		set("first_seen_at", fmt.Sprintf("CASE WHEN %s < first_seen_at THEN %s ELSE first_seen_at END", in("first_seen_at"), in("first_seen_at"))),
		set("last_seen_at", fmt.Sprintf("CASE WHEN %s > last_seen_at THEN %s ELSE last_seen_at END", in("last_seen_at"), in("last_seen_at"))),
	}
	if withReason {
		out = append(out, set("unlinked_reason", fmt.Sprintf("CASE WHEN unionid IS NULL AND %s IS NOT NULL THEN %s ELSE unlinked_reason END", in("unlinked_reason"), in("unlinked_reason"))))
	}
	return append(out, set("updated_at", in("updated_at")))
}

// lockingVia starts a SELECT … FOR UPDATE on one of the tenant's tables that
// walks the named index. A locking read locks every row its plan walks, in
// the plan's order, matching or not; on small tables MySQL's optimiser likes a
// full scan, which would lock everything in primary-key order and turn every
// concurrent writer into a deadlock candidate. So on MySQL the index is forced
// (SQLite has no row locks: its writers queue for the file).
func lockingVia(db *gorm.DB, tenantID int64, table, index string) *gorm.DB {
	q := db.Table(table) // names the table for the tenant guard and column qualifiers
	if Dialect(db) == DialectMySQL {
		q.Statement.TableExpr = &clause.Expr{SQL: "`" + table + "` FORCE INDEX (" + index + ")"}
	}
	return q.Scopes(ForTenant(tenantID)).Clauses(clause.Locking{Strength: "UPDATE"})
}

// forceIndex is table (and alias) with an index hint on MySQL, as is elsewhere.
func forceIndex(db *gorm.DB, table, index string) string {
	if Dialect(db) != DialectMySQL {
		return table
	}
	return table + " FORCE INDEX (" + index + ")"
}

func sortIDs(ids []int64) { sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] }) }
