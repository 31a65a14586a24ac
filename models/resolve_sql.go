package models

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// The statements of the batch path are built by hand and sent straight to the
// transaction's connection. gorm's reflective Create and Scan cost as much CPU
// as MySQL spent on a thousand rows, and even tx.Exec re-parses every one of a
// bulk insert's ~20,000 placeholders and has the tenant guard regex-scan the
// text (measured: a 1,000-row identities INSERT took 159 ms through tx.Exec,
// 111 ms on the connection, on the loaded 2-core test machine). They are
// tenant-scoped by construction instead: bulkInsert's column lists start with
// tenant_id, every read and update here has "tenant_id = ?" as its first test,
// and Resolve refuses a tenant id ≤ 0 before any of them runs.

// exec and query run resolve's statements on its transaction's connection,
// below gorm's callbacks (its bulk statements are built by hand), so they
// apply the tenant guard's check of raw SQL themselves.
func (r *resolver) exec(q string, args ...any) (sql.Result, error) {
	if err := guardRaw(q); err != nil {
		return nil, err
	}
	return r.tx.Statement.ConnPool.ExecContext(r.tx.Statement.Context, q, args...)
}

func (r *resolver) query(q string, args ...any) (*sql.Rows, error) {
	if err := guardRaw(q); err != nil {
		return nil, err
	}
	return r.tx.Statement.ConnPool.QueryContext(r.tx.Statement.Context, q, args...)
}

// marks is "(?,?,…)" with n marks, for an IN list.
func marks(n int) string {
	if n == 0 {
		return "(NULL)"
	}
	return "(" + strings.Repeat("?,", n-1) + "?)"
}

// inArgs appends values to args, for an IN list.
func inArgs[T any](args []any, values []T) []any {
	for _, v := range values {
		args = append(args, v)
	}
	return args
}

// bulkInsert builds one multi-row INSERT.
type bulkInsert struct {
	sql  strings.Builder
	args []any
	row  string // "(?,?,…)"
	n    int
}

func newBulkInsert(table string, columns []string, rows int) *bulkInsert {
	if columns[0] != "tenant_id" && (columns[0] != "id" || columns[1] != "tenant_id") {
		panic("models: bulkInsert into " + table + " must set tenant_id")
	}
	b := &bulkInsert{args: make([]any, 0, rows*len(columns))}
	b.sql.Grow(64 + len(table) + 16*len(columns) + rows*(2*len(columns)+2))
	b.sql.WriteString("INSERT INTO ")
	b.sql.WriteString(table)
	b.sql.WriteString(" (")
	b.sql.WriteString(strings.Join(columns, ", "))
	b.sql.WriteString(") VALUES ")
	b.row = "(" + strings.Repeat("?,", len(columns)-1) + "?)"
	return b
}

func (b *bulkInsert) add(values ...any) {
	if b.n > 0 {
		b.sql.WriteByte(',')
	}
	b.sql.WriteString(b.row)
	b.args = append(b.args, values...)
	b.n++
}

// String is the statement with suffix (ON DUPLICATE KEY …, RETURNING …) added.
func (b *bulkInsert) with(suffix string) string {
	if suffix == "" {
		return b.sql.String()
	}
	return b.sql.String() + " " + suffix
}

// exec runs the insert and returns the id of every row, in order. Ids come
// from LastInsertId: one multi-row INSERT gets consecutive ids on SQLite
// (writers queue; the last id is reported) and on MySQL with
// innodb_autoinc_lock_mode 0 or 1, MariaDB's default (the first id is
// reported); checkConsecutiveIDs refuses to run otherwise.
func (r *resolver) insertReturningIDs(b *bulkInsert) ([]int64, error) {
	if b.n == 0 {
		return nil, nil
	}
	if err := r.checkConsecutiveIDs(); err != nil {
		return nil, err
	}
	res, err := r.exec(b.with(""), b.args...)
	if err != nil {
		return nil, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, err
	}
	if !r.mysql {
		id -= int64(b.n - 1)
	}
	ids := make([]int64, b.n)
	for i := range ids {
		ids[i] = id + int64(i)
	}
	return ids, nil
}

