package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"oneid/models"
)

func runAPIKey(ctx context.Context, args []string, env *environment) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(env.stdout, "Usage: oneid apikey create --tenant SLUG [--name NAME]   (add --help for the flags)")
		if len(args) == 0 {
			return errHelp
		}
		return nil
	}
	if args[0] != "create" {
		return fmt.Errorf("apikey: unknown subcommand %q (create)", args[0])
	}
	fs := newFlagSet("apikey create", "create an API key for a tenant's own systems and print it once: only its hash is kept", env)
	slug := fs.String("tenant", "", "the tenant's slug (required)")
	name := fs.String("name", "", "what the key is for, e.g. \"crm backend\"")
	if err := fs.Parse(args[1:]); err != nil {
		return flagErr(err)
	}
	if *slug == "" {
		return errors.New("apikey create: --tenant is required")
	}
	sys, err := boot(ctx, env)
	if err != nil {
		return err
	}
	defer sys.close()
	db := sys.db.WithContext(ctx)
	tenant, err := models.FindTenantBySlug(db, *slug)
	if errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("apikey create: no tenant has the slug %q", *slug)
	}
	if err != nil {
		return err
	}
	key, stored, err := models.CreateAPIKey(db, tenant.ID, *name, time.Now().UTC())
	if err != nil {
		return err
	}
	if err := models.RecordAudit(db, tenant.ID, models.AuditEvent{Actor: "operator", Action: models.AuditAPIKeyCreated, Target: stored.Name, Detail: "prefix " + stored.Prefix}); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, key)
	fmt.Fprintf(env.stderr, "API key %q for %s: copy it now, it is not shown again\n", stored.Name, tenant.Slug)
	return nil
}
