package web

import (
	"errors"
	"net/url"
	"strconv"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"oneid/app/binding"
	"oneid/models"
	"oneid/tenants"
	"oneid/views"
)

// The Apps screens: the list, one app, the two ways to bind, and the return
// from WeChat's authorisation page. The rules live in app/binding; these
// handlers parse, call it, and render what it says.

// actor is the signed-in admin as the audit log records them.
func (s *Server) actor(c *fiber.Ctx) binding.Actor {
	st := state(c)
	a := binding.Actor{IP: c.IP(), RequestID: st.id}
	if st.user != nil {
		a.UserID, a.Email = st.user.ID, st.user.Email
	}
	return a
}

// notices are the messages shown after a redirect, by the "done" query value.
var notices = map[string]string{
	"bound":    "apps.notice.bound",
	"unbound":  "apps.notice.unbound",
	"secret":   "apps.notice.secret",
	"open":     "apps.notice.open",
	"declared": "apps.notice.declared",

	"sync_started":      "sync.notice.started",
	"sync_active":       "sync.notice.active",
	"sync_cancelled":    "sync.notice.cancelled",
	"sync_not_live":     "sync.notice.not_live",
	"sync_not_syncable": "sync.notice.not_syncable",
	"sync_schedule":     "sync.notice.schedule",
}

func (s *Server) appsPage(c *fiber.Ctx) error {
	v, err := s.appsView(c)
	if err != nil {
		return err
	}
	v.Notice = notices[c.Query("done")]
	return s.render(c, fiber.StatusOK, views.AppsPage(v))
}

// appsView groups the tenant's apps under their open-platform accounts.
func (s *Server) appsView(c *fiber.Ctx) (views.AppsView, error) {
	sc := scope(c)
	db := s.dbFor(c)
	opens, err := models.ListOpenAccounts(db, sc.TenantID)
	if err != nil {
		return views.AppsView{}, err
	}
	apps, err := models.ListApps(db, sc.TenantID)
	if err != nil {
		return views.AppsView{}, err
	}
	v := views.AppsView{CanManage: s.authz.Grants(sc.Role, sc.TenantID, tenants.AppsWrite)}
	index := map[int64]int{}
	for i, o := range opens {
		index[o.ID] = i
		v.OpenAccounts = append(v.OpenAccounts, views.OpenAccountGroup{ID: o.ID, OpenAppID: o.OpenAppID, Principal: o.PrincipalName,
			Verified: o.Verified, Declared: o.Declared, CreatedVia: o.CreatedVia})
		v.Targets = append(v.Targets, openTarget(&o))
	}
	for i := range apps {
		a := &apps[i]
		row := appRow(a)
		// The list marks a self-managed AppSecret that another system also
		// refreshes (the app's own page shows the whole token health).
		row.SharedSecret = s.apps.SharedSecret(c.UserContext(), a)
		switch {
		case !a.IsBound():
			v.Unbound = append(v.Unbound, row)
		case a.OpenAccountID == nil:
			v.Unlinked = append(v.Unlinked, row)
		default:
			g := &v.OpenAccounts[index[*a.OpenAccountID]]
			g.Apps = append(g.Apps, row)
		}
	}
	return v, s.withSyncViews(c, &v)
}

func appRow(a *models.App) views.AppRow {
	row := views.AppRow{ID: a.ID, Kind: a.Kind, Name: a.Name, AppID: a.AppID, Principal: a.PrincipalName,
		Verified: a.Verified(), Declared: a.Declared, Mode: a.BindingMode, Status: a.Status, FollowerCount: a.FollowerCount}
	if a.LastSyncAt != nil {
		row.LastSyncAt = *a.LastSyncAt
	}
	return row
}

func openTarget(o *models.OpenAccount) views.OpenTarget {
	return views.OpenTarget{ID: o.ID, OpenAppID: o.OpenAppID, Principal: o.PrincipalName, Verified: o.Verified, Declared: o.Declared}
}

// appPage shows one app: its facts, callback URL, token health and actions.
func (s *Server) appPage(c *fiber.Ctx) error {
	v, err := s.appView(c)
	if err != nil {
		return err
	}
	v.Notice = notices[c.Query("done")]
	return s.render(c, fiber.StatusOK, views.AppPage(v))
}

