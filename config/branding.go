package config

import (
	"github.com/realmgate/realmgate/branding"
)

// Branding is how a tenant's or a client's pages look (discovery, choice,
// error, consent, device and setup pages): a name, a logo, two colours and
// a support link. A client's branding wins over its users' tenant's on the
// pages that know the client; without either, pages have realmgate's look.
// No HTML or CSS text is taken: colours are "#rrggbb" only, names and
// links are escaped, and logos are re-encoded (docs/branding.md).
type Branding struct {
	// DisplayName is the name shown at the top of the pages and the logo's
	// alternative text. Default: the tenant's name or the client's
	// client_name.
	DisplayName string `yaml:"display_name,omitempty" json:"display_name,omitempty"`
	// LogoURL is an https address of a PNG, JPEG or GIF logo (at most 512
	// KiB and 4096x4096 pixels): fetched once when the configuration is
	// applied, through the outbound policy (SECURITY S70), scaled down to
	// at most 256x256, re-encoded as PNG, stored, and served from
	// <issuer>/branding/<hash>.png. SVG is refused.
	LogoURL string `yaml:"logo_url,omitempty" json:"logo_url,omitempty"`
	// Logo is the hash of a logo uploaded through the admin API
	// (PUT /v1/tenants/{id}/branding/logo); set by the server. It wins
	// over logo_url.
	Logo string `yaml:"logo,omitempty" json:"logo,omitempty"`
	// PrimaryColor is the colour of buttons, "#rrggbb": their white text
	// needs a contrast of at least 4.5:1 (WCAG 2.2 §1.4.3).
	PrimaryColor string `yaml:"primary_color,omitempty" json:"primary_color,omitempty"`
	// AccentColor is the colour of links on the white page, "#rrggbb", at
	// least 4.5:1 against white like primary_color.
	AccentColor string `yaml:"accent_color,omitempty" json:"accent_color,omitempty"`
	// SupportURL is where the pages' "Contact support" link goes: an https
	// URL or mailto:address.
	SupportURL string `yaml:"support_url,omitempty" json:"support_url,omitempty"`
}

// maxDisplayName bounds a brand's display name, in bytes.
const maxDisplayName = 100

// branding checks a tenants[] or clients[] branding block at path.
func (k *checker) branding(b *Branding, path string) {
	if b == nil {
		return
	}
	path += ".branding"
	if len(b.DisplayName) > maxDisplayName {
		k.add(path+".display_name", "at most %d bytes", maxDisplayName)
	}
	if b.LogoURL != "" {
		if err := branding.CheckLogoURL(b.LogoURL); err != nil {
			k.add(path+".logo_url", "%s", err)
		}
	}
	if b.Logo != "" && !branding.ValidHash(b.Logo) {
		k.add(path+".logo", "%q is not the hash of an uploaded logo: upload logos through the admin API", b.Logo)
	}
	for _, c := range []struct{ name, v string }{{"primary_color", b.PrimaryColor}, {"accent_color", b.AccentColor}} {
		if c.v == "" {
			continue
		}
		if err := branding.CheckColor(c.v); err != nil {
			k.add(path+"."+c.name, "%s", err)
		}
	}
	if b.SupportURL != "" {
		if err := branding.CheckSupportURL(b.SupportURL); err != nil {
			k.add(path+".support_url", "%s", err)
		}
	}
}
