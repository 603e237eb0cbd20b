package deploytest

import (
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/realmgate/realmgate/config"
	_ "github.com/realmgate/realmgate/idp/builtin" // the IdP types config validates against
)

const chartDir = "../helm/realmgate"

// configPath is where the image's default command reads the configuration.
const configPath = "/etc/realmgate/realmgate.yaml"

// minimalValues are the fewest values the chart renders with: a keys secret.
var minimalValues = map[string]any{"secret": map[string]any{"keysSecret": "test-keys-secret-0123456789abcdefghijklmnop"}}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loader.Load(%s): %v", chartDir, err)
	}
	return ch
}

// mergeValues merges src into dst the way helm -f a.yaml -f b.yaml does:
// maps merge key by key, anything else in src replaces dst's.
func mergeValues(dst, src map[string]any) map[string]any {
	out := maps.Clone(dst)
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(dm, sm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// render renders the chart as `helm template rg CHART -n auth -f FILE... `
// would, with set merged last, in strict mode (a template that reads a value
// the chart does not define fails).
func render(t *testing.T, ch *chart.Chart, files []string, set map[string]any) (map[string]string, map[string]any, error) {
	t.Helper()
	vals := map[string]any{}
	for _, f := range files {
		v, err := chartutil.ReadValuesFile(filepath.Join(chartDir, f))
		if err != nil {
			t.Fatalf("ReadValuesFile(%s): %v", f, err)
		}
		vals = mergeValues(vals, v)
	}
	vals = mergeValues(vals, set)
	rv, err := chartutil.ToRenderValues(ch, vals,
		chartutil.ReleaseOptions{Name: "rg", Namespace: "auth", IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, nil, fmt.Errorf("values: %w", err)
	}
	out, err := engine.Engine{Strict: true}.Render(ch, rv)
	if err != nil {
		return nil, nil, err
	}
	merged, _ := rv["Values"].(chartutil.Values)
	return out, merged, nil
}

// manifests validates every document of every rendered template (NOTES.txt
// aside) and returns the typed objects by kind.
func manifests(t *testing.T, out map[string]string) map[string][]runtime.Object {
	t.Helper()
	byKind := map[string][]runtime.Object{}
	names := slices.Sorted(maps.Keys(out))
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		for i, doc := range splitDocuments(out[name]) {
			obj, err := validateManifest(doc)
			if err != nil {
				t.Errorf("%s document %d does not validate: %v\n%s", name, i, err, doc)
				continue
			}
			kind := obj.GetObjectKind().GroupVersionKind().Kind
			byKind[kind] = append(byKind[kind], obj)
		}
	}
	return byKind
}

func one[T runtime.Object](t *testing.T, byKind map[string][]runtime.Object, kind string) T {
	t.Helper()
	var zero T
	if len(byKind[kind]) != 1 {
		t.Fatalf("rendered %d %s, want 1", len(byKind[kind]), kind)
		return zero
	}
	return byKind[kind][0].(T)
}

// variant is one way to install the chart and what it must produce.
type variant struct {
	name   string
	files  []string
	set    map[string]any
	kinds  map[string]int // how many of each kind
	mode   string         // redis mode, or "" for the memory store
	addrs  int            // redis addresses
	master string         // sentinel master name
	admin  bool           // admin API listener and Service
	// env is what the Secret the chart does not make (existingSecret) or
	// extraEnv provides to the container.
	env map[string]string
}

var variants = []variant{
	{name: "defaults", set: minimalValues,
		kinds: map[string]int{"ConfigMap": 1, "Secret": 1, "Deployment": 1, "Service": 2, "ServiceAccount": 1,
			"HorizontalPodAutoscaler": 1, "PodDisruptionBudget": 1},
		mode: "standalone", addrs: 1},
	{name: "standalone", files: []string{"ci/standalone-values.yaml"},
		kinds: map[string]int{"ConfigMap": 1, "Secret": 1, "Deployment": 1, "Service": 3, "ServiceAccount": 1,
			"HorizontalPodAutoscaler": 1, "PodDisruptionBudget": 1, "Ingress": 1},
		mode: "standalone", addrs: 1, admin: true},
	{name: "sentinel", files: []string{"ci/sentinel-values.yaml"},
		kinds: map[string]int{"ConfigMap": 1, "Deployment": 1, "Service": 2, "ServiceAccount": 1,
			"HorizontalPodAutoscaler": 1, "PodDisruptionBudget": 1},
		mode: "sentinel", addrs: 3, master: "mymaster",
		env: map[string]string{"REALMGATE_SECRET": "from-existing-secret-0123456789abcdefghij", "REALMGATE_REDIS_PASSWORD": "from-redis-chart"}},
	{name: "cluster", files: []string{"ci/cluster-values.yaml"},
		kinds: map[string]int{"ConfigMap": 1, "Secret": 1, "Deployment": 1, "Service": 2, "ServiceAccount": 1,
			"PodDisruptionBudget": 1},
		mode: "cluster", addrs: 3},
	{name: "memory", set: mergeValues(minimalValues, map[string]any{"store": map[string]any{"type": "memory"},
		"replicaCount": 1, "autoscaling": map[string]any{"enabled": false}, "opsService": map[string]any{"enabled": false}}),
		kinds: map[string]int{"ConfigMap": 1, "Secret": 1, "Deployment": 1, "Service": 1, "ServiceAccount": 1}},
}

// TestChart_RendersValidManifests renders the chart with each values variant
// (Redis standalone, Sentinel, Cluster, the memory store), validates every
// manifest against the Kubernetes schemas, and checks what keeps a pod
// healthy and confined: probes on the ops port, non-root, read-only root,
// and a ConfigMap that realmgate's own config package loads.
func TestChart_RendersValidManifests(t *testing.T) {
	ch := loadChart(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			out, vals, err := render(t, ch, v.files, v.set)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			byKind := manifests(t, out)
			got := map[string]int{}
			for k, objs := range byKind {
				got[k] = len(objs)
			}
			if !maps.Equal(got, v.kinds) {
				t.Fatalf("rendered kinds = %v, want %v", got, v.kinds)
			}
			d := one[*appsv1.Deployment](t, byKind, "Deployment")
			checkPod(t, d)
			env := containerEnv(t, byKind, d, v.env)
			cfg := checkConfig(t, byKind, d, vals, env, v)
			checkServices(t, byKind, d, cfg, v)
			checkScaling(t, byKind, d)
		})
	}
}

