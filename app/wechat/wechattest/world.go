package wechattest

import (
	"fmt"
	"strconv"
	"time"

	"oneid/app/wechat"
)

// App types.
const (
	TypeService      = "service"      // service account (服务号)
	TypeSubscription = "subscription" // subscription account (订阅号)
	TypeMiniProgram  = "miniprogram"
)

// Verification states (verify_type_info.id).
const (
	Unverified     = -1
	WeChatVerified = 0
)

type openAccount struct {
	OpenAppID    string
	Principal    string
	Verified     bool
	CreatedByAPI bool
	ns           namespace
	base         uint64 // first person of its pool
	nextOffset   uint64 // where the next bound app's followers start in the pool
	apps         map[string]bool
}

type app struct {
	AppID, Secret, Name, Type, Principal, UserName string
	VerifyType                                     int
	AccountStatus                                  int
	OpenAppID                                      string
	Funcs                                          []int // permission sets granted on authorization
	callback                                       *Callback

	ns            namespace
	followers     uint64 // generated followers: persons base … base+followers-1
	base          uint64
	unsubPermille uint64
	unfollowed    map[Person]time.Time // generated followers who unfollowed
	refollowed    map[Person]*follow   // generated followers who unfollowed and came back
	extra         map[Person]*follow   // everyone else who follows or followed
	extraOrder    []Person
	extraPos      map[Person]int
	subscribed    int               // explicit followers currently subscribed (extra)
	grants        map[string]*grant // component appid → authorization
}

type follow struct {
	subscribed bool
	at         time.Time
	scene      string
	qrScene    int64
	qrSceneStr string
}

type personState struct {
	blocked bool
}

type token struct {
	value   string
	kind    string // app, stable, authorizer, component, user
	appID   string // app, or component appid for component tokens
	expires time.Time
	dead    time.Time // zero: no early death
	// user tokens
	person   Person
	scope    string
	snapshot bool
}

type code struct {
	kind     string // oauth, js
	appID    string
	person   Person
	scope    string
	snapshot bool
	issued   time.Time
	used     bool
}

type oauthRefresh struct {
	appID    string
	person   Person
	scope    string
	snapshot bool
	expires  time.Time
}

type payment struct {
	appID         string
	person        Person
	transactionID string
	mchID         string
	outTradeNo    string
	at            time.Time
}

// OpenAccountSpec describes an open-platform account.
type OpenAccountSpec struct {
	OpenAppID    string `json:"open_appid,omitempty"` // derived from Name when empty
	Name         string `json:"name,omitempty"`
	Principal    string `json:"principal"`
	Verified     bool   `json:"verified"`
	CreatedByAPI bool   `json:"created_by_api,omitempty"`
}

// AddOpenAccount creates an open-platform account and returns its open_appid.
func (s *Sim) AddOpenAccount(spec OpenAccountSpec) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addOpen(spec).OpenAppID
}

func (s *Sim) addOpen(spec OpenAccountSpec) *openAccount {
	id := spec.OpenAppID
	if id == "" {
		name := spec.Name
		if name == "" {
			name = "open-" + strconv.Itoa(len(s.opens)+1)
		}
		id = s.ids.appID("open", name)
	}
	o := &openAccount{OpenAppID: id, Principal: spec.Principal, Verified: spec.Verified, CreatedByAPI: spec.CreatedByAPI,
		ns: s.ids.namespace("open", id), base: s.nextRange, apps: map[string]bool{}}
	s.nextRange += 1 << 32
	s.opens[id] = o
	return o
}

// AppSpec describes an official account or mini program.
type AppSpec struct {
	AppID     string `json:"appid,omitempty"`  // derived from Name when empty
	Secret    string `json:"secret,omitempty"` // derived when empty
	Name      string `json:"name"`
	Type      string `json:"type,omitempty"` // service (default), subscription, miniprogram
	Principal string `json:"principal"`
	// VerifyType is verify_type_info.id: -1 unverified, 0 WeChat-verified (default).
	VerifyType    int    `json:"verify_type"`
	AccountStatus int    `json:"account_status,omitempty"` // default 1 (normal)
	OpenAppID     string `json:"open_appid,omitempty"`     // bound to this open account
	Followers     int    `json:"followers,omitempty"`
	// UnsubscribedPermille of the listed followers answer subscribe=0 in
	// user/info, as followers who left after the list was read (default 5).
	UnsubscribedPermille *int `json:"unsubscribed_permille,omitempty"`
	// FirstPerson pins the person number of follower 0; by default apps of one
	// open account share half their followers with the previous app.
	FirstPerson *uint64 `json:"first_person,omitempty"`
	// Funcs are the permission sets granted when authorizing the component;
	// default: all, including 24 (OA) / 25 (mini program) for open binding.
	Funcs    []int     `json:"funcs,omitempty"`
	Callback *Callback `json:"callback,omitempty"`
}

