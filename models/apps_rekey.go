package models

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// RekeyResult counts what Rekey re-encrypted.
type RekeyResult struct {
	AppSecrets   int // sealed columns of apps (AppSecret, callback token, EncodingAESKey)
	WechatTokens int // sealed values of wechat_tokens
}

// Rekey re-encrypts every secret at rest (the sealed columns of apps and the
// values of wechat_tokens) from the old key to the new one, in one
// transaction. Every value is opened with the old key before anything is
// written: one that does not open stops the whole run with nothing changed.
func Rekey(ctx context.Context, db *gorm.DB, old, next *Sealer) (RekeyResult, error) {
	var res RekeyResult
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		read := tx
		if Dialect(tx) == DialectMySQL {
			// A portal still running would otherwise write a token sealed with
			// the old key between this read and the write below.
			read = tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).Session(&gorm.Session{})
		}
		var apps []App
		err := CrossTenant(read, "rekey re-encrypts every tenant's secrets").
			Where("secret_sealed IS NOT NULL OR callback_token_sealed IS NOT NULL OR aes_key_sealed IS NOT NULL").
			Order("id").Find(&apps).Error
		if err != nil {
			return fmt.Errorf("models: rekey: load apps: %w", err)
		}
		var tokens []wechatTokenRow
		if err := read.Where("value_sealed IS NOT NULL").Order("id").Find(&tokens).Error; err != nil {
			return fmt.Errorf("models: rekey: load wechat tokens: %w", err)
		}

		type appUpdate struct {
			id      int64
			tenant  int64
			columns map[string]any
		}
		var appUpdates []appUpdate
		for i := range apps {
			a := &apps[i]
			cols := map[string]any{}
			for _, col := range []string{ColAppSecret, ColCallbackToken, ColAESKey} {
				plain, err := OpenAppSecret(old, a, col)
				if err != nil {
					return fmt.Errorf("models: rekey: app %d: %w", a.ID, err)
				}
				if plain == "" {
					continue
				}
				sealed, err := SealAppSecret(next, a.TenantID, a.AppID, col, plain)
				if err != nil {
					return err
				}
				cols[col] = sealed
			}
			if len(cols) > 0 {
				appUpdates = append(appUpdates, appUpdate{a.ID, a.TenantID, cols})
				res.AppSecrets += len(cols)
			}
		}
		tokenValues := make(map[int64][]byte, len(tokens))
		for _, t := range tokens {
			if len(t.ValueSealed) == 0 {
				continue
			}
			ad := wechatTokenAD(t.AppID, t.Kind)
			plain, err := old.Open(t.ValueSealed, ad)
			if err != nil {
				return fmt.Errorf("models: rekey: wechat token %s of %s: %w", t.Kind, t.AppID, err)
			}
			sealed, err := next.Seal(plain, ad)
			if err != nil {
				return err
			}
			tokenValues[t.ID] = sealed
		}

		for _, u := range appUpdates {
			if err := tx.Model(&App{}).Scopes(ForTenant(u.tenant)).Where("id = ?", u.id).Updates(u.columns).Error; err != nil {
				return fmt.Errorf("models: rekey: write app %d: %w", u.id, err)
			}
		}
		for id, sealed := range tokenValues {
			if err := tx.Model(&wechatTokenRow{}).Where("id = ?", id).Update("value_sealed", sealed).Error; err != nil {
				return fmt.Errorf("models: rekey: write wechat token %d: %w", id, err)
			}
			res.WechatTokens++
		}
		return nil
	})
	if err != nil {
		return RekeyResult{}, err
	}
	return res, nil
}
