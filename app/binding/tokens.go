package binding

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"oneid/app/wechat"
	"oneid/models"
)

// ObservedTokens wraps the token store every WeChat call goes through, to
// keep each app's health: a refresh that WeChat refuses for the app's
// credentials (wrong or reset AppSecret, authorization cancelled, IP not
// whitelisted) marks the bound app as failing, the next good refresh makes it
// active again, and quota and credential errors are counted for the Apps page.
type ObservedTokens struct {
	wechat.TokenStore
	db  *gorm.DB
	log *slog.Logger
	now func() time.Time
}

// ObserveTokens wraps store.
func ObserveTokens(store wechat.TokenStore, db *gorm.DB, log *slog.Logger) *ObservedTokens {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ObservedTokens{TokenStore: store, db: db, log: log, now: func() time.Time { return time.Now().UTC() }}
}

// Refresh runs the inner store's refresh and notes how WeChat answered.
func (o *ObservedTokens) Refresh(ctx context.Context, appID, kind string, fn func(cur wechat.Token) (wechat.Token, bool, error)) (wechat.Token, error) {
	var fetchErr error
	refreshed := false
	t, err := o.TokenStore.Refresh(ctx, appID, kind, func(cur wechat.Token) (wechat.Token, bool, error) {
		next, changed, err := fn(cur)
		fetchErr, refreshed = err, changed && err == nil
		return next, changed, err
	})
	if kind == wechat.KindAccessToken || kind == wechat.KindAuthorizerToken {
		o.observe(context.WithoutCancel(ctx), appID, fetchErr, refreshed)
	}
	return t, err
}

func (o *ObservedTokens) observe(ctx context.Context, appID string, fetchErr error, refreshed bool) {
	var we *wechat.Error
	failing := false
	if errors.As(fetchErr, &we) {
		if noteworthy(we.Code) {
			if err := models.NoteWechatError(o.db.WithContext(ctx), appID, we.Code, o.now()); err != nil {
				o.log.WarnContext(ctx, "binding: count wechat error", "appid", appID, "err", err)
			}
		}
		failing = wechat.IsConfig(fetchErr) || we.Code == wechat.CodeInvalidCredential
	}
	if !failing && !refreshed {
		return
	}
	db := o.db.WithContext(ctx)
	app, err := models.FindBoundApp(db, appID)
	if err != nil {
		return // not a bound app (the component), or no longer bound
	}
	switch {
	case failing && app.Status == models.AppActive:
		_, err = models.SetAppStatus(db, app.TenantID, app.ID, models.AppFailing)
	case refreshed && app.Status == models.AppFailing:
		_, err = models.SetAppStatus(db, app.TenantID, app.ID, models.AppActive)
	}
	if err != nil {
		o.log.WarnContext(ctx, "binding: set app status from token refresh", "appid", appID, "err", err)
	}
}
