package models_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/models"
)

// world is a tenant with the apps identity resolution cares about: A and B in
// open-platform account 1, C in account 2, and N bound to no account.
type world struct {
	db                     *gorm.DB
	tenant                 int64
	oa1, oa2               int64
	appA, appB, appC       int64
	appN                   int64
	openApp1, openApp2     string
	appidA, appidB, appidC string
}

func newWorld(t testing.TB, db *gorm.DB) *world {
	t.Helper()
	w := &world{db: db}
	w.tenant = makeTenant(t, db)
	w.oa1, w.openApp1 = makeOpenAccount(t, db, w.tenant)
	w.oa2, w.openApp2 = makeOpenAccount(t, db, w.tenant)
	w.appA, w.appidA = makeApp(t, db, w.tenant, &w.oa1, models.KindService)
	w.appB, w.appidB = makeApp(t, db, w.tenant, &w.oa1, models.KindMiniProgram)
	w.appC, w.appidC = makeApp(t, db, w.tenant, &w.oa2, models.KindSubscription)
	w.appN, _ = makeApp(t, db, w.tenant, nil, models.KindService)
	return w
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func makeTenant(t testing.TB, db *gorm.DB) int64 {
	t.Helper()
	now := time.Now().UTC()
	slug := "t" + randHex(6)
	if err := db.Exec(`INSERT INTO tenants (slug, name, principal_name, status, created_at, updated_at)
VALUES (?, ?, ?, 'active', ?, ?)`, slug, slug, "某某科技有限公司", now, now).Error; err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := db.Raw("SELECT id FROM tenants WHERE slug = ?", slug).Scan(&id).Error; err != nil || id == 0 {
		t.Fatalf("tenant id: %v", err)
	}
	return id
}

func makeOpenAccount(t testing.TB, db *gorm.DB, tenant int64) (int64, string) {
	t.Helper()
	oa := models.OpenAccount{TenantID: tenant, OpenAppID: "wx" + randHex(8), PrincipalName: "某某科技有限公司",
		Verified: true, CreatedVia: "api"}
	if err := db.Create(&oa).Error; err != nil {
		t.Fatal(err)
	}
	return oa.ID, oa.OpenAppID
}

func makeApp(t testing.TB, db *gorm.DB, tenant int64, oa *int64, kind string) (int64, string) {
	t.Helper()
	appid := "wx" + randHex(8)
	a := models.App{TenantID: tenant, AppID: appid, BoundAppID: &appid, Kind: kind, Name: "app " + appid,
		PrincipalName: "某某科技有限公司", VerifyType: 0, BindingMode: models.ModeAuthorized, Status: models.AppActive,
		OpenAccountID: oa, GhID: "gh_" + randHex(6), CallbackKey: randHex(8)}
	if err := db.Create(&a).Error; err != nil {
		t.Fatal(err)
	}
	return a.ID, appid
}

// resolve runs Resolve and fails the test on a database error.
func (w *world) resolve(t testing.TB, obs ...models.Observation) models.ResolveResult {
	t.Helper()
	res, err := models.Resolve(w.db, w.tenant, obs)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return res
}

func (w *world) identity(t testing.TB, appID int64, openID string) *models.Identity {
	t.Helper()
	var got []models.Identity
	if err := w.db.Scopes(models.ForTenant(w.tenant)).Where("app_id = ? AND openid = ?", appID, openID).Find(&got).Error; err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		return nil
	}
	return &got[0]
}

func (w *world) customer(t testing.TB, id int64) *models.Customer {
	t.Helper()
	c, err := models.FindCustomer(w.db, w.tenant, id)
	if err != nil {
		t.Fatalf("customer %d: %v", id, err)
	}
	return c
}

func (w *world) count(t testing.TB, model any) int64 {
	t.Helper()
	var n int64
	if err := w.db.Model(model).Scopes(models.ForTenant(w.tenant)).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func (w *world) kinds(t testing.TB, customerID int64) []string {
	t.Helper()
	evs, err := models.CustomerTimeline(w.db, w.tenant, customerID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- { // oldest first reads better in assertions
		out = append(out, evs[i].Kind)
	}
	return out
}

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

func at(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

// checkMasks: the customer masks Resolve keeps as it goes (migration 0030) must
// equal what models.RefreshCustomerMasks computes from the identities.
func (w *world) checkMasks(t testing.TB) {
	t.Helper()
	type masks struct{ ID, AppMask, SubMask, SrcMask int64 }
	read := func() map[int64]masks {
		var rows []masks
		if err := w.db.Raw("SELECT id, app_mask, sub_mask, src_mask FROM customers WHERE tenant_id = ?", w.tenant).
			Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		out := map[int64]masks{}
		for _, r := range rows {
			out[r.ID] = r
		}
		return out
	}
	before := read()
	ids := make([]int64, 0, len(before))
	for id := range before {
		ids = append(ids, id)
	}
	err := models.RetryTx(context.Background(), w.db, func(tx *gorm.DB) error {
		return models.RefreshCustomerMasks(tx, w.tenant, ids)
	})
	if err != nil {
		t.Fatal(err)
	}
	wrong := 0
	for id, want := range read() {
		if got := before[id]; got != want {
			if wrong++; wrong <= 5 {
				t.Errorf("customer %d masks app=%b sub=%b src=%b, recomputed app=%b sub=%b src=%b",
					id, got.AppMask, got.SubMask, got.SrcMask, want.AppMask, want.SubMask, want.SrcMask)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d customers had stale masks", wrong, len(before))
	}
}

// tenantRows reads every identity and customer of the tenant.
func tenantRows(t *testing.T, db *gorm.DB, tenantID int64) ([]models.Identity, []models.Customer) {
	t.Helper()
	var ids []models.Identity
	if err := db.Scopes(models.ForTenant(tenantID)).Find(&ids).Error; err != nil {
		t.Fatal(err)
	}
	var customers []models.Customer
	if err := db.Scopes(models.ForTenant(tenantID)).Find(&customers).Error; err != nil {
		t.Fatal(err)
	}
	return ids, customers
}
