package views

import (
	"context"
	"time"
)

// AuditRow is one line of the audit log.
type AuditRow struct {
	At     time.Time
	Actor  string
	Action string
	Target string
	Detail string
	IP     string
}

// AuditView is one page of the audit log, newest first.
type AuditView struct {
	Rows []AuditRow
	// Older is the link to the next page, empty on the last one.
	Older string
	// Newest is the link back to the first page, empty on it.
	Newest string
}

// auditAction names an action in the page's language; actions of later
// features not yet in the catalog show as they are.
func auditAction(ctx context.Context, action string) string {
	if key := "audit.action." + action; Has(ctx, key) {
		return T(ctx, key)
	}
	return action
}
