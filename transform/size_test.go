package transform

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestJSONSize_Overestimates: the output-size guard never under-estimates
// what encoding/json writes, so a policy cannot slip past the 64 KiB cap
// with text that grows when escaped, and stays within 6x for plain text.
func TestJSONSize_Overestimates(t *testing.T) {
	tests := []struct {
		name string
		v    any
	}{
		{"ascii", "alice@contoso.com"},
		{"empty", ""},
		{"escapes", `"quoted" \ back <b>&amp;</b>` + "\n\t\x00\x1f"},
		{"utf8", "Zoë Åström 山田太郎 🙂"},
		{"invalid utf8", "a\xff\xfeb\xc3"},
		{"html", strings.Repeat("<&>", 100)},
		{"list", []any{"a", int64(-12345), uint64(7), 3.25, true, nil}},
		{"map", map[string]any{"k\"ey": []any{"v<1>", map[string]any{"n": "é"}}, "t": time.Unix(1e9, 0).UTC()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			got := jsonSize(tc.v, 0)
			if got < len(b) {
				t.Errorf("jsonSize(%q) = %d, below the %d bytes json.Marshal writes", b, got, len(b))
			}
			if s, ok := tc.v.(string); ok && got > 6*len(b)+2 {
				t.Errorf("strSize(%q) = %d, more than 6x the encoded %d bytes", s, got, len(b))
			}
		})
	}
}
