package models_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func tokenStore(t *testing.T, db *gorm.DB) *models.WechatTokenStore {
	t.Helper()
	s, err := models.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return models.NewWechatTokenStore(db, s)
}

func TestWechatTokenStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		st := tokenStore(t, db)
		const app = "wx0123456789abcdef"

		t.Run("MissingIsZero", func(t *testing.T) {
			got, err := st.Get(ctx, app, "access_token")
			if err != nil || got.Value != "" || got.Version != 0 {
				t.Fatalf("Get = %+v, %v", got, err)
			}
		})

		t.Run("ValuesAreSealedAtRest", func(t *testing.T) {
			exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
			if err := st.Put(ctx, app, "authorizer_refresh_token", models.WechatToken{Value: "refresh-secret-value", ExpiresAt: exp}); err != nil {
				t.Fatal(err)
			}
			var raw []byte
			if err := db.Raw("SELECT value_sealed FROM wechat_tokens WHERE app_id = ? AND kind = ?", app, "authorizer_refresh_token").Row().Scan(&raw); err != nil {
				t.Fatal(err)
			}
			if len(raw) == 0 || bytes.Contains(raw, []byte("refresh-secret-value")) {
				t.Fatalf("stored value is not sealed: %q", raw)
			}
			got, err := st.Get(ctx, app, "authorizer_refresh_token")
			if err != nil || got.Value != "refresh-secret-value" || !got.ExpiresAt.Equal(exp) || got.Version != 1 {
				t.Fatalf("Get = %+v, %v", got, err)
			}
		})

		t.Run("SealBindsAppAndKind", func(t *testing.T) {
			if err := db.Exec("UPDATE wechat_tokens SET app_id = ? WHERE app_id = ? AND kind = ?", "wxffffffffffffffff", app, "authorizer_refresh_token").Error; err != nil {
				t.Fatal(err)
			}
			if _, err := st.Get(ctx, "wxffffffffffffffff", "authorizer_refresh_token"); !errors.Is(err, models.ErrSealedValue) {
				t.Fatalf("a value moved to another app opened: %v", err)
			}
		})

		t.Run("EmptyValueNeverOverwrites", func(t *testing.T) {
			if err := st.Put(ctx, app, "k1", models.WechatToken{Value: "keep"}); err != nil {
				t.Fatal(err)
			}
			if err := st.Put(ctx, app, "k1", models.WechatToken{}); err == nil {
				t.Fatal("empty value accepted")
			}
			_, err := st.Refresh(ctx, app, "k1", func(cur models.WechatToken) (models.WechatToken, bool, error) {
				return models.WechatToken{}, true, nil
			})
			if err == nil {
				t.Fatal("refresh to an empty value accepted")
			}
			if got, _ := st.Get(ctx, app, "k1"); got.Value != "keep" {
				t.Fatalf("value = %q, want keep", got.Value)
			}
		})

		t.Run("RefreshFailureKeepsOldValue", func(t *testing.T) {
			boom := errors.New("boom")
			_, err := st.Refresh(ctx, app, "k1", func(cur models.WechatToken) (models.WechatToken, bool, error) {
				return models.WechatToken{Value: "half"}, true, boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("err = %v", err)
			}
			if got, _ := st.Get(ctx, app, "k1"); got.Value != "keep" {
				t.Fatalf("value = %q, want keep", got.Value)
			}
		})

		t.Run("RefreshCompareAndExpireAndStats", func(t *testing.T) {
			tok, err := st.Refresh(ctx, app, "access_token", func(cur models.WechatToken) (models.WechatToken, bool, error) {
				if cur.Value != "" {
					t.Errorf("current = %q, want none", cur.Value)
				}
				return models.WechatToken{Value: "T1", ExpiresAt: time.Now().Add(time.Hour)}, true, nil
			})
			if err != nil || tok.Value != "T1" || tok.Version != 1 {
				t.Fatalf("Refresh = %+v, %v", tok, err)
			}
			same, err := st.Refresh(ctx, app, "access_token", func(cur models.WechatToken) (models.WechatToken, bool, error) {
				return cur, false, nil
			})
			if err != nil || same.Value != "T1" || same.Version != 1 {
				t.Fatalf("unchanged Refresh = %+v, %v", same, err)
			}
			if ok, err := st.CompareAndExpire(ctx, app, "access_token", 0); ok || err != nil {
				t.Fatalf("expire of an old version = %v, %v", ok, err)
			}
			if ok, err := st.CompareAndExpire(ctx, app, "access_token", 1); !ok || err != nil {
				t.Fatalf("expire of the current version = %v, %v", ok, err)
			}
			got, _ := st.Get(ctx, app, "access_token")
			if got.Value != "T1" || got.ExpiresAt.After(time.Now()) {
				t.Fatalf("expired token = %+v", got)
			}
			stats, err := st.Stats(ctx, app)
			if err != nil || stats.Refreshes != 1 || stats.Rejections != 2 || stats.LastRejectionAt.IsZero() {
				t.Fatalf("Stats = %+v, %v", stats, err)
			}
			if !stats.SharedSecretSuspected(time.Now()) {
				t.Fatal("two recent rejections should raise the shared-secret warning")
			}
		})
	})
}
