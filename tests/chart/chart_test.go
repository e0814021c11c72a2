package chart

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/greentic/events/pkg/service"
)

// valueSets are the values files the chart ships, as `helm install` takes them.
var valueSets = []struct {
	name  string
	files []string
}{
	{"defaults", nil},
	{"dev", []string{"values-dev.yaml"}},
	{"staging", []string{"values-staging.yaml"}},
	{"prod", []string{"values-prod.yaml"}},
}

// clusters are the optional APIs a cluster may serve.
var clusters = []struct {
	name string
	apis []string
}{
	{"plain", nil},
	{"keda", []string{KEDAAPI}},
	{"prometheus-operator", []string{PrometheusOperatorAPI}},
	{"keda+prometheus-operator", []string{KEDAAPI, PrometheusOperatorAPI}},
}

func TestLint(t *testing.T) {
	t.Parallel()
	dir, err := ChartDir()
	if err != nil {
		t.Fatal(err)
	}
	kv, err := Capabilities()
	if err != nil {
		t.Fatal(err)
	}
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			vals, err := LoadValues(vs.files, nil)
			if err != nil {
				t.Fatal(err)
			}
			res := lint.RunAll(dir, vals, "greentic-"+vs.name, lint.WithKubeVersion(&kv.KubeVersion))
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("lint: %v", m)
				} else {
					t.Logf("lint: %v", m)
				}
			}
		})
	}
}

// TestRender renders every values file against every kind of cluster and
// checks each object decodes strictly and every Deployment keeps the
// chart's promises.
func TestRender(t *testing.T) {
	t.Parallel()
	for _, vs := range valueSets {
		for _, cl := range clusters {
			t.Run(vs.name+"/"+cl.name, func(t *testing.T) {
				t.Parallel()
				objs, err := Render(vs.files, nil, cl.apis...)
				if err != nil {
					t.Fatal(err)
				}
				vals, err := LoadValues(vs.files, nil)
				if err != nil {
					t.Fatal(err)
				}
				env := "dev"
				if e, ok := vals["environment"].(string); ok {
					env = e
				}
				checkObjects(t, objs, "greentic-"+env)
				for _, svc := range Services {
					checkDeployment(t, objs, svc, env)
				}
			})
		}
	}
}

// checkObjects: every object decodes strictly into its Go type, lives in
// the release's namespace, has a valid name and valid labels, and no two
// objects share a kind and name.
func checkObjects(t *testing.T, objs []Object, namespace string) {
	t.Helper()
	seen := map[string]bool{}
	for _, o := range objs {
		if seen[o.String()] {
			t.Errorf("%s rendered twice", o)
		}
		seen[o.String()] = true
		obj, err := decodeOnce(o)
		if err != nil {
			t.Errorf("strict decode: %v", err)
			continue
		}
		meta, err := metaOf(obj)
		if err != nil {
			t.Errorf("%s: %v", o, err)
			continue
		}
		if meta.GetNamespace() != namespace {
			t.Errorf("%s: namespace %q, want %q", o, meta.GetNamespace(), namespace)
		}
		for _, msg := range validation.IsDNS1123Label(meta.GetName()) {
			t.Errorf("%s: name: %s", o, msg)
		}
		if errs := metav1validation.ValidateLabels(meta.GetLabels(), field.NewPath("metadata", "labels")); len(errs) > 0 {
			t.Errorf("%s: %v", o, errs.ToAggregate())
		}
	}
}

func metaOf(obj any) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}

// decoded memoizes Decode by document: the invariants look at the same
// objects from every Deployment's side.
var decoded sync.Map // string(Object.YAML) -> runtime.Object

func decodeOnce(o Object) (runtime.Object, error) {
	if obj, ok := decoded.Load(string(o.YAML)); ok {
		return obj.(runtime.Object), nil
	}
	obj, err := Decode(o)
	if err != nil {
		return nil, err
	}
	decoded.Store(string(o.YAML), obj)
	return obj, nil
}

// decodeAll returns the rendered objects of one Go type.
func decodeAll[T any](t *testing.T, objs []Object, kind string) []T {
	t.Helper()
	var out []T
	for _, o := range objs {
		if o.Kind != kind {
			continue
		}
		obj, err := decodeOnce(o)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := obj.(T)
		if !ok {
			t.Fatalf("%s decoded as %T", o, obj)
		}
		out = append(out, v)
	}
	return out
}

func selects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

// portNumber resolves a named or numbered port of the container.
func portNumber(c corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return -1
}

// served are the ports each service listens on besides the ops port.
var served = map[string]int32{"ingress-webhook": 8080, "admin-api": 9090}

// internetEgress are the services that call the internet: flow-executor's
// http nodes and the providers' APIs.
var internetEgress = map[string]bool{"flow-executor": true, "email-sender": true, "sms-sender": true}

