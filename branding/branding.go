// Package branding is what makes a tenant's or a client's pages look like
// theirs without letting them put anything active on a page: colours that
// are only "#rrggbb" and readable (WCAG 2.2 §1.4.3), links that are only
// https or mailto, and logos decoded from PNG, JPEG or GIF and re-encoded
// as a small PNG (no SVG, no scripts, no decompression bombs), stored by
// the hash of their content in a record set every instance reads.
package branding

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// MinContrast is the contrast the white text of a button needs against a
// brand colour, and a link colour against the white page: WCAG 2.2 §1.4.3
// (contrast minimum, normal text).
const MinContrast = 4.5

// White is the page's card and the buttons' text colour.
const White = "#ffffff"

// ErrColor marks a colour that is not "#rrggbb".
var ErrColor = errors.New("branding: colour must be #rrggbb")

// ParseColor returns the red, green and blue of "#rrggbb" (either case).
func ParseColor(s string) ([3]uint8, error) {
	var rgb [3]uint8
	if len(s) != 7 || s[0] != '#' {
		return rgb, fmt.Errorf("%w: %q", ErrColor, s)
	}
	for i := range 3 {
		v, err := strconv.ParseUint(s[1+2*i:3+2*i], 16, 8)
		if err != nil {
			return rgb, fmt.Errorf("%w: %q", ErrColor, s)
		}
		rgb[i] = uint8(v)
	}
	return rgb, nil
}

// ValidColor reports whether s is "#rrggbb".
func ValidColor(s string) bool {
	_, err := ParseColor(s)
	return err == nil
}

// luminance is the relative luminance of rgb (WCAG 2.2, definition of
// relative luminance).
func luminance(rgb [3]uint8) float64 {
	var l [3]float64
	for i, v := range rgb {
		c := float64(v) / 255
		if c <= 0.04045 {
			l[i] = c / 12.92
		} else {
			l[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
}

// Contrast is the contrast ratio of two "#rrggbb" colours, from 1 to 21
// (WCAG 2.2, definition of contrast ratio).
func Contrast(a, b string) (float64, error) {
	ca, err := ParseColor(a)
	if err != nil {
		return 0, err
	}
	cb, err := ParseColor(b)
	if err != nil {
		return 0, err
	}
	la, lb := luminance(ca), luminance(cb)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05), nil
}

// CheckColor says what is wrong with a brand colour, or nil: it must be
// "#rrggbb" and give white text at least MinContrast.
func CheckColor(s string) error {
	r, err := Contrast(s, White)
	if err != nil {
		return err
	}
	// Rounded down to two places, so 4.499 is not shown as a passing 4.50.
	if r < MinContrast {
		return fmt.Errorf("%s has a contrast of %.2f:1 against white, below the %.1f:1 WCAG 2.2 §1.4.3 asks of text "+
			"(the white text of buttons, links on the white page): choose a darker colour", s, math.Floor(r*100)/100, MinContrast)
	}
	return nil
}

// CheckLogoURL says what is wrong with a logo address, or nil: an absolute
// https URL without user information.
func CheckLogoURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return fmt.Errorf("%q: want an absolute https URL without user information", s)
	}
	return nil
}

// CheckSupportURL says what is wrong with a support link, or nil: an
// absolute https URL without user information, or mailto: with an address.
func CheckSupportURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
	case u.Scheme == "https" && u.Host != "" && u.User == nil:
		return nil
	case u.Scheme == "mailto" && u.Opaque != "" && strings.Contains(u.Opaque, "@") && !strings.ContainsAny(u.Opaque, " <>\"\r\n"):
		return nil
	}
	return fmt.Errorf("%q: want an https URL or mailto:address", s)
}
