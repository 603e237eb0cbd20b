package ruleimport

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pos is a position in the AD FS rule text: 1-based line and column (in
// characters, so the column matches what an editor shows).
type Pos struct {
	Line, Col int
}

// String is "line:column".
func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// tokKind is the kind of a token of the claim rule language.
type tokKind int

const (
	tokEOF      tokKind = iota
	tokIdent            // c, c1, issue, Type, Value, EXISTS, ...
	tokString           // "..." (Text is the value, with \" unescaped)
	tokNumber           // 0, 12 (COUNT comparisons)
	tokAnnot            // @RuleName, @RuleTemplate (Text is the name without @)
	tokLBracket         // [
	tokRBracket         // ]
	tokLParen           // (
	tokRParen           // )
	tokComma            // ,
	tokColon            // :
	tokSemi             // ;
	tokDot              // .
	tokPlus             // +
	tokAnd              // &&
	tokImply            // =>
	tokAssign           // =
	tokEq               // ==
	tokNeq              // !=
	tokMatch            // =~
	tokNotMatch         // !~
	tokLt               // <
	tokLe               // <=
	tokGt               // >
	tokGe               // >=
)

var tokNames = map[tokKind]string{
	tokEOF: "end of input", tokIdent: "identifier", tokString: "string", tokNumber: "number",
	tokAnnot: "annotation", tokLBracket: "[", tokRBracket: "]", tokLParen: "(", tokRParen: ")",
	tokComma: ",", tokColon: ":", tokSemi: ";", tokDot: ".", tokPlus: "+", tokAnd: "&&",
	tokImply: "=>", tokAssign: "=", tokEq: "==", tokNeq: "!=", tokMatch: "=~", tokNotMatch: "!~",
	tokLt: "<", tokLe: "<=", tokGt: ">", tokGe: ">=",
}

func (k tokKind) String() string { return tokNames[k] }

// token is one lexeme.
type token struct {
	kind tokKind
	text string
	pos  Pos
	// off and end are the token's byte offsets in the input.
	off, end int
}

func (t token) describe() string {
	switch t.kind {
	case tokIdent, tokNumber:
		return fmt.Sprintf("%s %q", t.kind, t.text)
	case tokString:
		return fmt.Sprintf("string %q", t.text)
	case tokAnnot:
		return "@" + t.text
	}
	return fmt.Sprintf("%q", t.kind.String())
}

// maxProblems bounds the problems one import reports: past it, the input
// is not worth reading on.
const maxProblems = 200

// maxInputBytes bounds the rule text one import reads.
const maxInputBytes = 4 << 20

// lexer turns rule text into tokens. Errors are collected as Problems; the
// lexer goes on after one so that the parser can report the rest.
type lexer struct {
	src  string
	off  int
	line int
	col  int
	errs []Problem
	// errOffs are the byte offsets the errors were found at.
	errOffs []int
}

func newLexer(src string) *lexer { return &lexer{src: src, line: 1, col: 1} }

func (l *lexer) pos() Pos { return Pos{l.line, l.col} }

func (l *lexer) fail(p Pos, msg, hint string) {
	if len(l.errs) >= maxProblems {
		return
	}
	l.errs = append(l.errs, Problem{Pos: p, Msg: msg, Hint: hint})
	l.errOffs = append(l.errOffs, l.off)
}

// next reads one rune and advances the position.
func (l *lexer) next() rune {
	r, n := utf8.DecodeRuneInString(l.src[l.off:])
	l.off += n
	if r == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
	return r
}

func (l *lexer) peek() rune {
	if l.off >= len(l.src) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.off:])
	return r
}

func (l *lexer) peek2() rune {
	if l.off >= len(l.src) {
		return -1
	}
	_, n := utf8.DecodeRuneInString(l.src[l.off:])
	if l.off+n >= len(l.src) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.off+n:])
	return r
}

// isQuote reports typographic quotes, which word processors put in rules
// copied from documents (and the AD FS documentation has some).
func isQuote(r rune) bool {
	return r == '\u201c' || r == '\u201d' || r == '\u201e' || r == '\u2033'
}

// all lexes the whole input.
func (l *lexer) all() []token {
	var out []token
	for {
		t := l.token()
		out = append(out, t)
		if t.kind == tokEOF {
			return out
		}
	}
}

func (l *lexer) token() token {
	t := l.scan()
	t.end = l.off
	return t
}

// scan returns the next token, skipping characters that start none.
func (l *lexer) scan() token {
	for {
		if t, ok := l.scan1(); ok {
			return t
		}
	}
}

