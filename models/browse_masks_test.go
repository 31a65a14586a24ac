package models_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

// resolveAndMask is Resolve as the lead wires it: the masks of every customer
// the observations touched refreshed in the same transaction.
func resolveAndMask(t testing.TB, db *gorm.DB, tenant int64, obs ...models.Observation) models.ResolveResult {
	t.Helper()
	var res models.ResolveResult
	err := models.RetryTx(context.Background(), db, func(tx *gorm.DB) error {
		var err error
		res, err = models.Resolve(tx, tenant, obs)
		if err != nil {
			return err
		}
		var ids []int64
		for _, o := range res.Outcomes {
			ids = append(ids, o.CustomerID)
		}
		return models.RefreshCustomerMasks(tx, tenant, ids)
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkMasks compares every customer's stored masks with its identities.
func checkMasks(t testing.TB, db *gorm.DB, tenant int64) {
	t.Helper()
	apps, err := models.BrowseApps(db, tenant)
	if err != nil {
		t.Fatal(err)
	}
	bit := map[int64]int{}
	for _, a := range apps {
		if a.Bit != nil {
			bit[a.ID] = *a.Bit
		}
	}
	srcBit := map[string]int{}
	for i, s := range models.Sources() {
		srcBit[s] = i
	}
	var ids []models.Identity
	if err := db.Scopes(models.ForTenant(tenant)).Find(&ids).Error; err != nil {
		t.Fatal(err)
	}
	type masks struct{ App, Sub, Src int64 }
	want := map[int64]masks{}
	for _, i := range ids {
		b, ok := bit[i.AppID]
		if !ok {
			t.Fatalf("app %d has identities but no bit", i.AppID)
		}
		m := want[i.CustomerID]
		m.App |= 1 << b
		if i.Subscribed {
			m.Sub |= 1 << b
		}
		m.Src |= 1 << srcBit[i.Source]
		want[i.CustomerID] = m
	}
	var got []struct {
		ID                        int64
		AppMask, SubMask, SrcMask int64
	}
	if err := db.Raw("SELECT id, app_mask, sub_mask, src_mask FROM customers WHERE tenant_id = ?", tenant).Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	for _, c := range got {
		if w := want[c.ID]; w != (masks{c.AppMask, c.SubMask, c.SrcMask}) {
			t.Errorf("customer %d: masks app=%b sub=%b src=%b, identities say app=%b sub=%b src=%b",
				c.ID, c.AppMask, c.SubMask, c.SrcMask, w.App, w.Sub, w.Src)
		}
	}
}

// TestCustomerMasksFollowIdentities: Resolve keeps the masks in step by
// itself, and RefreshCustomerMasks after it changes nothing.
func TestCustomerMasksFollowIdentities(t *testing.T) {
	for _, mode := range []string{"Resolve", "ResolveThenRefresh"} {
		t.Run(mode, func(t *testing.T) { testMasksFollowIdentities(t, mode == "ResolveThenRefresh") })
	}
}

func testMasksFollowIdentities(t *testing.T, refresh bool) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		w := newWorld(t, db)
		step := func(what string, obs ...models.Observation) {
			t.Helper()
			if refresh {
				resolveAndMask(t, db, w.tenant, obs...)
			} else {
				w.resolve(t, obs...)
			}
			t.Run(what, func(t *testing.T) { checkMasks(t, db, w.tenant) })
		}
		step("new identities, linked and not",
			models.Observation{AppID: w.appA, OpenID: "oA1", UnionID: "u1", Subscription: models.Subscribed, Source: models.SourceSync, At: at(0)},
			models.Observation{AppID: w.appB, OpenID: "oB1", UnionID: "u1", Source: models.SourceMiniProgram, At: at(1)},
			models.Observation{AppID: w.appN, OpenID: "oN1", Subscription: models.Subscribed, Source: models.SourceSync, At: at(2)},
			models.Observation{AppID: w.appA, OpenID: "oA2", NoUnionIDReason: models.UnlinkedSnsapiBase, Source: models.SourceOAuth, At: at(3)},
		)
		step("an unfollow clears the follow bit",
			models.Observation{AppID: w.appA, OpenID: "oA1", UnionID: "u1", Subscription: models.Unsubscribed, Source: models.SourceEvent, At: at(10)})
		step("a UnionID arriving moves the identity",
			models.Observation{AppID: w.appA, OpenID: "oA2", UnionID: "u2", Source: models.SourceOAuth, At: at(20)},
			models.Observation{AppID: w.appB, OpenID: "oB2", UnionID: "u2", Source: models.SourcePaid, At: at(21)})
		step("following again", models.Observation{AppID: w.appA, OpenID: "oA1", UnionID: "u1", Subscription: models.Subscribed, Source: models.SourceEvent, At: at(30)})

		// The list's filters read the masks.
		apps, _ := models.BrowseApps(db, w.tenant)
		page, err := models.ListCustomers(db, w.tenant, models.CustomerFilter{AppID: w.appB}, apps, models.ListOptions{})
		if err != nil || len(page.Rows) != 2 {
			t.Fatalf("customers in the mini-program: %+v %v", page.Rows, err)
		}
		page, err = models.ListCustomers(db, w.tenant, models.CustomerFilter{Source: models.SourcePaid}, apps, models.ListOptions{})
		if err != nil || len(page.Rows) != 1 || page.Rows[0].UnionID == nil || *page.Rows[0].UnionID != "u2" {
			t.Fatalf("customers seen after payment: %+v %v", page.Rows, err)
		}

		// A rebuild from scratch agrees with the incremental masks.
		if err := db.Exec("UPDATE customers SET app_mask = 0, sub_mask = 0, src_mask = 0 WHERE tenant_id = ?", w.tenant).Error; err != nil {
			t.Fatal(err)
		}
		if n, err := models.RebuildCustomerMasks(context.Background(), db, w.tenant, nil); err != nil || n != 3 {
			t.Fatalf("rebuilt %d: %v", n, err)
		}
		checkMasks(t, db, w.tenant)
	})
}

