package models_test

import (
	"strings"
	"testing"

	"oneid/models"
)

func TestNormalizePrincipal(t *testing.T) {
	cases := []struct {
		name, a, b string
		same       bool
	}{
		{"Identical", "腾讯科技（深圳）有限公司", "腾讯科技（深圳）有限公司", true},
		{"FullWidthParenthesesFold", "腾讯科技（深圳）有限公司", "腾讯科技(深圳)有限公司", true},
		{"FullWidthLettersFold", "ＡＢＣ科技有限公司", "ABC科技有限公司", true},
		{"FullWidthDigitsFold", "第１分公司", "第1分公司", true},
		{"IdeographicSpaceRemoved", "腾讯科技　有限公司", "腾讯科技有限公司", true},
		{"AsciiSpacesRemoved", " 腾讯 科技 有限公司 ", "腾讯科技有限公司", true},
		{"TabsAndNewlinesRemoved", "腾讯\t科技\n有限公司", "腾讯科技有限公司", true},
		{"NoBreakSpaceRemoved", "Acme\u00a0Ltd", "AcmeLtd", true},
		{"ZeroWidthSpaceRemoved", "腾讯\u200b科技有限公司", "腾讯科技有限公司", true},
		{"ZeroWidthJoinersRemoved", "腾\u200c讯\u200d科技\u2060有限公司", "腾讯科技有限公司", true},
		{"ByteOrderMarkRemoved", "\ufeff腾讯科技有限公司", "腾讯科技有限公司", true},
		{"LatinCaseFolds", "ACME Technology Co., Ltd.", "acme technology co., ltd.", true},
		{"FullWidthUpperFoldsToLower", "Ａcme", "acme", true},
		{"TraditionalDiffersFromSimplified", "騰訊科技有限公司", "腾讯科技有限公司", false},
		{"CyrillicLookAlikeDiffers", "Acme", "Аcme", false},
		{"GreekLookAlikeDiffers", "ABC", "ΑBC", false},
		{"FullStopsAreNotFolded", "Acme Co.", "Acme Co", false},
		{"DifferentCity", "腾讯科技（深圳）有限公司", "腾讯科技（北京）有限公司", false},
		{"MissingCharacter", "腾讯科技有限公司", "腾讯科技公司", false},
		{"BothEmpty", "", "  ", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := models.SamePrincipal(c.a, c.b); got != c.same {
				t.Errorf("SamePrincipal(%q, %q) = %v (%q vs %q)", c.a, c.b, got, models.NormalizePrincipal(c.a), models.NormalizePrincipal(c.b))
			}
		})
	}
}

func TestNormalizePrincipalForms(t *testing.T) {
	cases := map[string]string{
		"腾讯科技（深圳）有限公司":     "腾讯科技(深圳)有限公司",
		"ＡＣＭＥ　Ｌｔｄ":         "acmeltd",
		"\u200bAcme\ufeff": "acme",
		"Ÿ":                "ÿ",
		"騰訊":               "騰訊",
	}
	for in, want := range cases {
		if got := models.NormalizePrincipal(in); got != want {
			t.Errorf("NormalizePrincipal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckPrincipals(t *testing.T) {
	const p = "示例科技（上海）有限公司"
	cases := []struct {
		name      string
		app, open models.PrincipalParty
		want      string
	}{
		{"SamePrincipalBothVerified", models.PrincipalParty{p, true}, models.PrincipalParty{"示例科技(上海)有限公司", true}, ""},
		{"IndividualApp", models.PrincipalParty{"个人", true}, models.PrincipalParty{p, true}, models.PrincipalIndividual},
		{"IndividualOpenAccount", models.PrincipalParty{p, true}, models.PrincipalParty{" 个人 ", true}, models.PrincipalIndividual},
		{"IndividualBeforeUnverified", models.PrincipalParty{"个人", false}, models.PrincipalParty{"个人", false}, models.PrincipalIndividual},
		{"AppUnverified", models.PrincipalParty{p, false}, models.PrincipalParty{p, true}, models.PrincipalAppUnverified},
		{"OpenUnverified", models.PrincipalParty{p, true}, models.PrincipalParty{p, false}, models.PrincipalOpenUnverified},
		{"Mismatch", models.PrincipalParty{p, true}, models.PrincipalParty{"示例科技（北京）有限公司", true}, models.PrincipalMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := models.CheckPrincipals(c.app, c.open); got != c.want {
				t.Errorf("CheckPrincipals = %q, want %q", got, c.want)
			}
		})
	}
}

// render shows spans with the differing runs in brackets.
func render(spans []models.DiffSpan) string {
	var b strings.Builder
	for _, s := range spans {
		if s.Differs {
			b.WriteString("[" + s.Text + "]")
		} else {
			b.WriteString(s.Text)
		}
	}
	return b.String()
}

func TestDiffPrincipals(t *testing.T) {
	cases := []struct {
		name, a, b string
		wantA      string
		wantB      string
	}{
		{"City", "腾讯科技（深圳）有限公司", "腾讯科技（北京）有限公司", "腾讯科技（[深圳]）有限公司", "腾讯科技（[北京]）有限公司"},
		{"TraditionalCharacters", "騰訊科技有限公司", "腾讯科技有限公司", "[騰訊]科技有限公司", "[腾讯]科技有限公司"},
		{"FoldedCharactersAreShared", "示例科技（上海）有限公司", "示例科技(上海)有限公司 分公司", "示例科技（上海）有限公司", "示例科技(上海)有限公司 [分公司]"},
		{"LookAlike", "Acme Ltd", "Аcme Ltd", "[A]cme Ltd", "[А]cme Ltd"},
		{"ZeroWidthNeverDiffers", "Ac\u200bme", "Acme Co", "Ac\u200bme", "Acme [Co]"},
		{"Equal", "ACME", "acme", "ACME", "acme"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, r := models.DiffPrincipals(c.a, c.b)
			if got := render(l); got != c.wantA {
				t.Errorf("left = %q, want %q", got, c.wantA)
			}
			if got := render(r); got != c.wantB {
				t.Errorf("right = %q, want %q", got, c.wantB)
			}
		})
	}
}
