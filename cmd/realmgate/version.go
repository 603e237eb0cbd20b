package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version overrides the version realmgate reports; set it at link time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/realmgate
//
// Empty, the module version and the VCS revision the Go toolchain records in
// the binary (runtime/debug.ReadBuildInfo) are used.
var version string

// versionInfo is what `realmgate version` prints.
type versionInfo struct {
	Version  string // release version: -ldflags override, else the module version
	Revision string // VCS commit, with "+dirty" when the tree had changes
	Time     string // commit time (RFC 3339)
	Go       string // toolchain
}

// readVersion gathers the version from the -ldflags override and the build
// information.
func readVersion(override string, bi *debug.BuildInfo, ok bool) versionInfo {
	v := versionInfo{Version: override, Go: runtime.Version()}
	if !ok || bi == nil {
		if v.Version == "" {
			v.Version = "(unknown)"
		}
		return v
	}
	if v.Version == "" {
		v.Version = bi.Main.Version // "(devel)" for a build from a work tree
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && v.Revision != "" {
		v.Revision += "+dirty"
	}
	return v
}

func (v versionInfo) String() string {
	s := "realmgate " + v.Version
	if v.Revision != "" {
		s += " (" + v.Revision
		if v.Time != "" {
			s += ", " + v.Time
		}
		s += ")"
	}
	return s + " " + v.Go
}

// cmdVersion is `realmgate version` and `realmgate --version`.
func cmdVersion(stdout io.Writer) int {
	bi, ok := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, readVersion(version, bi, ok))
	return 0
}
