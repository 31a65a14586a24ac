package binding

import (
	"context"

	"oneid/app/wechat"
	"oneid/models"
)

// Health is an app's token health as its admin sees it.
type Health struct {
	Stats wechat.TokenStats
	// SharedSecret is the warning that another system seems to refresh the
	// same AppSecret: WeChat keeps refusing tokens OneID still holds as valid.
	SharedSecret bool
	// Errors are WeChat's recent quota and credential errors for the app.
	Errors []models.WechatErrorCount
}

// Health reads an app's token counters and recent errors; it calls nothing at WeChat.
func (s *Service) Health(ctx context.Context, app *models.App) (Health, error) {
	var h Health
	if s.wx != nil {
		st, err := s.wx.TokenStats(ctx, app.AppID)
		if err != nil {
			return h, err
		}
		h.Stats = st
		h.SharedSecret = app.BindingMode == models.ModeSelfManaged && st.SharedSecretSuspected(s.now())
	}
	errs, err := models.RecentWechatErrors(s.db.WithContext(ctx), app.AppID, s.now())
	if err != nil {
		return h, err
	}
	h.Errors = errs
	return h, nil
}

// SharedSecret is Health's SharedSecret alone, for the apps list: it reads
// the token counters of a bound self-managed app and not its recent errors.
// False when they cannot be read.
func (s *Service) SharedSecret(ctx context.Context, app *models.App) bool {
	if s.wx == nil || !app.IsBound() || app.BindingMode != models.ModeSelfManaged {
		return false
	}
	st, err := s.wx.TokenStats(ctx, app.AppID)
	return err == nil && st.SharedSecretSuspected(s.now())
}
