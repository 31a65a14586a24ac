package web

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"oneid/models"
	"oneid/views"
)

const auditPageSize = 50

func (s *Server) auditPage(c *fiber.Ctx) error {
	sc := scope(c)
	before, _ := strconv.ParseInt(c.Query("before"), 10, 64)
	page, err := models.ListAudit(s.dbFor(c), sc.TenantID, before, auditPageSize)
	if err != nil {
		return err
	}
	v := views.AuditView{}
	for _, e := range page.Events {
		v.Rows = append(v.Rows, views.AuditRow{At: e.CreatedAt, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail, IP: e.IP})
	}
	if page.Before > 0 {
		v.Older = tenantPath(sc.Slug, "audit") + "?before=" + strconv.FormatInt(page.Before, 10)
	}
	if before > 0 {
		v.Newest = tenantPath(sc.Slug, "audit")
	}
	return s.render(c, fiber.StatusOK, views.AuditPage(v))
}

// audit records an event in the request's tenant, by the signed-in person.
func (s *Server) audit(c *fiber.Ctx, action, target, detail string) error {
	return models.RecordAudit(s.dbFor(c), scope(c).TenantID, s.actor(c).Event(action, target, detail, time.Time{}))
}

// auditEveryTenantOf records an event about a person in each tenant they
// belong to: sign-ins are not tenant-specific, and every admin should see
// their staff's.
func (s *Server) auditEveryTenantOf(c *fiber.Ctx, user *models.User, action string) error {
	db := s.dbFor(c)
	ws, err := models.WorkspacesOf(db, user.ID)
	if err != nil {
		return err
	}
	for _, w := range ws {
		e := models.AuditEvent{ActorUserID: user.ID, Actor: user.Email, Action: action, Target: user.Email, IP: c.IP(), RequestID: requestID(c)}
		if err := models.RecordAudit(db, w.TenantID, e); err != nil {
			return err
		}
	}
	return nil
}