func (s *Server) appView(c *fiber.Ctx) (views.AppView, error) {
	sc := scope(c)
	db := s.dbFor(c)
	id, err := pathID(c, "id")
	if err != nil {
		return views.AppView{}, err
	}
	app, err := models.FindApp(db, sc.TenantID, id)
	if err != nil {
		return views.AppView{}, err
	}
	v := views.AppView{App: appRow(app), CanManage: s.authz.Grants(sc.Role, sc.TenantID, tenants.AppsWrite)}
	if app.OpenAccountID != nil {
		if o, err := models.FindOpenAccount(db, sc.TenantID, *app.OpenAccountID); err == nil {
			t := openTarget(o)
			v.Open = &t
		}
	}
	if app.IsBound() && app.BindingMode == models.ModeSelfManaged && app.IsOfficialAccount() {
		v.CallbackURL = s.cfg.PublicURL + "/wechat/callback/" + app.CallbackKey
	}
	h, err := s.apps.Health(c.UserContext(), app)
	if err != nil {
		return views.AppView{}, err
	}
	v.Health = views.HealthView{LastRefresh: h.Stats.LastRefreshAt, Refreshes: h.Stats.Refreshes, Rejections: h.Stats.Rejections,
		LastRejection: h.Stats.LastRejectionAt, SharedSecret: h.SharedSecret}
	for _, e := range h.Errors {
		v.Health.Errors = append(v.Health.Errors, views.ErrorCount{Code: e.Code, Count: e.Count, LastAt: e.LastAt})
	}
	if v.Open == nil && app.IsBound() {
		opens, err := models.ListOpenAccounts(db, sc.TenantID)
		if err != nil {
			return views.AppView{}, err
		}
		for i := range opens {
			v.Targets = append(v.Targets, openTarget(&opens[i]))
		}
	}
	return v, s.withSyncSchedule(c, &v)
}

// problemView is a refusal as the page shows it.
func problemView(r *binding.Refusal) *views.BindingProblem {
	return views.NewBindingProblem(views.BindingProblem{Reason: r.Reason, Code: r.Code, AppName: r.AppName,
		AppPrincipal: r.AppPrincipal, AppDeclared: r.AppDeclared, OpenAppID: r.OpenAppID, OpenPrincipal: r.OpenPrincipal, OpenDeclared: r.OpenDeclared})
}

// refusedWith re-renders a page with a refusal: 422, or 503 when WeChat failed.
func (s *Server) refusedWith(c *fiber.Ctx, r *binding.Refusal, page templ.Component) error {
	status := fiber.StatusUnprocessableEntity
	if r.Reason == binding.RefuseWeChatUnavailable {
		status = fiber.StatusServiceUnavailable
		s.log.Warn("binding refused: wechat unavailable", "request_id", requestID(c), "err", r.Err)
	}
	return refused(status, page)
}

// newAppPage offers authorized and self-managed binding.
func (s *Server) newAppPage(c *fiber.Ctx) error {
	v, err := s.newAppView(c)
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, views.NewAppPage(v))
}

func (s *Server) newAppView(c *fiber.Ctx) (views.NewAppView, error) {
	sc := scope(c)
	opens, err := models.ListOpenAccounts(s.dbFor(c), sc.TenantID)
	if err != nil {
		return views.NewAppView{}, err
	}
	v := views.NewAppView{ComponentConfigured: s.apps.Configured(),
		SelfManaged: views.SelfManagedForm{Errors: views.FieldErrors{}}, Declare: views.DeclareOpenForm{Errors: views.FieldErrors{}}}
	for i := range opens {
		v.OpenAccounts = append(v.OpenAccounts, openTarget(&opens[i]))
	}
	// Most of a company's apps share the principal it signed up with; a form
	// re-rendered with what was typed replaces this.
	if t, err := models.FindTenant(s.dbFor(c), sc.TenantID); err == nil {
		v.SelfManaged.Principal, v.Declare.Principal = t.PrincipalName, t.PrincipalName
	}
	return v, nil
}

// startAuthorization sends the admin to WeChat's authorisation page with a
// pre-auth code; the return comes to completeAuthorization with a state bound
// to this tenant and admin.
func (s *Server) startAuthorization(c *fiber.Ctx) error {
	sc := scope(c)
	back := func(state string) string {
		return s.cfg.PublicURL + tenantPath(sc.Slug, "apps/authorized") + "?state=" + url.QueryEscape(state)
	}
	page, err := s.apps.StartAuthorization(c.UserContext(), sc.TenantID, sc.UserID, back)
	if r, ok := binding.AsRefusal(err); ok {
		v, verr := s.newAppView(c)
		if verr != nil {
			return verr
		}
		v.Problem, v.Section = problemView(r), "authorized"
		return s.refusedWith(c, r, views.NewAppPage(v))
	}
	if err != nil {
		return err
	}
	return c.Redirect(page, fiber.StatusSeeOther)
}

