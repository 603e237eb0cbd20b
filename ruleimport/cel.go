package ruleimport

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// quote writes s as a CEL string literal.
func quote(s string) string { return strconv.Quote(s) }

// scratchPrefix starts the names of the claims that hold AD FS's input
// claim set while the rules run; the last imported rule removes them.
const scratchPrefix = "adfs:"

// scratch is the claim holding the input claim set's values of a type.
func scratch(claimType string) string { return scratchPrefix + claimType }

// inputList is the CEL list of the input claim set's values of a type.
func inputList(claimType string) string {
	return fmt.Sprintf("get(claims, %s, [])", quote(scratch(claimType)))
}

// sep joins the values of a cartesian product into one string and back
// (CEL has no flatten): NUL, which no SAML attribute value can hold.
const sep = `"\u0000"`

// checkRegex checks a .NET regular expression the way RE2 (CEL's matches
// and realmgate's regexReplace) will read it.
func checkRegex(pattern string) error {
	if _, err := regexp.Compile(pattern); err != nil {
		msg := err.Error()
		if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "error parsing regexp") {
			msg = msg[i+2:]
		}
		hint := "realmgate's regular expressions are RE2"
		switch {
		case strings.Contains(pattern, "(?=") || strings.Contains(pattern, "(?!") ||
			strings.Contains(pattern, "(?<=") || strings.Contains(pattern, "(?<!"):
			hint = "RE2 has no lookahead or lookbehind: match the text and capture what to keep instead"
		case regexp.MustCompile(`\\[1-9]|\\k<`).MatchString(pattern):
			hint = "RE2 has no backreferences"
		}
		return &regexError{msg: msg, hint: hint}
	}
	return nil
}

type regexError struct{ msg, hint string }

func (e *regexError) Error() string { return e.msg }

// replacement translates a .NET regex replacement pattern into Go's:
// $1 before a letter or digit becomes ${1} (Go would read $1x as the
// group named "1x"), $& (the whole match) becomes ${0}; $`, $', $+ and $_
// have no Go equivalent.
func replacement(r string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(r); i++ {
		c := r[i]
		if c != '$' || i+1 == len(r) {
			b.WriteByte(c)
			continue
		}
		n := r[i+1]
		switch {
		case n == '$':
			b.WriteString("$$")
			i++
		case n == '&':
			b.WriteString("${0}")
			i++
		case n == '{':
			j := strings.IndexByte(r[i:], '}')
			if j < 0 {
				b.WriteString("$$")
				continue
			}
			b.WriteString(r[i : i+j+1])
			i += j
		case n >= '0' && n <= '9':
			j := i + 1
			for j < len(r) && r[j] >= '0' && r[j] <= '9' {
				j++
			}
			b.WriteString("${" + r[i+1:j] + "}")
			i = j - 1
		case n == '`' || n == '\'' || n == '+' || n == '_':
			return "", fmt.Errorf("the substitution $%c has no RE2 equivalent", n)
		default:
			// .NET keeps a $ that starts no substitution; Go would read
			// $name as a group: escape it.
			b.WriteString("$$")
		}
	}
	return b.String(), nil
}
