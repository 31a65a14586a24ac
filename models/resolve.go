package models

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Identity resolution (PRODUCT.md rule 4). Every way an OpenID reaches OneID —
// follower sync, callback events, OAuth, mini-program login, paid UnionID, CSV
// import — becomes an Observation and goes through Resolve, which keeps the
// rules in one place:
//
//   - (app, OpenID) is one identity on one customer: UNIQUE(app_id, openid).
//   - (open-platform account, UnionID) is one customer: UNIQUE(open_account_id,
//     unionid); the namespace is the app's open account. An app without one
//     never links.
//   - Without a UnionID an identity gets its own unlinked customer, reason kept.
//     When its UnionID arrives it moves to that UnionID's customer (created if
//     new); the emptied customer is deleted and its timeline moves along.
//   - Snapshot-mode users are never stored; blocked ids are refused.
//   - Unsubscribing keeps the identity (subscribed=false, unsubscribed_at).
//
// Concurrency (64 ingesters on the same people must never make two customers
// for one UnionID or lose an identity): chunks of up to 1,000 observations.
// A chunk's identities are first read without locks, outside any transaction;
// if nothing is to be written the chunk ends there. Otherwise one transaction
// (READ COMMITTED on MySQL, retried whole on deadlock or lock wait timeout by
// RetryTx) locks all of them in one statement, in (app_id, openid) order on
// the forced unique index, and plans them again from the locked rows. Customers come next,
// in (namespace, unionid) order, through upserts on the unique keys whose
// update half only moves values forward, so concurrent writers commute. New
// identities go in by a plain INSERT on UNIQUE(app_id, openid): one added by
// someone else meanwhile sends the chunk back to a savepoint to adopt it as
// known. See resolve_write.go.

// Subscription is what an observation says about following an official account.
type Subscription int8

const (
	SubscriptionUnknown Subscription = iota // says nothing (OAuth, mini-program, import…)
	Subscribed                              // follows now (subscribe event, user/info subscribe=1)
	Unsubscribed                            // stopped following (unsubscribe event, subscribe=0)
)

// Observation is one sighting of an OpenID by one of the tenant's apps.
type Observation struct {
	AppID   int64  // apps.id (not the WeChat appid); must belong to the tenant
	OpenID  string // required
	UnionID string // "" when WeChat gave none
	// NoUnionIDReason says why UnionID is empty: UnlinkedNotFollower,
	// UnlinkedSnsapiBase or UnlinkedNotAsked ("" means not asked). For an app
	// without an open-platform account Resolve records UnlinkedNoOpenAccount
	// whatever is given here.
	NoUnionIDReason string

	Subscription   Subscription
	SubscribeTime  time.Time // WeChat's subscribe_time (the latest follow); zero if unknown
	SubscribeScene string    // e.g. ADD_SCENE_QR_CODE; "" if unknown
	Nickname       string    // "" if unknown
	AvatarURL      string    // "" if unknown

	Source   string    // SourceSync, SourceEvent, SourceOAuth, SourceMiniProgram, SourcePaid, SourceImport
	At       time.Time // when it was observed; zero means now
	Snapshot bool      // is_snapshotuser=1: a virtual user, never stored
	// SyncPass names the full follower pass that listed this OpenID (e.g. the
	// sync job's id; 0 outside a pass). MarkUnsubscribedExcept uses it.
	SyncPass int64
}

// Change says what resolving an observation did.
type Change uint8

const (
	Unchanged Change = iota // nothing new: no row written (bar the sync-pass mark)
	Created                 // a new identity (and a customer, unless its UnionID's existed)
	Linked                  // the identity moved to its UnionID's customer
	Updated                 // the identity's state or profile changed
	Skipped                 // snapshot user: deliberately not stored
	Rejected                // invalid observation: see Outcome.Err
)

func (c Change) String() string {
	return [...]string{"unchanged", "created", "linked", "updated", "skipped", "rejected"}[c]
}

// Outcome is the result for one observation.
type Outcome struct {
	Change     Change
	CustomerID int64 // the customer the identity belongs to now (0 if skipped or rejected)
	IdentityID int64
	Err        error // why it was rejected; wraps ErrInvalidObservation or ErrNotFound
}

// ResolveResult holds one Outcome per observation, in input order, and counts.
type ResolveResult struct {
	Outcomes []Outcome
	Counts   map[Change]int
}