// TestConcurrentWritersOfOneCustomerKeepEveryBit: identities of one person
// arrive at once through different apps; the customer's masks end up with all
// of them (each writer locks the customer before reading its identities).
func TestConcurrentWritersOfOneCustomerKeepEveryBit(t *testing.T) {
	db := dbtest.MySQL(t)
	tenant := makeTenant(t, db)
	oa, _ := makeOpenAccount(t, db, tenant)
	var apps []int64
	for range 8 {
		id, _ := makeApp(t, db, tenant, &oa, models.KindService)
		apps = append(apps, id)
	}
	for round := range 6 {
		var wg sync.WaitGroup
		for i, app := range apps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sub := models.Subscribed
				if (i+round)%3 == 0 {
					sub = models.Unsubscribed
				}
				o := models.Observation{AppID: app, OpenID: fmt.Sprintf("o%d-%d", round, i),
					UnionID: fmt.Sprintf("u%d", round), Subscription: sub, Source: models.SourceEvent, At: time.Now()}
				if round%2 == 0 {
					resolveAndMask(t, db, tenant, o)
				} else if _, err := models.Resolve(db, tenant, []models.Observation{o}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	checkMasks(t, db, tenant)
	var full int64
	if err := db.Raw("SELECT COUNT(*) FROM customers WHERE tenant_id = ? AND app_mask = 255", tenant).Scan(&full).Error; err != nil || full != 6 {
		t.Fatalf("%d customers hold all 8 apps, want 6 (%v)", full, err)
	}
}

// TestAppsBeyondTheBitsAreFilteredThroughIdentities: a tenant's 64th app has
// no bit; filters on it still answer right.
func TestAppsBeyondTheBitsAreFilteredThroughIdentities(t *testing.T) {
	db := dbtest.SQLite(t)
	tenant := makeTenant(t, db)
	oa, _ := makeOpenAccount(t, db, tenant)
	var apps []int64
	for range models.MaxMaskedApps + 1 {
		id, _ := makeApp(t, db, tenant, &oa, models.KindSubscription)
		apps = append(apps, id)
	}
	last := apps[len(apps)-1]
	resolveAndMask(t, db, tenant,
		models.Observation{AppID: apps[0], OpenID: "o0", UnionID: "u1", Subscription: models.Subscribed, Source: models.SourceSync, At: at(0)},
		models.Observation{AppID: last, OpenID: "oL", UnionID: "u1", Subscription: models.Subscribed, Source: models.SourceSync, At: at(1)},
		models.Observation{AppID: last, OpenID: "oL2", UnionID: "u2", Subscription: models.Unsubscribed, Source: models.SourceEvent, At: at(2)},
		models.Observation{AppID: apps[1], OpenID: "o1", UnionID: "u3", Source: models.SourceSync, At: at(3)},
	)
	browse, err := models.BrowseApps(db, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if browse[len(browse)-1].Bit != nil {
		t.Fatalf("the 64th app got bit %d", *browse[len(browse)-1].Bit)
	}
	for _, c := range []struct {
		f    models.CustomerFilter
		want int
	}{
		{models.CustomerFilter{AppID: last}, 2},
		{models.CustomerFilter{AppID: last, Subscribed: "yes"}, 1},
		{models.CustomerFilter{AppID: last, Subscribed: "no"}, 1},
		{models.CustomerFilter{AppID: apps[0]}, 1},
		{models.CustomerFilter{Kind: models.KindSubscription, Subscribed: "no"}, 2},
	} {
		page, err := models.ListCustomers(db, tenant, c.f, browse, models.ListOptions{})
		if err != nil || len(page.Rows) != c.want || page.Total.N != int64(c.want) {
			t.Errorf("%+v: %d rows, total %+v, want %d (%v)", c.f, len(page.Rows), page.Total, c.want, err)
		}
	}
	d, err := models.ComputeDashboard(db, tenant, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !d.OverlapFromIdentities || d.Overlap[0][len(apps)-1] != 1 || d.Customers != 3 {
		t.Fatalf("dashboard with an app beyond the bits: from identities %v, overlap %d, customers %d",
			d.OverlapFromIdentities, d.Overlap[0][len(apps)-1], d.Customers)
	}
}
