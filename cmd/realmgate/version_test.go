package main

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion_FromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/realmgate/realmgate", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "a8ae3f6"}, {Key: "vcs.time", Value: "2026-05-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"}}}
	for _, tc := range []struct {
		name     string
		override string
		bi       *debug.BuildInfo
		ok       bool
		want     string
	}{
		{"module version and revision", "", bi, true, "realmgate v1.4.0 (a8ae3f6+dirty, 2026-05-01T10:00:00Z) go1.26.8"},
		{"ldflags override", "v9.9.9", bi, true, "realmgate v9.9.9 (a8ae3f6+dirty, 2026-05-01T10:00:00Z) go1.26.8"},
		{"work tree build", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true, "realmgate (devel) go1.26.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := readVersion(tc.override, tc.bi, tc.ok).String(); got != tc.want {
				t.Errorf("readVersion(%q) = %q, want %q", tc.override, got, tc.want)
			}
		})
	}
}

func TestVersion_Command(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "realmgate ") {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q; want 0 and a line starting \"realmgate \"", args, code, out.String(), errb.String())
		}
	}
}