// Rejections returns the errors of rejected observations, keyed by input index.
func (r ResolveResult) Rejections() map[int]error {
	out := map[int]error{}
	for i, o := range r.Outcomes {
		if o.Err != nil {
			out[i] = o.Err
		}
	}
	return out
}

// ErrInvalidObservation wraps the reason an observation was refused.
var ErrInvalidObservation = errors.New("invalid observation")

// Tuning.
const (
	// resolveChunk observations share one transaction: big enough for a few
	// round trips per thousand, small enough to keep locks short and within
	// SQLite's limit on bound variables.
	resolveChunk = 1000
	// lastSeenStep: an observation that only moves last_seen forward by less
	// than this is not written, so bursts of sign-ins or events do not rewrite
	// the same rows. Anything else that changes writes the exact time.
	lastSeenStep = 5 * time.Minute
	// followedOnSync: whether a follower sync that finds a new identity writes
	// a "followed" event. It does not: at 1,000,000 followers that is a third
	// table of inserts on the sync's critical path (measured in
	// resolve_bench_test.go), and the identity already holds the fact;
	// CustomerTimeline shows it as a "followed" line drawn from the identity.
	followedOnSync = false
)

// Resolve records observations: each becomes (or updates) an identity on the
// right customer, per the rules above. Invalid observations are refused one by
// one (Outcome.Err) while the rest are stored; the error return is for the
// database only. Work is split into chunks of up to 1,000 observations, each
// written in its own transaction, retried whole on deadlock; pass a
// transaction as db to make the whole call one unit (then the caller's RetryTx
// retries it). The context is db's.
//
// How each path fills an Observation:
//   - follower sync: Source sync, SyncPass = the pass (job) id, Subscription
//     from user/info's subscribe, SubscribeTime, SubscribeScene, UnionID (or
//     NoUnionIDReason not_follower when subscribe=0); at the end of a complete
//     pass, MarkUnsubscribedExcept. Re-listing unchanged followers writes
//     nothing but the pass mark.
//   - callback event: Source event, At = the event's CreateTime (retried
//     deliveries are then no-ops); subscribe/unsubscribe set Subscription.
//   - OAuth: Source oauth; snsapi_base gives NoUnionIDReason snsapi_base;
//     is_snapshotuser=1 sets Snapshot.
//   - mini-program login, paid UnionID: Source miniprogram / paid, UnionID if
//     WeChat gave one.
//   - CSV import: Source import. For "nothing half-imported", call Resolve
//     inside RetryTx and return an error when Rejections() is not empty, so the
//     transaction rolls back.
func Resolve(db *gorm.DB, tenantID int64, obs []Observation) (ResolveResult, error) {
	res := ResolveResult{Outcomes: make([]Outcome, len(obs)), Counts: map[Change]int{}}
	if tenantID <= 0 {
		return res, fmt.Errorf("%w: resolve for tenant %d", ErrUnscopedQuery, tenantID)
	}
	now := dbTime(db.NowFunc())
	apps, err := loadResolveApps(db, tenantID, obs)
	if err != nil {
		return res, err
	}
	norm := make([]Observation, len(obs))
	var todo []int
	for i := range obs {
		norm[i] = normalizeObservation(obs[i], now)
		if err := checkObservation(&norm[i], apps); err != nil {
			res.Outcomes[i] = Outcome{Change: Rejected, Err: fmt.Errorf("models: observation %d: %w", i, err)}
			continue
		}
		if norm[i].Snapshot {
			res.Outcomes[i] = Outcome{Change: Skipped}
			continue
		}
		todo = append(todo, i)
	}
	mostlyNew := false // the previous chunk created most of its identities
	for start := 0; start < len(todo); start += resolveChunk {
		chunk := todo[start:min(start+resolveChunk, len(todo))]
		r := &resolver{tenantID: tenantID, now: now, mysql: Dialect(db) == DialectMySQL,
			returning: supportsReturning(db), apps: apps, perStatement: 100}
		if r.mysql {
			r.perStatement = 1000
		}
		r.expectWrites = mostlyNew
		if err := r.run(db, norm, chunk, res.Outcomes); err != nil {
			return res, fmt.Errorf("models: resolve %d observations: %w", len(chunk), err)
		}
		apps = r.apps // with the bits ensureAppBits gave: the next chunk need not ask again
		created := 0
		for _, i := range chunk {
			if res.Outcomes[i].Change == Created {
				created++
			}
		}
		mostlyNew = created*2 > len(chunk)
	}
	for _, o := range res.Outcomes {
		res.Counts[o.Change]++
	}
	return res, nil
}

