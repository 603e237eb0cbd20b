// Package deploytest checks the deployment files of realmgate: the
// Dockerfile, the compose stack (deploy/compose) and the Helm chart
// (deploy/helm/realmgate), without Docker, a registry or a cluster. It is a
// module of its own so that Helm's and Kubernetes' dependencies never reach
// the main module; scripts/test.sh runs it.
package deploytest

import (
	"debug/elf"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/realmgate/realmgate/config"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct{ cmd, args string }

func parseDockerfile(t *testing.T, text string) []instruction {
	t.Helper()
	var out []instruction
	text = regexp.MustCompile(`\\\n`).ReplaceAllString(text, " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, args, _ := strings.Cut(line, " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
	}
	return out
}

// TestDockerfile_StaticNonRoot checks the image's recipe: a Go builder
// stage that builds a static (CGO_ENABLED=0), -trimpath binary, and a
// distroless or scratch final stage that runs it as a non-root user, serving
// the configuration at the path the chart and compose mount.
func TestDockerfile_StaticNonRoot(t *testing.T) {
	ins := parseDockerfile(t, readFile(t, "../../Dockerfile"))
	var stages [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a builder and a final stage", len(stages))
	}
	builder, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(builder[0].args, "golang:") {
		t.Errorf("builder FROM %q, want a golang image", builder[0].args)
	}
	var build string
	for _, in := range builder {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			build = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/realmgate"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build step %q lacks %s", build, want)
		}
	}
	base := final[0].args
	if !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
		t.Errorf("final FROM %q, want distroless static or scratch", base)
	}
	get := func(cmd string) []string {
		var v []string
		for _, in := range final {
			if in.cmd == cmd {
				v = append(v, in.args)
			}
		}
		return v
	}
	users := get("USER")
	if len(users) == 0 {
		t.Fatalf("final stage has no USER: the image would run as root")
	}
	uid, _, _ := strings.Cut(users[len(users)-1], ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q, want a numeric non-zero uid (runAsNonRoot can only verify a number)", users[len(users)-1])
	}
	if got := get("HEALTHCHECK"); len(got) != 0 {
		t.Errorf("HEALTHCHECK %q cannot run in a distroless image (no shell or client)", got)
	}
	if ep := get("ENTRYPOINT"); len(ep) != 1 || !strings.Contains(ep[0], "realmgate") {
		t.Errorf("ENTRYPOINT %q, want the realmgate binary", ep)
	}
	if cmd := get("CMD"); len(cmd) != 1 || cmd[0] != `["serve", "--config", "`+configPath+`"]` {
		t.Errorf("CMD %q, want serve --config %s", cmd, configPath)
	}
	var exposed []string
	for _, e := range get("EXPOSE") {
		exposed = append(exposed, strings.Fields(e)...)
	}
	ch := loadChart(t)
	ports := ch.Values["ports"].(map[string]any)
	for _, name := range []string{"http", "admin", "ops"} {
		p := strconv.Itoa(int(ports[name].(float64)))
		if !slices.Contains(exposed, p) {
			t.Errorf("EXPOSE %v lacks the chart's %s port %s", exposed, name, p)
		}
	}
	psc := ch.Values["podSecurityContext"].(map[string]any)
	if got := strconv.Itoa(int(psc["runAsUser"].(float64))); got != uid {
		t.Errorf("chart runAsUser %s, Dockerfile USER %s: want the same user", got, uid)
	}
	ignore := strings.Fields(readFile(t, "../../.dockerignore"))
	for _, want := range []string{".git", "**/node_modules"} {
		if !slices.Contains(ignore, want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

// composeFile is the part of compose.yaml the test reads.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       map[string]string `yaml:"build"`
		Volumes     []string          `yaml:"volumes"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Command     []string          `yaml:"command"`
		DependsOn   map[string]any    `yaml:"depends_on"`
		ReadOnly    bool              `yaml:"read_only"`
	} `yaml:"services"`
}

// composeDefault expands ${VAR:-default} the way compose does when VAR is unset.
var composeDefault = regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`)

// TestCompose_ConfigServes loads the compose stack's configuration with
// realmgate's config package, with the environment compose gives the
// container, and checks it is wired to the stack: the Redis service, the
// published ports, the mount path of the image's default command.
func TestCompose_ConfigServes(t *testing.T) {
	var cf composeFile
	if err := yaml.Unmarshal([]byte(readFile(t, "../compose/compose.yaml")), &cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	rg, ok := cf.Services["realmgate"]
	if !ok {
		t.Fatalf("compose.yaml has no realmgate service")
	}
	if _, ok := cf.Services["redis"]; !ok {
		t.Fatalf("compose.yaml has no redis service")
	}
	if rg.Build["context"] != "../.." || rg.Build["dockerfile"] != "Dockerfile" {
		t.Errorf("realmgate build = %v, want the repository's Dockerfile", rg.Build)
	}
	if _, ok := rg.DependsOn["redis"]; !ok {
		t.Errorf("realmgate does not depend on redis")
	}
	if !rg.ReadOnly {
		t.Errorf("realmgate's root filesystem is writable; want read_only as in the chart")
	}
	if !slices.Contains(rg.Volumes, "./realmgate.yaml:"+configPath+":ro") {
		t.Errorf("volumes %q do not mount ./realmgate.yaml read-only at %s", rg.Volumes, configPath)
	}
	env := map[string]string{}
	for k, v := range rg.Environment {
		env[k] = composeDefault.ReplaceAllString(v, "$1")
	}
	data := readFile(t, "../compose/realmgate.yaml")
	cfg, err := config.Parse(filepath.Join("deploy", "compose", "realmgate.yaml"), []byte(data), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("config.Parse(compose realmgate.yaml) = %v", err)
	}
	if cfg.Store.Type != config.StoreRedis || len(cfg.Store.Redis.Addrs) != 1 {
		t.Fatalf("store = %s %v, want redis with one address", cfg.Store.Type, cfg.Store.Redis.Addrs)
	}
	if host, _, _ := net.SplitHostPort(cfg.Store.Redis.Addrs[0]); host != "redis" {
		t.Errorf("store.redis.addrs[0] = %q, want the compose service redis", cfg.Store.Redis.Addrs[0])
	}
	redisCmd := strings.Join(cf.Services["redis"].Command, " ")
	if cfg.Store.Redis.Password == "" || !strings.Contains(composeDefault.ReplaceAllString(redisCmd, "$1"), "--requirepass "+cfg.Store.Redis.Password) {
		t.Errorf("store.redis.password %q is not the password redis is started with (%s)", cfg.Store.Redis.Password, redisCmd)
	}
	if cfg.Keys.Secret == "" {
		t.Errorf("keys.secret is empty with a redis store")
	}
	// Published ports: 127.0.0.1:<host>:<container>; the issuer is on the host port.
	published := map[string]string{}
	for _, p := range rg.Ports {
		p, _, _ = strings.Cut(p, " ")
		parts := strings.Split(p, ":")
		if len(parts) != 3 || parts[0] != "127.0.0.1" {
			t.Errorf("port %q is not published on 127.0.0.1 only", p)
			continue
		}
		published[parts[2]] = parts[1]
	}
	_, listenPort, _ := net.SplitHostPort(cfg.Listen)
	if hostPort, ok := published[listenPort]; !ok || cfg.Issuer != "http://localhost:"+hostPort {
		t.Errorf("issuer %q, listen %q, published %v: want the issuer on the published listen port", cfg.Issuer, cfg.Listen, published)
	}
	if h, _, _ := net.SplitHostPort(cfg.Listen); h != "0.0.0.0" {
		t.Errorf("listen = %q: inside the container it must bind every interface", cfg.Listen)
	}
	if _, opsPort, _ := net.SplitHostPort(cfg.Ops.Listen); published[opsPort] == "" {
		t.Errorf("ops.listen %q is not published (readiness checks from the host)", cfg.Ops.Listen)
	}
}

// TestDockerfile_BuildStepRunsInEmptyRoot runs the builder stage's own `go
// build` line (the RUN instruction, its ARG defaults filled in) and then runs
// the binary it makes the way the final stage does: alone in an otherwise
// empty root directory (as in distroless/static or scratch: no libc, no
// shell), as the Dockerfile's USER, with the compose stack's configuration
// mounted at the image's default path. The registry images themselves cannot
// be pulled here, so this is the part of `docker build` and `docker run` that
// can be shown: the recipe yields a static binary that starts with nothing
// beside it and needs no root.
func TestDockerfile_BuildStepRunsInEmptyRoot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image is linux; chroot and the ELF checks need linux")
	}
	ins := parseDockerfile(t, readFile(t, "../../Dockerfile"))
	args := map[string]string{}
	var build, user string
	for _, in := range ins {
		switch in.cmd {
		case "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case "RUN":
			if strings.Contains(in.args, "go build") {
				build = in.args
			}
		case "USER":
			user = in.args
		}
	}
	if build == "" || user == "" {
		t.Fatalf("Dockerfile: go build step %q, USER %q: want both", build, user)
	}
	if args["TARGETOS"] != "linux" {
		t.Fatalf("ARG TARGETOS default = %q, want linux", args["TARGETOS"])
	}
	// docker build sets TARGETARCH to the builder's platform; so do we.
	args["TARGETARCH"] = runtime.GOARCH
	const out = "/out/realmgate"
	if !strings.Contains(build, "-o "+out) {
		t.Fatalf("go build step %q does not write %s, which the final stage copies", build, out)
	}
	root := t.TempDir()
	bin := filepath.Join(root, "usr", "local", "bin", "realmgate")
	step := os.Expand(strings.Replace(build, "-o "+out, "-o "+bin, 1), func(k string) string { return args[k] })
	cmd := exec.Command("sh", "-c", step)
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("RUN %s: %v\n%s", step, err, b)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("binary has a program interpreter (dynamic loader): not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) != 0 {
		t.Errorf("binary needs shared libraries %v: not static", libs)
	}
	if f.Section(".debug_info") != nil {
		t.Errorf("binary keeps DWARF: -ldflags -s -w did not apply")
	}

	if os.Geteuid() != 0 {
		t.Skip("running the binary in an empty root needs chroot (root); CI runs as root")
	}
	uid, gid, _ := strings.Cut(user, ":")
	u, err := strconv.ParseUint(uid, 10, 32)
	if err != nil {
		t.Fatalf("USER %q: %v", user, err)
	}
	g, err := strconv.ParseUint(gid, 10, 32)
	if err != nil {
		t.Fatalf("USER %q: %v", user, err)
	}
	conf := filepath.Join(root, filepath.FromSlash(configPath))
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(readFile(t, "../compose/realmgate.yaml")), 0o644); err != nil {
		t.Fatal(err)
	}
	// The only two files in the root; /tmp is absent too (the chart and
	// compose mount the root filesystem read-only).
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("/usr/local/bin/realmgate", args...)
		cmd.Dir = "/"
		cmd.Env = []string{"REDIS_PASSWORD=compose-redis", "REALMGATE_SECRET=" + strings.Repeat("k", 32)}
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uint32(u), Gid: uint32(g)}}
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("chroot %s realmgate %s as %s: %v\n%s", root, strings.Join(args, " "), user, err, b)
		}
		return string(b)
	}
	if got := run("version"); !strings.HasPrefix(got, "realmgate ") {
		t.Errorf("realmgate version = %q, want a version line", got)
	}
	if got := run("check-config", "--config", configPath); !strings.Contains(got, configPath+": ok (") {
		t.Errorf("realmgate check-config %s = %q, want it accepted", configPath, got)
	}
}
