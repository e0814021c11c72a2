// Package chart renders the Helm chart charts/greentic-events offline with
// the Helm Go SDK, exactly as `helm install` would (values files merged in
// order, --set values on top, values.schema.json enforced), and decodes what
// it renders strictly into the Kubernetes API types.
//
// Its tests (make chart-test) check the chart; Render, Decode, Deployment,
// DeploymentEnv and ResolveEnv are also for other tests, e.g. the
// microservices end-to-end test, which configures each service's process
// with the environment the chart gives its container.
package chart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// ReleaseName is the release every Render renders; the services' objects
// are named greentic-events-<service>.
const ReleaseName = "greentic-events"

// KubeVersion is the Kubernetes version Render presents to the chart.
const KubeVersion = "v1.33.0"

// The optional APIs the chart looks for, to pass to Render.
const (
	KEDAAPI               = "keda.sh/v1alpha1"         // KEDA: ScaledObjects instead of HPAs
	PrometheusOperatorAPI = "monitoring.coreos.com/v1" // the Prometheus operator: a ServiceMonitor
)

// Services are the services the chart deploys, by their Kubernetes component name.
var Services = []string{"ingress-webhook", "timer", "flow-executor", "email-sender", "sms-sender", "admin-api"}

// Object is one rendered Kubernetes object.
type Object struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	Source     string // the template that rendered it, e.g. greentic-events/templates/timer/deployment.yaml
	YAML       []byte // the document as rendered
	JSON       []byte // the same object as JSON
}

func (o Object) String() string { return o.Kind + "/" + o.Name }

// ChartDir is the chart's directory: charts/greentic-events at the root of
// the repository, found as the nearest directory above the working
// directory holding go.work.
func ChartDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return filepath.Join(dir, "charts", "greentic-events"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: run from inside the repository")
		}
		dir = parent
	}
}

// LoadValues merges the values files in order, as `helm install -f a -f b`
// does, then the set values on top. A file name without a directory (e.g.
// "values-prod.yaml") is taken from the chart's directory, any other path
// as given. Keys of set are dotted paths ("flowExecutor.replicas") whose
// values are used as they are (numbers, booleans, lists, maps).
func LoadValues(valuesFiles []string, set map[string]any) (map[string]any, error) {
	dir, err := ChartDir()
	if err != nil {
		return nil, err
	}
	vals := map[string]any{}
	for _, f := range valuesFiles {
		if !strings.ContainsRune(f, filepath.Separator) {
			f = filepath.Join(dir, f)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("values file: %w", err)
		}
		v, err := loader.LoadValues(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("values file %s: %w", f, err)
		}
		vals = loader.MergeMaps(vals, v)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := setPath(vals, k, set[k]); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

func setPath(vals map[string]any, path string, value any) error {
	parts := strings.Split(path, ".")
	m := vals
	for i, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			if _, exists := m[p]; exists {
				return fmt.Errorf("set %s: %s is not a map", path, strings.Join(parts[:i+1], "."))
			}
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = value
	return nil
}

// Capabilities is what Render presents as the cluster: KubeVersion, every
// built-in API and apiVersions (e.g. KEDAAPI, PrometheusOperatorAPI).
func Capabilities(apiVersions ...string) (*common.Capabilities, error) {
	kv, err := common.ParseKubeVersion(KubeVersion)
	if err != nil {
		return nil, err
	}
	caps := common.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	caps.APIVersions = append(slices.Clone(caps.APIVersions), apiVersions...)
	return caps, nil
}

// Load reads the chart.
func Load() (*chartv2.Chart, error) {
	dir, err := ChartDir()
	if err != nil {
		return nil, err
	}
	return loader.LoadDir(dir)
}

// Render renders the chart offline with the values files and set values
// (see LoadValues) as release ReleaseName in namespace greentic-<environment>,
// against a cluster serving the built-in APIs and apiVersions. Values the
// schema refuses fail with its message, naming the value. Templates render
// in strict mode: a template reading a value that does not exist fails.
func Render(valuesFiles []string, set map[string]any, apiVersions ...string) ([]Object, error) {
	files, err := renderFiles(valuesFiles, set, nil, apiVersions...)
	if err != nil {
		return nil, err
	}
	return split(files)
}

// renderFiles renders the chart as Render does and returns every rendered
// file by its template's name, NOTES.txt included. funcs replace template
// functions, e.g. lookup to present objects the cluster already holds
// (without it, lookup finds nothing, as in `helm template`).
func renderFiles(valuesFiles []string, set map[string]any, funcs template.FuncMap, apiVersions ...string) (map[string]string, error) {
	ch, err := Load()
	if err != nil {
		return nil, err
	}
	vals, err := LoadValues(valuesFiles, set)
	if err != nil {
		return nil, err
	}
	caps, err := Capabilities(apiVersions...)
	if err != nil {
		return nil, err
	}
	env, _ := vals["environment"].(string)
	if env == "" {
		env, _ = ch.Values["environment"].(string)
	}
	opts := common.ReleaseOptions{Name: ReleaseName, Namespace: "greentic-" + env, Revision: 1, IsInstall: true}
	top, err := util.ToRenderValuesWithSchemaValidation(ch, vals, opts, caps, false)
	if err != nil {
		return nil, err
	}
	return engine.Engine{Strict: true, CustomTemplateFuncs: funcs}.RenderWithContext(context.Background(), ch, top)
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// split cuts the rendered files into objects, in a stable order (by
// template, then position), skipping NOTES.txt and empty documents.
func split(files map[string]string) ([]Object, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var objs []Object
	for _, name := range names {
		for _, doc := range docSeparator.Split(files[name], -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name      string `json:"name"`
					Namespace string `json:"namespace"`
				} `json:"metadata"`
			}
			js, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				return nil, fmt.Errorf("%s: %w\n%s", name, err, doc)
			}
			if string(js) == "null" {
				continue // comments only
			}
			if err := yaml.Unmarshal(js, &head); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if head.APIVersion == "" || head.Kind == "" || head.Metadata.Name == "" {
				return nil, fmt.Errorf("%s: a document without apiVersion, kind or metadata.name:\n%s", name, doc)
			}
			objs = append(objs, Object{
				APIVersion: head.APIVersion,
				Kind:       head.Kind,
				Name:       head.Metadata.Name,
				Namespace:  head.Metadata.Namespace,
				Source:     name,
				YAML:       []byte(strings.TrimSpace(doc) + "\n"),
				JSON:       js,
			})
		}
	}
	return objs, nil
}