// resolveApp is what resolution needs to know of an app.
type resolveApp struct {
	ID            int64
	OpenAccountID *int64
	MaskBit       *int // its bit in customers' app_mask and sub_mask (migration 0030); -1: none to give
}

// bit is the app's bit in the customer masks, 0 if it has none.
func (a resolveApp) bit() int64 {
	if a.MaskBit == nil || *a.MaskBit < 0 {
		return 0
	}
	return 1 << *a.MaskBit
}

func loadResolveApps(db *gorm.DB, tenantID int64, obs []Observation) (map[int64]resolveApp, error) {
	seen := map[int64]bool{}
	var ids []int64
	for _, o := range obs {
		if o.AppID > 0 && !seen[o.AppID] {
			seen[o.AppID] = true
			ids = append(ids, o.AppID)
		}
	}
	apps := map[int64]resolveApp{}
	if len(ids) == 0 {
		return apps, nil
	}
	var rows []resolveApp
	err := db.Model(&App{}).Scopes(ForTenant(tenantID)).Select("id", "open_account_id", "mask_bit").
		Where("id IN ?", ids).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: resolve: load apps: %w", err)
	}
	for _, a := range rows {
		apps[a.ID] = a
	}
	return apps, nil
}

var validSources = map[string]bool{SourceSync: true, SourceEvent: true, SourceOAuth: true,
	SourceMiniProgram: true, SourcePaid: true, SourceImport: true}

var validReasons = map[string]bool{"": true, UnlinkedNoOpenAccount: true, UnlinkedNotFollower: true,
	UnlinkedSnsapiBase: true, UnlinkedNotAsked: true}

func checkObservation(o *Observation, apps map[int64]resolveApp) error {
	if o.Snapshot {
		return nil // never stored, so nothing to check
	}
	if _, ok := apps[o.AppID]; !ok {
		return fmt.Errorf("%w: app %d", ErrNotFound, o.AppID)
	}
	if p := wechatIDProblem(o.OpenID); p != "" {
		return fmt.Errorf("%w: openid %s %s", ErrInvalidObservation, quoteID(o.OpenID), p)
	}
	if o.UnionID != "" {
		if p := wechatIDProblem(o.UnionID); p != "" {
			return fmt.Errorf("%w: unionid %s %s", ErrInvalidObservation, quoteID(o.UnionID), p)
		}
	}
	if !validSources[o.Source] {
		return fmt.Errorf("%w: unknown source %q", ErrInvalidObservation, o.Source)
	}
	if !validReasons[o.NoUnionIDReason] {
		return fmt.Errorf("%w: unknown reason for a missing unionid %q", ErrInvalidObservation, o.NoUnionIDReason)
	}
	if o.Subscription < SubscriptionUnknown || o.Subscription > Unsubscribed {
		return fmt.Errorf("%w: subscription %d", ErrInvalidObservation, o.Subscription)
	}
	return nil
}

// normalizeObservation trims what WeChat sends to what the columns hold: UTC
// times at microseconds (both engines compare them exactly), valid UTF-8 (MySQL
// refuses anything else), and lengths.
func normalizeObservation(o Observation, now time.Time) Observation {
	if o.At.IsZero() {
		o.At = now
	}
	o.At = dbTime(o.At)
	if !o.SubscribeTime.IsZero() {
		o.SubscribeTime = dbTime(o.SubscribeTime)
	}
	o.Nickname = clipRunes(strings.TrimSpace(strings.ToValidUTF8(o.Nickname, "")), 100)
	o.AvatarURL = strings.TrimSpace(strings.ToValidUTF8(o.AvatarURL, ""))
	if len(o.AvatarURL) > 512 {
		o.AvatarURL = "" // a cut URL is a broken one
	}
	o.SubscribeScene = clipRunes(strings.ToValidUTF8(o.SubscribeScene, ""), 64)
	return o
}

func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// dbTime is t as both engines store it: UTC, microseconds.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// identityKey names an identity: (app, openid).
type identityKey struct {
	appID  int64
	openID string
}

