package models_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"oneid/models"
	"oneid/views"
)

// filterParams are the customer list's URL parameters.
var filterParams = []string{"q", "app", "kind", "sub", "linked", "source", "first_from", "first_to", "last_from", "last_to", "sort", "after", "before"}

// FuzzCustomerFilterParams holds ParseCustomerFilter to its contract,
// parameter by parameter, for any query string (FuzzParseCustomerFilter
// checks the canonical form is a fixed point):
//   - each parameter is either refused (a problem with a message in both
//     languages, and the filter keeps the default) or kept as given (the
//     canonical URL carries the same value: the search trimmed, the default
//     sort left out), and an empty one is neither;
//   - the canonical URL carries no other parameter, and at most one cursor;
//   - a cursor it keeps reads back to the same position.
func FuzzCustomerFilterParams(f *testing.F) {
	for _, s := range []string{
		"", "q=+王小明+&app=3&sort=first_seen", "q=oAbCdEfGhIjKlMnOpQrStUvWx3kQ&linked=yes&sub=no",
		"after=1767225600000000.42&sub=no", "after=1.2&before=1.3", "after=+0017.0042", "before=7258118400000000.1",
		"first_from=2026-01-01&first_to=2025-01-01", "last_from=2025-02-28&last_to=2025-02-28", "first_from=2026-02-30",
		"q=%ff%fe", "q=%00", "q=" + strings.Repeat("长", 101), "sort=last_seen", "sort=last_seen&sort=first_seen",
		"app=-3", "app=00012", "app=9223372036854775808", "kind=miniprogram&source=import&utm_source=wechat",
		"linked=yes&linked=no", "source=oauth&last_to=2100-12-31",
	} {
		f.Add(s)
	}
	en := views.WithLocale(context.Background(), views.En)
	zh := views.WithLocale(context.Background(), views.ZhCN)
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		filter, problems := models.ParseCustomerFilter(q)
		canon := filter.Values()
		known := map[string]bool{}
		for _, p := range filterParams {
			known[p] = true
			given, problem := q.Get(p), problems[p]
			if problem != "" {
				if !views.Has(en, "customers.problem."+problem) || !views.Has(zh, "customers.problem."+problem) {
					t.Fatalf("%s=%q: problem %q has no message", p, given, problem)
				}
				if canon.Has(p) {
					t.Fatalf("%s=%q is refused (%s) yet kept as %q", p, given, problem, canon.Get(p))
				}
				continue
			}
			want := given
			switch p {
			case "q":
				want = strings.TrimSpace(strings.ToValidUTF8(given, ""))
			case "sort":
				if given == models.SortLastSeen {
					want = ""
				}
			case "app", "after", "before":
				// Numbers are written back canonically; checked below.
				if given != "" && !canon.Has(p) {
					t.Fatalf("%s=%q is neither refused nor kept", p, given)
				}
				continue
			}
			if canon.Get(p) != want {
				t.Fatalf("%s=%q is not refused, yet the filter holds %q", p, given, canon.Get(p))
			}
		}
		for p := range problems {
			if !known[p] {
				t.Fatalf("a problem with the unknown parameter %q", p)
			}
		}
		for p, vs := range canon {
			if !known[p] || len(vs) != 1 || vs[0] == "" {
				t.Fatalf("the canonical URL carries %s=%q", p, vs)
			}
		}
		if filter.After != nil && filter.Before != nil {
			t.Fatalf("both cursors kept")
		}
		for _, c := range []*models.Cursor{filter.After, filter.Before} {
			if c == nil {
				continue
			}
			back, err := models.ParseCursor(c.String())
			if err != nil || back != *c {
				t.Fatalf("cursor %s reads back as %v, %v", c, back, err)
			}
		}
		if filter.AppID < 0 || (q.Get("app") != "" && problems["app"] == "" && filter.AppID == 0) {
			t.Fatalf("app=%q gives app %d", q.Get("app"), filter.AppID)
		}
	})
}
