package models

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Audit actions written by the foundation. Later features add their own
// (binding, syncs, exports…); the audit page shows any action, translating the
// ones it knows.
const (
	AuditSignIn             = "signin"
	AuditSignInFailed       = "signin_failed"
	AuditTenantCreated      = "tenant_created"
	AuditInvitationCreated  = "invitation_created"
	AuditInvitationAccepted = "invitation_accepted"
	AuditInvitationRevoked  = "invitation_revoked"
	AuditRoleChanged        = "role_changed"
	AuditMemberRemoved      = "member_removed"
	AuditAPIKeyCreated      = "apikey_created"
	AuditAPIKeyRevoked      = "apikey_revoked"
)

// AuditEvent is one line of a tenant's audit log.
type AuditEvent struct {
	ID          int64 `gorm:"primaryKey"`
	TenantID    int64
	ActorUserID int64  // 0 for the platform operator and the tenant's own systems
	Actor       string // what to show for the actor: an email, "operator", an API key name
	Action      string
	Target      string // what was acted on: an email, an appid, a filter
	Detail      string // free text, e.g. "marketer → viewer" or "1,204 rows"
	IP          string
	RequestID   string
	CreatedAt   time.Time
}

// RecordAudit appends an event to a tenant's audit log. Callers fill what they
// know; the tenant id is the one given here whatever the event says.
func RecordAudit(db *gorm.DB, tenantID int64, e AuditEvent) error {
	e.ID = 0
	e.TenantID = tenantID
	if e.CreatedAt.IsZero() {
		e.CreatedAt = time.Now().UTC()
	}
	e.Actor = clipString(e.Actor, 254)
	e.Action = clipString(e.Action, 64)
	e.Target = clipString(e.Target, 255)
	e.IP = clipString(e.IP, 64)
	e.RequestID = clipString(e.RequestID, 64)
	if err := db.Create(&e).Error; err != nil {
		return fmt.Errorf("models: record audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditPage is one page of the audit log, newest first. Before is the id to
// pass for the next (older) page; zero when there is none.
type AuditPage struct {
	Events []AuditEvent
	Before int64
}

// ListAudit returns up to limit events older than beforeID (all when zero),
// newest first: keyset paging on the id, so a page costs the same deep in the log.
func ListAudit(db *gorm.DB, tenantID, beforeID int64, limit int) (AuditPage, error) {
	q := db.Scopes(ForTenant(tenantID)).Order("id DESC").Limit(limit + 1)
	if beforeID > 0 {
		q = q.Where("id < ?", beforeID)
	}
	var events []AuditEvent
	if err := q.Find(&events).Error; err != nil {
		return AuditPage{}, fmt.Errorf("models: list audit: %w", err)
	}
	page := AuditPage{Events: events}
	if len(events) > limit {
		page.Events = events[:limit]
		page.Before = events[limit-1].ID
	}
	return page, nil
}
