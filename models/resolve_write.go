package models

import (
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
	steps := []func() error{
		r.lockChanging,
		r.writeLinkedCustomers,
		r.writeKeptUnlinkedCustomers,
		r.insertUnlinkedCustomers,
		r.insertIdentities,
		r.rewriteIdentities,
		r.markPass,
		r.dropEmptiedCustomers,
		r.insertEvents,
	}
	for _, step := range steps {
		if err := step(); err != nil {
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
FROM identities i LEFT JOIN customers c ON c.id = i.customer_id
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

// lockChanging locks, in id order, the known identities this chunk will
// change (or whose customer it will change), and checks that nobody changed
// them since they were read. If somebody did, the chunk runs again.
func (r *resolver) lockChanging() error {
	var ids []int64
	want := map[int64]*seenIdentity{}
	for _, p := range r.plans {
		if p.cur != nil && (p.writeRow || p.delta != nil) {
			ids = append(ids, p.cur.ID)
			want[p.cur.ID] = p.cur
		}
	}
	if len(ids) == 0 {
		return nil
	}
	sortIDs(ids)
	var rows []struct {
		ID           int64
		CustomerID   int64
		LastSyncPass int64
		UpdatedAt    time.Time
	}
	err := r.scoped(&Identity{}).Select("id", "customer_id", "last_sync_pass", "updated_at").
		Where("id IN ?", ids).Order("id").Clauses(clause.Locking{Strength: "UPDATE"}).Find(&rows).Error
	if err != nil {
		return fmt.Errorf("lock identities: %w", err)
	}
	if len(rows) != len(ids) {
		return fmt.Errorf("%w: %d identities gone", ErrTxConflict, len(ids)-len(rows))
	}
	for _, row := range rows {
		cur := want[row.ID]
		if row.CustomerID != cur.CustomerID || !row.UpdatedAt.Equal(cur.UpdatedAt) {
			return fmt.Errorf("%w: identity %d", ErrTxConflict, row.ID)
		}
		cur.LastSyncPass = row.LastSyncPass // marked by a pass meanwhile: keep it
	}
	for _, p := range r.plans {
		if p.cur != nil && p.writeRow && !p.hasPass() {
			p.next.LastSyncPass = p.cur.LastSyncPass
		}
	}
	return nil
}

func (p *identityPlan) hasPass() bool {
	for _, o := range p.obs {
		if o.SyncPass != 0 {
			return true
		}
	}
	return false
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
	err := r.scoped(&Customer{}).Select("id", "open_account_id", "unionid").
		Where("open_account_id IN ? AND unionid IN ?", nss, unionIDs).
		Clauses(clause.Locking{Strength: "UPDATE"}).Find(&got).Error
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

// insertIdentities adds the new identities. Another writer may have added one
// since the read: the insert then skips it, the count comes up short, and the
// chunk runs again (rolling back the customers made for it).
func (r *resolver) insertIdentities() error {
	var plans []*identityPlan
	var rows []Identity
	for _, p := range r.plans {
		if p.isNew() {
			plans = append(plans, p)
			rows = append(rows, p.next)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	skip := clause.OnConflict{Columns: []clause.Column{{Name: "app_id"}, {Name: "openid"}}, DoNothing: true}
	for start := 0; start < len(rows); start += insertChunk {
		part := rows[start:min(start+insertChunk, len(rows))]
		res := r.tx.Clauses(skip).Create(&part)
		if res.Error != nil {
			return fmt.Errorf("insert %d identities: %w", len(part), res.Error)
		}
		if res.RowsAffected != int64(len(part)) {
			return fmt.Errorf("%w: %d of %d identities were added meanwhile", ErrTxConflict, int64(len(part))-res.RowsAffected, len(part))
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
	err := r.scoped(&Customer{}).Where("id IN ?", from).Order("id").
		Clauses(clause.Locking{Strength: "UPDATE"}).Pluck("id", &locked).Error
	if err != nil {
		return fmt.Errorf("lock emptied customers: %w", err)
	}
	var used []int64
	err = r.scoped(&Identity{}).Where("customer_id IN ?", locked).
		Clauses(clause.Locking{Strength: "UPDATE"}).Pluck("customer_id", &used).Error
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

func sortIDs(ids []int64) { sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] }) }