func checkDeployment(t *testing.T, objs []Object, svc, env string) {
	t.Helper()
	d, err := Deployment(objs, svc)
	if err != nil {
		t.Error(err)
		return
	}
	pod := d.Spec.Template.Spec
	podLabels := d.Spec.Template.Labels
	where := "Deployment " + d.Name
	if !selects(t, d.Spec.Selector, podLabels) {
		t.Errorf("%s: its selector does not match its pods", where)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", where, len(pod.Containers))
	}
	c := pod.Containers[0]

	// Security.
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken is not false", where)
	}
	sa, ok := Find(objs, "ServiceAccount", pod.ServiceAccountName)
	if !ok {
		t.Errorf("%s: ServiceAccount %q not rendered", where, pod.ServiceAccountName)
	} else if obj, err := decodeOnce(sa); err == nil {
		if a := obj.(*corev1.ServiceAccount).AutomountServiceAccountToken; a == nil || *a {
			t.Errorf("ServiceAccount %s: automountServiceAccountToken is not false", sa.Name)
		}
	}
	psc, csc := pod.SecurityContext, c.SecurityContext
	switch {
	case psc == nil || csc == nil:
		t.Errorf("%s: pod or container securityContext missing", where)
	default:
		if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
			t.Errorf("%s: pod does not run as non-root 65532: %+v", where, psc)
		}
		if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod seccompProfile is not RuntimeDefault", where)
		}
		if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			t.Errorf("%s: root filesystem not read-only", where)
		}
		if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", where)
		}
		if csc.Privileged != nil && *csc.Privileged {
			t.Errorf("%s: privileged", where)
		}
		if csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") || len(csc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities do not drop ALL (or add some): %+v", where, csc.Capabilities)
		}
		if csc.RunAsNonRoot != nil && !*csc.RunAsNonRoot {
			t.Errorf("%s: container overrides runAsNonRoot", where)
		}
	}

	// Probes on the ops port.
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", where, p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || portNumber(c, p.probe.HTTPGet.Port) != 9100 {
			t.Errorf("%s: %s probe on %s port %s, want %s on 9100", where, p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}

	// Resources.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		if req.IsZero() || lim.IsZero() {
			t.Errorf("%s: %s request %s, limit %s: both must be set", where, r, req.String(), lim.String())
		} else if req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s above the limit %s", where, r, req.String(), lim.String())
		}
	}

	// Ports: ops, and the one it serves.
	var ports []int32
	for _, p := range c.Ports {
		ports = append(ports, p.ContainerPort)
	}
	want := []int32{9100}
	if p, ok := served[svc]; ok {
		want = append(want, p)
	}
	slices.Sort(ports)
	slices.Sort(want)
	if !slices.Equal(ports, want) {
		t.Errorf("%s: container ports %v, want %v", where, ports, want)
	}

	// A PodDisruptionBudget, a Service with the ops port, a NetworkPolicy.
	var pdbs int
	for _, pdb := range decodeAll[*policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget") {
		if selects(t, pdb.Spec.Selector, podLabels) {
			pdbs++
		}
	}
	if pdbs != 1 {
		t.Errorf("%s: %d PodDisruptionBudgets select its pods, want 1", where, pdbs)
	}
	var opsService bool
	for _, s := range decodeAll[*corev1.Service](t, objs, "Service") {
		if !selects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, podLabels) {
			continue
		}
		for _, p := range s.Spec.Ports {
			if p.Port == 9100 && portNumber(c, p.TargetPort) == 9100 && p.Name == "ops" {
				opsService = true
			}
		}
	}
	if !opsService {
		t.Errorf("%s: no Service exposes its ops port 9100 as \"ops\"", where)
	}
	checkNetworkPolicy(t, objs, svc, c, podLabels)

	// Scaling: an HPA or a ScaledObject, never both, and then no replicas field.
	var scalers []string
	for _, h := range decodeAll[*autoscalingv2.HorizontalPodAutoscaler](t, objs, "HorizontalPodAutoscaler") {
		if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name {
			scalers = append(scalers, "HorizontalPodAutoscaler/"+h.Name)
		}
	}
	for _, so := range decodeAll[*ScaledObject](t, objs, "ScaledObject") {
		if ref := so.Spec.ScaleTargetRef; ref != nil && ref.Name == d.Name && (ref.Kind == "" || ref.Kind == "Deployment") {
			scalers = append(scalers, "ScaledObject/"+so.Name)
		}
	}
	o, _ := Find(objs, "Deployment", d.Name)
	var raw struct {
		Spec map[string]json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(o.JSON, &raw); err != nil {
		t.Fatal(err)
	}
	_, hasReplicas := raw.Spec["replicas"]
	switch {
	case len(scalers) > 1:
		t.Errorf("%s: scaled by %v: at most one autoscaler", where, scalers)
	case len(scalers) == 1 && hasReplicas:
		t.Errorf("%s: scaled by %s and has a replicas field, which would reset the autoscaler's count on every upgrade", where, scalers[0])
	case len(scalers) == 0 && !hasReplicas:
		t.Errorf("%s: neither an autoscaler nor a replicas field", where)
	}
	if svc == "timer" && len(scalers) > 0 {
		t.Errorf("%s: the timer is not autoscaled, got %v", where, scalers)
	}

	// The environment every service shares, parsed by the services' own flags.
	checkEnv(t, objs, svc, env, c)
}

