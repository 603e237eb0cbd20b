package saml

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits bound what the connector parses (SECURITY S45). Every check runs
// on bytes or tokens before a DOM is built or a signature is verified.
type Limits struct {
	// MaxEncoded bounds the base64 SAMLResponse form value.
	MaxEncoded int
	// MaxBytes bounds the decoded (and, if deflated, inflated) XML.
	MaxBytes int
	// MaxDepth bounds element nesting.
	MaxDepth int
	// MaxElements bounds the number of elements.
	MaxElements int
	// MaxAttrs bounds the attributes of one element.
	MaxAttrs int

	lenient bool // metadata: comments and CDATA allowed
}

// DefaultLimits fit the largest real responses (Entra and AD FS with
// ~200 group claims and an encrypted assertion stay under 128 KiB) with room.
func DefaultLimits() Limits {
	return Limits{MaxEncoded: 512 << 10, MaxBytes: 384 << 10, MaxDepth: 32, MaxElements: 4000, MaxAttrs: 32}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxEncoded, d.MaxEncoded)
	set(&l.MaxBytes, d.MaxBytes)
	set(&l.MaxDepth, d.MaxDepth)
	set(&l.MaxElements, d.MaxElements)
	set(&l.MaxAttrs, d.MaxAttrs)
	return l
}

// Errors of the pre-parse checks.
var (
	// ErrTooLarge means a size, depth or count limit was exceeded (S45).
	ErrTooLarge = errors.New("saml: response exceeds a limit")
	// ErrMalformed means the response is not acceptable XML.
	ErrMalformed = errors.New("saml: malformed response")
)

// decodeResponse turns the SAMLResponse form value into XML. The HTTP-POST
// binding carries plain base64 (SAML Bindings §3.5.4); some IdPs deflate it
// anyway, so a value that does not decode to XML is inflated, bounded by
// MaxBytes (a deflate bomb stops there).
func decodeResponse(v string, l Limits) ([]byte, error) {
	if len(v) > l.MaxEncoded {
		return nil, fmt.Errorf("%w: encoded response of %d bytes", ErrTooLarge, len(v))
	}
	// Line breaks are allowed in base64 (RFC 2045 §6.8); nothing else.
	v = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, v)
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %v", ErrMalformed, err)
	}
	if len(b) > l.MaxBytes {
		return nil, fmt.Errorf("%w: response of %d bytes", ErrTooLarge, len(b))
	}
	if t := bytes.TrimLeft(b, " \t\r\n\xef\xbb\xbf"); len(t) > 0 && t[0] == '<' {
		return b, nil
	}
	fr := flate.NewReader(bytes.NewReader(b))
	defer fr.Close()
	out, err := io.ReadAll(io.LimitReader(fr, int64(l.MaxBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: neither XML nor DEFLATE: %v", ErrMalformed, err)
	}
	if len(out) > l.MaxBytes {
		return nil, fmt.Errorf("%w: inflated response exceeds %d bytes", ErrTooLarge, l.MaxBytes)
	}
	return out, nil
}

// scanXML streams the tokens of b and refuses, before any tree is built:
// documents over the size, depth, element or attribute limits; DTDs and
// other directives (entity expansion); comments (they split text nodes in
// signed content without breaking the signature); processing instructions
// other than the XML declaration; and anything not well-formed.
func scanXML(b []byte, l Limits) error {
	if len(b) > l.MaxBytes {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	// CDATA sections split text nodes like comments do and no IdP we know
	// sends them.
	if !l.lenient && bytes.Contains(b, []byte("<![CDATA[")) {
		return fmt.Errorf("%w: CDATA section", ErrMalformed)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	depth, elems, roots := 0, 0, 0
	first := true
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
			elems++
			if depth > l.MaxDepth {
				return fmt.Errorf("%w: nesting deeper than %d", ErrTooLarge, l.MaxDepth)
			}
			if elems > l.MaxElements {
				return fmt.Errorf("%w: more than %d elements", ErrTooLarge, l.MaxElements)
			}
			if len(t.Attr) > l.MaxAttrs {
				return fmt.Errorf("%w: element %s has more than %d attributes", ErrTooLarge, t.Name.Local, l.MaxAttrs)
			}
		case xml.EndElement:
			depth--
			if depth < 0 {
				return fmt.Errorf("%w: unbalanced end element", ErrMalformed)
			}
		case xml.Directive:
			return fmt.Errorf("%w: DTD or directive", ErrMalformed)
		case xml.Comment:
			if l.lenient {
				break
			}
			return fmt.Errorf("%w: comment", ErrMalformed)
		case xml.ProcInst:
			if !first || t.Target != "xml" {
				return fmt.Errorf("%w: processing instruction", ErrMalformed)
			}
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("%w: text outside the root element", ErrMalformed)
			}
		}
		first = false
	}
	if depth != 0 || roots != 1 {
		return fmt.Errorf("%w: want one root element", ErrMalformed)
	}
	return nil
}

// DecodeMessage decodes a SAML protocol message as a binding carries it
// (base64, inflated when DEFLATE-compressed), within l. Package samlidp,
// realmgate's IdP side, reads the messages of service providers with it,
// under the same rules as responses here (S45).
func DecodeMessage(v string, l Limits) ([]byte, error) { return decodeResponse(v, l.withDefaults()) }

// CheckXML refuses, before any tree is built, XML over l's limits or with
// DTDs, comments, CDATA or processing instructions (scanXML).
func CheckXML(b []byte, l Limits) error { return scanXML(b, l.withDefaults()) }
