package models

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Profile is everything a customer's page shows.
type Profile struct {
	Customer   *Customer
	Identities []Identity // by app, then id
	Apps       map[int64]BrowseApp
	Timeline   []CustomerEvent // newest first
}

// LoadProfile reads a customer with its identities, the apps they belong to
// (apps, when the caller has them: BrowseApps) and the newest timelineLimit
// events. Another tenant's customer is ErrNotFound, exactly like a missing one.
func LoadProfile(db *gorm.DB, tenantID, customerID int64, timelineLimit int, apps []BrowseApp) (*Profile, error) {
	c, err := FindCustomer(db, tenantID, customerID)
	if err != nil {
		return nil, err
	}
	ids, err := IdentitiesOfCustomer(db, tenantID, customerID)
	if err != nil {
		return nil, err
	}
	for _, i := range ids {
		if !HasBrowseApp(apps, i.AppID) {
			apps = nil // an app the caller's list lacks: read them afresh
			break
		}
	}
	if apps == nil {
		if apps, err = BrowseApps(db, tenantID); err != nil {
			return nil, err
		}
	}
	// The timeline's "followed" lines drawn from synced identities come from
	// the identities just read (CustomerTimeline would read them again).
	var synced []Identity
	for _, i := range ids {
		if i.Source == SourceSync && i.SubscribeTime != nil {
			synced = append(synced, i)
		}
	}
	events, err := timelineWith(db, tenantID, customerID, timelineLimit, synced)
	if err != nil {
		return nil, err
	}
	p := &Profile{Customer: c, Identities: ids, Apps: make(map[int64]BrowseApp, len(apps)), Timeline: events}
	for _, a := range apps {
		p.Apps[a.ID] = a
	}
	return p, nil
}

// HasBrowseApp reports whether id is one of apps.
func HasBrowseApp(apps []BrowseApp, id int64) bool {
	for _, a := range apps {
		if a.ID == id {
			return true
		}
	}
	return false
}

// CountTimeline is how many events a customer's timeline holds.
func CountTimeline(db *gorm.DB, tenantID, customerID int64) (int64, error) {
	var n int64
	err := db.Model(&CustomerEvent{}).Scopes(ForTenant(tenantID)).Where("customer_id = ?", customerID).Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("models: count timeline of customer %d: %w", customerID, err)
	}
	return n, nil
}

// AuditCustomerDeleted is the audit action of an erasure.
const AuditCustomerDeleted = "customer_deleted"

// Erasure says what EraseCustomer removed.
type Erasure struct {
	Identities int64
	Events     int64
}

// EraseCustomer deletes a customer with its identities and timeline (a
// personal-information deletion request under PIPL) and records it in the
// audit log, in one transaction: an erasure is never unaudited, and an audit
// line never claims one that did not happen. The audit line names the
// customer by its OneID number and counts, never by OpenID or UnionID, which
// would keep the personal data the erasure removes. e carries the actor.
func EraseCustomer(db *gorm.DB, tenantID, customerID int64, e AuditEvent) (Erasure, error) {
	var out Erasure
	err := RetryTx(db.Statement.Context, db, func(tx *gorm.DB) error {
		out = Erasure{}
		if err := tx.Model(&Identity{}).Scopes(ForTenant(tenantID)).Where("customer_id = ?", customerID).Count(&out.Identities).Error; err != nil {
			return err
		}
		n, err := CountTimeline(tx, tenantID, customerID)
		if err != nil {
			return err
		}
		out.Events = n
		if err := DeleteCustomer(tx, tenantID, customerID); err != nil {
			return err
		}
		e.Action = AuditCustomerDeleted
		e.Target = fmt.Sprintf("customer #%d", customerID)
		e.Detail = fmt.Sprintf("%d identities, %d timeline events", out.Identities, out.Events)
		return RecordAudit(tx, tenantID, e)
	})
	return out, err
}

// MaskID hides an OpenID or UnionID but for its last four characters, for
// people whose role may not see whole ids: "oAbc…Xy3z" becomes "••••Xy3z".
// The bullets do not give the length away.
func MaskID(id string) string {
	if id == "" {
		return ""
	}
	n := utf8.RuneCountInString(id)
	if n <= 4 {
		return strings.Repeat("•", 4)
	}
	r := []rune(id)
	return "••••" + string(r[n-4:])
}