// checkPod: probes on the ops port, the security context, the config mount.
func checkPod(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("containers = %d, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", c.StartupProbe, "/healthz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s = %+v, want an httpGet probe", p.what, p.probe)
			continue
		}
		if g := p.probe.HTTPGet; g.Path != p.path || g.Port.StrVal != "ops" {
			t.Errorf("%s = GET %s on port %s, want GET %s on port ops", p.what, g.Path, g.Port.String(), p.path)
		}
	}
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot and a non-zero runAsUser", psc)
	}
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("container securityContext.runAsNonRoot unset or false")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container securityContext.readOnlyRootFilesystem unset or false")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext.allowPrivilegeEscalation unset or true")
	}
	if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container securityContext.capabilities does not drop ALL")
	}
	if psc != nil && psc.SeccompProfile != nil && psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile = %s, want RuntimeDefault", psc.SeccompProfile.Type)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken unset or true: realmgate calls no Kubernetes API")
	}
	if want := []string{"serve", "--config", configPath}; !slices.Equal(c.Args, want) {
		t.Errorf("args = %q, want %q", c.Args, want)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.MountPath == filepath.Dir(configPath) && m.ReadOnly {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("no read-only volume mounted at %s", filepath.Dir(configPath))
	}
}

// containerEnv returns the environment the container gets: the Secret it
// reads with envFrom (the chart's, or, with existingSecret, the variant's
// stand-in) and extraEnv.
func containerEnv(t *testing.T, byKind map[string][]runtime.Object, d *appsv1.Deployment, extra map[string]string) map[string]string {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	env := maps.Clone(extra)
	if env == nil {
		env = map[string]string{}
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil {
		t.Fatalf("envFrom = %+v, want one secretRef", c.EnvFrom)
	}
	ref := c.EnvFrom[0].SecretRef.Name
	for _, o := range byKind["Secret"] {
		s := o.(*corev1.Secret)
		if s.Name != ref {
			t.Errorf("envFrom names Secret %q; the chart made %q", ref, s.Name)
		}
		maps.Copy(env, s.StringData)
	}
	for _, e := range c.Env {
		if _, ok := env[e.Name]; !ok && e.ValueFrom == nil {
			env[e.Name] = e.Value
		} else if !ok {
			t.Errorf("env %s comes from %+v; the variant gives it no stand-in value", e.Name, e.ValueFrom)
		}
	}
	return env
}

// checkConfig loads the ConfigMap's realmgate.yaml with realmgate's config
// package (expanding ${VAR} from env, as the process would) and checks the
// settings the chart owns.
func checkConfig(t *testing.T, byKind map[string][]runtime.Object, d *appsv1.Deployment, vals chartutil.Values, env map[string]string, v variant) *config.Config {
	t.Helper()
	cm := one[*corev1.ConfigMap](t, byKind, "ConfigMap")
	var vol *corev1.Volume
	for i := range d.Spec.Template.Spec.Volumes {
		if cmv := d.Spec.Template.Spec.Volumes[i].ConfigMap; cmv != nil && cmv.Name == cm.Name {
			vol = &d.Spec.Template.Spec.Volumes[i]
		}
	}
	if vol == nil {
		t.Fatalf("no volume of the Deployment holds ConfigMap %q", cm.Name)
	}
	data, ok := cm.Data[filepath.Base(configPath)]
	if !ok {
		t.Fatalf("ConfigMap %s has keys %v, want %s", cm.Name, slices.Collect(maps.Keys(cm.Data)), filepath.Base(configPath))
	}
	for name, secret := range env {
		if len(secret) >= 8 && strings.Contains(data, secret) {
			t.Errorf("ConfigMap holds the value of %s: secrets belong in the Secret, as ${%s}", name, name)
		}
	}
	cfg, err := config.Parse("ConfigMap "+cm.Name, []byte(data), func(k string) (string, bool) { s, ok := env[k]; return s, ok })
	if err != nil {
		t.Fatalf("config.Parse(ConfigMap) = %v\n%s", err, data)
	}
	ports := map[string]int32{}
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		ports[p.Name] = p.ContainerPort
	}
	checkListen := func(what, addr string, want int32) {
		t.Helper()
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "0.0.0.0" || port != fmt.Sprint(want) {
			t.Errorf("%s = %q, want 0.0.0.0:%d (every interface of the pod, the container port)", what, addr, want)
		}
	}
	checkListen("listen", cfg.Listen, ports["http"])
	checkListen("ops.listen", cfg.Ops.Listen, ports["ops"])
	if v.admin {
		checkListen("admin_api.listen", cfg.AdminAPI.Listen, ports["admin"])
	} else if _, ok := ports["admin"]; ok {
		t.Errorf("container has an admin port with adminAPI disabled")
	}
	if v.name == "standalone" && (cfg.UpstreamConcurrency != 32 || cfg.Audit.MaxEventsPerTenant != 250000) {
		t.Errorf("upstream_concurrency, audit.max_events_per_tenant = %d, %d, want 32, 250000 (numbers through Helm's values)",
			cfg.UpstreamConcurrency, cfg.Audit.MaxEventsPerTenant)
	}
	if cfg.Keys.Secret == "" || cfg.Keys.Secret != env["REALMGATE_SECRET"] {
		t.Errorf("keys.secret = %q, want REALMGATE_SECRET's value", cfg.Keys.Secret)
	}
	if v.mode == "" {
		if cfg.Store.Type != config.StoreMemory {
			t.Errorf("store.type = %q, want memory", cfg.Store.Type)
		}
		return cfg
	}
	r := cfg.Store.Redis
	if cfg.Store.Type != config.StoreRedis || len(r.Addrs) != v.addrs || r.MasterName != v.master {
		t.Errorf("store = %s %q master %q, want redis with %d addrs, master %q", cfg.Store.Type, r.Addrs, r.MasterName, v.addrs, v.master)
	}
	redisVals, _ := vals["redis"].(map[string]any)
	if auth, _ := redisVals["auth"].(bool); auth && (r.Password == "" || r.Password != env["REALMGATE_REDIS_PASSWORD"]) {
		t.Errorf("store.redis.password = %q, want REALMGATE_REDIS_PASSWORD's value", r.Password)
	}
	if u, _ := redisVals["username"].(string); r.Username != u {
		t.Errorf("store.redis.username = %q, want %q", r.Username, u)
	}
	return cfg
}

