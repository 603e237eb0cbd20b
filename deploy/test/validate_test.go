package deploytest

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/managedfields"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/applyconfigurations"
	"sigs.k8s.io/yaml"
)

// The validator checks a rendered manifest offline, in three layers:
//
//  1. strict decoding into its k8s.io/api type (the API groups the chart
//     uses are the only ones registered, so a wrong apiVersion or kind
//     fails; unknown or duplicate fields and wrong value types fail);
//  2. the Kubernetes OpenAPI schema that client-go ships
//     (applyconfigurations' structured-merge-diff schema, generated from
//     the API server's OpenAPI document): every field declared, every
//     value of its declared type, list-map keys unique;
//  3. the API server's rules that the schema cannot say and that a
//     chart can get wrong: DNS names, label syntax, selectors matching the
//     pod template, named ports that exist, environment variable names.
var (
	scheme     = runtime.NewScheme()
	strictYAML *kjson.Serializer
	schemaConv managedfields.TypeConverter
)

func init() {
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme,
		policyv1.AddToScheme, autoscalingv2.AddToScheme, networkingv1.AddToScheme} {
		utilruntime.Must(add(scheme))
	}
	strictYAML = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
	schemaConv = applyconfigurations.NewTypeConverter(scheme)
}

// validateManifest decodes one YAML document strictly and checks it against
// the Kubernetes schema and the name and label rules; it returns the typed
// object.
func validateManifest(doc string) (runtime.Object, error) {
	obj, gvk, err := strictYAML.Decode([]byte(doc), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("strict decode: %w", err)
	}
	var u unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	if _, err := schemaConv.ObjectToTyped(&u); err != nil {
		return nil, fmt.Errorf("%s schema: %w", gvk.Kind, err)
	}
	var errs []error
	meta, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%s has no object metadata", gvk.Kind)
	}
	nameRule := validation.IsDNS1123Subdomain
	if gvk.Kind == "Service" {
		nameRule = validation.IsDNS1035Label
	}
	for _, msg := range nameRule(meta.GetName()) {
		errs = append(errs, fmt.Errorf("metadata.name %q: %s", meta.GetName(), msg))
	}
	errs = append(errs, checkLabels("metadata.labels", meta.GetLabels())...)
	for k := range meta.GetAnnotations() {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Errorf("metadata.annotations key %q: %s", k, msg))
		}
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		errs = append(errs, checkDeployment(o)...)
	case *corev1.Service:
		errs = append(errs, checkLabels("spec.selector", o.Spec.Selector)...)
		for _, p := range o.Spec.Ports {
			errs = append(errs, checkPortName("spec.ports", p.Name)...)
		}
	case *corev1.Secret:
		for k := range o.StringData {
			for _, msg := range validation.IsConfigMapKey(k) {
				errs = append(errs, fmt.Errorf("stringData key %q: %s", k, msg))
			}
		}
	case *corev1.ConfigMap:
		for k := range o.Data {
			for _, msg := range validation.IsConfigMapKey(k) {
				errs = append(errs, fmt.Errorf("data key %q: %s", k, msg))
			}
		}
	case *autoscalingv2.HorizontalPodAutoscaler:
		if o.Spec.MinReplicas == nil || *o.Spec.MinReplicas < 1 || *o.Spec.MinReplicas > o.Spec.MaxReplicas {
			errs = append(errs, fmt.Errorf("spec: want 1 <= minReplicas <= maxReplicas (%d)", o.Spec.MaxReplicas))
		}
	case *policyv1.PodDisruptionBudget:
		if _, err := metav1.LabelSelectorAsSelector(o.Spec.Selector); err != nil {
			errs = append(errs, fmt.Errorf("spec.selector: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s %s: %w", gvk.Kind, meta.GetName(), err)
	}
	return obj, nil
}

func checkLabels(path string, m map[string]string) []error {
	var errs []error
	for k, v := range m {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Errorf("%s key %q: %s", path, k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, fmt.Errorf("%s[%q] = %q: %s", path, k, v, msg))
		}
	}
	return errs
}

func checkPortName(path, name string) []error {
	var errs []error
	for _, msg := range validation.IsValidPortName(name) {
		errs = append(errs, fmt.Errorf("%s name %q: %s", path, name, msg))
	}
	return errs
}

// envName is what the kubelet accepts as an environment variable name from
// envFrom (a C identifier keeps the ${VAR} references of the config simple).
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkDeployment checks the selector against the pod labels, container
// port names and what probes name, and environment variable names.
func checkDeployment(d *appsv1.Deployment) []error {
	var errs []error
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		errs = append(errs, fmt.Errorf("spec.selector: empty or invalid (%v)", err))
	} else if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		errs = append(errs, fmt.Errorf("spec.selector %s does not select the pod template's labels %v", sel, d.Spec.Template.Labels))
	}
	errs = append(errs, checkLabels("spec.template.metadata.labels", d.Spec.Template.Labels)...)
	volumes := map[string]bool{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = true
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		ports := map[string]bool{}
		for _, p := range c.Ports {
			errs = append(errs, checkPortName("containers."+c.Name+".ports", p.Name)...)
			if ports[p.Name] {
				errs = append(errs, fmt.Errorf("container %s: port name %q twice", c.Name, p.Name))
			}
			ports[p.Name] = true
		}
		for what, pr := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
			if pr == nil || pr.HTTPGet == nil {
				continue
			}
			if name := pr.HTTPGet.Port.StrVal; name != "" && !ports[name] {
				errs = append(errs, fmt.Errorf("container %s: %s names port %q, which the container does not have", c.Name, what, name))
			}
		}
		for _, e := range c.Env {
			if !envName.MatchString(e.Name) {
				errs = append(errs, fmt.Errorf("container %s: env name %q", c.Name, e.Name))
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				errs = append(errs, fmt.Errorf("container %s: volumeMount %q has no volume", c.Name, m.Name))
			}
		}
	}
	return errs
}

// splitDocuments splits a rendered template into its YAML documents,
// leaving out those that hold only comments or blank lines.
func splitDocuments(s string) []string {
	var docs []string
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(s, -1) {
		empty := true
		for _, line := range strings.Split(d, "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, d)
		}
	}
	return docs
}
