// k8s-validate: the schema check of the chart's rendered manifests (test/unit/deploy.test.ts), without kubeconform's
// schemas (downloaded from GitHub, out of reach here). Each document of the multi-document YAML read from the files
// named, or from standard input, is decoded strictly into the k8s.io/api type of its apiVersion and kind: an unknown
// field, a field of the wrong type or a duplicate key is an error, as the API server's strict field validation has
// it. Then the checks the API server would make first on what the chart writes: names, selectors that select the
// pod template, containers with an image, ports in range, probes with one handler, disruption budgets with one bound.
//
// Usage: k8s-validate [--crd Kind]... [FILE...]; exit status 1 with one line per problem, 0 with "N valid, M skipped".
// Built into $MSSGW_SANDBOX/bin by deploy/local/helm.sh, with the k8s.io/api release helm v3.16 uses (Kubernetes 1.31).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// The kinds a chart may render, each with the type it decodes into.
var kinds = map[string]func() any{
	"v1/ConfigMap":                             func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                                func() any { return &corev1.Secret{} },
	"v1/Service":                               func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                        func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                       func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                      func() any { return &appsv1.StatefulSet{} },
	"policy/v1/PodDisruptionBudget":            func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":   func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/NetworkPolicy":       func() any { return &networkingv1.NetworkPolicy{} },
	"networking.k8s.io/v1/Ingress":             func() any { return &networkingv1.Ingress{} },
	"rbac.authorization.k8s.io/v1/Role":        func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding": func() any { return &rbacv1.RoleBinding{} },
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

var separator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

func main() {
	var crds stringList
	flag.Var(&crds, "crd", "a custom resource kind (apiVersion/kind) accepted without a schema, e.g. monitoring.coreos.com/v1/ServiceMonitor")
	flag.Parse()
	var input []byte
	if flag.NArg() == 0 {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			fail(err)
		}
		input = b
	}
	for _, f := range flag.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			fail(err)
		}
		input = append(append(input, []byte("\n---\n")...), b...)
	}
	var problems []string
	valid, skipped := 0, 0
	for i, doc := range separator.Split(string(input), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var head struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Metadata   metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			problems = append(problems, fmt.Sprintf("document %d: not YAML: %v", i+1, err))
			continue
		}
		id := fmt.Sprintf("%s %s", head.Kind, head.Metadata.Name)
		key := head.APIVersion + "/" + head.Kind
		if contains(crds, key) {
			skipped++
			continue
		}
		newObject, ok := kinds[key]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: unknown apiVersion/kind %q", id, key))
			continue
		}
		obj := newObject()
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		for _, p := range check(obj) {
			problems = append(problems, fmt.Sprintf("%s: %s", id, p))
		}
		valid++
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Println(p)
		}
		os.Exit(1)
	}
	fmt.Printf("%d valid, %d skipped\n", valid, skipped)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "k8s-validate:", err)
	os.Exit(2)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func stripComments(doc string) string {
	var out bytes.Buffer
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out.WriteString(line + "\n")
		}
	}
	return out.String()
}

