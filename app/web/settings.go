package web

import (
	"github.com/gofiber/fiber/v2"

	"oneid/models"
	"oneid/tenants"
	"oneid/views"
)

// settingsNotices are the messages shown after a redirect to Settings.
var settingsNotices = map[string]string{"revoked": "settings.key_revoked"}

func (s *Server) settingsPage(c *fiber.Ctx) error {
	v, err := s.settingsView(c)
	if err != nil {
		return err
	}
	v.Notice = settingsNotices[c.Query("done")]
	return s.render(c, fiber.StatusOK, views.SettingsPage(v))
}

// settingsView loads the workspace's settings: who it is, and its API keys.
func (s *Server) settingsView(c *fiber.Ctx) (views.SettingsView, error) {
	sc := scope(c)
	db := s.dbFor(c)
	tenant, err := models.FindTenant(db, sc.TenantID)
	if err != nil {
		return views.SettingsView{}, err
	}
	v := views.SettingsView{
		Name: tenant.Name, Slug: tenant.Slug, Principal: tenant.PrincipalName, CreatedAt: tenant.CreatedAt,
		APIBase:     s.cfg.PublicURL + "/api/v1",
		CanReadKeys: s.authz.Grants(sc.Role, sc.TenantID, tenants.APIKeysRead),
		CanManage:   s.authz.Grants(sc.Role, sc.TenantID, tenants.APIKeysWrite),
		Errors:      views.FieldErrors{},
	}
	if !v.CanReadKeys {
		return v, nil
	}
	keys, err := models.ListAPIKeys(db, sc.TenantID)
	if err != nil {
		return views.SettingsView{}, err
	}
	for _, k := range keys {
		v.Keys = append(v.Keys, views.APIKeyRow{ID: k.ID, Name: k.Name, Display: k.Display(), CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt})
	}
	return v, nil
}

// createAPIKey makes a key and shows it on the page it answers with, once:
// the page is not kept anywhere (every page is no-store, see observe) and a
// reload does not show it again.
func (s *Server) createAPIKey(c *fiber.Ctx) error {
	sc := scope(c)
	name := form(c, "name")
	if n := len([]rune(name)); n == 0 || n > 100 {
		v, err := s.settingsView(c)
		if err != nil {
			return err
		}
		v.KeyName = name
		v.Errors["name"] = "settings.error.key_name"
		return invalid(views.SettingsPage(v))
	}
	key, stored, err := models.CreateAPIKey(s.dbFor(c), sc.TenantID, name, s.now())
	if err != nil {
		return err
	}
	if err := s.audit(c, models.AuditAPIKeyCreated, stored.Name, stored.Display()); err != nil {
		return err
	}
	v, err := s.settingsView(c)
	if err != nil {
		return err
	}
	v.NewKey, v.NewKeyName = key, stored.Name
	return s.render(c, fiber.StatusOK, views.SettingsPage(v))
}

// revokeAPIKey stops a key at once; the tenant's systems that use it get 401.
func (s *Server) revokeAPIKey(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	k, err := models.RevokeAPIKey(s.dbFor(c), sc.TenantID, id, s.now())
	if err != nil {
		return err
	}
	if err := s.audit(c, models.AuditAPIKeyRevoked, k.Name, k.Display()); err != nil {
		return err
	}
	return redirect(c, tenantPath(sc.Slug, "settings")+"?done=revoked")
}
