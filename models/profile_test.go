package models_test

import (
	"reflect"
	"testing"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

// The profile draws its timeline from the identities it read already; it is
// the same timeline CustomerTimeline gives, "followed" lines of synced
// identities included, newest first and cut at the limit.
func TestProfileTimelineIsTheCustomersTimeline(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		w := newWorld(t, db)
		c := w.resolve(t, models.Observation{AppID: w.appA, OpenID: "oA1", UnionID: "u1", Subscription: models.Subscribed,
			SubscribeTime: at(-3600), SubscribeScene: "ADD_SCENE_QR_CODE", Source: models.SourceSync, At: at(0), SyncPass: 1}).Outcomes[0].CustomerID
		w.resolve(t,
			models.Observation{AppID: w.appB, OpenID: "oB1", UnionID: "u1", Source: models.SourceMiniProgram, At: at(60)},
			models.Observation{AppID: w.appB, OpenID: "oB1", UnionID: "u1", Source: models.SourceMiniProgram, At: at(1200)},
			models.Observation{AppID: w.appA, OpenID: "oA1", UnionID: "u1", Subscription: models.Unsubscribed, Source: models.SourceEvent, At: at(1800)},
		)
		for _, limit := range []int{0, 2, 100} {
			want, err := models.CustomerTimeline(db, w.tenant, c, limit)
			if err != nil {
				t.Fatal(err)
			}
			p, err := models.LoadProfile(db, w.tenant, c, limit, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 || !reflect.DeepEqual(p.Timeline, want) {
				t.Fatalf("limit %d: profile timeline %+v, want %+v", limit, p.Timeline, want)
			}
			followed := false
			for _, e := range p.Timeline {
				followed = followed || (e.Kind == models.EventFollowed && e.ID == 0)
			}
			if limit != 2 && !followed {
				t.Fatalf("limit %d: no followed line drawn from the synced identity: %+v", limit, p.Timeline)
			}
		}
	})
}
