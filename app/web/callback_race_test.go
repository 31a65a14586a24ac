package web_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"oneid/app/wechat"
	"oneid/app/wechat/wechattest"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// The same people arrive at once by follow events on one official account
// (resolved by the running worker) and by web OAuth on that account and on a
// second one of the same open-platform account. Each person must end as one
// customer holding all their identities: none duplicated, none lost.
func TestCallbacksRacingOAuthNeverDuplicateCustomers(t *testing.T) {
	w := newIngestWorld(t, dbtest.MySQL(t))
	info1, app1 := w.bindApp(t, "race oa one", appSetup{})
	info2, app2 := w.bindApp(t, "race oa two", appSetup{})
	tid := w.ws.tenant.ID

	ctx, stop := context.WithCancel(context.Background())
	worker := make(chan struct{})
	go func() { defer close(worker); _ = w.cb.Run(ctx) }()

	const people = 24
	persons := make([]wechattest.Person, people)
	for i := range persons {
		persons[i] = w.sim.AddPerson()
	}
	var wg sync.WaitGroup
	errs := make(chan string, people*3)
	for _, p := range persons {
		wg.Add(3)
		go func() {
			defer wg.Done()
			if d, err := w.sim.Follow(info1.AppID, p, ""); err != nil || !d.OK {
				errs <- "follow failed"
			}
		}()
		go func() {
			defer wg.Done()
			if status, _, _, _ := w.oauthTrip(t, app1.CallbackKey, wechat.ScopeUserInfo, "/done", p, false); status != http.StatusFound {
				errs <- "oauth on the followed account failed"
			}
		}()
		go func() {
			defer wg.Done()
			if status, _, _, _ := w.oauthTrip(t, app2.CallbackKey, wechat.ScopeUserInfo, "/done", p, false); status != http.StatusFound {
				errs <- "oauth on the second account failed"
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	waitFor(t, func() bool { n, _ := models.CallbackBacklog(w.db); return n == 0 })
	stop()
	<-worker

	for _, p := range persons {
		i1 := w.identity(t, tid, app1.ID, w.sim.OpenID(info1.AppID, p))
		i2 := w.identity(t, tid, app2.ID, w.sim.OpenID(info2.AppID, p))
		if i1 == nil || i2 == nil {
			t.Fatalf("person %d lost an identity: %v %v", p, i1, i2)
		}
		if i1.CustomerID != i2.CustomerID || !i1.Subscribed {
			t.Errorf("person %d: customers %d and %d, subscribed %v", p, i1.CustomerID, i2.CustomerID, i1.Subscribed)
		}
		c, err := models.FindCustomerByUnionID(w.db, tid, w.open.OpenAppID, w.sim.UnionID(w.open.OpenAppID, p))
		if err != nil || c.ID != i1.CustomerID {
			t.Errorf("person %d: customer by unionid %v %v", p, c, err)
		}
	}
	if n := w.rows("customers"); n != people {
		t.Errorf("%d customers for %d people", n, people)
	}
	if n := w.rows("identities"); n != 2*people {
		t.Errorf("%d identities for %d people on 2 apps", n, people)
	}
	var empty int64
	w.db.Raw(`SELECT COUNT(*) FROM customers c WHERE c.tenant_id = ? AND NOT EXISTS
		(SELECT 1 FROM identities i WHERE i.tenant_id = c.tenant_id AND i.customer_id = c.id)`, tid).Scan(&empty)
	if empty != 0 {
		t.Errorf("%d customers without identities", empty)
	}
}
