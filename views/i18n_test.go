package views

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

func TestCatalogsHaveTheSameKeys(t *testing.T) {
	for key := range messagesEn {
		if _, ok := messagesZhCN[key]; !ok {
			t.Errorf("%q is in English but not in zh-CN", key)
		}
	}
	for key := range messagesZhCN {
		if _, ok := messagesEn[key]; !ok {
			t.Errorf("%q is in zh-CN but not in English", key)
		}
	}
}

func TestCatalogsAgreeOnFormatVerbs(t *testing.T) {
	verbs := regexp.MustCompile(`%[a-z]`)
	for key, en := range messagesEn {
		if a, b := verbs.FindAllString(en, -1), verbs.FindAllString(messagesZhCN[key], -1); strings.Join(a, "") != strings.Join(b, "") {
			t.Errorf("%q: English has %v, zh-CN %v", key, a, b)
		}
	}
}

// Every message key written in the templates and the web handlers exists.
// Keys built at run time ("nav." + section, "role." + role) are checked with
// the values they take.
func TestEveryKeyInTheSourcesIsInTheCatalog(t *testing.T) {
	literal := regexp.MustCompile(`"((?:locale|tenants|role|auth|nav|field|form|signup|error|members|invite|accept|audit|placeholder|apps|customers|profile|dashboard|oauth|imports|export|exports)\.[a-z0-9_.-]*[a-z0-9_])"`)
	var files []string
	for _, pattern := range []string{"*.templ", "*.go", "../app/web/*.go"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	used := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.HasSuffix(f, "_templ.go") || strings.HasPrefix(filepath.Base(f), "messages_") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
			used[m[1]] = true
		}
	}
	for _, section := range []string{"dashboard", "customers", "apps", "imports", "exports", "members", "audit", "settings"} {
		used["nav."+section] = true
	}
	// Exports: shapes, states and audit actions.
	for _, shape := range []string{"profiles", "identities"} {
		used["exports.shape."+shape], used["exports.shape_hint."+shape] = true, true
	}
	for _, st := range []string{"streaming", "done", "downloaded", "queued", "running", "ready", "failed", "cancelled", "expired"} {
		used["exports.state."+st] = true
	}
	for _, a := range []string{"streamed", "started", "ready", "failed", "cancelled", "downloaded"} {
		used["audit.action.export_"+a] = true
	}
	for _, role := range []string{"admin", "marketer", "viewer"} {
		used["role."+role], used["role."+role+".summary"] = true, true
	}
	for _, l := range Locales() {
		used["locale."+string(l)] = true
	}
	// The Apps screens: kinds, binding modes, statuses, where an open account
	// came from, every refusal of app/binding and every form problem.
	for _, k := range []string{"kind.subscription", "kind.service", "kind.miniprogram", "mode.authorized", "mode.self_managed",
		"status.active", "status.revoked", "status.failing", "status.unbound", "open_via.api", "open_via.existing", "open_via.declared",
		"error.appid", "error.secret", "error.kind", "error.callback_token", "error.aes_key"} {
		used["apps."+k] = true
	}
	for _, r := range []string{"individual", "app_unverified", "open_unverified", "mismatch", "held_elsewhere", "open_held_elsewhere",
		"already_bound", "wrong_secret", "appid_unknown", "ip_not_whitelisted", "quota", "not_configured", "no_ticket",
		"auth_code_invalid", "no_open_permission", "open_already_bound", "open_not_by_api", "open_limit", "not_authorized_mode",
		"has_open_account", "wechat_unavailable"} {
		used["apps.refused."+r] = true
	}
	// CSV imports: every problem and job state (app/ingest/import.go).
	for _, k := range []string{"not_utf8", "empty", "too_large", "too_many_rows", "no_rows", "bad_csv", "unknown_column",
		"duplicate_column", "missing_column", "field_count", "required", "unknown_app", "bad_id", "bad_subscribed",
		"bad_time", "not_followable", "conflicting_unionid", "unionid_twice"} {
		used["imports.problem."+k] = true
	}
	for _, st := range []string{"queued", "running", "succeeded", "failed", "cancelled"} {
		used["imports.state."+st] = true
	}
	// Web OAuth's pages, by reason (app/web/oauth.go).
	for _, r := range []string{"snapshot", "state", "code", "denied", "return", "scope", "wechat", "done"} {
		used["oauth."+r+".title"], used["oauth."+r+".message"] = true, true
	}
	var missing []string
	for key := range used {
		if _, ok := messagesEn[key]; !ok {
			missing = append(missing, key)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("keys used but not in the catalogs: %v", missing)
	}
	if len(used) < 50 {
		t.Fatalf("found only %d keys: the scan is broken", len(used))
	}
}

func TestT(t *testing.T) {
	ctx := context.Background()
	if got := T(ctx, "auth.sign_in"); got != "登录" {
		t.Errorf("default locale: %q", got)
	}
	ctx = WithLocale(ctx, En)
	if got := T(ctx, "auth.sign_in"); got != "Sign in" {
		t.Errorf("en: %q", got)
	}
	if got := T(ctx, "no.such.key"); got != "no.such.key" {
		t.Errorf("missing key: %q", got)
	}
	if got := Tf(ctx, "invite.expires", "2026-03-08"); got != "expires 2026-03-08" {
		t.Errorf("Tf: %q", got)
	}
}

func TestNegotiateLocale(t *testing.T) {
	cases := []struct {
		cookie, header string
		want           Locale
	}{
		{"", "", ZhCN},
		{"", "en-US,en;q=0.9", En},
		{"", "zh-TW,zh;q=0.9,en;q=0.5", ZhCN},
		{"", "fr-FR", ZhCN},
		{"", "fr-FR,en;q=0.5", En},
		{"en", "zh-CN", En},
		{"zh-CN", "en", ZhCN},
		{"klingon", "en", En},
		{"", "garbage;;;", ZhCN},
	}
	for _, c := range cases {
		if got := NegotiateLocale(c.cookie, c.header); got != c.want {
			t.Errorf("cookie %q, Accept-Language %q: %s, want %s", c.cookie, c.header, got, c.want)
		}
	}
}
