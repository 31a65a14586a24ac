package models

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Customer masks (migration 0030): each customer carries, as bitmasks, the apps
// it has identities in (app_mask), the apps it follows (sub_mask) and the
// sources its identities arrived by (src_mask). The list's filters and the
// dashboard's overlap read them instead of joining identities, which at
// millions of rows is the difference between milliseconds and seconds.

// MaxMaskedApps is how many of a tenant's apps get a bit (0–62; bit 63 would
// make the BIGINT negative). Apps beyond that are filtered through identities.
const MaxMaskedApps = 63

// sourceBits gives each identity source its bit in src_mask.
var sourceBits = map[string]int64{
	SourceSync:        1 << 0,
	SourceEvent:       1 << 1,
	SourceOAuth:       1 << 2,
	SourceMiniProgram: 1 << 3,
	SourcePaid:        1 << 4,
	SourceImport:      1 << 5,
}

// Sources lists the identity sources in display order.
func Sources() []string {
	return []string{SourceSync, SourceEvent, SourceOAuth, SourceMiniProgram, SourcePaid, SourceImport}
}

// maskChunk customers are refreshed per statement.
const maskChunk = 500

// RefreshCustomerMasks recomputes the masks of the given customers from their
// identities. Call it inside the transaction that changed the identities, after
// the change, for every customer that gained, lost or moved an identity or
// whose identity's subscribed state changed (erased customers may be passed;
// they are skipped).
//
// It locks the customers (in id order) before reading their identities, so
// concurrent writers of one customer take turns and the last to commit reads
// everything the others committed (its read of the identities is a locking
// read, so this holds under REPEATABLE READ too).
func RefreshCustomerMasks(tx *gorm.DB, tenantID int64, customerIDs []int64) error {
	ids := uniqueSorted(customerIDs)
	if len(ids) == 0 {
		return nil
	}
	bits, err := appBits(tx, tenantID)
	if err != nil {
		return err
	}
	for start := 0; start < len(ids); start += maskChunk {
		if err := refreshMaskChunk(tx, tenantID, ids[start:min(start+maskChunk, len(ids))], bits); err != nil {
			return err
		}
	}
	return nil
}

// customerMasks is one customer's three masks.
type customerMasks struct {
	ID      int64
	AppMask int64
	SubMask int64
	SrcMask int64
}

func refreshMaskChunk(tx *gorm.DB, tenantID int64, ids []int64, bits map[int64]int) error {
	var have []customerMasks
	err := tx.Model(&Customer{}).Scopes(ForTenant(tenantID)).Select("id", "app_mask", "sub_mask", "src_mask").
		Where("id IN ?", ids).Order("id").Clauses(clause.Locking{Strength: "UPDATE"}).Find(&have).Error
	if err != nil {
		return fmt.Errorf("models: lock customers to refresh masks: %w", err)
	}
	if len(have) == 0 {
		return nil
	}
	locked := make([]int64, len(have))
	for i, c := range have {
		locked[i] = c.ID
	}
	want, err := masksFromIdentities(tx, tenantID, locked, bits)
	if err != nil {
		return err
	}
	var changed []customerMasks
	for _, c := range have {
		w := want[c.ID]
		w.ID = c.ID
		if w != c {
			changed = append(changed, w)
		}
	}
	return writeMasks(tx, tenantID, changed)
}

// masksFromIdentities computes the masks of customers from their identities,
// giving a bit to any app that has none yet.
func masksFromIdentities(tx *gorm.DB, tenantID int64, ids []int64, bits map[int64]int) (map[int64]customerMasks, error) {
	var rows []struct {
		CustomerID int64
		AppID      int64
		Subscribed bool
		Source     string
	}
	// A locking read: it sees the latest committed identities whatever the
	// transaction's isolation (a plain read in REPEATABLE READ would see the
	// snapshot the transaction started with, and lose a concurrent writer's).
	lock := ""
	if Dialect(tx) == DialectMySQL {
		lock = " LOCK IN SHARE MODE"
	}
	err := tx.Raw("SELECT customer_id, app_id, subscribed, source FROM identities WHERE tenant_id = ? AND customer_id IN ?"+lock,
		tenantID, ids).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: read identities for masks: %w", err)
	}
	for _, r := range rows {
		if _, ok := bits[r.AppID]; !ok {
			if err := assignAppBits(tx, tenantID, bits); err != nil {
				return nil, err
			}
			break
		}
	}
	out := make(map[int64]customerMasks, len(ids))
	for _, r := range rows {
		m := out[r.CustomerID]
		if b, ok := bits[r.AppID]; ok && b >= 0 {
			m.AppMask |= 1 << b
			if r.Subscribed {
				m.SubMask |= 1 << b
			}
		}
		m.SrcMask |= sourceBits[r.Source]
		out[r.CustomerID] = m
	}
	return out, nil
}

