package wechattest

import (
	"context"
	"fmt"
	"time"
)

// FollowerState is what user/info says of a person in an app, for writing
// data that agrees with the simulator (the demo workspace).
type FollowerState struct {
	Subscribed    bool
	SubscribeTime time.Time
	Scene         string
	UnionID       string // "" unless subscribed to an app bound to an open account
}

// FollowerState reports the person's follow state in the app as user/info
// would answer it now; ok is false for an unknown app.
func (s *Sim) FollowerState(appID string, p Person) (st FollowerState, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		return st, false
	}
	if f := s.followOf(a, p); f != nil && f.subscribed {
		st = FollowerState{Subscribed: true, SubscribeTime: time.Unix(f.at.Unix(), 0).UTC(), Scene: f.scene, UnionID: s.unionOf(a, p)}
	}
	return st, true
}

// RestoreGrant records that the app authorized the component earlier, with
// the refresh token OneID kept: WeChat remembers authorizations, a restarted
// simulator does not. The app's permission sets are its defaults.
func (s *Sim) RestoreGrant(componentAppID, appID, refreshToken string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if s.comps[componentAppID] == nil || a == nil {
		return fmt.Errorf("wechattest: unknown component %s or app %s", componentAppID, appID)
	}
	if refreshToken == "" {
		return fmt.Errorf("wechattest: restore grant of %s: empty refresh token", appID)
	}
	a.grants[componentAppID] = &grant{active: true, refresh: refreshToken, funcs: a.Funcs}
	return nil
}

// RunVerifyTickets pushes a verify ticket to the component's callback URL at
// once and then every interval until ctx ends, as WeChat does every 10 minutes.
func (s *Sim) RunVerifyTickets(ctx context.Context, componentAppID string, every time.Duration) {
	s.tickets(ctx, componentAppID, every)
}
