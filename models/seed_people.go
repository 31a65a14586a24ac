package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// SeedCustomer is one customer that SeedCustomers writes as it is given:
// the caller decides ids, overlap and follow states (the demo workspace
// takes them from the WeChat simulator so that a sync agrees with them).
type SeedCustomer struct {
	OpenAccountID  *int64  // with UnionID
	UnionID        *string // nil: unlinked, UnlinkedReason says why
	UnlinkedReason *string
	Nickname       string
	AvatarURL      string
	FirstSeen      time.Time
	LastSeen       time.Time
	Identities     []SeedIdentity
	// Events are stored timeline events beyond those derived from the
	// identities (a follow found by a sync is shown from the identity itself).
	Events []SeedEvent
}

// SeedIdentity is one OpenID of a SeedCustomer; it carries the customer's
// UnionID, nickname and avatar.
type SeedIdentity struct {
	AppID          int64 // apps.id
	OpenID         string
	Subscribed     bool
	SubscribeTime  *time.Time
	SubscribeScene string
	UnsubscribedAt *time.Time
	Source         string
	FirstSeen      time.Time
	LastSeen       time.Time
}

// SeedEvent is a stored timeline event of a SeedCustomer.
type SeedEvent struct {
	Kind   string
	AppID  int64
	OpenID string
	Detail string
	At     time.Time
}

// SeedCustomers writes n customers, gen(i) describing the i-th, as multi-row
// INSERTs in one transaction per 2,000 customers, around Resolve (the caller
// rebuilds masks and dashboard figures afterwards). Nothing else may write
// customers of any tenant meanwhile: ids are reserved from the current maxima.
func SeedCustomers(ctx context.Context, db *gorm.DB, tenantID int64, n int, gen func(i int) SeedCustomer, progress func(done int)) (SeedResult, error) {
	var res SeedResult
	db = db.WithContext(ctx)
	var base struct{ C, I, E int64 }
	cross := CrossTenant(db, "seed reserves id ranges")
	for _, q := range []struct {
		table string
		into  *int64
	}{{"customers", &base.C}, {"identities", &base.I}, {"customer_events", &base.E}} {
		if err := cross.Raw("SELECT COALESCE(MAX(id), 0) FROM " + q.table).Scan(q.into).Error; err != nil {
			return res, fmt.Errorf("models: seed: %w", err)
		}
	}
	w := newSeedWriter(db, tenantID)
	const chunk = 2000
	for start := 0; start < n; start += chunk {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		end := min(start+chunk, n)
		for i := start; i < end; i++ {
			c := gen(i)
			base.C++
			w.customer(base.C, c.OpenAccountID, c.UnionID, c.UnlinkedReason, c.Nickname, c.AvatarURL, c.FirstSeen, c.LastSeen)
			for _, id := range c.Identities {
				base.I++
				w.identity(base.I, id.AppID, base.C, id.OpenID, c.UnionID, c.OpenAccountID, c.UnlinkedReason, id.Subscribed, id.SubscribeTime, id.SubscribeScene,
					id.UnsubscribedAt, id.Source, c.Nickname, c.AvatarURL, id.FirstSeen, id.LastSeen)
			}
			for _, e := range c.Events {
				base.E++
				w.event(base.E, base.C, e.Kind, e.AppID, e.OpenID, e.Detail, e.At)
			}
		}
		if err := w.flush(); err != nil {
			return res, err
		}
		if progress != nil {
			progress(end)
		}
	}
	res.Customers, res.Identities, res.Events = w.customers, w.identities, w.events
	return res, nil
}
