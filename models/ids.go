package models

import (
	"fmt"
	"strings"
	"unicode"
)

// MaxWeChatIDLen is the longest OpenID or UnionID OneID accepts. WeChat's are 28
// characters; the columns hold 64.
const MaxWeChatIDLen = 64

// blockedIDs are values that buggy clients send in place of a missing id. Taken
// as ids, every user of such a client would collapse into one customer.
var blockedIDs = map[string]bool{"null": true, "undefined": true, "0": true, "nil": true, "none": true, "(null)": true}

// ValidWeChatID reports whether s can be an OpenID or a UnionID: not empty, no
// whitespace or control characters, not a placeholder such as "null",
// "undefined" or "0" (in any letter case), and at most 64 bytes.
func ValidWeChatID(s string) bool { return wechatIDProblem(s) == "" }

// wechatIDProblem says why s is not an id, or returns "".
func wechatIDProblem(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "is empty"
	case len(s) > MaxWeChatIDLen:
		return fmt.Sprintf("is %d bytes long (at most %d)", len(s), MaxWeChatIDLen)
	case blockedIDs[strings.ToLower(s)]:
		return "is a placeholder, not an id"
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return "contains whitespace or control characters"
		}
	}
	return ""
}

// quoteID quotes an id for an error message, shortened so a 10 kB value does
// not end up in a log line.
func quoteID(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q…", s[:40])
	}
	return fmt.Sprintf("%q", s)
}