// checkServices: every Service selects the pods and targets a container
// port; the Ingress reaches the main Service.
func checkServices(t *testing.T, byKind map[string][]runtime.Object, d *appsv1.Deployment, cfg *config.Config, v variant) {
	t.Helper()
	podLabels := labels.Set(d.Spec.Template.Labels)
	ports := map[string]bool{}
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		ports[p.Name] = true
	}
	services := map[string]*corev1.Service{}
	var targets []string
	for _, o := range byKind["Service"] {
		s := o.(*corev1.Service)
		services[s.Name] = s
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s selector %v does not select the pods %v", s.Name, s.Spec.Selector, podLabels)
		}
		for _, p := range s.Spec.Ports {
			if !ports[p.TargetPort.StrVal] {
				t.Errorf("Service %s targets port %q; the container has %v", s.Name, p.TargetPort.String(), ports)
			}
			targets = append(targets, p.TargetPort.StrVal)
		}
	}
	if !slices.Contains(targets, "http") {
		t.Errorf("no Service targets the http port: %v", targets)
	}
	if got := slices.Contains(targets, "admin"); got != v.admin {
		t.Errorf("a Service targets the admin port: %v, want %v", got, v.admin)
	}
	for _, o := range byKind["Ingress"] {
		ing := o.(*networkingv1.Ingress)
		for _, rule := range ing.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				s, ok := services[p.Backend.Service.Name]
				if !ok || p.Backend.Service.Port.Name != "http" {
					t.Errorf("Ingress backend %+v: want the main Service's http port", p.Backend.Service)
					continue
				}
				if s.Spec.Ports[0].Name != "http" {
					t.Errorf("Ingress backend Service %s has no port named http", s.Name)
				}
			}
			if want := "https://" + rule.Host; cfg.Issuer != want {
				t.Errorf("Ingress host %q does not serve the issuer %q", rule.Host, cfg.Issuer)
			}
		}
	}
}