// unionKey names a linked customer: (namespace, unionid).
type unionKey struct {
	ns      int64
	unionID string
}

// dest is where a planned identity ends up.
type dest uint8

const (
	destKeep        dest = iota // stays on its current customer
	destLinked                  // joins (or creates) its UnionID's customer
	destNewUnlinked             // gets a new unlinked customer of its own
)

// linked reports whether an identity (as stored) sits on a linked customer.
func linked(i *Identity) bool { return i.UnionID != nil && i.OpenAccountID != nil }

// customerDelta is what one identity contributes to its customer; applied
// with monotonic merges (earliest first_seen, latest last_seen, newest profile)
// and, for the masks of migration 0030, by setting the identity's app bit in
// app_mask, its source bit in src_mask, and its app bit in sub_mask to whether
// it follows. A customer has at most one identity per app (one OpenID per
// person per app), so that bit is the identity's alone.
type customerDelta struct {
	firstSeen, lastSeen       time.Time
	nickname, avatar          string
	profileAt                 *time.Time
	reason                    *string // unlinked customers only
	appMask, subMask, srcMask int64
}

func (d *customerDelta) merge(o customerDelta) {
	d.appMask |= o.appMask
	d.subMask |= o.subMask
	d.srcMask |= o.srcMask
	if o.firstSeen.Before(d.firstSeen) {
		d.firstSeen = o.firstSeen
	}
	if o.lastSeen.After(d.lastSeen) {
		d.lastSeen = o.lastSeen
	}
	if o.profileAt != nil && (d.profileAt == nil || !o.profileAt.Before(*d.profileAt)) {
		if o.nickname != "" {
			d.nickname = o.nickname
		}
		if o.avatar != "" {
			d.avatar = o.avatar
		}
		d.profileAt = o.profileAt
	}
	if o.reason != nil {
		d.reason = o.reason
	}
}

// identityPlan is everything one chunk will do to one identity.
type identityPlan struct {
	key   identityKey
	app   resolveApp
	obs   []*Observation // in time order
	outAt []int          // outcome indexes of those observations
	cur   *Identity      // as stored; nil: new identity

	next     Identity // the row as it will be
	dest     dest
	link     unionKey // for destLinked
	linkedBy *Observation

	writeRow  bool           // insert or rewrite the identity row
	markPass  bool           // only last_sync_pass changes
	delta     *customerDelta // nil: customer untouched
	events    []CustomerEvent
	fromEmpty int64 // the customer moved away from (0 if none)
	change    Change
}

func (p *identityPlan) isNew() bool { return p.cur == nil }

// writes reports whether the plan writes anything but a pass mark.
func (p *identityPlan) writes() bool { return p.writeRow || p.delta != nil }

