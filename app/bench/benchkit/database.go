package benchkit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"oneid/migrations"
	"oneid/models"
)

// Logf is how the helpers say what they do: the benchmark's own logger.
type Logf func(format string, args ...any)

// MySQLServer is the MySQL server URL a benchmark works on, ending in "/":
// the --mysql flag's value, else $ONEID_BENCH_MYSQL_URL, else the local
// server as root.
func MySQLServer(flagValue string, getenv func(string) string) string {
	server := flagValue
	if server == "" {
		server = getenv("ONEID_BENCH_MYSQL_URL")
	}
	if server == "" {
		server = "mysql://root@127.0.0.1:3306/"
	}
	return strings.TrimRight(server, "/") + "/"
}

// OpenDatabase opens the benchmark's own database name on server (a MySQL
// server URL ending in "/"), creating it when missing, and migrates it. With
// setPool, an innodb_buffer_pool_size under 2 GB is raised to the 2 GB
// PRODUCT.md's targets assume (measuring anyway when that is refused).
func OpenDatabase(ctx context.Context, server, name string, setPool bool, logf Logf) (*gorm.DB, error) {
	admin, err := models.Open(server + "mysql")
	if err != nil {
		return nil, err
	}
	defer func() {
		if sqlDB, err := admin.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	if err := admin.Exec("CREATE DATABASE IF NOT EXISTS " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin").Error; err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	var pool int64
	if err := admin.Raw("SELECT @@innodb_buffer_pool_size").Scan(&pool).Error; err == nil && pool < 2<<30 && setPool {
		logf("innodb_buffer_pool_size is %d MB; setting 2048 MB as the targets assume", pool>>20)
		if err := admin.Exec("SET GLOBAL innodb_buffer_pool_size = 2147483648").Error; err != nil {
			logf("could not: %v (measuring anyway)", err)
		}
	}
	db, err := models.Open(server + name)
	if err != nil {
		return nil, err
	}
	_, err = migrations.Apply(ctx, db)
	return db, err
}

// Tenant names a benchmark's tenant and the marketer who signs in to it.
type Tenant struct {
	Slug       string
	Name       string
	AdminEmail string // the admin CreateTenant makes
	Email      string // the marketer's
	Password   string // the admin's and the marketer's
}

// EnsureTenant finds or makes the benchmark tenant with a marketer to sign in
// as. The database is the benchmark's own: an existing marketer's password is
// set to t.Password.
func EnsureTenant(ctx context.Context, db *gorm.DB, t Tenant) (*models.Tenant, error) {
	db = db.WithContext(ctx)
	hash, err := models.NewPasswordHasher(1).Hash(ctx, t.Password)
	if err != nil {
		return nil, err
	}
	tenant, err := models.FindTenantBySlug(db, t.Slug)
	if errors.Is(err, models.ErrNotFound) {
		tenant, _, err = models.CreateTenant(db, models.NewTenant{Name: t.Name, PrincipalName: "倍驰数据（深圳）有限公司",
			Admin: models.User{Email: t.AdminEmail, PasswordHash: hash, Locale: "zh-CN"}})
	}
	if err != nil {
		return nil, err
	}
	if tenant.Slug != t.Slug {
		return nil, fmt.Errorf("the benchmark tenant got slug %q, want %q", tenant.Slug, t.Slug)
	}
	if _, err := EnsureMember(db, tenant.ID, hash, t.Email, "Bench Marketer", models.RoleMarketer); err != nil {
		return nil, err
	}
	return tenant, nil
}

// EnsureMember makes (or finds) the person email, named name when made, with
// the password hash and the given role in the tenant. The database is the
// benchmark's own: an existing person's password hash is replaced.
func EnsureMember(db *gorm.DB, tenantID int64, hash, email, name, role string) (*models.Membership, error) {
	user, err := models.FindUserByEmail(db, email)
	if errors.Is(err, models.ErrNotFound) {
		user = &models.User{Email: email, Name: name, PasswordHash: hash, Locale: "zh-CN"}
		err = models.CreateUser(db, user)
	} else if err == nil {
		err = db.Model(&models.User{}).Where("id = ?", user.ID).Update("password_hash", hash).Error
	}
	if err != nil {
		return nil, err
	}
	m, err := models.AddMember(db, tenantID, user.ID, role)
	if err != nil {
		return nil, err
	}
	if m.Role != role {
		// ChangeRole answers the membership as it was; only its role changes.
		if _, err := models.ChangeRole(db, tenantID, m.ID, role); err != nil {
			return nil, err
		}
		m.Role = role
	}
	return m, nil
}

// SeedCustomers tops the tenant up to n customers (once: later runs reuse
// them) and rebuilds the customers' masks, which the list's filters read. It
// says whether it seeded; where names the tenant in the log.
func SeedCustomers(ctx context.Context, db *gorm.DB, tenant *models.Tenant, n int, where string, logf Logf) (seeded bool, err error) {
	db = db.WithContext(ctx)
	var have int64
	if err := db.Model(&models.Customer{}).Scopes(models.ForTenant(tenant.ID)).Count(&have).Error; err != nil {
		return false, err
	}
	if int(have) >= n {
		logf("tenant %s already holds %d customers", tenant.Slug, have)
		return false, nil
	}
	add := n - int(have)
	logf("seeding %d customers into %s (once; later runs reuse them)", add, where)
	start := time.Now()
	res, err := models.Seed(ctx, db, tenant.ID, models.SeedOptions{Customers: add, Seed: uint64(have) + 1, Progress: func(done int) {
		if done%100000 == 0 {
			logf("  %d customers, %.0fs", done, time.Since(start).Seconds())
		}
	}})
	if err != nil {
		return false, err
	}
	logf("seeded %d customers, %d identities in %.0fs; summarising", res.Customers, res.Identities, time.Since(start).Seconds())
	_, err = models.RebuildCustomerMasks(ctx, db, tenant.ID, nil)
	return true, err
}

// WarmTenant reads the tenant's rows of each table through its clustered
// index and every index that begins with tenant_id, so that MariaDB's buffer
// pool holds them as it would on a server that has been serving the tenant.
// Benchmarks run one after another on one MariaDB, and each database is
// larger than a fair share of the pool: without this, whichever runs first
// after another measures reads from disk for its first seconds. It returns
// how long the reads took.
func WarmTenant(ctx context.Context, db *gorm.DB, tenantID int64, tables ...string) (time.Duration, error) {
	start := time.Now()
	db = db.WithContext(ctx)
	for _, table := range tables {
		var indexes []string
		if err := db.Raw(`SELECT DISTINCT index_name FROM information_schema.statistics
WHERE table_schema = DATABASE() AND table_name = ? AND (index_name = 'PRIMARY' OR (seq_in_index = 1 AND column_name = 'tenant_id'))`, table).
			Scan(&indexes).Error; err != nil {
			return 0, err
		}
		for _, ix := range indexes {
			// A secondary index is read alone; PRIMARY reads the rows.
			var n int64
			if err := db.Raw("SELECT COUNT(*) FROM "+table+" FORCE INDEX (`"+ix+"`) WHERE tenant_id = ?", tenantID).
				Scan(&n).Error; err != nil {
				return 0, fmt.Errorf("warm %s.%s: %w", table, ix, err)
			}
		}
	}
	return time.Since(start), nil
}
