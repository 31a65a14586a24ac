package models

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrUnscopedQuery is the tenant guard's refusal: a statement touched a
// tenant-owned table without saying which tenant it is for.
var ErrUnscopedQuery = errors.New("models: query on a tenant-owned table without a tenant scope")

const crossTenantKey = "oneid:cross_tenant"

// TenantTables lists every table that carries tenant_id. A test checks it against
// the migrated schema, so a new tenant-owned table cannot be forgotten here.
var TenantTables = map[string]bool{
	"memberships":  true,
	"invitations":  true,
	"audit_events": true,
	"api_keys":     true,

	"open_accounts":   true,
	"apps":            true,
	"customers":       true,
	"identities":      true,
	"customer_events": true,

	"binding_states": true,

	"dashboard_snapshots": true,

	"jobs":           true,
	"sync_schedules": true,

	"callback_events":    true,
	"oauth_states":       true,
	"oauth_return_hosts": true,
	"oauth_tickets":      true,
	"import_chunks":      true,

	"exports":       true,
	"export_chunks": true,
}

// ForTenant scopes a statement to one tenant; use it as db.Scopes(ForTenant(id)).
// The column is qualified with the statement's own table, so joins stay unambiguous.
func ForTenant(tenantID int64) func(*gorm.DB) *gorm.DB {
	return func(db *gorm.DB) *gorm.DB {
		if tenantID <= 0 {
			_ = db.AddError(fmt.Errorf("%w: tenant id %d", ErrUnscopedQuery, tenantID))
			return db
		}
		return db.Where(clause.Eq{Column: clause.Column{Table: clause.CurrentTable, Name: "tenant_id"}, Value: tenantID})
	}
}

// CrossTenant marks a statement as deliberately spanning tenants (platform CLI,
// job schedulers). The reason is required so every such place is greppable.
func CrossTenant(db *gorm.DB, reason string) *gorm.DB {
	if reason == "" {
		panic("models.CrossTenant needs a reason")
	}
	return db.Set(crossTenantKey, reason)
}

func installTenantGuard(db *gorm.DB) error {
	cb := db.Callback()
	steps := []error{
		cb.Create().Before("gorm:create").Register("oneid:tenant_guard", guardCreate),
		cb.Query().Before("gorm:query").Register("oneid:tenant_guard", guardWhere),
		cb.Update().Before("gorm:update").Register("oneid:tenant_guard", guardWhere),
		cb.Delete().Before("gorm:delete").Register("oneid:tenant_guard", guardWhere),
		cb.Row().Before("gorm:row").Register("oneid:tenant_guard", guardWhere),
		cb.Raw().Before("gorm:raw").Register("oneid:tenant_guard", guardWhere),
	}
	for _, err := range steps {
		if err != nil {
			return fmt.Errorf("models: install tenant guard: %w", err)
		}
	}
	return nil
}

func isCrossTenant(db *gorm.DB) bool {
	_, ok := db.Get(crossTenantKey)
	return ok
}

func guardCreate(db *gorm.DB) {
	if db.Error != nil || isCrossTenant(db) || db.Statement.Schema == nil || !TenantTables[db.Statement.Table] {
		return
	}
	field := db.Statement.Schema.LookUpField("TenantID")
	if field == nil {
		_ = db.AddError(fmt.Errorf("%w: %s has no TenantID field", ErrUnscopedQuery, db.Statement.Table))
		return
	}
	rv := db.Statement.ReflectValue
	check := func(i int) bool {
		v := rv
		if i >= 0 {
			v = rv.Index(i)
		}
		val, zero := field.ValueOf(db.Statement.Context, v)
		if zero {
			return false
		}
		id, ok := val.(int64)
		return !ok || id > 0
	}
	switch rv.Kind().String() {
	case "slice", "array":
		for i := 0; i < rv.Len(); i++ {
			if !check(i) {
				_ = db.AddError(fmt.Errorf("%w: insert into %s without tenant_id", ErrUnscopedQuery, db.Statement.Table))
				return
			}
		}
	case "struct":
		if !check(-1) {
			_ = db.AddError(fmt.Errorf("%w: insert into %s without tenant_id", ErrUnscopedQuery, db.Statement.Table))
		}
	}
}

// rawVerdicts remembers rawUnscopedTable's answer per SQL text (values are
// mostly bound separately, so an application has a few hundred texts): the
// regular expressions cost a tenth of a customer list page's CPU. Only short
// texts are kept (the exports write their id lists into the text), and at
// most rawVerdictsMax of them; the others are checked every time.
var (
	rawVerdicts    sync.Map // SQL text → table name ("" when scoped)
	rawVerdictsLen atomic.Int64
)

const (
	rawVerdictsMax   = 10000
	rawVerdictMaxLen = 2048
)

// rawUnscopedTable names a tenant-owned table that raw SQL reads or writes
// without a tenant_id test, "" when there is none.
func rawUnscopedTable(raw string) string {
	if len(raw) > rawVerdictMaxLen {
		// A long statement is long for its placeholder lists (a bulk
		// insert's rows, an IN list): its shape without them is what the
		// check reads, and what the verdict is remembered by.
		raw = placeholderShape(raw)
	}
	if v, ok := rawVerdicts.Load(raw); ok {
		return v.(string)
	}
	table := checkRaw(raw)
	if len(raw) <= rawVerdictMaxLen && rawVerdictsLen.Load() < rawVerdictsMax {
		if _, had := rawVerdicts.LoadOrStore(raw, table); !had {
			rawVerdictsLen.Add(1)
		}
	}
	return table
}

