package store_test

import (
	"testing"

	"github.com/realmgate/realmgate/store"
)

func TestParseAuditID(t *testing.T) {
	for _, tc := range []struct {
		id      string
		ms, seq uint64
		ok      bool
	}{
		{"1700000000000-0", 1700000000000, 0, true},
		{"1-2", 1, 2, true},
		{"9999999999999999999-9999999999999999999", 9999999999999999999, 9999999999999999999, true},
		{"", 0, 0, false},
		{"1", 0, 0, false},
		{"1-", 0, 0, false},
		{"-1", 0, 0, false},
		{"1-2-3", 0, 0, false},
		{"+1-2", 0, 0, false},
		{"1-0x2", 0, 0, false},
		{"10000000000000000000-0", 0, 0, false}, // 20 digits
		{"1 -2", 0, 0, false},
		{"１-2", 0, 0, false}, // a full-width digit
	} {
		t.Run(tc.id, func(t *testing.T) {
			ms, seq, ok := store.ParseAuditID(tc.id)
			if ok != tc.ok || ok && (ms != tc.ms || seq != tc.seq) {
				t.Errorf("ParseAuditID(%q) = %d, %d, %v; want %d, %d, %v", tc.id, ms, seq, ok, tc.ms, tc.seq, tc.ok)
			}
		})
	}
}

func TestSessionOfFamily(t *testing.T) {
	for _, tc := range []struct{ family, want string }{
		{"sid1" + store.FamilySeparator + "rand", "sid1"},
		{"sid1" + store.FamilySeparator + "a" + store.FamilySeparator + "b", "sid1"},
		{"plainfamily", ""},
		{store.FamilySeparator + "rand", ""},
	} {
		t.Run(tc.family, func(t *testing.T) {
			if got := store.SessionOfFamily(tc.family); got != tc.want {
				t.Errorf("SessionOfFamily(%q) = %q, want %q", tc.family, got, tc.want)
			}
		})
	}
}