// scan1 reads one token; ok is false when it skipped a bad character.
func (l *lexer) scan1() (token, bool) {
	for {
		r := l.peek()
		switch {
		case r == -1:
			return token{kind: tokEOF, pos: l.pos(), off: l.off}, true
		case r == '\ufeff' || unicode.IsSpace(r):
			l.next()
			continue
		case r == '/' && l.peek2() == '/':
			// Not AD FS syntax, but harmless: a line comment.
			for l.peek() != -1 && l.peek() != '\n' {
				l.next()
			}
			continue
		case r == '/' && l.peek2() == '*':
			p := l.pos()
			l.next()
			l.next()
			for {
				if l.peek() == -1 {
					l.fail(p, "comment never closed", "close it with */")
					return token{kind: tokEOF, pos: l.pos(), off: l.off}, true
				}
				if l.next() == '*' && l.peek() == '/' {
					l.next()
					break
				}
			}
			continue
		}
		break
	}
	p := l.pos()
	start := l.off
	r := l.next()
	one := func(k tokKind) token { return token{kind: k, text: k.String(), pos: p, off: start} }
	two := func(next rune, k2, k1 tokKind) token {
		if l.peek() == next {
			l.next()
			return one(k2)
		}
		return one(k1)
	}
	switch {
	case r == '[':
		return one(tokLBracket), true
	case r == ']':
		return one(tokRBracket), true
	case r == '(':
		return one(tokLParen), true
	case r == ')':
		return one(tokRParen), true
	case r == ',':
		return one(tokComma), true
	case r == ':':
		return one(tokColon), true
	case r == ';':
		return one(tokSemi), true
	case r == '.':
		return one(tokDot), true
	case r == '+':
		return one(tokPlus), true
	case r == '&':
		if l.peek() == '&' {
			l.next()
			return one(tokAnd), true
		}
		l.fail(p, `"&" alone is not an operator`, `conditions are joined with "&&"`)
		return one(tokAnd), true
	case r == '=':
		switch l.peek() {
		case '>':
			l.next()
			return one(tokImply), true
		case '=':
			l.next()
			return one(tokEq), true
		case '~':
			l.next()
			return one(tokMatch), true
		}
		return one(tokAssign), true
	case r == '!':
		switch l.peek() {
		case '=':
			l.next()
			return one(tokNeq), true
		case '~':
			l.next()
			return one(tokNotMatch), true
		}
		l.fail(p, `"!" alone is not an operator`, `use "!=" or "!~", or NOT EXISTS([...])`)
		return token{}, false
	case r == '<':
		return two('=', tokLe, tokLt), true
	case r == '>':
		return two('=', tokGe, tokGt), true
	case r == '"':
		t := l.str(p)
		t.off = start
		return t, true
	case isQuote(r):
		l.fail(p, fmt.Sprintf("typographic quote %q", r), `strings are delimited by the ASCII double quote "`)
		t := l.strUntil(p, func(r rune) bool { return isQuote(r) || r == '"' })
		t.off = start
		return t, true
	case r == '@':
		var b strings.Builder
		for isIdentRune(l.peek(), b.Len() > 0) {
			b.WriteRune(l.next())
		}
		if b.Len() == 0 {
			l.fail(p, `"@" without an annotation name`, `annotations are @RuleName = "..." and @RuleTemplate = "..."`)
		}
		return token{kind: tokAnnot, text: b.String(), pos: p, off: start}, true
	case r >= '0' && r <= '9':
		var b strings.Builder
		b.WriteRune(r)
		for c := l.peek(); c >= '0' && c <= '9'; c = l.peek() {
			b.WriteRune(l.next())
		}
		return token{kind: tokNumber, text: b.String(), pos: p, off: start}, true
	case isIdentRune(r, false):
		var b strings.Builder
		b.WriteRune(r)
		for isIdentRune(l.peek(), true) {
			b.WriteRune(l.next())
		}
		return token{kind: tokIdent, text: b.String(), pos: p, off: start}, true
	}
	l.fail(p, fmt.Sprintf("unexpected character %q", r), "")
	return token{}, false
}

func isIdentRune(r rune, inside bool) bool {
	return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (inside && r >= '0' && r <= '9')
}

// str reads a string literal after its opening quote. AD FS keeps
// backslashes as they are (regular expressions and DOMAIN\user values pass
// through unchanged): \" stands for a quote inside the string, and a
// backslash pair \\ stays two backslashes (as .NET regular expressions
// want them) without ending the string before a quote.
func (l *lexer) str(p Pos) token {
	return l.strUntil(p, func(r rune) bool { return r == '"' })
}

func (l *lexer) strUntil(p Pos, end func(rune) bool) token {
	var b strings.Builder
	for {
		r := l.peek()
		switch {
		case r == -1:
			l.fail(p, "string never closed", `close it with "`)
			return token{kind: tokString, text: b.String(), pos: p}
		case r == '\\':
			l.next()
			switch c := l.peek(); c {
			case '"':
				l.next()
				b.WriteByte('"')
			case -1:
				b.WriteByte('\\')
			default:
				l.next()
				b.WriteByte('\\')
				b.WriteRune(c)
			}
			continue
		case end(r):
			l.next()
			return token{kind: tokString, text: b.String(), pos: p}
		case r == utf8.RuneError:
			l.fail(l.pos(), "invalid UTF-8 in string", "")
		}
		b.WriteRune(l.next())
	}
}