// checkScaling: the HPA scales the Deployment (which then leaves replicas
// to it), and the PodDisruptionBudget covers the pods.
func checkScaling(t *testing.T, byKind map[string][]runtime.Object, d *appsv1.Deployment) {
	t.Helper()
	for _, o := range byKind["HorizontalPodAutoscaler"] {
		h := o.(*autoscalingv2.HorizontalPodAutoscaler)
		ref := h.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
			t.Errorf("HPA scaleTargetRef = %+v, want apps/v1 Deployment %s", ref, d.Name)
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment sets replicas %d with an HPA: every upgrade would reset the HPA's count", *d.Spec.Replicas)
		}
	}
	if len(byKind["HorizontalPodAutoscaler"]) == 0 && d.Spec.Replicas == nil {
		t.Errorf("Deployment has no replicas and no HPA")
	}
	for _, o := range byKind["PodDisruptionBudget"] {
		pdb := o.(*policyv1.PodDisruptionBudget)
		sel, _ := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("PodDisruptionBudget selector %s does not select the pods", sel)
		}
	}
}

// TestChart_RefusesBrokenValues: values that would deploy a realmgate that
// cannot work fail the render with a message naming the value.
func TestChart_RefusesBrokenValues(t *testing.T) {
	ch := loadChart(t)
	redis := func(r map[string]any) map[string]any { return mergeValues(minimalValues, map[string]any{"redis": r}) }
	for _, tc := range []struct {
		name string
		set  map[string]any
		want string
	}{
		{"no keys secret", map[string]any{}, "secret.keysSecret"},
		{"sentinel without master", redis(map[string]any{"mode": "sentinel", "addrs": []any{"s0:26379", "s1:26379"}}), "redis.masterName"},
		{"cluster with one address", redis(map[string]any{"mode": "cluster", "addrs": []any{"c0:6379"}}), "cluster mode needs two"},
		{"standalone with two addresses", redis(map[string]any{"addrs": []any{"r0:6379", "r1:6379"}}), "standalone mode takes one"},
		{"cluster db", redis(map[string]any{"mode": "cluster", "addrs": []any{"c0:6379", "c1:6379"}, "db": 2}), "only db 0"},
		{"unknown mode", redis(map[string]any{"mode": "replicated"}), "redis.mode"},
		{"no addrs", redis(map[string]any{"addrs": []any{}}), "redis.addrs"},
		{"auth without password", redis(map[string]any{"auth": true}), "redis.auth"},
		{"memory store with two replicas", mergeValues(minimalValues, map[string]any{"store": map[string]any{"type": "memory"},
			"autoscaling": map[string]any{"enabled": false}}), "store.type=memory"},
		{"bad env name", mergeValues(minimalValues, map[string]any{"secret": map[string]any{"env": map[string]any{"MY-SECRET": "x"}}}), "secret.env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := render(t, ch, nil, tc.set)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render(%v) = %v, want an error naming %q", tc.set, err, tc.want)
			}
		})
	}
}

