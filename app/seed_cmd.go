package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"oneid/models"
)

// runSeed writes a large, realistic tenant for development and benchmarks:
// models.Seed, then the customers' masks and the dashboard's figures.
func runSeed(ctx context.Context, args []string, env *environment) error {
	fs := newFlagSet("seed", "write generated customers, identities and timelines into a tenant (development and benchmarks)", env)
	slug := fs.String("tenant", "", "the tenant's slug, as 'oneid tenant list' shows it (required)")
	n := fs.Int("customers", 10000, "how many customers to add")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same people")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	if *slug == "" {
		return errors.New("seed: --tenant is required")
	}
	if *n <= 0 {
		return errors.New("seed: --customers must be positive")
	}
	sys, err := boot(ctx, env)
	if err != nil {
		return err
	}
	defer sys.close()
	res, err := seedTenant(ctx, sys, *slug, *n, *seed, env)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "seeded %s: %d apps, %d customers, %d identities, %d events\n", *slug, res.Apps, res.Customers, res.Identities, res.Events)
	return nil
}

// seedTenant seeds the tenant named by slug, printing progress to stderr.
func seedTenant(ctx context.Context, sys *system, slug string, n int, seed uint64, env *environment) (models.SeedResult, error) {
	db := sys.db.WithContext(ctx)
	tenant, err := models.FindTenantBySlug(db, slug)
	if errors.Is(err, models.ErrNotFound) {
		return models.SeedResult{}, fmt.Errorf("seed: no tenant has the slug %q", slug)
	}
	if err != nil {
		return models.SeedResult{}, err
	}
	start := time.Now()
	step := max(n/20, 1000)
	next := step
	report := func(what string, done, total int) {
		el := time.Since(start).Seconds()
		fmt.Fprintf(env.stderr, "%s %d/%d (%.0f%%) %.1fs, %.0f/s\n", what, done, total, 100*float64(done)/float64(total), el, float64(done)/max(el, 0.001))
	}
	res, err := models.Seed(ctx, db, tenant.ID, models.SeedOptions{Customers: n, Seed: seed, Progress: func(done int) {
		if done >= next || done == n {
			report("customers", done, n)
			next = done + step
		}
	}})
	if err != nil {
		return res, fmt.Errorf("seed: %w", err)
	}

	// Seed writes rows directly, around Resolve: summarise them now.
	var total int64
	if err := db.Model(&models.Customer{}).Scopes(models.ForTenant(tenant.ID)).Count(&total).Error; err != nil {
		return res, err
	}
	start, next = time.Now(), step
	if _, err := models.RebuildCustomerMasks(ctx, db, tenant.ID, func(done int) {
		if done >= next || done == int(total) {
			report("masks", done, int(total))
			next = done + step
		}
	}); err != nil {
		return res, err
	}
	start = time.Now()
	if _, err := models.RefreshDashboard(db, tenant.ID, time.Now().UTC()); err != nil {
		return res, err
	}
	fmt.Fprintf(env.stderr, "dashboard figures computed in %.1fs\n", time.Since(start).Seconds())
	return res, nil
}
