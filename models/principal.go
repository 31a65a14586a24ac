package models

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Principal matching (PRODUCT.md rules 1 and 2). An app can be bound to an
// open-platform account only if both are verified, neither belongs to an
// individual, and their principal names are equal after NormalizePrincipal.
// WeChat applies the same rule (89001); OneID checks first so the admin sees
// both names and where they differ.

// IndividualPrincipal is WeChat's principal_name for an account owned by a person.
const IndividualPrincipal = "个人"

// NormalizePrincipal is the comparison form of a principal name: Unicode NFKC
// (full-width （） Ａ and the ideographic space fold to ASCII), zero-width
// characters (U+200B–U+200D, U+2060, U+FEFF) removed, all whitespace removed,
// Latin letters case-folded. Nothing else folds: traditional and simplified
// characters stay different, and so do look-alikes. The original text is what
// OneID stores and shows.
func NormalizePrincipal(s string) string {
	var b strings.Builder
	for _, r := range norm.NFKC.String(s) {
		if keep, ok := principalRune(r); ok {
			b.WriteRune(keep)
		}
	}
	return b.String()
}

// principalRune maps one NFKC rune to its comparison form; ok is false for a
// rune that is dropped.
func principalRune(r rune) (rune, bool) {
	switch {
	case isZeroWidth(r), unicode.IsSpace(r):
		return 0, false
	case r <= unicode.MaxASCII || unicode.Is(unicode.Latin, r):
		return unicode.ToLower(r), true
	}
	return r, true
}

func isZeroWidth(r rune) bool {
	return (r >= 0x200B && r <= 0x200D) || r == 0x2060 || r == 0xFEFF
}

// SamePrincipal reports whether two principal names are equal after normalisation.
func SamePrincipal(a, b string) bool { return NormalizePrincipal(a) == NormalizePrincipal(b) }

// IsIndividualPrincipal reports a principal that is a person (个人), which can
// never be bound.
func IsIndividualPrincipal(s string) bool {
	return NormalizePrincipal(s) == IndividualPrincipal
}

// Principal problems, in the order they are checked.
const (
	PrincipalIndividual     = "individual"      // one side belongs to a person (个人)
	PrincipalAppUnverified  = "app_unverified"  // the app is not verified
	PrincipalOpenUnverified = "open_unverified" // the open-platform account is not verified
	PrincipalMismatch       = "mismatch"        // the names differ after normalisation
)

// PrincipalParty is one side of a binding as the rule sees it.
type PrincipalParty struct {
	Principal string
	Verified  bool
}

// CheckPrincipals applies rule 1 to an app and the open-platform account it
// would join; it returns "" when the binding may go ahead, else one of the
// Principal* problems.
func CheckPrincipals(app, open PrincipalParty) string {
	switch {
	case IsIndividualPrincipal(app.Principal) || IsIndividualPrincipal(open.Principal):
		return PrincipalIndividual
	case !app.Verified:
		return PrincipalAppUnverified
	case !open.Verified:
		return PrincipalOpenUnverified
	case !SamePrincipal(app.Principal, open.Principal):
		return PrincipalMismatch
	}
	return ""
}

// DiffSpan is a run of a principal name that is either shared with the other
// name or differs from it.
type DiffSpan struct {
	Text    string
	Differs bool
}

// DiffPrincipals marks, in each original name, the characters that differ from
// the other name after normalisation: a longest common subsequence of the
// normalised characters is shared, everything else differs. Characters that
// normalisation drops (spaces, zero-width) never count as differing.
func DiffPrincipals(a, b string) (left, right []DiffSpan) {
	ua, ub := principalUnits(a), principalUnits(b)
	ka, kb := commonUnits(ua, ub)
	return spans(ua, ka), spans(ub, kb)
}

// principalUnit is one original character and its comparison form ("" when dropped).
type principalUnit struct {
	orig string
	norm string
}

func principalUnits(s string) []principalUnit {
	var out []principalUnit
	for _, r := range s {
		var n strings.Builder
		for _, nr := range norm.NFKC.String(string(r)) {
			if keep, ok := principalRune(nr); ok {
				n.WriteRune(keep)
			}
		}
		out = append(out, principalUnit{orig: string(r), norm: n.String()})
	}
	return out
}

// commonUnits marks the units of a and b in a longest common subsequence of
// their comparison forms. Names are at most 200 characters, so the quadratic
// table is small.
func commonUnits(a, b []principalUnit) (inA, inB []bool) {
	inA, inB = make([]bool, len(a)), make([]bool, len(b))
	var ia, ib []int // indexes of units that take part in the comparison
	for i, u := range a {
		if u.norm != "" {
			ia = append(ia, i)
		}
	}
	for i, u := range b {
		if u.norm != "" {
			ib = append(ib, i)
		}
	}
	n, m := len(ia), len(ib)
	l := make([][]int, n+1)
	for i := range l {
		l[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[ia[i]].norm == b[ib[j]].norm {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case a[ia[i]].norm == b[ib[j]].norm:
			inA[ia[i]], inB[ib[j]] = true, true
			i++
			j++
		case l[i+1][j] >= l[i][j+1]:
			i++
		default:
			j++
		}
	}
	// Dropped characters (spaces, zero-width) never differ.
	for i, u := range a {
		if u.norm == "" {
			inA[i] = true
		}
	}
	for i, u := range b {
		if u.norm == "" {
			inB[i] = true
		}
	}
	return inA, inB
}

func spans(units []principalUnit, shared []bool) []DiffSpan {
	var out []DiffSpan
	for i, u := range units {
		differs := !shared[i]
		if len(out) > 0 && out[len(out)-1].Differs == differs {
			out[len(out)-1].Text += u.orig
			continue
		}
		out = append(out, DiffSpan{Text: u.orig, Differs: differs})
	}
	return out
}