// TestValidator_RejectsBrokenManifests proves the validator is not a
// rubber stamp: each broken manifest is refused.
func TestValidator_RejectsBrokenManifests(t *testing.T) {
	deployment := func(spec string) string {
		return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: rg
spec:
` + spec
	}
	const goodSpec = `  selector:
    matchLabels: {app: rg}
  template:
    metadata:
      labels: {app: rg}
    spec:
      containers:
        - name: rg
          image: realmgate
          ports: [{name: ops, containerPort: 9090}]
          readinessProbe: {httpGet: {path: /readyz, port: ops}}
`
	if _, err := validateManifest(deployment(goodSpec)); err != nil {
		t.Fatalf("validateManifest(good Deployment) = %v, want nil", err)
	}
	for _, tc := range []struct{ name, doc string }{
		{"unknown field", deployment(goodSpec + "  replica: 2\n")},
		{"unknown nested field", deployment(strings.Replace(goodSpec, "image: realmgate", "image: realmgate\n          readOnlyRootFilesystem: true", 1))},
		{"wrong type", deployment(goodSpec + "  replicas: two\n")},
		{"duplicate field", deployment(goodSpec + "  replicas: 2\n  replicas: 3\n")},
		{"removed apiVersion", "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: rg}\nspec: {minAvailable: 1}\n"},
		{"unknown kind", "apiVersion: v1\nkind: Servic\nmetadata: {name: rg}\n"},
		{"selector misses the pods", deployment(strings.Replace(goodSpec, "labels: {app: rg}", "labels: {app: other}", 1))},
		{"probe names a missing port", deployment(strings.Replace(goodSpec, "port: ops}", "port: metrics}", 1))},
		{"bad name", strings.Replace(deployment(goodSpec), "name: rg\nspec", "name: RG_1\nspec", 1)},
		{"bad label value", strings.Replace(deployment(goodSpec), "name: rg\nspec", "name: rg\n  labels: {v: \"a b\"}\nspec", 1)},
		{"service name not a DNS label", "apiVersion: v1\nkind: Service\nmetadata: {name: rg.ops}\nspec: {ports: [{port: 80}]}\n"},
		{"port name too long", deployment(strings.ReplaceAll(goodSpec, "ops", "operations-metrics"))},
		// Only the schema layer sees this one: containerPort+protocol is the list's key.
		{"duplicate container port", deployment(strings.Replace(goodSpec, "ports: [{name: ops, containerPort: 9090}]",
			"ports: [{name: ops, containerPort: 9090}, {name: ops2, containerPort: 9090}]", 1))},
		{"env name", deployment(strings.Replace(goodSpec, "image: realmgate", "image: realmgate\n          env: [{name: MY-VAR, value: x}]", 1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := validateManifest(tc.doc); err == nil {
				t.Errorf("validateManifest(%s) = nil, want an error\n%s", tc.name, tc.doc)
			}
		})
	}
}

// TestChart_ValuesDocumented: every top-level key of values.yaml has a
// section in docs/deploy.md, so the docs keep up with the chart.
func TestChart_ValuesDocumented(t *testing.T) {
	ch := loadChart(t)
	doc := readFile(t, "../../docs/deploy.md")
	keys := slices.Collect(maps.Keys(ch.Values))
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.Contains(doc, "`"+k) {
			t.Errorf("docs/deploy.md does not mention the value %s", k)
		}
	}
}
