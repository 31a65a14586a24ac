package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"oneid/models"
)

func runTenant(ctx context.Context, args []string, env *environment) error {
	subs := map[string]func(context.Context, []string, *environment) error{
		"create":  runTenantCreate,
		"list":    runTenantList,
		"suspend": runTenantSuspend,
		"resume":  runTenantResume,
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(env.stdout, "Usage: oneid tenant <create|list|suspend|resume> [flags]   (add --help for each one's flags)")
		if len(args) == 0 {
			return errHelp
		}
		return nil
	}
	sub, ok := subs[args[0]]
	if !ok {
		return fmt.Errorf("tenant: unknown subcommand %q (create, list, suspend or resume)", args[0])
	}
	return sub(ctx, args[1:], env)
}

func runTenantCreate(ctx context.Context, args []string, env *environment) error {
	fs := newFlagSet("tenant create", "create a tenant (workspace) with its first admin and print its slug", env)
	name := fs.String("name", "", "company display name (required)")
	principal := fs.String("principal", "", "principal name 主体名称, the registered legal name (required)")
	email := fs.String("admin-email", "", "email of the first admin (required)")
	password := fs.String("admin-password", "", "password of the first admin, at least 10 characters (required unless the email already has an account)")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	var problems []string
	if strings.TrimSpace(*name) == "" {
		problems = append(problems, "--name is required")
	}
	if strings.TrimSpace(*principal) == "" {
		problems = append(problems, "--principal is required")
	}
	if !strings.Contains(*email, "@") {
		problems = append(problems, "--admin-email must be an email address")
	}
	if len(problems) > 0 {
		return fmt.Errorf("tenant create: %s", strings.Join(problems, "; "))
	}
	sys, err := boot(ctx, env)
	if err != nil {
		return err
	}
	defer sys.close()
	db := sys.db.WithContext(ctx)

	nt := models.NewTenant{Name: *name, PrincipalName: *principal}
	existing, err := models.FindUserByEmail(db, *email)
	switch {
	case err == nil:
		nt.AdminUserID = existing.ID
		fmt.Fprintf(env.stderr, "%s already has an account: it becomes this tenant's admin and keeps its password\n", existing.Email)
	case errors.Is(err, models.ErrNotFound):
		if n := utf8.RuneCountInString(*password); n < 10 || n > 128 {
			return errors.New("tenant create: --admin-password must have 10 to 128 characters")
		}
		hash, err := models.NewPasswordHasher(1).Hash(ctx, *password)
		if err != nil {
			return err
		}
		nt.Admin = models.User{Email: *email, PasswordHash: hash, Locale: "zh-CN"}
	default:
		return err
	}
	tenant, admin, err := models.CreateTenant(db, nt)
	if err != nil {
		return fmt.Errorf("tenant create: %w", err)
	}
	err = models.RecordAudit(db, tenant.ID, models.AuditEvent{Actor: "operator", Action: models.AuditTenantCreated, Target: tenant.Name, Detail: "admin " + admin.Email})
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, tenant.Slug)
	return nil
}

func runTenantList(ctx context.Context, args []string, env *environment) error {
	fs := newFlagSet("tenant list", "list every tenant: slug, status, members, name and principal name", env)
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	sys, err := boot(ctx, env)
	if err != nil {
		return err
	}
	defer sys.close()
	list, err := models.ListTenants(sys.db.WithContext(ctx))
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SLUG\tSTATUS\tMEMBERS\tCREATED\tNAME\tPRINCIPAL")
	for _, t := range list {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", t.Slug, t.Status, t.Members, t.CreatedAt.Format("2006-01-02"), t.Name, t.PrincipalName)
	}
	return w.Flush()
}

func runTenantSuspend(ctx context.Context, args []string, env *environment) error {
	return setTenantStatus(ctx, args, env, "suspend", "suspend a tenant: its members see a notice and can use nothing until it is resumed", models.TenantSuspended)
}

func runTenantResume(ctx context.Context, args []string, env *environment) error {
	return setTenantStatus(ctx, args, env, "resume", "resume a suspended tenant", models.TenantActive)
}

func setTenantStatus(ctx context.Context, args []string, env *environment, verb, purpose, status string) error {
	fs := newFlagSet("tenant "+verb, purpose, env)
	slug := fs.String("tenant", "", "the tenant's slug, as `oneid tenant list` shows it (required)")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	if *slug == "" {
		return fmt.Errorf("tenant %s: --tenant is required", verb)
	}
	sys, err := boot(ctx, env)
	if err != nil {
		return err
	}
	defer sys.close()
	tenant, err := models.SetTenantStatus(sys.db.WithContext(ctx), *slug, status)
	if errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("tenant %s: no tenant has the slug %q", verb, *slug)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "%s is %s\n", tenant.Slug, status)
	return nil
}