// completeAuthorization is the redirect_uri: WeChat sends the admin back with
// auth_code. A state that is not this tenant's and admin's is a 404.
func (s *Server) completeAuthorization(c *fiber.Ctx) error {
	sc := scope(c)
	_, err := s.apps.CompleteAuthorization(c.UserContext(), sc.TenantID, s.actor(c), c.Query("state"), c.Query("auth_code"))
	if r, ok := binding.AsRefusal(err); ok {
		v, verr := s.appsView(c)
		if verr != nil {
			return verr
		}
		v.Problem = problemView(r)
		return s.refusedWith(c, r, views.AppsPage(v))
	}
	if err != nil {
		return err
	}
	return redirect(c, tenantPath(sc.Slug, "apps")+"?done=bound")
}

// fieldKey is the message of a form problem found by the binding package.
func fieldKey(problem string) string {
	switch problem {
	case binding.ProblemRequired:
		return "error.required"
	case binding.ProblemTooLong:
		return "error.too_long"
	}
	return "apps.error." + problem
}

// verifiedChoice reads a declared verification: "yes", "no", or a problem.
func verifiedChoice(errs views.FieldErrors, field, value string) bool {
	if value != "yes" && value != "no" {
		errs.Add(field, "apps.error.verified")
	}
	return value == "yes"
}

// optionalID reads an optional numeric id from a form: 0 when empty.
func optionalID(errs views.FieldErrors, field, value string) int64 {
	if value == "" {
		return 0
	}
	id, err := strconv.ParseInt(value, 10, 64)
	if err != nil || id <= 0 {
		errs.Add(field, "apps.error.open_account")
		return 0
	}
	return id
}

// bindSelfManaged binds an app by its AppSecret; it is saved only after the
// secret obtained a token, and its page then shows the callback URL.
func (s *Server) bindSelfManaged(c *fiber.Ctx) error {
	sc := scope(c)
	f := views.SelfManagedForm{AppID: form(c, "appid"), Kind: form(c, "kind"), Name: form(c, "name"),
		Principal: form(c, "principal"), Verified: form(c, "verified"), OpenAccountID: form(c, "open_account_id"), Errors: views.FieldErrors{}}
	in := binding.SelfManaged{AppID: f.AppID, Secret: form(c, "secret"), Kind: f.Kind, Name: f.Name, Principal: f.Principal,
		CallbackToken: form(c, "callback_token"), AESKey: form(c, "aes_key")}
	for field, problem := range in.Problems() {
		f.Errors.Add(field, fieldKey(problem))
	}
	in.Verified = verifiedChoice(f.Errors, "verified", f.Verified)
	in.OpenAccountID = optionalID(f.Errors, "open_account_id", f.OpenAccountID)
	render := func(status int, p *binding.Refusal) error {
		v, err := s.newAppView(c)
		if err != nil {
			return err
		}
		v.SelfManaged, v.Section = f, "self"
		if p != nil {
			v.Problem = problemView(p)
			return s.refusedWith(c, p, views.NewAppPage(v))
		}
		return refused(status, views.NewAppPage(v))
	}
	if f.Errors.Any() {
		return render(fiber.StatusUnprocessableEntity, nil)
	}
	app, err := s.apps.BindSelfManaged(c.UserContext(), sc.TenantID, s.actor(c), in)
	if r, ok := binding.AsRefusal(err); ok {
		return render(0, r)
	}
	var problems binding.ProblemsError
	if errors.As(err, &problems) {
		for field, problem := range problems {
			f.Errors.Add(field, fieldKey(problem))
		}
		return render(fiber.StatusUnprocessableEntity, nil)
	}
	if err != nil {
		return err
	}
	return redirect(c, tenantPath(sc.Slug, "apps/"+strconv.FormatInt(app.ID, 10))+"?done=bound")
}