// Find returns the object of that kind and name.
func Find(objs []Object, kind, name string) (Object, bool) {
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return Object{}, false
}

// Decode decodes o strictly into its Go type (k8s.io/api for the built-in
// kinds, the Prometheus operator's ServiceMonitor, a mirror of KEDA's
// ScaledObject): an unknown or duplicate field, a wrong type or an
// unknown kind is an error.
func Decode(o Object) (runtime.Object, error) {
	obj, gvk, err := strictDecoder.Decode(o.YAML, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", o, o.Source, err)
	}
	if gvk.GroupVersion().String() != o.APIVersion || gvk.Kind != o.Kind {
		return nil, fmt.Errorf("%s: decoded as %s", o, gvk)
	}
	return obj, nil
}

// Name is the Kubernetes name of a service's objects (its Deployment,
// Service, ServiceAccount, ...): greentic-events-<service>.
func Name(service string) string { return ReleaseName + "-" + service }

// Deployment returns the Deployment of a service ("flow-executor", or its
// full name "greentic-events-flow-executor").
func Deployment(objs []Object, service string) (*appsv1.Deployment, error) {
	name := service
	if !strings.HasPrefix(name, ReleaseName+"-") {
		name = Name(service)
	}
	o, ok := Find(objs, "Deployment", name)
	if !ok {
		return nil, fmt.Errorf("no Deployment %s rendered", name)
	}
	obj, err := Decode(o)
	if err != nil {
		return nil, err
	}
	return obj.(*appsv1.Deployment), nil
}

// DeploymentEnv returns the environment of the service's container as the
// chart sets it: plain values, and references to Secrets (secretKeyRef)
// left unresolved. envFrom is not included (see ResolveEnv).
func DeploymentEnv(objs []Object, service string) ([]corev1.EnvVar, error) {
	d, err := Deployment(objs, service)
	if err != nil {
		return nil, err
	}
	c, err := container(d)
	if err != nil {
		return nil, err
	}
	return c.Env, nil
}

// ResolveEnv returns the environment the service's process would get, as a
// map: plain values as they are, secretKeyRef and envFrom secretRef read
// from the Secrets the chart rendered. References to Secrets the chart does
// not render (existingSecret: they live in the cluster) are left out; a
// required key missing from a Secret the chart renders is an error. Paths
// of mounted files (GREENTIC_NATS_CREDS, GREENTIC_ADMIN_TOKENS_FILE, the
// admin TLS files) are paths inside the container: a test running the
// service as a process writes the file and changes the variable.
func ResolveEnv(objs []Object, service string) (map[string]string, error) {
	d, err := Deployment(objs, service)
	if err != nil {
		return nil, err
	}
	c, err := container(d)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.SecretRef == nil {
			return nil, fmt.Errorf("%s: envFrom other than a Secret", service)
		}
		data, ok, err := SecretData(objs, from.SecretRef.Name)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // an existing Secret
		}
		for k, v := range data {
			env[from.Prefix+k] = string(v)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			optional := ref.Optional != nil && *ref.Optional
			data, ok, err := SecretData(objs, ref.Name)
			if err != nil {
				return nil, err
			}
			v, found := data[ref.Key]
			if !ok || !found && optional {
				continue // an existing Secret, or an optional key left out
			}
			if !found {
				return nil, fmt.Errorf("%s: %s needs key %s of Secret %s, which the chart renders without it", service, e.Name, ref.Key, ref.Name)
			}
			env[e.Name] = string(v)
		default:
			return nil, fmt.Errorf("%s: %s comes from neither a value nor a Secret", service, e.Name)
		}
	}
	return env, nil
}

func container(d *appsv1.Deployment) (corev1.Container, error) {
	if len(d.Spec.Template.Spec.Containers) != 1 {
		return corev1.Container{}, fmt.Errorf("Deployment %s: %d containers, want 1", d.Name, len(d.Spec.Template.Spec.Containers))
	}
	return d.Spec.Template.Spec.Containers[0], nil
}

// SecretData returns the data of the rendered Secret name (stringData
// merged in, as the API server does).
func SecretData(objs []Object, name string) (map[string][]byte, bool, error) {
	o, ok := Find(objs, "Secret", name)
	if !ok {
		return nil, false, nil
	}
	obj, err := Decode(o)
	if err != nil {
		return nil, false, err
	}
	s := obj.(*corev1.Secret)
	data := map[string][]byte{}
	for k, v := range s.Data {
		data[k] = v
	}
	for k, v := range s.StringData {
		data[k] = []byte(v)
	}
	return data, true, nil
}