// checkConsecutiveIDs makes sure MySQL numbers a multi-row insert without
// gaps or interleaving (asked once per chunk that inserts).
func (r *resolver) checkConsecutiveIDs() error {
	if !r.mysql || r.idsChecked {
		return nil
	}
	var mode int
	if err := r.tx.Raw("SELECT @@innodb_autoinc_lock_mode").Scan(&mode).Error; err != nil {
		return fmt.Errorf("read innodb_autoinc_lock_mode: %w", err)
	}
	if mode > 1 {
		return fmt.Errorf("models: innodb_autoinc_lock_mode is %d; identity resolution needs 0 or 1 (MariaDB's default) so that a multi-row insert gets consecutive ids", mode)
	}
	r.idsChecked = true
	return nil
}

// upsertSuffix is the ON DUPLICATE KEY UPDATE (MySQL) or ON CONFLICT … DO
// UPDATE SET (SQLite) clause for the given assignments "col = expr", where
// expr may use in(col) for the proposed value.
func (r *resolver) upsertSuffix(conflict []string, assignments []string) string {
	if r.mysql {
		return "ON DUPLICATE KEY UPDATE " + strings.Join(assignments, ", ")
	}
	return "ON CONFLICT (" + strings.Join(conflict, ", ") + ") DO UPDATE SET " + strings.Join(assignments, ", ")
}

// in names the proposed value of col inside an upsert's update half.
func (r *resolver) in(col string) string {
	if r.mysql {
		return "VALUES(" + col + ")"
	}
	return "excluded." + col
}

// supportsReturning: INSERT … RETURNING exists on MariaDB from 10.5 and on
// SQLite; not on MySQL.
func supportsReturning(db *gorm.DB) bool {
	d, ok := db.Dialector.(*gormmysql.Dialector)
	if !ok {
		return Dialect(db) == DialectSQLite
	}
	v := d.ServerVersion
	if !strings.Contains(v, "MariaDB") {
		return false
	}
	major, rest, _ := strings.Cut(v, ".")
	minor, _, _ := strings.Cut(rest, ".")
	ma, _ := strconv.Atoi(major)
	mi, _ := strconv.Atoi(minor)
	return ma > 10 || (ma == 10 && mi >= 5)
}

// lockingVia starts a SELECT … FOR UPDATE on one of the tenant's tables that
// walks the named index. A locking read locks every row its plan walks, in
// the plan's order, matching or not; on small tables MySQL's optimiser likes a
// full scan, which would lock everything in primary-key order and turn every
// concurrent writer into a deadlock candidate. So on MySQL the index is forced
// (SQLite has no row locks: its writers queue for the file).
func lockingVia(db *gorm.DB, tenantID int64, table, index string) *gorm.DB {
	return readVia(db, tenantID, table, index).Clauses(clause.Locking{Strength: "UPDATE"})
}

// readVia starts a read of one of the tenant's tables through the named
// index (forced on MySQL, whose optimiser misjudges small tables).
func readVia(db *gorm.DB, tenantID int64, table, index string) *gorm.DB {
	q := db.Table(table) // names the table for the tenant guard and column qualifiers
	if Dialect(db) == DialectMySQL {
		q.Statement.TableExpr = &clause.Expr{SQL: "`" + table + "` FORCE INDEX (" + index + ")"}
	}
	return q.Scopes(ForTenant(tenantID))
}

// identityColumnList is every column of identities, in scanIdentity's order.
const identityColumnList = "id, tenant_id, app_id, customer_id, openid, unionid, open_account_id, unlinked_reason, " +
	"subscribed, subscribe_time, subscribe_scene, unsubscribed_at, source, nickname, avatar_url, profile_at, " +
	"first_seen_at, last_seen_at, last_sync_pass, created_at, updated_at"

// identityInsertColumns are the columns an insert or rewrite sets (id aside).
var identityInsertColumns = []string{"tenant_id", "app_id", "customer_id", "openid", "unionid", "open_account_id",
	"unlinked_reason", "subscribed", "subscribe_time", "subscribe_scene", "unsubscribed_at", "source", "nickname",
	"avatar_url", "profile_at", "first_seen_at", "last_seen_at", "last_sync_pass", "created_at", "updated_at"}

