package models

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// WechatToken is a WeChat token as the client uses it. ExpiresAt is when OneID
// stops using it (zero: no known expiry); Version grows with every new value.
type WechatToken struct {
	Value     string
	ExpiresAt time.Time
	Version   int64
}

// WechatTokenStats counts token refreshes and tokens WeChat refused while OneID
// still held them as valid. Rejections keep happening when another system
// refreshes the same AppSecret.
type WechatTokenStats struct {
	Refreshes       int64
	Rejections      int64
	LastRefreshAt   time.Time
	LastRejectionAt time.Time
}

// Add sums counters, keeping the latest times.
func (s *WechatTokenStats) Add(o WechatTokenStats) {
	s.Refreshes += o.Refreshes
	s.Rejections += o.Rejections
	if o.LastRefreshAt.After(s.LastRefreshAt) {
		s.LastRefreshAt = o.LastRefreshAt
	}
	if o.LastRejectionAt.After(s.LastRejectionAt) {
		s.LastRejectionAt = o.LastRejectionAt
	}
}

// SharedSecretSuspected is the portal's warning rule: WeChat refused OneID's
// token at least twice and once within the last day. With stable tokens only a
// forced refresh elsewhere (or a rotated secret) does that.
func (s WechatTokenStats) SharedSecretSuspected(now time.Time) bool {
	return s.Rejections >= 2 && now.Sub(s.LastRejectionAt) < 24*time.Hour
}

// wechatTokenRow is a row of wechat_tokens.
type wechatTokenRow struct {
	ID              int64 `gorm:"primaryKey"`
	AppID           string
	Kind            string
	ValueSealed     []byte
	ExpiresAt       *time.Time
	Version         int64
	Refreshes       int64
	Rejections      int64
	LastRefreshAt   *time.Time
	LastRejectionAt *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

func (wechatTokenRow) TableName() string { return "wechat_tokens" }

// WechatTokenStore keeps WeChat tokens in the database, sealed, so every
// instance shares them. It implements wechat.TokenStore.
type WechatTokenStore struct {
	db     *gorm.DB
	sealer *Sealer
	locks  sync.Map // SQLite only: "appid|kind" → *sync.Mutex
}

// NewWechatTokenStore returns a store on db that seals values with sealer.
func NewWechatTokenStore(db *gorm.DB, sealer *Sealer) *WechatTokenStore {
	return &WechatTokenStore{db: db, sealer: sealer}
}

func wechatTokenAD(appID, kind string) string { return "wechat_tokens|" + appID + "|" + kind }

func (s *WechatTokenStore) decode(r *wechatTokenRow) (WechatToken, error) {
	t := WechatToken{Version: r.Version}
	if r.ExpiresAt != nil {
		t.ExpiresAt = r.ExpiresAt.UTC()
	}
	if len(r.ValueSealed) == 0 {
		return t, nil
	}
	plain, err := s.sealer.Open(r.ValueSealed, wechatTokenAD(r.AppID, r.Kind))
	if err != nil {
		return WechatToken{}, fmt.Errorf("models: wechat token %s of %s: %w", r.Kind, r.AppID, err)
	}
	t.Value = string(plain)
	return t, nil
}

func (s *WechatTokenStore) find(db *gorm.DB, appID, kind string) (*wechatTokenRow, error) {
	var r wechatTokenRow
	err := db.Where("app_id = ? AND kind = ?", appID, kind).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("models: load wechat token %s of %s: %w", kind, appID, err)
	}
	return &r, nil
}

// Get returns the stored token, or the zero token.
func (s *WechatTokenStore) Get(ctx context.Context, appID, kind string) (WechatToken, error) {
	r, err := s.find(s.db.WithContext(ctx), appID, kind)
	if err != nil || r == nil {
		return WechatToken{}, err
	}
	return s.decode(r)
}

// ensureRow creates the (app, kind) row if missing, so there is a row to lock.
func (s *WechatTokenStore) ensureRow(ctx context.Context, appID, kind string) error {
	now := time.Now().UTC()
	r := wechatTokenRow{AppID: appID, Kind: kind, CreatedAt: now, UpdatedAt: now}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&r).Error
	if err != nil {
		return fmt.Errorf("models: create wechat token row %s of %s: %w", kind, appID, err)
	}
	return nil
}

func (s *WechatTokenStore) seal(appID, kind string, t WechatToken) ([]byte, *time.Time, error) {
	if t.Value == "" {
		return nil, nil, fmt.Errorf("models: refusing to store an empty wechat %s for %s", kind, appID)
	}
	sealed, err := s.sealer.Seal([]byte(t.Value), wechatTokenAD(appID, kind))
	if err != nil {
		return nil, nil, err
	}
	var exp *time.Time
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt.UTC()
		exp = &e
	}
	return sealed, exp, nil
}

// Put stores a value obtained outside Refresh; an empty value is refused.
func (s *WechatTokenStore) Put(ctx context.Context, appID, kind string, t WechatToken) error {
	sealed, exp, err := s.seal(appID, kind, t)
	if err != nil {
		return err
	}
	if err := s.ensureRow(ctx, appID, kind); err != nil {
		return err
	}
	err = s.db.WithContext(ctx).Model(&wechatTokenRow{}).Where("app_id = ? AND kind = ?", appID, kind).
		Updates(map[string]any{
			"value_sealed": sealed,
			"expires_at":   exp,
			"version":      gorm.Expr("version + 1"),
			"updated_at":   time.Now().UTC(),
		}).Error
	if err != nil {
		return fmt.Errorf("models: store wechat token %s of %s: %w", kind, appID, err)
	}
	return nil
}