// AppInfo is what a test needs to talk about an app.
type AppInfo struct {
	AppID     string `json:"appid"`
	Secret    string `json:"secret"`
	UserName  string `json:"user_name"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	Principal string `json:"principal"`
	OpenAppID string `json:"open_appid,omitempty"`
	Followers int    `json:"followers"`
}

// AddApp creates an app; it fails on an unknown open account or a duplicate appid.
func (s *Sim) AddApp(spec AppSpec) (AppInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.addApp(spec)
	if err != nil {
		return AppInfo{}, err
	}
	return a.info(), nil
}

// MustAddApp is AddApp for test set-up.
func (s *Sim) MustAddApp(spec AppSpec) AppInfo {
	a, err := s.AddApp(spec)
	if err != nil {
		panic(err)
	}
	return a
}

func (s *Sim) addApp(spec AppSpec) (*app, error) {
	typ := spec.Type
	if typ == "" {
		typ = TypeService
	}
	if typ != TypeService && typ != TypeSubscription && typ != TypeMiniProgram {
		return nil, fmt.Errorf("wechattest: app type %q is not service, subscription or miniprogram", typ)
	}
	name := spec.Name
	if name == "" {
		name = "app-" + strconv.Itoa(len(s.apps)+1)
	}
	id := spec.AppID
	if id == "" {
		id = s.ids.appID("app", name)
	}
	if _, dup := s.apps[id]; dup {
		return nil, fmt.Errorf("wechattest: app %s exists", id)
	}
	if spec.VerifyType < -1 || spec.VerifyType > 4 {
		return nil, fmt.Errorf("wechattest: verify_type %d is not one of -1, 0, 1, 3, 4", spec.VerifyType)
	}
	a := &app{AppID: id, Secret: spec.Secret, Name: name, Type: typ, Principal: spec.Principal,
		VerifyType: spec.VerifyType, AccountStatus: spec.AccountStatus, Funcs: spec.Funcs, callback: spec.Callback,
		ns: s.ids.namespace("app", id), followers: uint64(max(spec.Followers, 0)), unsubPermille: 5,
		unfollowed: map[Person]time.Time{}, refollowed: map[Person]*follow{}, extra: map[Person]*follow{},
		extraPos: map[Person]int{}, grants: map[string]*grant{}}
	if a.Secret == "" {
		a.Secret = s.ids.secret(id)
	}
	a.UserName = s.ids.ghID(id)
	if a.AccountStatus == 0 {
		a.AccountStatus = 1
	}
	if spec.UnsubscribedPermille != nil {
		a.unsubPermille = uint64(min(max(*spec.UnsubscribedPermille, 0), 1000))
	}
	if len(a.Funcs) == 0 {
		if typ == TypeMiniProgram {
			a.Funcs = []int{17, 18, 19, 25, 30, 31, 36, 37, 40, 41, 45, 48, 49, 51, 52, 57}
		} else {
			a.Funcs = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 22, 23, 24, 26, 33}
		}
	}
	var o *openAccount
	if spec.OpenAppID != "" {
		o = s.opens[spec.OpenAppID]
		if o == nil {
			return nil, fmt.Errorf("wechattest: open account %s does not exist", spec.OpenAppID)
		}
	}
	switch {
	case spec.FirstPerson != nil:
		a.base = *spec.FirstPerson
	case o != nil:
		a.base = o.base + o.nextOffset
		o.nextOffset += max(a.followers/2, 1)
	default:
		a.base = s.nextRange
		s.nextRange += 1 << 32
	}
	if o != nil {
		a.OpenAppID = o.OpenAppID
		o.apps[id] = true
	}
	s.apps[id] = a
	s.appOrder = append(s.appOrder, id)
	return a, nil
}

func (a *app) info() AppInfo {
	return AppInfo{AppID: a.AppID, Secret: a.Secret, UserName: a.UserName, Name: a.Name, Type: a.Type,
		Principal: a.Principal, OpenAppID: a.OpenAppID, Followers: int(a.followers)}
}

func (a *app) serviceType() int {
	switch a.Type {
	case TypeService:
		return 2
	case TypeMiniProgram:
		return 0
	}
	return 0
}

// App returns the current description of an app.
func (s *Sim) App(appID string) (AppInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		return AppInfo{}, false
	}
	return a.info(), true
}

// OpenAppIDOf returns the open account an app is bound to ("" when none).
func (s *Sim) OpenAppIDOf(appID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[appID]; a != nil {
		return a.OpenAppID
	}
	return ""
}

// AddPerson creates a person who follows nothing yet.
func (s *Sim) AddPerson() Person {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.nextOwn
	s.nextOwn++
	s.people[p] = &personState{}
	return p
}

// Block makes the person's mini-program codes fail with 40226 (high-risk user).
func (s *Sim) Block(p Person) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.people[p]
	if st == nil {
		st = &personState{}
		s.people[p] = st
	}
	st.blocked = true
}

// Follower returns the person who is generated follower k (0-based) of an app.
func (s *Sim) Follower(appID string, k int) Person {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		panic(errUnknownApp)
	}
	return Person(a.base + uint64(k))
}

// OpenID is the person's openid in the app.
func (s *Sim) OpenID(appID string, p Person) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		panic(errUnknownApp)
	}
	return s.ids.encode(a.ns, p)
}

// UnionID is the person's unionid under an open account.
func (s *Sim) UnionID(openAppID string, p Person) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.opens[openAppID]
	if o == nil {
		panic(fmt.Errorf("wechattest: unknown open account %s", openAppID))
	}
	return s.ids.encode(o.ns, p)
}

// PersonOf recovers the person behind an openid of the app.
func (s *Sim) PersonOf(appID, openID string) (Person, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		return 0, false
	}
	return s.ids.decode(a.ns, openID)
}

// unionOf is the unionid an app reveals for a person ("" when not bound).
func (s *Sim) unionOf(a *app, p Person) string {
	if a.OpenAppID == "" {
		return ""
	}
	return s.ids.encode(s.opens[a.OpenAppID].ns, p)
}

// followOf returns the person's follow record in the app, or nil if they never followed.
func (s *Sim) followOf(a *app, p Person) *follow {
	if f := a.extra[p]; f != nil {
		return f
	}
	if uint64(p) >= a.base && uint64(p)-a.base < a.followers {
		if f := a.refollowed[p]; f != nil {
			return f
		}
		k := uint64(p) - a.base
		h := mix(k ^ uint64(a.ns.tag[0])<<56 ^ uint64(a.ns.tag[1])<<48 ^ uint64(a.ns.tag[2])<<40)
		f := &follow{subscribed: true}
		if at, gone := a.unfollowed[p]; gone {
			f.subscribed, f.at = false, at
		} else if h%1000 < a.unsubPermille {
			f.subscribed = false
		}
		if f.at.IsZero() {
			f.at = time.Unix(1420070400+int64(h>>20)%(9*365*86400), 0)
		}
		f.scene = scenes[(h>>8)%uint64(len(scenes))]
		if f.scene == "ADD_SCENE_QR_CODE" {
			f.qrScene = int64((h >> 40) % 1000)
		}
		return f
	}
	return nil
}

// Weighted toward search and QR codes, as real audiences are.
var scenes = []string{
	"ADD_SCENE_SEARCH", "ADD_SCENE_SEARCH", "ADD_SCENE_SEARCH", "ADD_SCENE_QR_CODE", "ADD_SCENE_QR_CODE",
	"ADD_SCENE_PROFILE_CARD", "ADD_SCENE_ACCOUNT_MIGRATION", "ADD_SCENE_PROFILE_LINK", "ADD_SCENE_PROFILE_ITEM",
	"ADD_SCENE_PAID", "ADD_SCENE_WECHAT_ADVERTISEMENT", "ADD_SCENE_OTHERS",
}

func languageOf(p Person) string {
	switch mix(uint64(p)) % 10 {
	case 8:
		return "en"
	case 9:
		return "zh_TW"
	}
	return "zh_CN"
}

// Follow makes the person follow the app (scene as in subscribe_scene; a
// qrScene makes it a follow through a parametric QR code) and pushes the
// subscribe event when the app has a callback.
func (s *Sim) Follow(appID string, p Person, qrScene string) (Delivery, error) {
	s.mu.Lock()
	a := s.apps[appID]
	if a == nil {
		s.mu.Unlock()
		return Delivery{}, errUnknownApp
	}
	f := &follow{subscribed: true, at: s.now(), scene: "ADD_SCENE_SEARCH"}
	if qrScene != "" {
		f.scene, f.qrSceneStr = "ADD_SCENE_QR_CODE", qrScene
	}
	if uint64(p) >= a.base && uint64(p)-a.base < a.followers {
		delete(a.unfollowed, p)
		a.refollowed[p] = f
	} else {
		if old := a.extra[p]; old == nil || !old.subscribed {
			a.subscribed++
		}
		a.extra[p] = f
		if _, ok := a.extraPos[p]; !ok {
			a.extraPos[p] = len(a.extraOrder)
			a.extraOrder = append(a.extraOrder, p)
		}
	}
	ev := wechat.Event{ToUserName: a.UserName, FromUserName: s.ids.encode(a.ns, p), CreateTime: s.now().Unix(), MsgType: "event", Event: wechat.EventSubscribe}
	if qrScene != "" {
		ev.EventKey, ev.Ticket = "qrscene_"+qrScene, "gQH"+randomHex(20)
	}
	s.mu.Unlock()
	return s.Push(appID, ev)
}

// Unfollow makes the person unfollow the app and pushes the unsubscribe event.
func (s *Sim) Unfollow(appID string, p Person) (Delivery, error) {
	s.mu.Lock()
	a := s.apps[appID]
	if a == nil {
		s.mu.Unlock()
		return Delivery{}, errUnknownApp
	}
	if uint64(p) >= a.base && uint64(p)-a.base < a.followers {
		delete(a.refollowed, p)
		a.unfollowed[p] = s.now()
	} else if f := a.extra[p]; f != nil && f.subscribed {
		f.subscribed = false
		f.at = s.now()
		a.subscribed--
	}
	ev := wechat.Event{ToUserName: a.UserName, FromUserName: s.ids.encode(a.ns, p), CreateTime: s.now().Unix(), MsgType: "event", Event: wechat.EventUnsubscribe}
	s.mu.Unlock()
	return s.Push(appID, ev)
}

// OAuthCode issues a web OAuth code as if the person had opened the authorize
// page of the app. A snapshot code stands for the browse-only snapshot page:
// its openid and unionid are those of a virtual account and the exchange says
// is_snapshotuser=1.
func (s *Sim) OAuthCode(appID string, p Person, scope string, snapshot bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueCode("oauth", appID, p, scope, snapshot)
}

// JSCode issues a mini-program login code (wx.login) for the person.
func (s *Sim) JSCode(appID string, p Person) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueCode("js", appID, p, "", false)
}

func (s *Sim) issueCode(kind, appID string, p Person, scope string, snapshot bool) string {
	v := "0" + randomHex(15)
	if kind == "js" {
		v = "0d" + randomHex(15)
	}
	s.codes[v] = &code{kind: kind, appID: appID, person: p, scope: scope, snapshot: snapshot, issued: s.now()}
	return v
}

// Payment is a completed mini-program payment, for getpaidunionid.
type Payment struct {
	TransactionID string `json:"transaction_id"`
	MchID         string `json:"mch_id"`
	OutTradeNo    string `json:"out_trade_no"`
}

// Pay records a payment by the person in the app, now.
func (s *Sim) Pay(appID string, p Person) Payment {
	s.mu.Lock()
	defer s.mu.Unlock()
	pay := &payment{appID: appID, person: p, transactionID: "42000" + randomHex(12), mchID: "1900000109", outTradeNo: "sim" + randomHex(8), at: s.now()}
	s.payments[pay.transactionID] = pay
	s.payments[pay.mchID+"|"+pay.outTradeNo] = pay
	return Payment{TransactionID: pay.transactionID, MchID: pay.mchID, OutTradeNo: pay.outTradeNo}
}

// virtual is the snapshot-page stand-in of a person.
func virtual(p Person) Person { return p | 1<<62 }