// compute applies the plan's observations, in time order, to the identity.
// It runs again on the row as locked, when the chunk is going to write.
func (p *identityPlan) compute(tenantID int64, now time.Time) {
	p.next, p.dest, p.link, p.linkedBy = Identity{}, destKeep, unionKey{}, nil
	p.writeRow, p.markPass, p.delta, p.events, p.fromEmpty, p.change = false, false, nil, nil, 0, Unchanged
	first := p.obs[0]
	var st Identity
	if p.cur != nil {
		st = *p.cur
	} else {
		st = Identity{TenantID: tenantID, AppID: p.key.appID, OpenID: p.key.openID, Source: first.Source,
			FirstSeenAt: first.At, LastSeenAt: first.At, CreatedAt: now}
	}
	recorded := st.LastSeenAt // the last activity that was written (or evented)
	want, reason := "", UnlinkedNotAsked
	for i, o := range p.obs {
		if p.app.OpenAccountID != nil && o.UnionID != "" {
			want, p.linkedBy = o.UnionID, o
		} else if o.UnionID == "" && o.NoUnionIDReason != "" {
			reason = o.NoUnionIDReason
		}
		if f := earliest(o.At, o.SubscribeTime); f.Before(st.FirstSeenAt) {
			st.FirstSeenAt = f
		}
		creating := p.cur == nil && i == 0
		if creating {
			p.event(creationEvent(o), o, o.At, "")
		}
		if activity(o.Source) && o.At.After(st.LastSeenAt) {
			st.LastSeenAt = o.At
			if !creating && o.At.Sub(recorded) >= lastSeenStep {
				recorded = o.At
				if k := signInEvent(o.Source); k != "" {
					p.event(k, o, o.At, "")
				}
			}
		}
		p.applySubscription(&st, o, creating)
		if (o.Nickname != "" || o.AvatarURL != "") && (st.ProfileAt == nil || !o.At.Before(*st.ProfileAt)) {
			if o.Nickname != "" {
				st.Nickname = o.Nickname
			}
			if o.AvatarURL != "" {
				st.AvatarURL = o.AvatarURL
			}
			at := o.At
			st.ProfileAt = &at
		}
		if o.SyncPass != 0 {
			st.LastSyncPass = o.SyncPass
		}
	}
	if p.app.OpenAccountID == nil {
		reason = UnlinkedNoOpenAccount
	}

	cur := p.cur
	reasonChanged := false
	switch {
	case want != "" && (cur == nil || !linked(cur) || *cur.UnionID != want || *cur.OpenAccountID != *p.app.OpenAccountID):
		p.dest, p.link = destLinked, unionKey{ns: *p.app.OpenAccountID, unionID: want}
		u, ns := want, *p.app.OpenAccountID
		st.UnionID, st.OpenAccountID, st.UnlinkedReason = &u, &ns, nil
	case cur == nil:
		p.dest = destNewUnlinked
		r := reason
		st.UnionID, st.OpenAccountID, st.UnlinkedReason = nil, nil, &r
	default:
		p.dest = destKeep
		if !linked(cur) && (cur.UnlinkedReason == nil || *cur.UnlinkedReason != reason) && p.hasReasonFor(reason) {
			r := reason
			st.UnlinkedReason, reasonChanged = &r, true
		}
	}

	seenMoved := cur != nil && st.LastSeenAt.Sub(cur.LastSeenAt) >= lastSeenStep
	followChanged := cur != nil && st.Subscribed != cur.Subscribed && p.app.bit() != 0
	switch {
	case cur == nil:
		p.writeRow, p.change = true, Created
	case p.dest != destKeep:
		p.writeRow, p.change = true, Linked
		p.fromEmpty = cur.CustomerID
		detail := "via=" + p.linkedBy.Source
		if !linked(cur) {
			detail += fmt.Sprintf(" merged_customer=%d", cur.CustomerID)
		}
		p.event(EventLinked, p.linkedBy, p.linkedBy.At, detail)
	default:
		p.writeRow = reasonChanged || seenMoved || st.FirstSeenAt.Before(cur.FirstSeenAt) ||
			st.Subscribed != cur.Subscribed || !sameTime(st.SubscribeTime, cur.SubscribeTime) ||
			st.SubscribeScene != cur.SubscribeScene || !sameTime(st.UnsubscribedAt, cur.UnsubscribedAt) ||
			st.Nickname != cur.Nickname || st.AvatarURL != cur.AvatarURL || !sameTime(st.ProfileAt, cur.ProfileAt)
		if p.writeRow {
			p.change = Updated
		} else {
			st.LastSeenAt = cur.LastSeenAt
			p.markPass = st.LastSyncPass != cur.LastSyncPass
			p.events = nil // e.g. a sign-in inside lastSeenStep: not worth a row
		}
	}
	st.UpdatedAt = now
	p.next = st

	// What the customer learns. New and moved identities bring everything; a
	// kept one only what moved: seen times, profile, or the unlinked reason.
	if p.dest != destKeep || reasonChanged || followChanged || (p.writeRow && (seenMoved ||
		st.FirstSeenAt.Before(cur.FirstSeenAt) || !sameTime(st.ProfileAt, cur.ProfileAt))) {
		p.delta = &customerDelta{firstSeen: st.FirstSeenAt, lastSeen: st.LastSeenAt,
			nickname: st.Nickname, avatar: st.AvatarURL, profileAt: st.ProfileAt, reason: st.UnlinkedReason,
			appMask: p.app.bit(), srcMask: sourceBits[st.Source]}
		if st.Subscribed {
			p.delta.subMask = p.app.bit()
		}
	}
}

// hasReasonFor: a kept unlinked customer's reason changes only when an
// observation said so (or the app lost its open account), not because an
// observation simply did not repeat it.
func (p *identityPlan) hasReasonFor(reason string) bool {
	if reason == UnlinkedNoOpenAccount {
		return true
	}
	for _, o := range p.obs {
		if o.UnionID == "" && o.NoUnionIDReason == reason {
			return true
		}
	}
	return false
}

