package views

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/text/language"
)

// Locale is a language the UI speaks.
type Locale string

// The languages of the UI. zh-CN is the default: most users are in China.
const (
	ZhCN Locale = "zh-CN"
	En   Locale = "en"
)

// Locales lists the supported languages, default first.
func Locales() []Locale { return []Locale{ZhCN, En} }

// catalog returns the messages of a locale.
func catalog(l Locale) map[string]string {
	if l == En {
		return messagesEn
	}
	return messagesZhCN
}

// T translates a message key into the page's language. A key missing from the
// catalog shows as itself, which a test prevents.
func T(ctx context.Context, key string) string {
	if s, ok := catalog(LocaleOf(ctx))[key]; ok {
		return s
	}
	return key
}

// Tf translates a key whose message holds fmt verbs.
func Tf(ctx context.Context, key string, args ...any) string {
	return fmt.Sprintf(T(ctx, key), args...)
}

// Has reports whether the catalog knows a key (audit actions of later features
// may not be translated yet and show as they are).
func Has(ctx context.Context, key string) bool {
	_, ok := catalog(LocaleOf(ctx))[key]
	return ok
}

// ParseLocale reads a locale from a cookie or form value; ok is false for
// anything but a supported one.
func ParseLocale(s string) (Locale, bool) {
	for _, l := range Locales() {
		if string(l) == s {
			return l, true
		}
	}
	return "", false
}

// NegotiateLocale picks the UI language: the visitor's explicit choice (cookie)
// first, then the browser's Accept-Language, then zh-CN.
func NegotiateLocale(choice, acceptLanguage string) Locale {
	if l, ok := ParseLocale(choice); ok {
		return l
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return ZhCN
	}
	matcher := language.NewMatcher([]language.Tag{language.SimplifiedChinese, language.English})
	_, idx, conf := matcher.Match(tags...)
	if conf == language.No {
		return ZhCN
	}
	return Locales()[idx]
}

// displayZone is China Standard Time: the product's users are there, and a
// fixed zone needs no tzdata in the container.
var displayZone = time.FixedZone("CST", 8*3600)

// FormatTime shows a moment as "2006-01-02 15:04" in China Standard Time.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(displayZone).Format("2006-01-02 15:04")
}

// FormatDate shows a day as "2006-01-02".
func FormatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(displayZone).Format("2006-01-02")
}
