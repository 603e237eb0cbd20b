// Package locale gives every page and message of realmgate in the reader's
// language: it negotiates a language from the Accept-Language header and a
// tenant's default (golang.org/x/text/language), and looks messages up in
// catalogs kept as files, one per language (catalog/*.json), through
// golang.org/x/text/message.
//
// A message's key is its English text, as gettext does: code and templates
// read in English, and a missing translation falls back to it.
package locale

import (
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// Supported are the languages realmgate's pages are written in, English
// first: the language used when nothing else matches.
var Supported = []language.Tag{language.English, language.German, language.French, language.Spanish, language.Japanese}

//go:embed catalog/*.json
var files embed.FS

// Catalog is the messages of every supported language.
type Catalog struct {
	builder *catalog.Builder
	// keys are the English messages, the set every language must have.
	keys map[string]bool
	// byLang holds each language's translations by key.
	byLang map[language.Tag]map[string]string
	// printers are the supported languages' printers, made once.
	printers map[language.Tag]*Printer
}

// file is the shape of a catalog file: a message's key is its English
// text; the value its translation (fmt verbs like %s kept in order).
type file struct {
	// Language is the file's BCP 47 tag.
	Language string `json:"language"`
	// Messages maps each English message to its translation.
	Messages map[string]string `json:"messages"`
}

var (
	defaultOnce sync.Once
	defaultCat  *Catalog
	defaultErr  error
)

// Default returns the catalogs built into realmgate. It panics if they do
// not load: they are part of the binary and a test loads them.
func Default() *Catalog {
	defaultOnce.Do(func() { defaultCat, defaultErr = Load() })
	if defaultErr != nil {
		panic(defaultErr)
	}
	return defaultCat
}

// Load reads the built-in catalog files.
func Load() (*Catalog, error) {
	c := &Catalog{builder: catalog.NewBuilder(catalog.Fallback(language.English)),
		keys: map[string]bool{}, byLang: map[language.Tag]map[string]string{}}
	entries, err := files.ReadDir("catalog")
	if err != nil {
		return nil, fmt.Errorf("locale: read catalogs: %w", err)
	}
	for _, e := range entries {
		raw, err := files.ReadFile(path.Join("catalog", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("locale: read %s: %w", e.Name(), err)
		}
		var f file
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, fmt.Errorf("locale: parse %s: %w", e.Name(), err)
		}
		tag, err := language.Parse(f.Language)
		if err != nil {
			return nil, fmt.Errorf("locale: %s: language %q: %w", e.Name(), f.Language, err)
		}
		c.byLang[tag] = f.Messages
		for k, v := range f.Messages {
			if tag == language.English {
				c.keys[k] = true
			}
			if err := c.builder.SetString(tag, k, v); err != nil {
				return nil, fmt.Errorf("locale: %s: message %q: %w", e.Name(), k, err)
			}
		}
	}
	if _, ok := c.byLang[language.English]; !ok {
		return nil, fmt.Errorf("locale: no English catalog")
	}
	c.printers = make(map[language.Tag]*Printer, len(Supported))
	for _, t := range Supported {
		c.printers[t] = c.newPrinter(t)
	}
	return c, nil
}

// Keys returns every message key (the English texts), sorted.
func (c *Catalog) Keys() []string {
	out := make([]string, 0, len(c.keys))
	for k := range c.keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Has reports whether key is a message of the catalog.
func (c *Catalog) Has(key string) bool { return c.keys[key] }

// Translations returns the messages of one language by key (nil for a
// language without a catalog).
func (c *Catalog) Translations(tag language.Tag) map[string]string { return c.byLang[tag] }

// supportedMatcher matches a tenant's default language to a supported one;
// made once (building a matcher is not cheap, and pages ask per request).
var supportedMatcher = language.NewMatcher(Supported)

// Negotiator picks the language of a page.
type Negotiator struct {
	mu       sync.Mutex
	matchers map[language.Tag]language.Matcher
}

// Match returns the supported language that best fits acceptLanguage (an
// Accept-Language header, RFC 9110 §12.5.4); when none fits, fallback
// (a tenant's default language, may be empty), else English.
func (n *Negotiator) Match(acceptLanguage, fallback string) language.Tag {
	def := language.English
	if fallback != "" {
		if t, err := language.Parse(fallback); err == nil {
			if s, _, c := supportedMatcher.Match(t); c != language.No {
				def = base(s)
			}
		}
	}
	if acceptLanguage == "" {
		return def
	}
	prefs, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(prefs) == 0 {
		return def
	}
	t, _, c := n.matcher(def).Match(prefs...)
	if c == language.No {
		return def
	}
	return base(t)
}

// matcher returns a matcher over Supported with def first: the matcher
// answers its first tag when nothing matches.
func (n *Negotiator) matcher(def language.Tag) language.Matcher {
	n.mu.Lock()
	defer n.mu.Unlock()
	if m, ok := n.matchers[def]; ok {
		return m
	}
	tags := []language.Tag{def}
	for _, t := range Supported {
		if t != def {
			tags = append(tags, t)
		}
	}
	m := language.NewMatcher(tags)
	if n.matchers == nil {
		n.matchers = map[language.Tag]language.Matcher{}
	}
	n.matchers[def] = m
	return m
}

// base maps a matched tag (which may carry -u-rg extensions or a region
// from the request) to the supported language it stands for.
func base(t language.Tag) language.Tag {
	b, _ := t.Base()
	for _, s := range Supported {
		if sb, _ := s.Base(); sb == b {
			return s
		}
	}
	return language.English
}

// Printer gives the messages of one language.
type Printer struct {
	tag language.Tag
	cat *Catalog
	p   *message.Printer
}

// Printer returns the printer of tag.
func (c *Catalog) Printer(tag language.Tag) *Printer {
	if p, ok := c.printers[tag]; ok {
		return p
	}
	return c.newPrinter(tag)
}

func (c *Catalog) newPrinter(tag language.Tag) *Printer {
	return &Printer{tag: tag, cat: c, p: message.NewPrinter(tag, message.Catalog(c.builder))}
}

// Lang is the printer's language as a BCP 47 tag, for <html lang>.
func (p *Printer) Lang() string {
	if p == nil {
		return "en"
	}
	return p.tag.String()
}

// T translates key. A key that is not a message of the catalog (text from
// configuration, an error from a peer) is returned as it is.
func (p *Printer) T(key string) string {
	if p == nil || !p.cat.keys[key] {
		return key
	}
	return p.p.Sprintf(key)
}

// Tf translates format, a message of the catalog with fmt verbs, and
// formats args into it.
func (p *Printer) Tf(format string, args ...any) string {
	if p == nil || !p.cat.keys[format] {
		return fmt.Sprintf(format, args...)
	}
	return p.p.Sprintf(format, args...)
}

// Verbs returns the fmt verbs of a message in order (%s, %d, %v): a
// translation must keep them.
func Verbs(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 >= len(s) {
			continue
		}
		j := i + 1
		for j < len(s) && strings.IndexByte("+-# 0123456789.[]", s[j]) >= 0 {
			j++
		}
		if j < len(s) {
			if s[j] != '%' {
				out = append(out, s[i:j+1])
			}
			i = j
		}
	}
	return out
}

// IsSupported reports whether name is exactly one of the supported
// languages' tags ("de"), as a tenant's default language must be.
func IsSupported(name string) bool {
	for _, s := range Supported {
		if s.String() == name {
			return true
		}
	}
	return false
}

// SupportedNames are the supported languages' tags, English first.
func SupportedNames() []string {
	out := make([]string, len(Supported))
	for i, s := range Supported {
		out[i] = s.String()
	}
	return out
}
