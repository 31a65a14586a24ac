package views

import (
	"context"
	"strings"
	"testing"

	"github.com/a-h/templ"
)

func TestPageShowsOnlyTheGivenNavigation(t *testing.T) {
	ctx := WithLocale(context.Background(), En)
	ctx = WithCSRF(ctx, "tok")
	ctx = WithViewer(ctx, Viewer{Email: "v@example.com"})
	ctx = WithWorkspace(ctx, Workspace{Slug: "acme", Name: "Acme", Role: "viewer", Nav: []NavItem{
		{Key: "dashboard", Href: "/t/acme/dashboard"}, {Key: "customers", Href: "/t/acme/customers"},
	}})
	var b strings.Builder
	if err := Page("Dashboard", "dashboard").Render(templ.WithChildren(ctx, templ.NopComponent), &b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{`data-testid="nav-dashboard"`, `data-testid="nav-customers"`, `class="nav-item nav-dashboard active"`, "v@example.com", "Acme", `hx-headers="{&#34;X-CSRF-Token&#34;:&#34;tok&#34;}"`} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, absent := range []string{`nav-members`, `nav-audit`, `<script>`, ` style=`} {
		if strings.Contains(html, absent) {
			t.Errorf("page has %s", absent)
		}
	}
}

func TestErrorPageForAVisitorUsesTheCard(t *testing.T) {
	var b strings.Builder
	if err := ErrorPage(ErrorView{Status: 404, Title: "error.404.title", Message: "error.404.message", Home: "/"}).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `class="card-page"`) || !strings.Contains(b.String(), "页面不存在") || strings.Contains(b.String(), "sidenav") {
		t.Fatal(b.String())
	}
}