// writeMasks updates customers whose masks changed: one UPDATE per chunk with
// a CASE per column.
func writeMasks(tx *gorm.DB, tenantID int64, rows []customerMasks) error {
	for start := 0; start < len(rows); start += maskChunk {
		part := rows[start:min(start+maskChunk, len(rows))]
		var sql strings.Builder
		args := make([]any, 0, 6*len(part)+2)
		sql.WriteString("UPDATE customers SET ")
		for i, col := range []string{"app_mask", "sub_mask", "src_mask"} {
			if i > 0 {
				sql.WriteString(", ")
			}
			sql.WriteString(col + " = CASE id")
			for _, r := range part {
				v := r.AppMask
				switch col {
				case "sub_mask":
					v = r.SubMask
				case "src_mask":
					v = r.SrcMask
				}
				sql.WriteString(" WHEN ? THEN ?")
				args = append(args, r.ID, v)
			}
			sql.WriteString(" ELSE " + col + " END")
		}
		sql.WriteString(" WHERE tenant_id = ? AND id IN ?")
		ids := make([]int64, len(part))
		for i, r := range part {
			ids[i] = r.ID
		}
		args = append(args, tenantID, ids)
		if err := tx.Exec(sql.String(), args...).Error; err != nil {
			return fmt.Errorf("models: write masks of %d customers: %w", len(part), err)
		}
	}
	return nil
}

// appBits maps the tenant's apps to their mask bit; apps without one are absent.
func appBits(db *gorm.DB, tenantID int64) (map[int64]int, error) {
	var rows []struct {
		ID      int64
		MaskBit *int
	}
	if err := db.Model(&App{}).Scopes(ForTenant(tenantID)).Select("id", "mask_bit").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("models: read app bits: %w", err)
	}
	bits := map[int64]int{}
	for _, r := range rows {
		if r.MaskBit != nil {
			bits[r.ID] = *r.MaskBit
		}
	}
	return bits, nil
}

// assignAppBits gives every app of the tenant without a bit the lowest free
// one, in app id order, until the 63 bits are used; bits is updated (an app
// left without a bit maps to -1). Two transactions giving the same bit to
// different apps collide on ux_apps_tenant_mask_bit: that is ErrTxConflict,
// and RetryTx runs the loser again.
func assignAppBits(tx *gorm.DB, tenantID int64, bits map[int64]int) error {
	var rows []struct {
		ID      int64
		MaskBit *int
	}
	// A locking read: under REPEATABLE READ a plain one would see the
	// transaction's snapshot, without bits given since.
	if err := tx.Model(&App{}).Scopes(ForTenant(tenantID)).Select("id", "mask_bit").Order("id").
		Clauses(clause.Locking{Strength: "UPDATE"}).Find(&rows).Error; err != nil {
		return fmt.Errorf("models: read app bits: %w", err)
	}
	used := map[int]bool{}
	for _, r := range rows {
		if r.MaskBit != nil {
			used[*r.MaskBit] = true
			bits[r.ID] = *r.MaskBit
		}
	}
	next := 0
	for _, r := range rows {
		if r.MaskBit != nil {
			continue
		}
		for next < MaxMaskedApps && used[next] {
			next++
		}
		if next >= MaxMaskedApps {
			bits[r.ID] = -1
			continue
		}
		res := tx.Model(&App{}).Scopes(ForTenant(tenantID)).Where("id = ? AND mask_bit IS NULL", r.ID).
			UpdateColumn("mask_bit", next)
		if res.Error != nil {
			if isDuplicateKey(res.Error) {
				return fmt.Errorf("%w: app bit %d taken meanwhile", ErrTxConflict, next)
			}
			return fmt.Errorf("models: assign app bit: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			// Someone gave it a bit since the read: use theirs.
			var got []struct{ MaskBit *int }
			if err := tx.Model(&App{}).Scopes(ForTenant(tenantID)).Select("mask_bit").Where("id = ?", r.ID).
				Clauses(clause.Locking{Strength: "UPDATE"}).Find(&got).Error; err != nil {
				return fmt.Errorf("models: read app bit: %w", err)
			}
			if len(got) == 1 && got[0].MaskBit != nil {
				bits[r.ID], used[*got[0].MaskBit] = *got[0].MaskBit, true
			}
			continue
		}
		bits[r.ID], used[next] = next, true
	}
	return nil
}

// AssignAppBits gives the tenant's apps their mask bits now (binding an app
// may call it; RefreshCustomerMasks does it on first use otherwise).
func AssignAppBits(db *gorm.DB, tenantID int64) error {
	return RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		return assignAppBits(tx, tenantID, map[int64]int{})
	})
}

