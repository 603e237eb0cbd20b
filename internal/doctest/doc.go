// Package doctest holds the tests that keep the documentation true: every
// shell and YAML block of README.md and docs/*.md is run or loaded, and the
// integration guide's example apps (docs/examples) sign in against the demo.
//
// A Markdown block is marked by an HTML comment on the line before its
// opening fence:
//
//	<!-- doctest: skip REASON -->  not run; the test prints REASON
//	<!-- doctest: fragment -->     YAML: part of a file (a list is a tenant's
//	                               rules; a mapping joins a minimal file)
//	<!-- doctest: demo -->         shell: run while `realmgate dev` runs (on
//	                               moved ports: the block's 127.0.0.1 ports
//	                               are moved the same way)
//	<!-- doctest: file PATH -->    the block is PATH (relative to the
//	                               Markdown file) and must equal it
//
// An unmarked ```yaml block is a whole configuration file, checked with
// `realmgate check-config`; an unmarked ```sh or ```bash block is run with
// bash -euo pipefail in a temporary directory holding a link to testdata/,
// where `go run ./cmd/realmgate` and `realmgate` are the binary under test.
// Blocks of other languages, and plain ``` blocks (sample output), are not
// run.
package doctest