// placeholderShape is raw with every run of placeholder lists — the
// characters ? , ( ) and spaces, holding at least two ?, as in
// "(?,?),(?,?)" or "IN (?,?,?)" — written as " (?) ". Those characters name
// no table and no column, so the guard's verdict on the shape is its verdict
// on the statement; the shape of a bulk statement does not depend on its
// number of rows.
func placeholderShape(raw string) string {
	var b strings.Builder
	b.Grow(256)
	inList := func(c byte) bool { return c == '?' || c == ',' || c == '(' || c == ')' || c == ' ' }
	for i := 0; i < len(raw); {
		if !inList(raw[i]) {
			b.WriteByte(raw[i])
			i++
			continue
		}
		j, marks := i, 0
		for j < len(raw) && inList(raw[j]) {
			if raw[j] == '?' {
				marks++
			}
			j++
		}
		if marks >= 2 {
			b.WriteString(" (?) ")
		} else {
			b.WriteString(raw[i:j])
		}
		i = j
	}
	return b.String()
}

// guardRaw refuses raw SQL that names a tenant-owned table without a
// tenant_id test (ErrUnscopedQuery).
func guardRaw(raw string) error {
	if table := rawUnscopedTable(raw); table != "" {
		return fmt.Errorf("%w: raw SQL on %s", ErrUnscopedQuery, table)
	}
	return nil
}

func checkRaw(raw string) string {
	if schemaChange.MatchString(raw) {
		// ALTER, CREATE, DROP (migrations) read and write no tenant's rows.
		return ""
	}
	// Raw SQL: every tenant-owned table it names must come with a tenant_id test.
	lower := strings.ToLower(raw)
	for _, m := range sqlTableRef.FindAllStringSubmatch(raw, -1) {
		if TenantTables[strings.ToLower(m[1])] && (!strings.Contains(lower, "tenant_id") || orredTenantTest.MatchString(lower)) {
			return m[1]
		}
	}
	return ""
}

var schemaChange = regexp.MustCompile(`(?i)^\s*(alter|create|drop)\s`)

var sqlTableRef = regexp.MustCompile("(?i)\\b(?:from|join|update|into|table)\\s+`?([a-z_][a-z0-9_]*)`?")

func guardWhere(db *gorm.DB) {
	if db.Error != nil || isCrossTenant(db) {
		return
	}
	stmt := db.Statement
	if raw := stmt.SQL.String(); raw != "" && stmt.Table == "" {
		if err := guardRaw(raw); err != nil {
			_ = db.AddError(err)
		}
		return
	}
	if !TenantTables[stmt.Table] {
		return
	}
	if c, ok := stmt.Clauses["WHERE"]; ok {
		if where, ok := c.Expression.(clause.Where); ok && exprsMentionTenant(where.Exprs) {
			return
		}
	}
	_ = db.AddError(fmt.Errorf("%w: %s", ErrUnscopedQuery, stmt.Table))
}

func exprsMentionTenant(exprs []clause.Expression) bool {
	found := false
	for _, e := range exprs {
		if or, ok := e.(clause.OrConditions); ok && len(or.Exprs) == 1 {
			// gorm joins a lone Or(...) to the conditions before it with OR, so
			// the list is a disjunction and no tenant test in it scopes anything.
			return false
		}
		if exprMentionsTenant(e) {
			found = true
		}
	}
	return found
}

// exprMentionsTenant looks only at top-level AND conditions: a tenant test inside
// an OR would not scope the query, so it does not count.
func exprMentionsTenant(e clause.Expression) bool {
	switch x := e.(type) {
	case clause.Eq:
		return columnIsTenant(x.Column)
	case clause.IN:
		return columnIsTenant(x.Column)
	case clause.Expr:
		return sqlMentionsTenant(x.SQL)
	case clause.NamedExpr:
		return sqlMentionsTenant(x.SQL)
	case clause.AndConditions:
		return exprsMentionTenant(x.Exprs)
	case clause.Where:
		return exprsMentionTenant(x.Exprs)
	}
	return false
}

func columnIsTenant(col any) bool {
	switch c := col.(type) {
	case clause.Column:
		return c.Name == "tenant_id"
	case string:
		return c == "tenant_id" || strings.HasSuffix(c, ".tenant_id")
	}
	return false
}

// tenantTest is a comparison of tenant_id with a value or a list; anything else
// (IS NOT NULL, <>, >) does not scope a query to one tenant.
var tenantTest = regexp.MustCompile("(?i)(^|[^a-z0-9_])tenant_id`?\\s*(=|in\\s*\\()")

// orredTenantTest finds a tenant test that is an operand of OR in raw SQL:
// "tenant_id = ? OR …" or "… OR tenant_id = ?".
var orredTenantTest = regexp.MustCompile("(?i)tenant_id`?\\s*(=|in)\\s*(\\?|\\d+|\\([^)]*\\))[\\s)]*or\\b|\\bor[\\s(]+[a-z0-9_.`]*tenant_id")

var orWord = regexp.MustCompile(`(?i)\bor\b`)

func sqlMentionsTenant(sql string) bool {
	return tenantTest.MatchString(sql) && !orWord.MatchString(sql)
}
