package models_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func newSealer(t testing.TB) *models.Sealer {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s, err := models.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func selfManagedApp(t testing.TB, s *models.Sealer, tenant int64, appid, secret string) *models.App {
	t.Helper()
	sealed, err := models.SealAppSecret(s, tenant, appid, models.ColAppSecret, secret)
	if err != nil {
		t.Fatal(err)
	}
	return &models.App{AppID: appid, Kind: models.KindService, Name: "服务号", PrincipalName: "示例科技有限公司",
		Declared: true, BindingMode: models.ModeSelfManaged, SecretSealed: sealed}
}

func TestBindApp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newSealer(t)
		ta, tb := makeTenant(t, db), makeTenant(t, db)
		appid := "wx" + randHex(8)

		t.Run("InsertsABoundRowWithACallbackKey", func(t *testing.T) {
			a := selfManagedApp(t, s, ta, appid, "secret-a")
			if err := models.BindApp(db, ta, a); err != nil {
				t.Fatal(err)
			}
			got, err := models.FindApp(db, ta, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.IsBound() || *got.BoundAppID != appid || got.Status != models.AppActive || len(got.CallbackKey) != 32 {
				t.Fatalf("bound row: %+v", got)
			}
			if secret, err := models.OpenAppSecret(s, got, models.ColAppSecret); err != nil || secret != "secret-a" {
				t.Fatalf("secret = %q, %v", secret, err)
			}
		})

		t.Run("RefusesAnotherTenantThroughTheUniqueIndex", func(t *testing.T) {
			held, err := models.AppBoundElsewhere(db, tb, appid)
			if err != nil || !held {
				t.Fatalf("pre-check: %v, %v", held, err)
			}
			// Skipping the pre-check, as a race would: the index still refuses.
			err = models.BindApp(db, tb, selfManagedApp(t, s, tb, appid, "secret-b"))
			if !errors.Is(err, models.ErrAppHeldElsewhere) {
				t.Fatalf("second tenant: %v, want ErrAppHeldElsewhere", err)
			}
			if apps, _ := models.ListApps(db, tb); len(apps) != 0 {
				t.Fatalf("the refused binding wrote %d rows", len(apps))
			}
		})

		t.Run("UnbindFreesTheAppIDAndKeepsTheRow", func(t *testing.T) {
			a, err := models.FindAppByAppID(db, ta, appid)
			if err != nil {
				t.Fatal(err)
			}
			if err := models.UnbindApp(db, ta, a.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			got, _ := models.FindApp(db, ta, a.ID)
			if got.IsBound() || got.Status != models.AppUnbound || got.UnboundAt == nil || got.SecretSealed != nil {
				t.Fatalf("unbound row: %+v", got)
			}
			if err := models.UnbindApp(db, ta, a.ID, time.Now()); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("unbinding twice: %v", err)
			}
			if held, _ := models.AppBoundElsewhere(db, tb, appid); held {
				t.Fatal("the unbound appid still counts as held")
			}
		})

		t.Run("RebindingReusesTheTenantsRow", func(t *testing.T) {
			before, _ := models.FindAppByAppID(db, ta, appid)
			a := selfManagedApp(t, s, ta, appid, "secret-again")
			if err := models.BindApp(db, ta, a); err != nil {
				t.Fatal(err)
			}
			if a.ID != before.ID || a.CallbackKey != before.CallbackKey {
				t.Fatalf("rebinding made a new row: %d/%s vs %d/%s", a.ID, a.CallbackKey, before.ID, before.CallbackKey)
			}
			got, _ := models.FindApp(db, ta, a.ID)
			if !got.IsBound() || got.Status != models.AppActive || got.UnboundAt != nil {
				t.Fatalf("rebound row: %+v", got)
			}
		})

		t.Run("FindAppIsScopedToTheTenant", func(t *testing.T) {
			a, _ := models.FindAppByAppID(db, ta, appid)
			if _, err := models.FindApp(db, tb, a.ID); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("another tenant's app: %v", err)
			}
			if err := models.UnbindApp(db, tb, a.ID, time.Now()); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("unbinding another tenant's app: %v", err)
			}
			found, err := models.FindBoundApp(db, appid)
			if err != nil || found.TenantID != ta {
				t.Fatalf("FindBoundApp: %+v, %v", found, err)
			}
		})
	})
}

