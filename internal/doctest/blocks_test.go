package doctest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// block is one fenced code block of a Markdown file.
type block struct {
	file   string // relative to the repository root
	line   int    // of the opening fence
	lang   string // sh, bash, yaml, ... ("" for a plain fence)
	mark   string // the doctest marker before it: skip, fragment, demo, file ("" for none)
	arg    string // the marker's argument (skip reason, file path)
	text   string
	closed bool
}

var markRE = regexp.MustCompile(`^<!--\s*doctest:\s*(\S+)\s*(.*?)\s*-->\s*$`)

// blocks returns the fenced blocks of the Markdown file at root/rel.
func blocks(t *testing.T, root, rel string) []block {
	t.Helper()
	f, err := os.Open(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []block
	var cur *block
	prev := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &block{file: rel, line: n, lang: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
			if m := markRE.FindStringSubmatch(prev); m != nil {
				cur.mark, cur.arg = m[1], m[2]
			}
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.closed = true
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
		prev = line
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Errorf("%s:%d: code block never closed", rel, cur.line)
	}
	return out
}

// docFiles are the Markdown files whose blocks must run.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"README.md"}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		out = append(out, rel)
	}
	return out
}

// TestDocs_Blocks runs every shell block and loads every YAML block of
// README.md and docs/*.md (see the package comment for the markers). A
// documented command that fails, or a configuration that does not load,
// fails the test naming its file and line.
func TestDocs_Blocks(t *testing.T) {
	e2etest.Need(t)
	root := repo(t)
	n := 0
	for _, rel := range docFiles(t, root) {
		for _, b := range blocks(t, root, rel) {
			if b.mark == "" && !runnable(b.lang) {
				continue
			}
			n++
			t.Run(fmt.Sprintf("%s:%d", b.file, b.line), func(t *testing.T) {
				checkBlock(t, root, b)
			})
		}
	}
	if n < 20 {
		t.Errorf("found %d shell and YAML blocks, want at least 20: is the extraction broken?", n)
	}
}

func runnable(lang string) bool {
	switch lang {
	case "sh", "bash", "yaml":
		return true
	}
	return false
}

func checkBlock(t *testing.T, root string, b block) {
	switch b.mark {
	case "skip":
		if b.arg == "" {
			t.Fatalf("%s:%d: doctest: skip needs a reason", b.file, b.line)
		}
		t.Skipf("%s:%d: not run: %s", b.file, b.line, b.arg)
	case "file":
		want, err := os.ReadFile(filepath.Join(root, filepath.Dir(b.file), b.arg))
		if err != nil {
			t.Fatalf("%s:%d: %v", b.file, b.line, err)
		}
		if b.text != string(want) {
			t.Errorf("%s:%d: the block differs from %s: copy the file into the block again", b.file, b.line, b.arg)
		}
		return
	case "", "fragment", "demo":
	default:
		t.Fatalf("%s:%d: unknown doctest marker %q", b.file, b.line, b.mark)
	}
	switch b.lang {
	case "yaml":
		checkYAML(t, b)
	case "sh", "bash":
		runShell(t, b)
	default:
		t.Fatalf("%s:%d: a doctest marker %q on a %q block", b.file, b.line, b.mark, b.lang)
	}
}

// fragmentBase is the minimal file a YAML fragment joins.
const fragmentBase = `issuer: http://127.0.0.1:8080
clients:
  - id: app
    redirect_uris: ["http://127.0.0.1:9000/callback"]
    allowed_tenants: ["*"]
tenants:
  - id: contoso
    domains: ["contoso.com"]
    providers:
      - id: contoso-github
        type: github
        client_id: id
        client_secret: secret
`

// checkYAML loads a YAML block with `realmgate check-config`: a whole file,
// or with the fragment marker a list of rules (a tenant's) or a mapping of
// top-level keys joined to fragmentBase.
func checkYAML(t *testing.T, b block) {
	text := b.text
	if b.mark == "fragment" {
		var frag any
		if err := yaml.Unmarshal([]byte(b.text), &frag); err != nil {
			t.Fatalf("%s:%d: %v", b.file, b.line, err)
		}
		var base map[string]any
		if err := yaml.Unmarshal([]byte(fragmentBase), &base); err != nil {
			t.Fatal(err)
		}
		switch f := frag.(type) {
		case []any:
			base["tenants"].([]any)[0].(map[string]any)["rules"] = f
		case map[string]any:
			for k, v := range f {
				base[k] = v
			}
		default:
			t.Fatalf("%s:%d: a fragment is a list of rules or a mapping, got %T", b.file, b.line, frag)
		}
		out, err := yaml.Marshal(base)
		if err != nil {
			t.Fatal(err)
		}
		text = string(out)
	}
	path := filepath.Join(t.TempDir(), "realmgate.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "check-config", path)
	cmd.Env = append(os.Environ(), placeholders(text)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s:%d: realmgate check-config: %v\n%s\n--- file ---\n%s", b.file, b.line, err, out, text)
	}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// placeholders sets every ${VAR} a block names to a value long enough for
// any check (admin tokens want 32 characters).
func placeholders(text string) []string {
	var env []string
	for _, m := range envRef.FindAllStringSubmatch(text, -1) {
		if _, set := os.LookupEnv(m[1]); !set {
			env = append(env, m[1]+"=placeholder-for-the-documentation-test-0123456789")
		}
	}
	return env
}

// shellPrelude makes the documented ways of running realmgate run the
// binary under test.
const shellPrelude = `go() { if [ "${1:-}" = run ] && [ "${2:-}" = ./cmd/realmgate ]; then shift 2; "$REALMGATE" "$@"; else command go "$@"; fi; }
realmgate() { "$REALMGATE" "$@"; }
`

// blockTimeout bounds one shell block: a documented command that runs
// longer (a server, a benchmark) must be marked skip.
const blockTimeout = 2 * time.Minute

// runShell runs a shell block with bash -euo pipefail in a temporary
// directory (testdata/ linked in), during a demo with the demo marker.
func runShell(t *testing.T, b block) {
	text := b.text
	dir := t.TempDir()
	linkTestdata(t, dir)
	if b.mark == "demo" {
		d := startDemo(t)
		text = d.move(text)
	}
	ctx, cancel := context.WithTimeout(t.Context(), blockTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", shellPrelude+text)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a timeout stops what the block started too
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REALMGATE="+binary(t))
	cmd.Env = append(cmd.Env, placeholders(text)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s:%d: the documented commands failed: %v\n--- commands ---\n%s--- output ---\n%s", b.file, b.line, err, text, out)
		return
	}
	t.Logf("%s:%d: ran; output:\n%s", b.file, b.line, out)
}
