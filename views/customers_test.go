package views

import (
	"context"
	"strings"
	"testing"

	"oneid/models"
)

// Keys the customer screens build at run time ("kind." + kind…) exist for
// every value they can take.
func TestBrowseKeysBuiltAtRunTimeExist(t *testing.T) {
	var keys []string
	for _, k := range models.Kinds() {
		keys = append(keys, "kind."+k)
	}
	for _, s := range models.Sources() {
		keys = append(keys, "source."+s)
	}
	for _, s := range models.SortOrders() {
		keys = append(keys, "customers.sort."+s)
	}
	for _, r := range []string{models.UnlinkedNoOpenAccount, models.UnlinkedNotFollower, models.UnlinkedSnsapiBase, models.UnlinkedNotAsked} {
		keys = append(keys, "unlinked."+r)
	}
	for _, e := range []string{models.EventFollowed, models.EventUnfollowed, models.EventLinked, models.EventOAuthSignIn,
		models.EventMiniSignIn, models.EventImported, models.EventMerged, models.EventFirstSeen, models.EventPaidUnionID} {
		keys = append(keys, "event."+e)
	}
	for _, s := range []string{models.AppRevoked, models.AppFailing, models.AppUnbound} {
		keys = append(keys, "app_status."+s)
	}
	for _, p := range []string{models.ProblemTooLong, models.ProblemNotChoice, models.ProblemNotDay, models.ProblemDayOrder,
		models.ProblemCursor, models.ProblemNoApp, "fix"} {
		keys = append(keys, "customers.problem."+p)
	}
	keys = append(keys, "audit.action."+models.AuditCustomerDeleted)
	for _, key := range keys {
		if _, ok := messagesEn[key]; !ok {
			t.Errorf("%q is not in the catalogs", key)
		}
	}
}

func TestInitialAndCounts(t *testing.T) {
	for in, want := range map[string]string{"王小明": "王", "lucky": "L", "🌸小美": "小", "": "?", "  ": "?", "🌸": "🌸"} {
		if got := Initial(in); got != want {
			t.Errorf("Initial(%q) = %q, want %q", in, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4200: "-4,200"} {
		if got := FormatCount(n); got != want {
			t.Errorf("FormatCount(%d) = %q", n, got)
		}
	}
}

// The results fragment alone is what htmx swaps in: no layout around it.
func TestCustomerResultsIsAFragment(t *testing.T) {
	ctx := WithLocale(context.Background(), En)
	var b strings.Builder
	v := CustomersView{Total: 1234, Exact: false, Rows: []CustomerListRow{{Href: "/t/a/customers/1", Nickname: "王小明", UnionID: "••••x3kQ",
		Apps: []AppBadge{{Name: "品牌服务号", Kind: "service", Follows: true}}}}, Next: "/t/a/customers?after=1.1"}
	if err := CustomerResults(v).Render(ctx, &b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{`id="customer-results"`, "About 1,234 customers", "estimated", "••••x3kQ", `data-testid="page-next"`, `hx-push-url="true"`} {
		if !strings.Contains(html, want) {
			t.Errorf("fragment lacks %s", want)
		}
	}
	for _, absent := range []string{"<html", "<nav class=\"sidenav\"", " style="} {
		if strings.Contains(html, absent) {
			t.Errorf("fragment has %s", absent)
		}
	}
}

// The hand-written row escapes everything it writes.
func TestCustomerRowEscapes(t *testing.T) {
	ctx := WithLocale(context.Background(), En)
	var b strings.Builder
	row := CustomerListRow{Key: "7", Href: `/t/a/customers/7?from=q%3D%3Cx%3E`, Nickname: `<script>alert("x")</script>`,
		UnlinkedReason: "snsapi_base", Apps: []AppBadge{{Name: `A&B "app"`, Kind: `service" onclick="x`, Follows: true}}}
	if err := customerRow(row).Render(ctx, &b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, bad := range []string{"<script>", `" onclick="`, `A&B`} {
		if strings.Contains(html, bad) {
			t.Errorf("row has %q unescaped: %s", bad, html)
		}
	}
	for _, want := range []string{"&lt;script&gt;", "A&amp;B &#34;app&#34;", "Not linked", `href="/t/a/customers/7?from=q%3D%3Cx%3E"`, `class="avatar avatar-sm tone-`} {
		if !strings.Contains(html, want) {
			t.Errorf("row lacks %s: %s", want, html)
		}
	}
}