// Refresh runs fn under a lock that admits one caller per (app, kind). On
// MySQL it is a row lock (SELECT … FOR UPDATE) held across instances. SQLite is
// single-process, and its write lock covers the whole file: holding it through
// a WeChat call would stall every other writer (and deadlock fn's own writes),
// so there an in-process lock serialises the callers instead.
func (s *WechatTokenStore) Refresh(ctx context.Context, appID, kind string, fn func(cur WechatToken) (WechatToken, bool, error)) (WechatToken, error) {
	if err := s.ensureRow(ctx, appID, kind); err != nil {
		return WechatToken{}, err
	}
	if s.db.Dialector.Name() != DialectMySQL {
		l, _ := s.locks.LoadOrStore(appID+"|"+kind, &sync.Mutex{})
		l.(*sync.Mutex).Lock()
		defer l.(*sync.Mutex).Unlock()
		return s.refresh(ctx, s.db.WithContext(ctx), appID, kind, fn)
	}
	var out WechatToken
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		out, err = s.refresh(ctx, tx, appID, kind, fn)
		return err
	})
	return out, err
}

func (s *WechatTokenStore) refresh(ctx context.Context, db *gorm.DB, appID, kind string, fn func(cur WechatToken) (WechatToken, bool, error)) (WechatToken, error) {
	q := db
	if db.Dialector.Name() == DialectMySQL {
		q = db.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	r, err := s.find(q, appID, kind)
	if err != nil {
		return WechatToken{}, err
	}
	if r == nil {
		return WechatToken{}, fmt.Errorf("models: wechat token row %s of %s vanished", kind, appID)
	}
	cur, err := s.decode(r)
	if err != nil {
		// A value that no longer opens (key rotated) is as good as none.
		cur = WechatToken{Version: r.Version}
	}
	next, changed, err := fn(cur)
	if err != nil {
		return WechatToken{}, err
	}
	if !changed {
		return cur, nil
	}
	sealed, exp, err := s.seal(appID, kind, next)
	if err != nil {
		return WechatToken{}, err
	}
	now := time.Now().UTC()
	next.Version = r.Version + 1
	res := db.Model(&wechatTokenRow{}).Where("id = ? AND version = ?", r.ID, r.Version).Updates(map[string]any{
		"value_sealed":    sealed,
		"expires_at":      exp,
		"version":         next.Version,
		"refreshes":       gorm.Expr("refreshes + 1"),
		"last_refresh_at": now,
		"updated_at":      now,
	})
	if res.Error != nil {
		return WechatToken{}, fmt.Errorf("models: store refreshed wechat token %s of %s: %w", kind, appID, res.Error)
	}
	if res.RowsAffected == 0 {
		// A Put got in first (SQLite only; MySQL holds the row lock): keep its value.
		return s.Get(ctx, appID, kind)
	}
	return next, nil
}

// CompareAndExpire counts a rejection and expires the token if its version is
// still the stored one.
func (s *WechatTokenStore) CompareAndExpire(ctx context.Context, appID, kind string, version int64) (bool, error) {
	now := time.Now().UTC()
	db := s.db.WithContext(ctx)
	res := db.Model(&wechatTokenRow{}).Where("app_id = ? AND kind = ? AND version = ?", appID, kind, version).
		Updates(map[string]any{
			"expires_at":        time.Unix(0, 0).UTC(),
			"rejections":        gorm.Expr("rejections + 1"),
			"last_rejection_at": now,
			"updated_at":        now,
		})
	if res.Error != nil {
		return false, fmt.Errorf("models: expire wechat token %s of %s: %w", kind, appID, res.Error)
	}
	if res.RowsAffected > 0 {
		return true, nil
	}
	// Someone already replaced it; the rejection still counts.
	err := db.Model(&wechatTokenRow{}).Where("app_id = ? AND kind = ?", appID, kind).
		Updates(map[string]any{
			"rejections":        gorm.Expr("rejections + 1"),
			"last_rejection_at": now,
		}).Error
	if err != nil {
		return false, fmt.Errorf("models: count wechat token rejection %s of %s: %w", kind, appID, err)
	}
	return false, nil
}

// Stats sums the counters of all the app's tokens.
func (s *WechatTokenStore) Stats(ctx context.Context, appID string) (WechatTokenStats, error) {
	var rows []wechatTokenRow
	if err := s.db.WithContext(ctx).Where("app_id = ?", appID).Find(&rows).Error; err != nil {
		return WechatTokenStats{}, fmt.Errorf("models: wechat token stats of %s: %w", appID, err)
	}
	var out WechatTokenStats
	for _, r := range rows {
		st := WechatTokenStats{Refreshes: r.Refreshes, Rejections: r.Rejections}
		if r.LastRefreshAt != nil {
			st.LastRefreshAt = r.LastRefreshAt.UTC()
		}
		if r.LastRejectionAt != nil {
			st.LastRejectionAt = r.LastRejectionAt.UTC()
		}
		out.Add(st)
	}
	return out, nil
}
