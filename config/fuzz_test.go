package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/realmgate/realmgate/config"
	_ "github.com/realmgate/realmgate/idp/builtin"
)

// parseBudget bounds one Parse of at most 1 MiB: a hostile file must not
// stall a deploy or check-config.
const parseBudget = 5 * time.Second

// FuzzParse feeds arbitrary documents to Parse, seeded with the shipped
// example and development configurations and with hostile YAML (alias
// bombs, deep nesting, tags, merge keys, ${VAR} references whose values
// look like YAML). Parse must never panic and must answer either a
// configuration that validates again unchanged, or a *ValidationError with
// at least one problem; an expanded variable must never add structure.
//
//	go test ./config -run '^$' -fuzz FuzzParse -fuzztime 10m
func FuzzParse(f *testing.F) {
	for _, p := range []string{
		filepath.Join("..", "..", "shared", "realmgate.example.yaml"),
		filepath.Join("..", "cmd", "realmgate", "dev.yaml"),
	} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join("..", "testdata", "config", "*.yaml")); len(matches) > 0 {
		for _, p := range matches[:min(len(matches), 20)] {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	bomb := "a: &a [x, x, x, x, x, x, x, x, x]\n"
	for c := 'b'; c <= 'j'; c++ {
		prev := string(c - 1)
		bomb += string(c) + ": &" + string(c) + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
	}
	for _, s := range []string{
		"", "---\n", "issuer: ${ISSUER}\n", "issuer: $${NOT}\n", "issuer: ${UNSET_X}\n", "issuer: ${INJECT}\nstore: {type: memory}\n",
		"issuer: https://login.example.com\ntenants:\n  - id: a\n    providers:\n      - {id: p, type: oidc, issuer: ${ISSUER}, client_id: c, client_secret: ${INJECT}}\n",
		bomb, strings.Repeat("[", 200) + strings.Repeat("]", 200), "issuer: !!binary aGVsbG8=\n", "<<: {issuer: x}\n",
		"tenants: [{id: a, domains: [\"*.\", \"xn--\", \"..\"]}]\n", "clients: [{id: c, redirect_uris: [\"http://[::1]:0/%zz\"]}]\n",
		"keys: {rotate_every: 1e309h}\nsession: {lifetime: -5s}\n", "\xff\xfe: \x00\n", "? [a, b]\n: c\n",
	} {
		f.Add([]byte(s))
	}
	env := map[string]string{"ISSUER": "https://login.example.com", "INJECT": "x\nstore: {type: redis}\n- [&a, *a]"}
	// Every variable is set (the shipped files name several) but UNSET_*.
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return "value-of-" + k, !strings.HasPrefix(k, "UNSET_")
	}
	if b, err := os.ReadFile(filepath.Join("..", "testdata", "config", "realmgate.example.yaml")); err != nil {
		f.Fatal(err)
	} else if _, err := Parse("", b, lookup); err != nil {
		f.Fatalf("the example configuration does not parse, so no seed reaches the accepting path: %v", err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		var c *Config
		var err error
		done := make(chan struct{})
		go func() { defer close(done); c, err = Parse("", data, lookup) }()
		select {
		case <-done:
		case <-time.After(parseBudget):
			t.Fatalf("Parse took more than %s on %d bytes: %q", parseBudget, len(data), data)
		}
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("Parse error %T %v is not a *ValidationError with problems", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a configuration that Validate then refuses: %v", err)
		}
		if strings.Contains(c.Issuer, "\n") && !strings.Contains(string(data), "\\n") && !strings.Contains(string(data), "${") {
			t.Fatalf("issuer %q holds a line break the document did not", c.Issuer)
		}
		if c.Store.Type == StoreRedis && !strings.Contains(string(data), "redis") {
			t.Fatalf("store type redis came from an expanded variable, not the document")
		}
	})
}
