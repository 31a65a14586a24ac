package wechattest

import (
	"encoding/json"
	"strconv"

	"oneid/app/wechat"
)

const pageSize = 10000

// listSnapshot is what paging needs from an app, copied under the lock so ids
// are generated outside it.
type listSnapshot struct {
	ns         namespace
	base, n    uint64
	unfollowed map[Person]bool
	extra      []Person
	total      int
}

// hUserGet is GET cgi-bin/user/get: followers in a stable order, 10,000 a
// page, next_openid the last id of the page; after the last page, a page with
// count 0, no data and an empty next_openid.
func (s *Sim) hUserGet(r *req) (any, *apiError) {
	s.mu.Lock()
	a, e := s.appFromToken(r, "app", "stable", "authorizer")
	if e != nil {
		s.mu.Unlock()
		return nil, e
	}
	if a.Type == TypeMiniProgram {
		s.mu.Unlock()
		return nil, errc(wechat.CodeUnauthorized)
	}
	snap := listSnapshot{ns: a.ns, base: a.base, n: a.followers}
	if len(a.unfollowed) > 0 {
		snap.unfollowed = make(map[Person]bool, len(a.unfollowed))
		for p := range a.unfollowed {
			snap.unfollowed[p] = true
		}
	}
	for _, p := range a.extraOrder {
		if f := a.extra[p]; f != nil && f.subscribed {
			snap.extra = append(snap.extra, p)
		}
	}
	snap.total = int(a.followers) - len(a.unfollowed) + len(snap.extra)
	var startGen, startExtra uint64
	if next := r.q.Get("next_openid"); next != "" {
		p, ok := s.ids.decode(a.ns, next)
		if !ok {
			s.mu.Unlock()
			return nil, errc(wechat.CodeInvalidOpenID)
		}
		if uint64(p) >= a.base && uint64(p)-a.base < a.followers {
			startGen = uint64(p) - a.base + 1
		} else {
			startGen = a.followers
			pos, ok := a.extraPos[p]
			if !ok {
				s.mu.Unlock()
				return nil, errc(wechat.CodeInvalidOpenID)
			}
			// Count the subscribed extras before and at pos.
			for _, q := range a.extraOrder[:pos+1] {
				if f := a.extra[q]; f != nil && f.subscribed {
					startExtra++
				}
			}
		}
	}
	s.mu.Unlock()

	buf := make([]byte, 0, 64+pageSize*31)
	count := 0
	var last string
	buf = append(buf, `{"total":`...)
	buf = strconv.AppendInt(buf, int64(snap.total), 10)
	buf = append(buf, `,"count":`...)
	countAt := len(buf)
	buf = append(buf, `,"data":{"openid":[`...)
	var idb [28]byte
	add := func(p Person) {
		if count > 0 {
			buf = append(buf, ',')
		}
		id := s.ids.encodeTo(idb[:], snap.ns, p)
		buf = append(buf, '"')
		buf = append(buf, id...)
		buf = append(buf, '"')
		last = string(id)
		count++
	}
	for k := startGen; k < snap.n && count < pageSize; k++ {
		p := Person(snap.base + k)
		if snap.unfollowed != nil && snap.unfollowed[p] {
			continue
		}
		add(p)
	}
	for i := startExtra; i < uint64(len(snap.extra)) && count < pageSize; i++ {
		add(snap.extra[i])
	}
	if count == 0 {
		out := append([]byte(`{"total":`), strconv.Itoa(snap.total)...)
		return rawJSON(append(out, `,"count":0,"next_openid":""}`...)), nil
	}
	buf = append(buf, `]},"next_openid":"`...)
	buf = append(buf, last...)
	buf = append(buf, `"}`...)
	// Splice the count in now that it is known.
	cnt := strconv.Itoa(count)
	out := make([]byte, 0, len(buf)+len(cnt))
	out = append(out, buf[:countAt]...)
	out = append(out, cnt...)
	out = append(out, buf[countAt:]...)
	return rawJSON(out), nil
}

// userRecord is one user/info object, gathered under the lock.
type userRecord struct {
	openID, unionID string
	f               *follow
	lang            string
}

// record describes a person as the app sees them; s.mu held.
func (s *Sim) record(a *app, p Person, openID string) userRecord {
	rec := userRecord{openID: openID, f: s.followOf(a, p), lang: languageOf(p)}
	if rec.f != nil && rec.f.subscribed {
		rec.unionID = s.unionOf(a, p)
	}
	return rec
}

func appendUser(buf []byte, u userRecord) []byte {
	if u.f == nil || !u.f.subscribed {
		buf = append(buf, `{"subscribe":0,"openid":"`...)
		buf = append(buf, u.openID...)
		return append(buf, `"}`...)
	}
	buf = append(buf, `{"subscribe":1,"openid":"`...)
	buf = append(buf, u.openID...)
	buf = append(buf, `","language":"`...)
	buf = append(buf, u.lang...)
	buf = append(buf, `","subscribe_time":`...)
	buf = strconv.AppendInt(buf, u.f.at.Unix(), 10)
	if u.unionID != "" {
		buf = append(buf, `,"unionid":"`...)
		buf = append(buf, u.unionID...)
		buf = append(buf, '"')
	}
	buf = append(buf, `,"remark":"","groupid":0,"tagid_list":[],"subscribe_scene":"`...)
	buf = append(buf, u.f.scene...)
	buf = append(buf, `","qr_scene":`...)
	buf = strconv.AppendInt(buf, u.f.qrScene, 10)
	buf = append(buf, `,"qr_scene_str":`...)
	q, _ := json.Marshal(u.f.qrSceneStr)
	buf = append(buf, q...)
	return append(buf, '}')
}

// hUserInfo is GET cgi-bin/user/info.
func (s *Sim) hUserInfo(r *req) (any, *apiError) {
	s.mu.Lock()
	a, e := s.appFromToken(r, "app", "stable", "authorizer")
	if e != nil {
		s.mu.Unlock()
		return nil, e
	}
	openID := r.q.Get("openid")
	p, ok := s.ids.decode(a.ns, openID)
	if !ok {
		s.mu.Unlock()
		return nil, errc(wechat.CodeInvalidOpenID)
	}
	rec := s.record(a, p, openID)
	s.mu.Unlock()
	return rawJSON(appendUser(nil, rec)), nil
}

// hBatchGet is POST cgi-bin/user/info/batchget: at most 100 users; one
// invalid openid fails the whole call with 40003.
func (s *Sim) hBatchGet(r *req) (any, *apiError) {
	var b struct {
		UserList []struct {
			OpenID string `json:"openid"`
			Lang   string `json:"lang"`
		} `json:"user_list"`
	}
	if e := decodeBody(r, &b); e != nil {
		return nil, e
	}
	if len(b.UserList) == 0 || len(b.UserList) > wechat.MaxBatchGet {
		return nil, errc(40032)
	}
	s.mu.Lock()
	a, e := s.appFromToken(r, "app", "stable", "authorizer")
	if e != nil {
		s.mu.Unlock()
		return nil, e
	}
	recs := make([]userRecord, len(b.UserList))
	for i, u := range b.UserList {
		p, ok := s.ids.decode(a.ns, u.OpenID)
		if !ok {
			s.mu.Unlock()
			return nil, errc(wechat.CodeInvalidOpenID)
		}
		recs[i] = s.record(a, p, u.OpenID)
	}
	s.mu.Unlock()
	buf := make([]byte, 0, 32+len(recs)*300)
	buf = append(buf, `{"user_info_list":[`...)
	for i, rec := range recs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendUser(buf, rec)
	}
	return rawJSON(append(buf, "]}"...)), nil
}