// RebuildCustomerMasks recomputes every customer's masks of a tenant, walking
// them in id order a few thousand per transaction. It is for data written
// around Resolve (models.Seed, repairs) while nothing else writes the tenant;
// progress, if set, is told how many customers are done.
func RebuildCustomerMasks(ctx context.Context, db *gorm.DB, tenantID int64, progress func(done int)) (int, error) {
	db = db.WithContext(ctx)
	if err := AssignAppBits(db, tenantID); err != nil {
		return 0, err
	}
	const batch = 5000
	var after int64
	done := 0
	for {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		var ids []int64
		err := db.Model(&Customer{}).Scopes(ForTenant(tenantID)).Where("id > ?", after).
			Order("id").Limit(batch).Pluck("id", &ids).Error
		if err != nil {
			return done, fmt.Errorf("models: rebuild masks: %w", err)
		}
		if len(ids) == 0 {
			return done, nil
		}
		err = RetryTx(ctx, db, func(tx *gorm.DB) error {
			if Dialect(tx) == DialectMySQL {
				return rebuildMasksInSQL(tx, tenantID, ids[0], ids[len(ids)-1])
			}
			return RefreshCustomerMasks(tx, tenantID, ids)
		}, readCommitted(db)...)
		if err != nil {
			return done, fmt.Errorf("models: rebuild masks: %w", err)
		}
		done += len(ids)
		after = ids[len(ids)-1]
		if progress != nil {
			progress(done)
		}
	}
}

// rebuildMasksInSQL recomputes the masks of the tenant's customers with ids
// in [lo, hi] in one statement: MySQL groups the identities itself, which
// is faster than reading them out. App bits are spelled into the statement
// (at most 63), so identities are not joined to apps.
func rebuildMasksInSQL(tx *gorm.DB, tenantID, lo, hi int64) error {
	bits, err := appBits(tx, tenantID)
	if err != nil {
		return err
	}
	bit := "0"
	if len(bits) > 0 {
		ids := make([]int64, 0, len(bits))
		for id := range bits {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
		var b strings.Builder
		b.WriteString("CASE i.app_id")
		for _, id := range ids {
			if bits[id] >= 0 && bits[id] < MaxMaskedApps {
				fmt.Fprintf(&b, " WHEN %d THEN %d", id, int64(1)<<bits[id])
			}
		}
		b.WriteString(" ELSE 0 END")
		bit = b.String()
	}
	var src strings.Builder
	src.WriteString("CASE i.source")
	for _, s := range Sources() {
		fmt.Fprintf(&src, " WHEN '%s' THEN %d", s, sourceBits[s])
	}
	src.WriteString(" ELSE 0 END")
	sql := `UPDATE customers c LEFT JOIN (
  SELECT i.customer_id, BIT_OR(` + bit + `) AS am, BIT_OR(CASE WHEN i.subscribed THEN ` + bit + ` ELSE 0 END) AS sm,
    BIT_OR(` + src.String() + `) AS srm
  FROM identities i WHERE i.tenant_id = ? AND i.customer_id BETWEEN ? AND ?
  GROUP BY i.customer_id) m ON m.customer_id = c.id
SET c.app_mask = COALESCE(m.am, 0), c.sub_mask = COALESCE(m.sm, 0), c.src_mask = COALESCE(m.srm, 0)
WHERE c.tenant_id = ? AND c.id BETWEEN ? AND ?`
	if err := tx.Exec(sql, tenantID, lo, hi, tenantID, lo, hi).Error; err != nil {
		return fmt.Errorf("models: rebuild masks of customers %d–%d: %w", lo, hi, err)
	}
	return nil
}

func uniqueSorted(ids []int64) []int64 {
	out := make([]int64, 0, len(ids))
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if id > 0 && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}