// identityValues are i's values for identityInsertColumns.
func identityValues(i *Identity) []any {
	return []any{i.TenantID, i.AppID, i.CustomerID, i.OpenID, i.UnionID, i.OpenAccountID, i.UnlinkedReason,
		i.Subscribed, i.SubscribeTime, i.SubscribeScene, i.UnsubscribedAt, i.Source, i.Nickname, i.AvatarURL,
		i.ProfileAt, i.FirstSeenAt, i.LastSeenAt, i.LastSyncPass, i.CreatedAt, i.UpdatedAt}
}

func scanIdentity(rows *sql.Rows, i *Identity) error {
	var subscribeTime, unsubscribedAt, profileAt sql.NullTime
	err := rows.Scan(&i.ID, &i.TenantID, &i.AppID, &i.CustomerID, &i.OpenID, &i.UnionID, &i.OpenAccountID,
		&i.UnlinkedReason, &i.Subscribed, &subscribeTime, &i.SubscribeScene, &unsubscribedAt, &i.Source,
		&i.Nickname, &i.AvatarURL, &profileAt, &i.FirstSeenAt, &i.LastSeenAt, &i.LastSyncPass, &i.CreatedAt, &i.UpdatedAt)
	i.SubscribeTime, i.UnsubscribedAt, i.ProfileAt = nullTime(subscribeTime), nullTime(unsubscribedAt), nullTime(profileAt)
	i.FirstSeenAt, i.LastSeenAt = i.FirstSeenAt.UTC(), i.LastSeenAt.UTC()
	return err
}

func nullTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// customerInsertColumns are the columns a customer insert or upsert sets.
var customerInsertColumns = []string{"tenant_id", "open_account_id", "unionid", "unlinked_reason", "nickname",
	"avatar_url", "profile_at", "first_seen_at", "last_seen_at", "app_mask", "sub_mask", "src_mask", "created_at", "updated_at"}

// customerValues are the values of a customer holding d.
func (r *resolver) customerValues(ns *int64, unionID *string, d *customerDelta) []any {
	return []any{r.tenantID, ns, unionID, d.reason, d.nickname, d.avatar, d.profileAt, d.firstSeen, d.lastSeen,
		d.appMask, d.subMask, d.srcMask, r.now, r.now}
}

// customerMerge is the update half of the customer upserts: each column moves
// only forward, so concurrent writers of one customer commute. MySQL applies
// the assignments left to right (later ones see earlier results), so
// profile_at comes after the columns that compare against it.
func (r *resolver) customerMerge(withReason bool) []string {
	in := r.in
	newer := fmt.Sprintf("%s IS NOT NULL AND (profile_at IS NULL OR %s >= profile_at)", in("profile_at"), in("profile_at"))
	out := []string{
		fmt.Sprintf("nickname = CASE WHEN %s <> '' AND %s THEN %s ELSE nickname END", in("nickname"), newer, in("nickname")),
		fmt.Sprintf("avatar_url = CASE WHEN %s <> '' AND %s THEN %s ELSE avatar_url END", in("avatar_url"), newer, in("avatar_url")),
		fmt.Sprintf("profile_at = CASE WHEN %s THEN %s ELSE profile_at END", newer, in("profile_at")),
		fmt.Sprintf("first_seen_at = CASE WHEN %s < first_seen_at THEN %s ELSE first_seen_at END", in("first_seen_at"), in("first_seen_at")),
		fmt.Sprintf("last_seen_at = CASE WHEN %s > last_seen_at THEN %s ELSE last_seen_at END", in("last_seen_at"), in("last_seen_at")),
	}
	out = append(out,
		fmt.Sprintf("sub_mask = (sub_mask & ~%s) | %s", in("app_mask"), in("sub_mask")),
		fmt.Sprintf("app_mask = app_mask | %s", in("app_mask")),
		fmt.Sprintf("src_mask = src_mask | %s", in("src_mask")))
	if withReason {
		out = append(out, fmt.Sprintf("unlinked_reason = CASE WHEN unionid IS NULL AND %s IS NOT NULL THEN %s ELSE unlinked_reason END",
			in("unlinked_reason"), in("unlinked_reason")))
	}
	return append(out, "updated_at = "+in("updated_at"))
}