// applySubscription moves the follow state, newest observation winning: a
// follow older than the stored unfollow (or the reverse) is stale and ignored.
func (p *identityPlan) applySubscription(st *Identity, o *Observation, creating bool) {
	switch o.Subscription {
	case Subscribed:
		if !st.Subscribed {
			if st.UnsubscribedAt != nil && o.At.Before(*st.UnsubscribedAt) {
				return
			}
			st.Subscribed = true
			at := o.At
			if !o.SubscribeTime.IsZero() {
				at = o.SubscribeTime
			}
			st.SubscribeTime = &at
			if o.Source != SourceSync || !creating || followedOnSync {
				p.event(EventFollowed, o, at, sceneDetail(o.SubscribeScene))
			}
		} else if !o.SubscribeTime.IsZero() && (st.SubscribeTime == nil || o.SubscribeTime.After(*st.SubscribeTime)) {
			// Followed again in between, unseen: WeChat keeps the latest time.
			at := o.SubscribeTime
			st.SubscribeTime = &at
		}
		if o.SubscribeScene != "" {
			st.SubscribeScene = o.SubscribeScene
		}
	case Unsubscribed:
		if st.Subscribed && st.SubscribeTime != nil && o.At.Before(*st.SubscribeTime) {
			return
		}
		if st.Subscribed || (creating && o.Source == SourceEvent) {
			st.Subscribed = false
			at := o.At
			st.UnsubscribedAt = &at
			p.event(EventUnfollowed, o, at, "")
		}
	}
}

func (p *identityPlan) event(kind string, o *Observation, at time.Time, detail string) {
	if kind == "" {
		return
	}
	appID := p.key.appID
	p.events = append(p.events, CustomerEvent{Kind: kind, AppID: &appID, OpenID: p.key.openID,
		Detail: detail, OccurredAt: at})
}

func sceneDetail(scene string) string {
	if scene == "" {
		return ""
	}
	return "scene=" + scene
}

// creationEvent is the timeline line for a new identity, by where it was seen.
// Sync and follow events are covered by "followed" from the subscription.
func creationEvent(o *Observation) string {
	switch o.Source {
	case SourceOAuth:
		return EventOAuthSignIn
	case SourceMiniProgram:
		return EventMiniSignIn
	case SourcePaid:
		return EventPaidUnionID
	case SourceImport:
		return EventImported
	case SourceEvent:
		if o.Subscription == SubscriptionUnknown {
			return EventFirstSeen
		}
	}
	return ""
}

func signInEvent(source string) string {
	switch source {
	case SourceOAuth:
		return EventOAuthSignIn
	case SourceMiniProgram:
		return EventMiniSignIn
	}
	return ""
}

// activity: the person did something. A sync listing or an import row is
// information about them, so it does not move last_seen of a known identity.
func activity(source string) bool {
	return source == SourceEvent || source == SourceOAuth || source == SourceMiniProgram || source == SourcePaid
}

func earliest(at, subscribed time.Time) time.Time {
	if !subscribed.IsZero() && subscribed.Before(at) {
		return subscribed
	}
	return at
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

// planObservations groups a chunk's observations by identity, in key order
// (the order rows are locked and inserted in), each group in time order.
func planObservations(obs []Observation, chunk []int, apps map[int64]resolveApp) []*identityPlan {
	byKey := map[identityKey]*identityPlan{}
	var plans []*identityPlan
	for _, i := range chunk {
		o := &obs[i]
		k := identityKey{appID: o.AppID, openID: o.OpenID}
		p := byKey[k]
		if p == nil {
			p = &identityPlan{key: k, app: apps[o.AppID]}
			byKey[k] = p
			plans = append(plans, p)
		}
		p.obs = append(p.obs, o)
		p.outAt = append(p.outAt, i)
	}
	for _, p := range plans {
		sort.SliceStable(p.obs, func(a, b int) bool { return p.obs[a].At.Before(p.obs[b].At) })
	}
	sort.Slice(plans, func(a, b int) bool {
		if plans[a].key.appID != plans[b].key.appID {
			return plans[a].key.appID < plans[b].key.appID
		}
		return plans[a].key.openID < plans[b].key.openID
	})
	return plans
}
