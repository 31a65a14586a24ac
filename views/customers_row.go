package views

import (
	"context"
	"html"
	"io"
	"strings"

	"github.com/a-h/templ"
)

// customerRow is one line of the customer list. It is written by hand rather
// than in customers.templ because it is the list's hot path: fifty a page, and
// templ's class-attribute handling cost about half a millisecond a page.
// Everything it writes is escaped.
func customerRow(r CustomerListRow) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		// templ renders into a buffer of its own: write into it directly
		// (a row's own builder was a kilobyte of garbage a row).
		var b stringWriter
		var sb *strings.Builder
		if sw, ok := w.(stringWriter); ok {
			b = sw
		} else {
			sb = &strings.Builder{}
			b = sb
		}
		esc := func(s string) { _, _ = b.WriteString(html.EscapeString(s)) }
		b.WriteString(`<tr data-testid="customer-row"><td><a class="who" href="`)
		esc(string(templ.URL(r.Href)))
		b.WriteString(`" data-testid="customer-link"><span class="avatar avatar-sm `)
		b.WriteString(avatarTone(r.Key))
		b.WriteString(`" aria-hidden="true">`)
		esc(Initial(r.Nickname))
		b.WriteString(`</span><span class="who-text"><span class="who-name">`)
		if r.Nickname != "" {
			esc(r.Nickname)
		} else {
			b.WriteString(`<span class="muted">`)
			esc(T(ctx, "customers.no_nickname"))
			b.WriteString(`</span>`)
		}
		b.WriteString(`</span><span class="who-id">`)
		switch {
		case r.MatchedOpenID != "":
			b.WriteString(`<span class="id-label">OpenID</span><code data-testid="row-openid">`)
			esc(r.MatchedOpenID)
			b.WriteString(`</code>`)
		case r.UnionID != "":
			b.WriteString(`<span class="id-label">UnionID</span><code data-testid="row-unionid">`)
			esc(r.UnionID)
			b.WriteString(`</code>`)
		default:
			b.WriteString(`<span class="unlinked-tag">`)
			esc(T(ctx, "customers.unlinked"))
			b.WriteString(`</span><span class="muted">`)
			esc(reasonLabel(ctx, r.UnlinkedReason))
			b.WriteString(`</span>`)
		}
		b.WriteString(`</span></span></a></td><td><span class="badges">`)
		for _, a := range r.Apps {
			b.WriteString(`<span class="app-badge kind-`)
			esc(a.Kind)
			if a.Follows {
				b.WriteString(` follows`)
			}
			b.WriteString(`" title="`)
			esc(kindLabel(ctx, a.Kind))
			b.WriteString(`">`)
			esc(a.Name)
			if a.Follows {
				b.WriteString(`<span class="follow-dot" aria-label="`)
				esc(T(ctx, "customers.follows"))
				b.WriteString(`">●</span>`)
			}
			b.WriteString(`</span>`)
		}
		b.WriteString(`</span></td><td class="nowrap muted">`)
		esc(FormatDate(r.FirstSeen))
		b.WriteString(`</td><td class="nowrap muted">`)
		esc(FormatTime(r.LastSeen))
		b.WriteString(`</td></tr>`)
		if sb == nil {
			return nil
		}
		_, err := io.WriteString(w, sb.String())
		return err
	})
}

// stringWriter is what customerRow writes to.
type stringWriter interface {
	WriteString(string) (int, error)
}