func checkNetworkPolicy(t *testing.T, objs []Object, svc string, c corev1.Container, podLabels map[string]string) {
	t.Helper()
	var nps []*networkingv1.NetworkPolicy
	for _, np := range decodeAll[*networkingv1.NetworkPolicy](t, objs, "NetworkPolicy") {
		if selects(t, &np.Spec.PodSelector, podLabels) {
			nps = append(nps, np)
		}
	}
	if len(nps) != 1 {
		t.Errorf("%s: %d NetworkPolicies select its pods, want 1", svc, len(nps))
		return
	}
	np := nps[0]
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("NetworkPolicy %s: policyTypes %v, want Ingress and Egress", np.Name, np.Spec.PolicyTypes)
	}
	// In: only ports the container serves, each rule naming its ports.
	allowedIn := map[int32]bool{9100: true, served[svc]: served[svc] != 0}
	for _, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 {
			t.Errorf("NetworkPolicy %s: an ingress rule without ports opens every port", np.Name)
		}
		for _, p := range rule.Ports {
			if p.Port == nil || !allowedIn[portNumber(c, *p.Port)] {
				t.Errorf("NetworkPolicy %s: ingress to port %v, which %s does not serve", np.Name, p.Port, svc)
			}
		}
	}
	// Out: NATS and DNS always; the internet only for those that call it.
	egress := map[int32]bool{}
	for _, rule := range np.Spec.Egress {
		if len(rule.Ports) == 0 {
			t.Errorf("NetworkPolicy %s: an egress rule without ports opens every port", np.Name)
		}
		for _, p := range rule.Ports {
			if p.Port != nil {
				egress[p.Port.IntVal] = true
			}
		}
	}
	if !egress[4222] || !egress[53] {
		t.Errorf("NetworkPolicy %s: egress %v misses NATS (4222) or DNS (53)", np.Name, egress)
	}
	if egress[443] != internetEgress[svc] {
		t.Errorf("NetworkPolicy %s: egress to 443 is %v, want %v", np.Name, egress[443], internetEgress[svc])
	}
}

// checkEnv: the variables every service shares are set, and parse and
// validate with the services' own flags (pkg/service Common).
func checkEnv(t *testing.T, objs []Object, svc, env string, c corev1.Container) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range c.Env {
		if seen[e.Name] {
			t.Errorf("%s: %s set twice", svc, e.Name)
		}
		seen[e.Name] = true
	}
	vars, err := ResolveEnv(objs, svc)
	if err != nil {
		t.Error(err)
		return
	}
	for name, want := range map[string]string{"GREENTIC_ENV": env, "GREENTIC_OPS_ADDR": ":9100"} {
		if vars[name] != want {
			t.Errorf("%s: %s=%q, want %q", svc, name, vars[name], want)
		}
	}
	if !strings.HasPrefix(vars["NATS_URL"], "nats://") && !strings.HasPrefix(vars["NATS_URL"], "tls://") {
		t.Errorf("%s: NATS_URL=%q", svc, vars["NATS_URL"])
	}
	f := service.NewFlags(svc)
	var common service.Common
	common.Register(f, ":9100")
	lookup := func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
	if err := f.Parse(nil, lookup); err != nil {
		t.Errorf("%s: the chart's environment does not parse: %v", svc, err)
		return
	}
	if err := common.Validate(); err != nil {
		t.Errorf("%s: the chart's environment does not validate: %v", svc, err)
	}
	if common.NATSCreds != "" && !mountsFile(c, common.NATSCreds) {
		t.Errorf("%s: GREENTIC_NATS_CREDS=%s is not a mounted file", svc, common.NATSCreds)
	}
}

// mountsFile reports whether path is inside one of the container's read-only mounts.
func mountsFile(c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.ReadOnly && strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

// Deployments renders and returns the Deployment of each service by name.
func deployments(t *testing.T, objs []Object) map[string]*appsv1.Deployment {
	t.Helper()
	out := map[string]*appsv1.Deployment{}
	for _, svc := range Services {
		d, err := Deployment(objs, svc)
		if err != nil {
			t.Fatal(err)
		}
		out[svc] = d
	}
	return out
}
