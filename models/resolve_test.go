package models_test

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"testing"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestResolve(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		t.Run("UnlinkedIdentityBecomesItsOwnCustomerWithReason", func(t *testing.T) {
			w := newWorld(t, db)
			res := w.resolve(t, models.Observation{AppID: w.appA, OpenID: "oA1", NoUnionIDReason: models.UnlinkedSnsapiBase,
				Source: models.SourceOAuth, At: at(0)})
			out := res.Outcomes[0]
			if out.Change != models.Created || out.CustomerID == 0 || out.IdentityID == 0 {
				t.Fatalf("outcome %+v", out)
			}
			c := w.customer(t, out.CustomerID)
			if c.Linked() || c.UnlinkedReason == nil || *c.UnlinkedReason != models.UnlinkedSnsapiBase || c.OpenAccountID != nil {
				t.Fatalf("customer %+v, want unlinked with reason snsapi_base", c)
			}
			if got := w.kinds(t, c.ID); strings.Join(got, ",") != models.EventOAuthSignIn {
				t.Fatalf("timeline %v", got)
			}
		})

		t.Run("UnionIDArrivingMovesIdentityAndDeletesEmptyCustomer", func(t *testing.T) {
			w := newWorld(t, db)
			defer w.checkMasks(t)
			first := w.resolve(t, models.Observation{AppID: w.appA, OpenID: "oA1", NoUnionIDReason: models.UnlinkedSnsapiBase,
				Source: models.SourceOAuth, At: at(0)}).Outcomes[0]
			second := w.resolve(t, models.Observation{AppID: w.appA, OpenID: "oA1", UnionID: "u1",
				Source: models.SourceOAuth, At: at(10)}).Outcomes[0]
			if second.Change != models.Linked || second.CustomerID == first.CustomerID || second.IdentityID != first.IdentityID {
				t.Fatalf("first %+v second %+v: want the same identity linked onto a new customer", first, second)
			}
			if _, err := models.FindCustomer(w.db, w.tenant, first.CustomerID); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("emptied unlinked customer still there: %v", err)
			}
			c := w.customer(t, second.CustomerID)
			if !c.Linked() || *c.UnionID != "u1" || *c.OpenAccountID != w.oa1 || c.UnlinkedReason != nil {
				t.Fatalf("customer %+v", c)
			}
			if !c.FirstSeenAt.Equal(at(0)) || !c.LastSeenAt.Equal(at(10)) {
				t.Fatalf("seen %v..%v, want the identity's history kept", c.FirstSeenAt, c.LastSeenAt)
			}
			// The old timeline came along; the link is on it.
			if got := strings.Join(w.kinds(t, c.ID), ","); got != "oauth_sign_in,oauth_sign_in,linked" {
				t.Fatalf("timeline %s", got)
			}
			if n := w.count(t, &models.Customer{}); n != 1 {
				t.Fatalf("%d customers, want 1", n)
			}
		})

		t.Run("UnionIDArrivingJoinsExistingCustomer", func(t *testing.T) {
			w := newWorld(t, db)
			defer w.checkMasks(t)
			linked := w.resolve(t, models.Observation{AppID: w.appA, OpenID: "oA1", UnionID: "u1", Subscription: models.Subscribed,
				SubscribeTime: at(-600), Source: models.SourceSync, At: at(0), SyncPass: 1}).Outcomes[0]
			mini := w.resolve(t, models.Observation{AppID: w.appB, OpenID: "oB1", Source: models.SourceMiniProgram, At: at(5)}).Outcomes[0]
			if mini.CustomerID == linked.CustomerID {
				t.Fatal("identity without unionid joined a customer")
			}
			res := w.resolve(t, models.Observation{AppID: w.appB, OpenID: "oB1", UnionID: "u1", Source: models.SourcePaid, At: at(20)})
			if got := res.Outcomes[0]; got.Change != models.Linked || got.CustomerID != linked.CustomerID {
				t.Fatalf("outcome %+v, want linked onto %d", got, linked.CustomerID)
			}
			ids, err := models.IdentitiesOfCustomer(w.db, w.tenant, linked.CustomerID)
			if err != nil || len(ids) != 2 {
				t.Fatalf("identities %v %v", ids, err)
			}
			if n := w.count(t, &models.Customer{}); n != 1 {
				t.Fatalf("%d customers, want 1", n)
			}
			c := w.customer(t, linked.CustomerID)
			if !c.FirstSeenAt.Equal(at(-600)) || !c.LastSeenAt.Equal(at(20)) {
				t.Fatalf("seen %v..%v", c.FirstSeenAt, c.LastSeenAt)
			}
			if got := strings.Join(w.kinds(t, c.ID), ","); got != "followed,mini_sign_in,linked" {
				t.Fatalf("timeline %s", got)
			}
			var m struct{ AppMask, SubMask, SrcMask int64 }
			if err := db.Raw("SELECT app_mask, sub_mask, src_mask FROM customers WHERE tenant_id = ? AND id = ?", w.tenant, c.ID).
				Scan(&m).Error; err != nil {
				t.Fatal(err)
			}
			if bits.OnesCount64(uint64(m.AppMask)) != 2 || bits.OnesCount64(uint64(m.SubMask)) != 1 || bits.OnesCount64(uint64(m.SrcMask)) != 2 {
				t.Fatalf("masks app=%b sub=%b src=%b, want two apps, one followed, two sources", m.AppMask, m.SubMask, m.SrcMask)
			}
		})

		t.Run("LinkedIdentitySeenWithoutUnionIDStaysLinked", func(t *testing.T) {
			w := newWorld(t, db)
			a := w.resolve(t, models.Observation{AppID: w.appA, OpenID: "oA1", UnionID: "u1", Source: models.SourceOAuth, At: at(0)}).Outcomes[0]
			b := w.resolve(t, models.Observation{AppID: w.appA, OpenID: "oA1", NoUnionIDReason: models.UnlinkedSnsapiBase,
				Source: models.SourceOAuth, At: at(60)}).Outcomes[0]
			if b.CustomerID != a.CustomerID || !w.customer(t, a.CustomerID).Linked() {
				t.Fatalf("%+v then %+v: a missing unionid must never unlink", a, b)
			}
		})

		t.Run("SnapshotUsersAreNeverStored", func(t *testing.T) {
			w := newWorld(t, db)
			res := w.resolve(t,
				models.Observation{AppID: w.appA, OpenID: "oSnap", UnionID: "uSnap", Snapshot: true, Source: models.SourceOAuth},
				models.Observation{AppID: w.appA, OpenID: "null", Snapshot: true, Source: models.SourceOAuth},
			)
			for i, o := range res.Outcomes {
				if o.Change != models.Skipped || o.CustomerID != 0 || o.Err != nil {
					t.Fatalf("outcome %d %+v", i, o)
				}
			}
			if n := w.count(t, &models.Identity{}) + w.count(t, &models.Customer{}) + w.count(t, &models.CustomerEvent{}); n != 0 {
				t.Fatalf("%d rows stored for snapshot users", n)
			}
		})

		t.Run("BlockedIDsAreRefusedOneByOne", func(t *testing.T) {
			w := newWorld(t, db)
			bad := []string{"", " ", "\t", "null", "NULL", "undefined", "Undefined", "0", strings.Repeat("o", 65), "o abc", "oab\x00c"}
			var obs []models.Observation
			for _, v := range bad {
				obs = append(obs,
					models.Observation{AppID: w.appA, OpenID: v, Source: models.SourceSync},
					models.Observation{AppID: w.appA, OpenID: "oGood" + randHex(3), UnionID: orPlaceholder(v), Source: models.SourceSync})
			}
			obs = append(obs, models.Observation{AppID: w.appA, OpenID: "oFine", UnionID: "uFine", Source: models.SourceSync},
				models.Observation{AppID: w.appA, OpenID: strings.Repeat("o", 64), Source: models.SourceSync},
				models.Observation{AppID: w.appA, OpenID: "oX", Source: "carrier-pigeon"},
				models.Observation{AppID: w.appA, OpenID: "oY", NoUnionIDReason: "forgot", Source: models.SourceSync})
			res := w.resolve(t, obs...)
			for i, o := range res.Outcomes[:2*len(bad)] {
				if o.Change != models.Rejected || !errors.Is(o.Err, models.ErrInvalidObservation) {
					t.Errorf("observation %d (%q/%q): %+v, want rejected", i, obs[i].OpenID, obs[i].UnionID, o)
				}
			}
			tail := res.Outcomes[2*len(bad):]
			if tail[0].Change != models.Created || tail[1].Change != models.Created {
				t.Fatalf("valid observations beside invalid ones: %+v", tail[:2])
			}
			if tail[2].Change != models.Rejected || tail[3].Change != models.Rejected {
				t.Fatalf("unknown source or reason accepted: %+v", tail[2:])
			}
			if n := w.count(t, &models.Identity{}); n != 2 {
				t.Fatalf("%d identities stored, want 2", n)
			}
			if len(res.Rejections()) != 2*len(bad)+2 {
				t.Fatalf("%d rejections", len(res.Rejections()))
			}
		})

		t.Run("UnsubscribingKeepsTheIdentity", func(t *testing.T) {
			w := newWorld(t, db)
			defer w.checkMasks(t)
			ev := func(s models.Subscription, minute int) models.Observation {
				return models.Observation{AppID: w.appA, OpenID: "oA1", UnionID: "u1", Subscription: s,
					Source: models.SourceEvent, At: at(minute)}
			}
			first := w.resolve(t, ev(models.Subscribed, 0)).Outcomes[0]
			if again := w.resolve(t, ev(models.Subscribed, 0)).Outcomes[0]; again.Change != models.Unchanged {
				t.Fatalf("a retried event changed something: %+v", again)
			}
			w.resolve(t, ev(models.Unsubscribed, 30))
			id := w.identity(t, w.appA, "oA1")
			if id == nil || id.Subscribed || id.UnsubscribedAt == nil || !id.UnsubscribedAt.Equal(at(30)) || id.CustomerID != first.CustomerID {
				t.Fatalf("identity after unsubscribe: %+v", id)
			}
			// A follow observed before the unfollow arrives late: stale, ignored.
			if late := w.resolve(t, ev(models.Subscribed, 20)).Outcomes[0]; late.Change != models.Unchanged {
				t.Fatalf("stale follow applied: %+v", late)
			}
			w.resolve(t, ev(models.Subscribed, 45))
			if id := w.identity(t, w.appA, "oA1"); !id.Subscribed || !id.SubscribeTime.Equal(at(45)) {
				t.Fatalf("re-follow: %+v", id)
			}
			if got := strings.Join(w.kinds(t, first.CustomerID), ","); got != "followed,unfollowed,followed" {
				t.Fatalf("timeline %s", got)
			}
		})

		t.Run("AppWithoutOpenAccountNeverLinks", func(t *testing.T) {
			w := newWorld(t, db)
			defer w.checkMasks(t)
			res := w.resolve(t,
				models.Observation{AppID: w.appN, OpenID: "oN1", UnionID: "u1", Source: models.SourceSync, Subscription: models.Subscribed},
				models.Observation{AppID: w.appN, OpenID: "oN2", UnionID: "u1", Source: models.SourceSync, Subscription: models.Subscribed},
				models.Observation{AppID: w.appN, OpenID: "oN3", NoUnionIDReason: models.UnlinkedNotFollower, Source: models.SourceSync},
			)
			seen := map[int64]bool{}
			for i, o := range res.Outcomes {
				c := w.customer(t, o.CustomerID)
				if c.Linked() || c.UnlinkedReason == nil || *c.UnlinkedReason != models.UnlinkedNoOpenAccount || seen[c.ID] {
					t.Fatalf("observation %d: customer %+v", i, c)
				}
				seen[c.ID] = true
			}
			if id := w.identity(t, w.appN, "oN1"); id.UnionID != nil {
				t.Fatalf("unionid kept for an app without namespace: %q", *id.UnionID)
			}
		})

		t.Run("TwoNamespacesKeepSeparateCustomersForOneUnionIDString", func(t *testing.T) {
			w := newWorld(t, db)
			defer w.checkMasks(t)
			res := w.resolve(t,
				models.Observation{AppID: w.appA, OpenID: "oA1", UnionID: "same", Source: models.SourceSync},
				models.Observation{AppID: w.appB, OpenID: "oB1", UnionID: "same", Source: models.SourceMiniProgram},
				models.Observation{AppID: w.appC, OpenID: "oC1", UnionID: "same", Source: models.SourceSync},
			)
			a, b, c := res.Outcomes[0].CustomerID, res.Outcomes[1].CustomerID, res.Outcomes[2].CustomerID
			if a != b || a == c {
				t.Fatalf("customers %d %d %d: want A and B together, C apart", a, b, c)
			}
			if got, err := models.FindCustomerByUnionID(w.db, w.tenant, w.openApp2, "same"); err != nil || got.ID != c {
				t.Fatalf("by unionid in account 2: %v %v", got, err)
			}
			if _, err := models.FindCustomerByUnionID(w.db, w.tenant, "", "same"); !errors.Is(err, models.ErrAmbiguousUnionID) {
				t.Fatalf("by unionid in any account: %v", err)
			}
		})

		t.Run("AnotherTenantsRowsAreUntouched", func(t *testing.T) {
			w := newWorld(t, db)
			other := newWorld(t, db)
			theirs := other.resolve(t, models.Observation{AppID: other.appA, OpenID: "oA1", UnionID: "u1", Nickname: "theirs",
				Subscription: models.Subscribed, Source: models.SourceEvent, At: at(0)}).Outcomes[0]
			before := other.customer(t, theirs.CustomerID)
			res := w.resolve(t,
				models.Observation{AppID: w.appA, OpenID: "oA1", UnionID: "u1", Nickname: "ours", Source: models.SourceEvent, At: at(10)},
				models.Observation{AppID: other.appA, OpenID: "oA1", Subscription: models.Unsubscribed, Source: models.SourceEvent, At: at(20)},
			)
			if res.Outcomes[0].CustomerID == theirs.CustomerID {
				t.Fatal("two tenants share a customer")
			}
			if o := res.Outcomes[1]; o.Change != models.Rejected || !errors.Is(o.Err, models.ErrNotFound) {
				t.Fatalf("observation naming another tenant's app: %+v", o)
			}
			after := other.customer(t, theirs.CustomerID)
			if after.Nickname != "theirs" || !after.UpdatedAt.Equal(before.UpdatedAt) || !other.identity(t, other.appA, "oA1").Subscribed {
				t.Fatalf("other tenant's customer changed: %+v", after)
			}
			if _, err := models.FindCustomer(w.db, w.tenant, theirs.CustomerID); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("FindCustomer across tenants: %v", err)
			}
			if err := models.DeleteCustomer(w.db, w.tenant, theirs.CustomerID); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("DeleteCustomer across tenants: %v", err)
			}
			if _, err := models.FindCustomerByOpenID(w.db, w.tenant, other.appidA, "oA1"); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("FindCustomerByOpenID across tenants: %v", err)
			}
		})

		t.Run("ProfileComesFromTheNewestObservationThatHasOne", func(t *testing.T) {
			w := newWorld(t, db)
			obs := func(openID, nick string, minute int) models.Observation {
				return models.Observation{AppID: w.appA, OpenID: openID, UnionID: "u1", Nickname: nick,
					AvatarURL: map[bool]string{true: "https://wx.qlogo.cn/" + nick}[nick != ""], Source: models.SourceOAuth, At: at(minute)}
			}
			id := w.resolve(t, obs("oA1", "first", 0)).Outcomes[0].CustomerID
			w.resolve(t, obs("oA1", "", 30))      // newer, but says nothing of the profile
			w.resolve(t, obs("oA1", "third", 20)) // older than the last sighting, newest with a nickname
			w.resolve(t, obs("oA1", "stale", 10)) // older than "third"
			c := w.customer(t, id)
			if c.Nickname != "third" || c.AvatarURL != "https://wx.qlogo.cn/third" || !c.LastSeenAt.Equal(at(30)) {
				t.Fatalf("customer %q %q last seen %v", c.Nickname, c.AvatarURL, c.LastSeenAt)
			}
			w.resolve(t, models.Observation{AppID: w.appB, OpenID: "oB1", UnionID: "u1", Nickname: "from mini",
				Source: models.SourceMiniProgram, At: at(40)})
			if c := w.customer(t, id); c.Nickname != "from mini" || c.AvatarURL != "https://wx.qlogo.cn/third" {
				t.Fatalf("customer %q %q after a newer identity", c.Nickname, c.AvatarURL)
			}
		})

		t.Run("OneBatchMayRepeatAnIdentity", func(t *testing.T) {
			w := newWorld(t, db)
			defer w.checkMasks(t)
			res := w.resolve(t,
				models.Observation{AppID: w.appA, OpenID: "oA1", Subscription: models.Unsubscribed, Source: models.SourceEvent, At: at(19)},
				models.Observation{AppID: w.appA, OpenID: "oA1", UnionID: "u1", Subscription: models.Subscribed, Source: models.SourceEvent, At: at(1)},
				models.Observation{AppID: w.appA, OpenID: "oA1", Source: models.SourceOAuth, NoUnionIDReason: models.UnlinkedSnsapiBase, At: at(10)},
			)
			c := res.Outcomes[0].CustomerID
			for _, o := range res.Outcomes {
				if o.CustomerID != c || o.Change != models.Created {
					t.Fatalf("outcomes %+v", res.Outcomes)
				}
			}
			if id := w.identity(t, w.appA, "oA1"); id.Subscribed || !w.customer(t, c).Linked() {
				t.Fatalf("identity %+v", id)
			}
			if got := strings.Join(w.kinds(t, c), ","); got != "followed,oauth_sign_in,unfollowed" {
				t.Fatalf("timeline %s", got)
			}
		})

		t.Run("ResolvingTheSameSyncAgainWritesNothing", func(t *testing.T) {
			w := newWorld(t, db)
			var obs []models.Observation
			for i := range 250 { // more than SQLite's 100 rows a statement
				o := models.Observation{AppID: w.appA, OpenID: "oA" + randHex(4), Subscription: models.Subscribed,
					SubscribeTime: at(-i), Source: models.SourceSync, At: at(0), SyncPass: 7}
				if i%3 != 0 {
					o.UnionID = "u" + o.OpenID
				} else {
					o.NoUnionIDReason = models.UnlinkedNotAsked
				}
				obs = append(obs, o)
			}
			first := w.resolve(t, obs...)
			if first.Counts[models.Created] != len(obs) {
				t.Fatalf("counts %v", first.Counts)
			}
			// The ids reported for rows inserted many to a statement are the rows'.
			for i, o := range obs {
				id := w.identity(t, o.AppID, o.OpenID)
				if got := first.Outcomes[i]; id == nil || got.IdentityID != id.ID || got.CustomerID != id.CustomerID {
					t.Fatalf("observation %d: outcome %+v, stored %+v", i, got, id)
				}
			}
			var maxBefore struct{ I, C, E int64 }
			snapshot := func() (s struct{ I, C, E int64 }) {
				db.Raw("SELECT COUNT(*) FROM identities WHERE tenant_id = ? AND updated_at > ?", w.tenant, at(0)).Scan(&s.I)
				s.C = w.count(t, &models.Customer{})
				s.E = w.count(t, &models.CustomerEvent{})
				return
			}
			maxBefore = snapshot()
			for i := range obs {
				obs[i].At = at(600) // a later pass: nothing changed but the clock
			}
			again := w.resolve(t, obs...)
			if again.Counts[models.Unchanged] != len(obs) {
				t.Fatalf("counts %v", again.Counts)
			}
			if got := snapshot(); got != maxBefore {
				t.Fatalf("unchanged re-sync wrote rows: before %+v after %+v", maxBefore, got)
			}
		})

		t.Run("ChunksAfterANewChunkPlanKnownIdentitiesUnderLock", func(t *testing.T) {
			// A chunk after one of mostly new identities skips the read
			// without locks: its known, changed, linking and unchanged
			// identities must come out exactly as through the read.
			w := newWorld(t, db)
			defer w.checkMasks(t)
			known := make([]models.Observation, 1200)
			for i := range known {
				known[i] = models.Observation{AppID: w.appA, OpenID: fmt.Sprintf("oK%05d", i), Subscription: models.Subscribed,
					SubscribeTime: at(-i), Source: models.SourceSync, At: at(0), SyncPass: 1}
				if i%4 != 0 {
					known[i].UnionID = "u" + known[i].OpenID
				}
			}
			before := w.resolve(t, known...)
			if before.Counts[models.Created] != len(known) {
				t.Fatalf("counts %v", before.Counts)
			}
			var obs []models.Observation
			for i := range 1000 { // the first chunk: all new
				obs = append(obs, models.Observation{AppID: w.appA, OpenID: fmt.Sprintf("oN%05d", i), UnionID: fmt.Sprintf("uN%05d", i),
					Subscription: models.Subscribed, Source: models.SourceSync, At: at(60), SyncPass: 2})
			}
			want := map[models.Change]int{models.Created: 1000}
			for i, k := range known {
				o := k
				o.At, o.SyncPass = at(60), 2
				switch {
				case i%4 == 0 && i%8 == 0: // its UnionID arrives: linked
					o.UnionID = "u" + o.OpenID
					want[models.Linked]++
				case i%5 == 1: // left
					o.Subscription, o.UnionID, o.NoUnionIDReason = models.Unsubscribed, "", models.UnlinkedNotFollower
					want[models.Updated]++
				default:
					want[models.Unchanged]++
				}
				obs = append(obs, o)
			}
			res := w.resolve(t, obs...)
			for c, n := range want {
				if res.Counts[c] != n {
					t.Fatalf("counts %v, want %v", res.Counts, want)
				}
			}
			for i, o := range obs {
				id := w.identity(t, o.AppID, o.OpenID)
				if got := res.Outcomes[i]; id == nil || got.IdentityID != id.ID || got.CustomerID != id.CustomerID || id.LastSyncPass != 2 {
					t.Fatalf("observation %d: outcome %+v, stored %+v", i, got, id)
				}
				if i >= 1000 && before.Outcomes[i-1000].IdentityID != id.ID {
					t.Fatalf("observation %d: identity %d, was %d", i, id.ID, before.Outcomes[i-1000].IdentityID)
				}
			}
			if n := w.count(t, &models.Identity{}); n != 2200 {
				t.Fatalf("%d identities, want 2200", n)
			}
		})

		t.Run("SyncPassMarksFollowersItDidNotList", func(t *testing.T) {
			w := newWorld(t, db)
			defer w.checkMasks(t)
			follow := func(openID string, pass int64, minute int) models.Observation {
				return models.Observation{AppID: w.appA, OpenID: openID, UnionID: "u" + openID, Subscription: models.Subscribed,
					SubscribeTime: at(-100), Source: models.SourceSync, At: at(minute), SyncPass: pass}
			}
			w.resolve(t, follow("o1", 1, 0), follow("o2", 1, 0), follow("o3", 1, 0))
			w.resolve(t, models.Observation{AppID: w.appB, OpenID: "m1", UnionID: "uo1", Source: models.SourceMiniProgram, At: at(1)})
			// Pass 2 lists o1 only; o4 follows by event while the pass runs.
			passStart := at(60)
			w.resolve(t, follow("o1", 2, 61))
			w.resolve(t, models.Observation{AppID: w.appA, OpenID: "o4", UnionID: "uo4", Subscription: models.Subscribed,
				Source: models.SourceEvent, At: at(62)})
			n, err := models.MarkUnsubscribedExcept(w.db, w.tenant, w.appA, 2, passStart)
			if err != nil || n != 2 {
				t.Fatalf("marked %d, %v; want o2 and o3", n, err)
			}
			for openID, want := range map[string]bool{"o1": true, "o2": false, "o3": false, "o4": true} {
				if id := w.identity(t, w.appA, openID); id == nil || id.Subscribed != want {
					t.Errorf("%s: %+v, want subscribed=%v", openID, id, want)
				}
			}
			if id := w.identity(t, w.appB, "m1"); id == nil {
				t.Error("another app's identity lost")
			}
			if n, _ := models.MarkUnsubscribedExcept(w.db, w.tenant, w.appA, 2, passStart); n != 0 {
				t.Fatalf("second sweep marked %d", n)
			}
		})

		t.Run("SyncPassSweepWorksThroughManyLeavers", func(t *testing.T) {
			w := newWorld(t, db)
			defer w.checkMasks(t)
			var obs []models.Observation
			for i := range 1200 {
				obs = append(obs, models.Observation{AppID: w.appA, OpenID: fmt.Sprintf("o%04d", i), UnionID: fmt.Sprintf("u%04d", i),
					Subscription: models.Subscribed, SubscribeTime: at(-100), Source: models.SourceSync, At: at(0), SyncPass: 1})
			}
			w.resolve(t, obs...)
			for i := range obs {
				obs[i].SyncPass, obs[i].At = 2, at(61)
			}
			w.resolve(t, obs[:100]...) // pass 2 lists the first 100 only
			n, err := models.MarkUnsubscribedExcept(w.db, w.tenant, w.appA, 2, at(60))
			if err != nil || n != 1100 {
				t.Fatalf("marked %d, %v; want 1100", n, err)
			}
			var following int64
			w.db.Model(&models.Identity{}).Scopes(models.ForTenant(w.tenant)).Where("subscribed = ?", true).Count(&following)
			if following != 100 {
				t.Fatalf("%d still following, want 100", following)
			}
		})

		t.Run("DeleteCustomerErasesIdentitiesAndTimeline", func(t *testing.T) {
			w := newWorld(t, db)
			res := w.resolve(t,
				models.Observation{AppID: w.appA, OpenID: "oA1", UnionID: "u1", Subscription: models.Subscribed, Source: models.SourceEvent},
				models.Observation{AppID: w.appB, OpenID: "oB1", UnionID: "u1", Source: models.SourceMiniProgram},
				models.Observation{AppID: w.appA, OpenID: "oA2", UnionID: "u2", Subscription: models.Subscribed, Source: models.SourceEvent},
			)
			if err := models.DeleteCustomer(w.db, w.tenant, res.Outcomes[0].CustomerID); err != nil {
				t.Fatal(err)
			}
			if n := w.count(t, &models.Identity{}); n != 1 {
				t.Fatalf("%d identities left, want 1", n)
			}
			if n := w.count(t, &models.Customer{}); n != 1 {
				t.Fatalf("%d customers left, want 1", n)
			}
			if evs, _ := models.CustomerTimeline(w.db, w.tenant, res.Outcomes[0].CustomerID, 10); len(evs) != 0 {
				t.Fatalf("timeline left: %v", evs)
			}
			if err := models.DeleteCustomer(w.db, w.tenant, res.Outcomes[0].CustomerID); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("second delete: %v", err)
			}
		})

		t.Run("FindCustomerByOpenIDUsesTheWeChatAppID", func(t *testing.T) {
			w := newWorld(t, db)
			want := w.resolve(t, models.Observation{AppID: w.appC, OpenID: "oC1", UnionID: "u1", Source: models.SourceSync}).Outcomes[0].CustomerID
			got, err := models.FindCustomerByOpenID(w.db, w.tenant, w.appidC, "oC1")
			if err != nil || got.ID != want {
				t.Fatalf("got %v %v, want %d", got, err, want)
			}
			if _, err := models.FindCustomerByOpenID(w.db, w.tenant, w.appidA, "oC1"); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("openid of app C found under app A: %v", err)
			}
			if _, err := models.FindCustomerByOpenID(w.db, w.tenant, w.appidC, "null"); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("blocked id looked up: %v", err)
			}
		})
	})
}

// orPlaceholder turns a blocked openid test value into a blocked unionid one
// (an empty unionid is simply absent, so it stands for "null").
func orPlaceholder(v string) string {
	if v == "" {
		return "null"
	}
	return v
}

func TestValidWeChatID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"oXyZ_abc-0123456789abcdefghij", true},
		{"o", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false}, {"   ", false}, {"\u3000", false}, {"null", false}, {"NULL", false}, {"undefined", false},
		{"0", false}, {"o b", false}, {" oab", false}, {"o\n", false}, {"nil", false},
	} {
		if got := models.ValidWeChatID(tc.id); got != tc.want {
			t.Errorf("ValidWeChatID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}
