package models_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"oneid/migrations/dbtest"
	"oneid/models"
)

// The invariant test: 64 ingesters race over the same 1,000 people, seen by
// three apps in two namespaces, with UnionIDs that sometimes arrive only later,
// in batches of every size. At the end the database must hold exactly the
// grouping an independent in-memory model predicts: no duplicate customer, no
// orphan customer, no lost identity, every identity on the right customer.
//
// ONEID_INVARIANT_SEEDS (default 3) and ONEID_INVARIANT_OBS (observations per
// ingester, default 10,000) turn it up; -short turns it down.

const (
	invariantIngesters = 64
	invariantPeople    = 1000
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestResolveInvariantUnderConcurrency(t *testing.T) {
	seeds, perIngester := envInt("ONEID_INVARIANT_SEEDS", 3), envInt("ONEID_INVARIANT_OBS", 10_000)
	if testing.Short() {
		seeds, perIngester = 1, 1_000
	}
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			runInvariant(t, uint64(seed), perIngester)
		})
	}
}

// person is one human: the apps they use and whether each app ever learns
// their UnionID.
type person struct {
	uses     [3]bool // apps A, B, C
	revealed [3]bool // some observation of that identity carries the UnionID
}

func runInvariant(t *testing.T, seed uint64, perIngester int) {
	db := dbtest.MySQL(t)
	w := newWorld(t, db)
	apps := [3]int64{w.appA, w.appB, w.appC}
	ns := [3]int64{w.oa1, w.oa1, w.oa2}
	rng := rand.New(rand.NewPCG(seed, 0x0e1d))

	people := make([]person, invariantPeople)
	for i := range people {
		for a := range 3 {
			people[i].uses[a] = rng.IntN(100) < 60
			people[i].revealed[a] = rng.IntN(100) < 85
		}
		if !people[i].uses[0] && !people[i].uses[1] && !people[i].uses[2] {
			people[i].uses[rng.IntN(3)] = true
		}
	}
	openID := func(p, a int) string { return fmt.Sprintf("o%c_%d_%04d", 'A'+a, seed, p) }
	// The same UnionID string in both namespaces: only the namespace keeps the
	// account-2 customer apart from the account-1 one.
	unionID := func(p int) string { return fmt.Sprintf("u_%d_%04d", seed, p) }

	// Every ingester gets its own shuffled stream of observations.
	type batch []models.Observation
	streams := make([][]batch, invariantIngesters)
	observed := map[[2]int]bool{}  // (person, app) → some valid observation exists
	withUnion := map[[2]int]bool{} // … and one of them carried the UnionID
	sources := []string{models.SourceSync, models.SourceEvent, models.SourceOAuth, models.SourcePaid, models.SourceImport}
	for g := range streams {
		var obs []models.Observation
		for range perIngester {
			p := rng.IntN(invariantPeople)
			a := rng.IntN(3)
			for !people[p].uses[a] {
				a = rng.IntN(3)
			}
			o := models.Observation{AppID: apps[a], OpenID: openID(p, a), Source: sources[rng.IntN(len(sources))],
				At: t0.Add(time.Duration(rng.IntN(86_400)) * time.Second)}
			if a == 1 {
				o.Source = models.SourceMiniProgram
			} else {
				o.Subscription = models.Subscription(rng.IntN(3))
			}
			carries := people[p].revealed[a] && rng.IntN(100) < 50
			if carries {
				o.UnionID = unionID(p)
			} else {
				o.NoUnionIDReason = []string{"", models.UnlinkedNotFollower, models.UnlinkedSnsapiBase, models.UnlinkedNotAsked}[rng.IntN(4)]
			}
			if rng.IntN(100) < 30 {
				o.Nickname = fmt.Sprintf("人%d", rng.IntN(1000))
			}
			switch rng.IntN(100) {
			case 0: // snapshot user: never stored, whatever its ids
				o.Snapshot, o.OpenID, o.UnionID = true, "snap"+openID(p, a), "snap"+unionID(p)
			case 1: // a blocked id: refused
				o.OpenID = "undefined"
			default:
				observed[[2]int{p, a}] = true
				if carries {
					withUnion[[2]int{p, a}] = true
				}
			}
			obs = append(obs, o)
		}
		for len(obs) > 0 {
			n := min(len(obs), 1+rng.IntN(rng.IntN(400)+1)) // mostly small batches, some up to 400
			streams[g] = append(streams[g], obs[:n])
			obs = obs[n:]
		}
	}

	deadlocksBefore := innodbDeadlocks(t, w)
	start := time.Now()
	var wg sync.WaitGroup
	var failures, total atomic.Int64
	errs := make(chan error, invariantIngesters)
	for g := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, b := range streams[g] {
				res, err := models.Resolve(w.db, w.tenant, b)
				if err != nil {
					errs <- err
					return
				}
				total.Add(int64(len(b)))
				for i, o := range res.Outcomes {
					bad := false
					switch {
					case b[i].Snapshot:
						bad = o.Change != models.Skipped
					case b[i].OpenID == "undefined":
						bad = o.Change != models.Rejected
					default:
						bad = o.Err != nil || o.CustomerID == 0 || o.IdentityID == 0
					}
					if bad {
						failures.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("an ingester failed: %v", err)
	}
	elapsed := time.Since(start)
	t.Logf("seed %d: %d observations in %d batches by %d ingesters in %v (%.0f obs/s), %d InnoDB deadlocks retried",
		seed, total.Load(), countBatches(streams), invariantIngesters, elapsed.Round(time.Millisecond),
		float64(total.Load())/elapsed.Seconds(), innodbDeadlocks(t, w)-deadlocksBefore)
	if n := failures.Load(); n > 0 {
		t.Errorf("%d observations got a wrong outcome", n)
	}

	// The expected grouping, from the model alone.
	type key struct {
		app    int64
		openID string
	}
	expectGroup := map[key]string{} // identity → group name
	groups := map[string]int{}      // group name → identities
	for pa := range observed {
		p, a := pa[0], pa[1]
		g := fmt.Sprintf("unlinked %d/%d", p, a)
		if withUnion[pa] {
			g = fmt.Sprintf("ns%d %s", ns[a], unionID(p))
		}
		expectGroup[key{apps[a], openID(p, a)}] = g
		groups[g]++
	}

	ids, customers := tenantRows(t, db, w.tenant)
	byID := map[int64]models.Customer{}
	for _, c := range customers {
		byID[c.ID] = c
	}

	groupCustomer := map[string]int64{}
	customerGroup := map[int64]string{}
	perCustomer := map[int64]int{}
	lost, stray, wrong := 0, 0, 0
	for _, id := range ids {
		g, ok := expectGroup[key{id.AppID, id.OpenID}]
		if !ok {
			stray++
			t.Errorf("identity %d/%s stored but never validly observed", id.AppID, id.OpenID)
			continue
		}
		c, ok := byID[id.CustomerID]
		if !ok {
			wrong++
			t.Errorf("identity %s points at missing customer %d", id.OpenID, id.CustomerID)
			continue
		}
		perCustomer[c.ID]++
		if prev, seen := customerGroup[c.ID]; seen && prev != g {
			wrong++
			t.Errorf("customer %d holds groups %q and %q", c.ID, prev, g)
		}
		customerGroup[c.ID] = g
		if prev, seen := groupCustomer[g]; seen && prev != c.ID {
			wrong++
			t.Errorf("group %q split over customers %d and %d", g, prev, c.ID)
		}
		groupCustomer[g] = c.ID
		linked := g[0] == 'n'
		if linked != c.Linked() {
			wrong++
			t.Errorf("identity %s on customer %d linked=%v, want %v", id.OpenID, c.ID, c.Linked(), linked)
		} else if linked && fmt.Sprintf("ns%d %s", *c.OpenAccountID, *c.UnionID) != g {
			wrong++
			t.Errorf("identity %s on customer ns%d %s, want %s", id.OpenID, *c.OpenAccountID, *c.UnionID, g)
		}
	}
	lost = len(expectGroup) - (len(ids) - stray)
	orphans := 0
	for _, c := range customers {
		if perCustomer[c.ID] == 0 {
			orphans++
			if orphans <= 5 {
				t.Errorf("orphan customer %+v", c)
			}
		}
	}
	dup := len(customers) - orphans - len(groups)
	var danglingEvents int64
	db.Raw(`SELECT COUNT(*) FROM customer_events e LEFT JOIN customers c ON c.id = e.customer_id
WHERE e.tenant_id = ? AND c.id IS NULL`, w.tenant).Scan(&danglingEvents)
	t.Logf("seed %d: %d identities, %d customers (%d linked groups and singletons expected); lost %d, stray %d, misplaced %d, orphan customers %d, duplicate customers %d, dangling events %d",
		seed, len(ids), len(customers), len(groups), lost, stray, wrong, orphans, dup, danglingEvents)
	if lost != 0 || stray != 0 || wrong != 0 || orphans != 0 || dup != 0 || danglingEvents != 0 {
		t.Fatalf("invariant broken")
	}
	w.checkMasks(t)
}

func countBatches[B any](streams [][]B) int {
	n := 0
	for _, s := range streams {
		n += len(s)
	}
	return n
}

func innodbDeadlocks(t *testing.T, w *world) int64 {
	var row struct {
		VariableName string `gorm:"column:Variable_name"`
		Value        int64  `gorm:"column:Value"`
	}
	w.db.Raw("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'").Scan(&row)
	return row.Value
}