func TestSealedSecretsAreBoundToTheirRow(t *testing.T) {
	s := newSealer(t)
	a := &models.App{TenantID: 1, AppID: "wx0000000000000001"}
	var err error
	a.SecretSealed, err = models.SealAppSecret(s, 1, a.AppID, models.ColAppSecret, "the secret")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := models.OpenAppSecret(s, a, models.ColAppSecret); err != nil || got != "the secret" {
		t.Fatalf("open: %q, %v", got, err)
	}
	if bytes.Contains(a.SecretSealed, []byte("the secret")) {
		t.Fatal("the ciphertext holds the plaintext")
	}
	cases := map[string]*models.App{
		"AnotherTenant": {TenantID: 2, AppID: a.AppID, SecretSealed: a.SecretSealed},
		"AnotherApp":    {TenantID: 1, AppID: "wx0000000000000002", SecretSealed: a.SecretSealed},
	}
	for name, other := range cases {
		if _, err := models.OpenAppSecret(s, other, models.ColAppSecret); !errors.Is(err, models.ErrSealedValue) {
			t.Errorf("%s: %v, want ErrSealedValue", name, err)
		}
	}
	moved := &models.App{TenantID: 1, AppID: a.AppID, AESKeySealed: a.SecretSealed}
	if _, err := models.OpenAppSecret(s, moved, models.ColAESKey); !errors.Is(err, models.ErrSealedValue) {
		t.Errorf("another column: %v, want ErrSealedValue", err)
	}
}

func TestBindingState(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ta, tb := makeTenant(t, db), makeTenant(t, db)
		now := time.Now().UTC()
		state, err := models.CreateBindingState(db, ta, 7, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := models.ConsumeBindingState(db, tb, 7, state, now); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("in another tenant: %v", err)
		}
		if err := models.ConsumeBindingState(db, ta, 8, state, now); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("by another person: %v", err)
		}
		if err := models.ConsumeBindingState(db, ta, 7, state, now.Add(models.BindingStateLifetime+time.Second)); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("expired: %v", err)
		}
		if err := models.ConsumeBindingState(db, ta, 7, state, now.Add(time.Minute)); err != nil {
			t.Fatalf("the right tenant and person: %v", err)
		}
		if err := models.ConsumeBindingState(db, ta, 7, state, now.Add(time.Minute)); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("replayed: %v", err)
		}
	})
}

func TestWechatErrorCounts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		now := time.Now().UTC().Truncate(time.Second)
		for i := 0; i < 3; i++ {
			if err := models.NoteWechatError(db, "wxquota", 45009, now.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := models.RecentWechatErrors(db, "wxquota", now.Add(time.Hour))
		if err != nil || len(got) != 1 || got[0].Count != 3 || !got[0].LastAt.Equal(now.Add(2*time.Minute)) {
			t.Fatalf("recent: %+v, %v", got, err)
		}
		if got, _ := models.RecentWechatErrors(db, "wxquota", now.Add(25*time.Hour)); len(got) != 0 {
			t.Fatalf("a day later: %+v", got)
		}
		later := now.Add(26 * time.Hour)
		if err := models.NoteWechatError(db, "wxquota", 45009, later); err != nil {
			t.Fatal(err)
		}
		if got, _ := models.RecentWechatErrors(db, "wxquota", later); len(got) != 1 || got[0].Count != 1 {
			t.Fatalf("a new window: %+v", got)
		}
	})
}

func TestRekey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		old, next := newSealer(t), newSealer(t)
		tenant := makeTenant(t, db)
		appid := "wx" + randHex(8)
		a := selfManagedApp(t, old, tenant, appid, "app-secret")
		a.CallbackTokenSealed, _ = models.SealAppSecret(old, tenant, appid, models.ColCallbackToken, "cb-token")
		a.AESKeySealed, _ = models.SealAppSecret(old, tenant, appid, models.ColAESKey, "aes-key")
		if err := models.BindApp(db, tenant, a); err != nil {
			t.Fatal(err)
		}
		store := models.NewWechatTokenStore(db, old)
		if err := store.Put(ctx, appid, "access_token", models.WechatToken{Value: "tok", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}

		t.Run("StopsWithNothingWrittenWhenAValueDoesNotOpen", func(t *testing.T) {
			if _, err := models.Rekey(ctx, db, newSealer(t), next); !errors.Is(err, models.ErrSealedValue) {
				t.Fatalf("wrong old key: %v", err)
			}
			got, _ := models.FindApp(db, tenant, a.ID)
			if s, err := models.OpenAppSecret(old, got, models.ColAppSecret); err != nil || s != "app-secret" {
				t.Fatalf("after a failed rekey: %q, %v", s, err)
			}
		})

		t.Run("ReencryptsEverySecret", func(t *testing.T) {
			res, err := models.Rekey(ctx, db, old, next)
			if err != nil {
				t.Fatal(err)
			}
			if res.AppSecrets != 3 || res.WechatTokens != 1 {
				t.Fatalf("result %+v", res)
			}
			got, _ := models.FindApp(db, tenant, a.ID)
			for col, want := range map[string]string{models.ColAppSecret: "app-secret", models.ColCallbackToken: "cb-token", models.ColAESKey: "aes-key"} {
				if s, err := models.OpenAppSecret(next, got, col); err != nil || s != want {
					t.Errorf("%s under the new key: %q, %v", col, s, err)
				}
				if _, err := models.OpenAppSecret(old, got, col); err == nil {
					t.Errorf("%s still opens with the old key", col)
				}
			}
			tok, err := models.NewWechatTokenStore(db, next).Get(ctx, appid, "access_token")
			if err != nil || tok.Value != "tok" {
				t.Fatalf("token under the new key: %+v, %v", tok, err)
			}
		})
	})
}