// check: what the API server refuses before anything runs, for the fields a chart writes.
func check(obj any) []string {
	var p []string
	meta := func(m metav1.ObjectMeta) {
		for _, e := range validation.IsDNS1123Subdomain(m.Name) {
			p = append(p, "metadata.name: "+e)
		}
		for k, v := range m.Labels {
			for _, e := range validation.IsQualifiedName(k) {
				p = append(p, fmt.Sprintf("metadata.labels %q: %s", k, e))
			}
			for _, e := range validation.IsValidLabelValue(v) {
				p = append(p, fmt.Sprintf("metadata.labels %q: %s", k, e))
			}
		}
	}
	selects := func(sel *metav1.LabelSelector, podLabels map[string]string, at string) {
		if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
			p = append(p, at+": required")
			return
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			p = append(p, at+": "+err.Error())
		} else if podLabels != nil && !s.Matches(labels.Set(podLabels)) {
			p = append(p, at+": does not select the pod template's labels")
		}
	}
	port := func(n int32, at string) {
		if n < 1 || n > 65535 {
			p = append(p, fmt.Sprintf("%s: %d is not a port", at, n))
		}
	}
	// claims: the volumes a StatefulSet's volumeClaimTemplates give its pods, mounted by name like the pod's own.
	pod := func(spec corev1.PodSpec, at string, claims ...string) {
		if len(spec.Containers) == 0 {
			p = append(p, at+".containers: required")
		}
		volumes := map[string]bool{}
		for _, v := range spec.Volumes {
			volumes[v.Name] = true
		}
		for _, c := range claims {
			volumes[c] = true
		}
		for i, c := range spec.Containers {
			cat := fmt.Sprintf("%s.containers[%d]", at, i)
			for _, e := range validation.IsDNS1123Label(c.Name) {
				p = append(p, cat+".name: "+e)
			}
			if c.Image == "" {
				p = append(p, cat+".image: required")
			}
			names := map[string]bool{}
			for j, cp := range c.Ports {
				port(cp.ContainerPort, fmt.Sprintf("%s.ports[%d].containerPort", cat, j))
				if cp.Name != "" {
					names[cp.Name] = true
					for _, e := range validation.IsValidPortName(cp.Name) {
						p = append(p, fmt.Sprintf("%s.ports[%d].name: %s", cat, j, e))
					}
				}
			}
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					p = append(p, fmt.Sprintf("%s.volumeMounts: no volume %q", cat, m.Name))
				}
			}
			for name, probe := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe} {
				if probe == nil {
					continue
				}
				handlers := 0
				if probe.HTTPGet != nil {
					handlers++
					probePort(probe.HTTPGet.Port, names, cat+"."+name, &p)
				}
				if probe.TCPSocket != nil {
					handlers++
					probePort(probe.TCPSocket.Port, names, cat+"."+name, &p)
				}
				if probe.Exec != nil {
					handlers++
				}
				if probe.GRPC != nil {
					handlers++
				}
				if handlers != 1 {
					p = append(p, fmt.Sprintf("%s.%s: needs exactly one handler, has %d", cat, name, handlers))
				}
			}
		}
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		meta(o.ObjectMeta)
		selects(o.Spec.Selector, o.Spec.Template.Labels, "spec.selector")
		pod(o.Spec.Template.Spec, "spec.template.spec")
	case *appsv1.StatefulSet:
		meta(o.ObjectMeta)
		selects(o.Spec.Selector, o.Spec.Template.Labels, "spec.selector")
		claims := []string{}
		for _, t := range o.Spec.VolumeClaimTemplates {
			claims = append(claims, t.Name)
		}
		pod(o.Spec.Template.Spec, "spec.template.spec", claims...)
	case *corev1.Service:
		meta(o.ObjectMeta)
		if len(o.Spec.Ports) == 0 {
			p = append(p, "spec.ports: required")
		}
		for i, sp := range o.Spec.Ports {
			port(sp.Port, fmt.Sprintf("spec.ports[%d].port", i))
		}
	case *policyv1.PodDisruptionBudget:
		meta(o.ObjectMeta)
		if (o.Spec.MinAvailable == nil) == (o.Spec.MaxUnavailable == nil) {
			p = append(p, "spec: give exactly one of minAvailable and maxUnavailable")
		}
		selects(o.Spec.Selector, nil, "spec.selector")
	case *autoscalingv2.HorizontalPodAutoscaler:
		meta(o.ObjectMeta)
		if o.Spec.MinReplicas != nil && *o.Spec.MinReplicas > o.Spec.MaxReplicas {
			p = append(p, "spec.minReplicas: above maxReplicas")
		}
	case *networkingv1.NetworkPolicy:
		meta(o.ObjectMeta)
	case *networkingv1.Ingress:
		meta(o.ObjectMeta)
		for i, r := range o.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for j, path := range r.HTTP.Paths {
				if path.PathType == nil {
					p = append(p, fmt.Sprintf("spec.rules[%d].http.paths[%d].pathType: required", i, j))
				}
				if path.Backend.Service == nil {
					p = append(p, fmt.Sprintf("spec.rules[%d].http.paths[%d].backend.service: required", i, j))
				}
			}
		}
	case *corev1.ConfigMap:
		meta(o.ObjectMeta)
	case *corev1.Secret:
		meta(o.ObjectMeta)
	default:
		if m, ok := obj.(interface{ GetName() string }); ok {
			for _, e := range validation.IsDNS1123Subdomain(m.GetName()) {
				p = append(p, "metadata.name: "+e)
			}
		}
	}
	return p
}

// probePort: a named probe port must be one the container declares.
func probePort(port intstr.IntOrString, names map[string]bool, at string, p *[]string) {
	if port.Type == intstr.String && !names[port.StrVal] {
		*p = append(*p, fmt.Sprintf("%s: port %q is not a port of the container", at, port.StrVal))
	}
	if port.Type == intstr.Int && (port.IntVal < 1 || port.IntVal > 65535) {
		*p = append(*p, fmt.Sprintf("%s: %d is not a port", at, port.IntVal))
	}
}