// declareOpenAccount records the tenant's open-platform account as the admin
// declares it, for self-managed apps to join.
func (s *Server) declareOpenAccount(c *fiber.Ctx) error {
	sc := scope(c)
	f := views.DeclareOpenForm{OpenAppID: form(c, "open_appid"), Principal: form(c, "open_principal"), Verified: form(c, "open_verified"), Errors: views.FieldErrors{}}
	in := binding.DeclaredOpenAccount{OpenAppID: f.OpenAppID, Principal: f.Principal}
	for field, problem := range in.Problems() {
		f.Errors.Add(field, fieldKey(problem))
	}
	in.Verified = verifiedChoice(f.Errors, "open_verified", f.Verified)
	render := func(p *binding.Refusal) error {
		v, err := s.newAppView(c)
		if err != nil {
			return err
		}
		v.Declare, v.Section = f, "declare"
		if p != nil {
			v.Problem = problemView(p)
			return s.refusedWith(c, p, views.NewAppPage(v))
		}
		return invalid(views.NewAppPage(v))
	}
	if f.Errors.Any() {
		return render(nil)
	}
	_, err := s.apps.DeclareOpenAccount(c.UserContext(), sc.TenantID, s.actor(c), in)
	if r, ok := binding.AsRefusal(err); ok {
		return render(r)
	}
	if err != nil {
		return err
	}
	return redirect(c, tenantPath(sc.Slug, "apps")+"?done=declared")
}

// appRefused re-renders an app's page with a refusal.
func (s *Server) appRefused(c *fiber.Ctx, r *binding.Refusal) error {
	v, err := s.appView(c)
	if err != nil {
		return err
	}
	v.Problem = problemView(r)
	return s.refusedWith(c, r, views.AppPage(v))
}

func (s *Server) appDone(c *fiber.Ctx, id int64, done string) error {
	return redirect(c, tenantPath(scope(c).Slug, "apps/"+strconv.FormatInt(id, 10))+"?done="+done)
}

// createOpenAccount creates an open-platform account for an authorized app (open/create).
func (s *Server) createOpenAccount(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	_, err = s.apps.CreateOpenAccount(c.UserContext(), scope(c).TenantID, s.actor(c), id)
	if r, ok := binding.AsRefusal(err); ok {
		return s.appRefused(c, r)
	}
	if err != nil {
		return err
	}
	return s.appDone(c, id, "open")
}

// bindOpenAccount binds an authorized app to one of the tenant's open-platform accounts (open/bind).
func (s *Server) bindOpenAccount(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	openID, err := strconv.ParseInt(form(c, "open_account_id"), 10, 64)
	if err != nil || openID <= 0 {
		return models.ErrNotFound
	}
	err = s.apps.BindToOpenAccount(c.UserContext(), scope(c).TenantID, s.actor(c), id, openID)
	if r, ok := binding.AsRefusal(err); ok {
		return s.appRefused(c, r)
	}
	if err != nil {
		return err
	}
	return s.appDone(c, id, "open")
}

// replaceSecret gives a self-managed app a new AppSecret, once it obtains a token.
func (s *Server) replaceSecret(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	err = s.apps.ReplaceSecret(c.UserContext(), scope(c).TenantID, s.actor(c), id, form(c, "secret"))
	if r, ok := binding.AsRefusal(err); ok {
		return s.appRefused(c, r)
	}
	var problems binding.ProblemsError
	if errors.As(err, &problems) {
		v, verr := s.appView(c)
		if verr != nil {
			return verr
		}
		v.SecretError = fieldKey(problems["secret"])
		return invalid(views.AppPage(v))
	}
	if err != nil {
		return err
	}
	return s.appDone(c, id, "secret")
}

// unbindPage asks for confirmation before unbinding.
func (s *Server) unbindPage(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	app, err := models.FindApp(s.dbFor(c), scope(c).TenantID, id)
	if err != nil {
		return err
	}
	if !app.IsBound() {
		return models.ErrNotFound
	}
	return s.render(c, fiber.StatusOK, views.UnbindPage(views.UnbindView{App: appRow(app)}))
}

// unbindApp unbinds once confirmed: identities are kept, the appid is freed.
func (s *Server) unbindApp(c *fiber.Ctx) error {
	sc := scope(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if form(c, "confirm") != "yes" {
		app, err := models.FindApp(s.dbFor(c), sc.TenantID, id)
		if err != nil {
			return err
		}
		if !app.IsBound() {
			return models.ErrNotFound
		}
		return invalid(views.UnbindPage(views.UnbindView{App: appRow(app)}))
	}
	if _, err := s.apps.Unbind(c.UserContext(), sc.TenantID, s.actor(c), id); err != nil {
		return err
	}
	return redirect(c, tenantPath(sc.Slug, "apps")+"?done=unbound")
}
