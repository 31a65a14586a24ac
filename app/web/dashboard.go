package web

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"oneid/models"
	"oneid/views"
)

// The dashboard's figures are computed in one consistent read. A tenant whose
// figures take longer than dashboardLiveUnder to compute is shown its stored
// snapshot, with the time it is "as of", and one refresh runs in the
// background once the snapshot is older than dashboardFresh.
const (
	dashboardLiveUnder = 150 * time.Millisecond
	dashboardFresh     = time.Minute
	dashboardLease     = 5 * time.Minute
	// dashboardComputeNowUnder: a tenant without stored figures and more
	// customers than this gets them computed in the background, and a page
	// that says so, rather than a page that takes seconds.
	dashboardComputeNowUnder = 50000
)

func (s *Server) dashboardPage(c *fiber.Ctx) error {
	sc := scope(c)
	db := s.dbFor(c)
	now := s.now()
	d, refreshing, err := models.LoadDashboard(db, sc.TenantID, now)
	if errors.Is(err, models.ErrNotFound) {
		size, err := models.EstimateCustomers(db, sc.TenantID)
		if err != nil {
			return err
		}
		if size > dashboardComputeNowUnder {
			s.refreshDashboardLater(sc.TenantID)
			return s.render(c, fiber.StatusOK, views.DashboardPage(views.DashboardView{Computing: true}))
		}
	}
	switch {
	case errors.Is(err, models.ErrNotFound) || (err == nil && time.Duration(d.TookMS)*time.Millisecond < dashboardLiveUnder):
		// Small enough to be exact on every view (or never computed yet).
		d, err = models.ComputeDashboard(db, sc.TenantID, now)
		if err != nil {
			return err
		}
		refreshing = false
		if time.Duration(d.TookMS)*time.Millisecond >= dashboardLiveUnder {
			if err := models.SaveDashboard(db, sc.TenantID, d); err != nil {
				return err
			}
		}
	case err != nil:
		return err
	case now.Sub(d.AsOf) > dashboardFresh && !refreshing:
		refreshing = s.refreshDashboardLater(sc.TenantID)
	}
	return s.render(c, fiber.StatusOK, views.DashboardPage(dashboardView(d, refreshing, tenantPath(sc.Slug, "customers"))))
}

// refreshDashboardLater recomputes a tenant's figures in the background, if
// no other request or instance is doing it already.
func (s *Server) refreshDashboardLater(tenantID int64) bool {
	ok, err := models.ClaimDashboardRefresh(s.db, tenantID, s.now(), dashboardLease)
	if err != nil {
		s.log.Warn("claim dashboard refresh", "tenant_id", tenantID, "err", err)
		return false
	}
	if !ok {
		return true
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), dashboardLease)
		defer cancel()
		start := time.Now()
		if _, err := models.RefreshDashboard(s.db.WithContext(ctx), tenantID, s.now()); err != nil {
			// The claim lapses with its lease; the next view tries again.
			s.log.Warn("refresh dashboard", "tenant_id", tenantID, "err", err)
			return
		}
		s.log.Info("refreshed dashboard", "tenant_id", tenantID, "duration_ms", time.Since(start).Milliseconds())
	}()
	return true
}

func dashboardView(d *models.Dashboard, refreshing bool, customers string) views.DashboardView {
	v := views.DashboardView{
		AsOf: d.AsOf, Refreshing: refreshing, Customers: d.Customers, Linked: d.Linked, Unlinked: d.Unlinked,
		Identities: d.Identities, Overlap: d.Overlap, FromIdentities: d.OverlapFromIdentities, CustomersHref: customers,
	}
	for _, a := range d.Apps {
		v.Apps = append(v.Apps, views.DashboardAppRow{ID: a.ID, Name: a.Name, Kind: a.Kind, Status: a.Status,
			Identities: a.Identities, Followers: a.Followers, WithUnionID: a.WithUnionID,
			Href: customers + "?app=" + strconv.FormatInt(a.ID, 10)})
	}
	for _, day := range d.NewPerDay {
		v.NewPerDay = append(v.NewPerDay, views.DayBar{Day: day.Day, Count: day.Count})
	}
	return v
}
