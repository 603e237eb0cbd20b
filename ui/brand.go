package ui

import (
	"github.com/realmgate/realmgate/branding"
)

// Brand is how a tenant's or a client's pages look: the frame shows the
// logo (or the name) at the top, sets the colours of buttons and links,
// and adds a support link at the bottom. The zero Brand is realmgate's
// own look. Nothing in it is HTML or CSS text: the frame writes the name
// and links through html/template's escaping and takes a colour only when
// it is "#rrggbb".
type Brand struct {
	// Name is the display name: shown when there is no logo, and the
	// logo's alternative text.
	Name string
	// Logo is the address of the sanitized PNG logo on the page's own
	// origin (<issuer>/branding/<hash>.png); empty: none.
	Logo string
	// PrimaryColor is the buttons' background, "#rrggbb".
	PrimaryColor string
	// AccentColor is the links' colour, "#rrggbb".
	AccentColor string
	// SupportURL is the target of the "Contact support" link: https or
	// mailto.
	SupportURL string
}

// PageBrand returns b: a page's data that embeds or returns a Brand is
// Branded.
func (b Brand) PageBrand() Brand { return b }

// Branded is a page's data that carries a brand; the frame shows the
// default look for data that is not.
type Branded interface {
	PageBrand() Brand
}

// brandOf is the brand the frame shows for a page's data, with every
// colour and link checked again (the frame never trusts its caller with
// CSS or a script URL): nil for the default look.
func brandOf(data any) *Brand {
	bd, ok := data.(Branded)
	if !ok {
		return nil
	}
	b := bd.PageBrand()
	if !branding.ValidColor(b.PrimaryColor) {
		b.PrimaryColor = ""
	}
	if !branding.ValidColor(b.AccentColor) {
		b.AccentColor = ""
	}
	if b.SupportURL != "" && branding.CheckSupportURL(b.SupportURL) != nil {
		b.SupportURL = ""
	}
	if b == (Brand{}) {
		return nil
	}
	return &b
}
