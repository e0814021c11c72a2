package chart

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// valuesKey is a service's key in the chart's values.
var valuesKey = map[string]string{
	"ingress-webhook": "ingressWebhook",
	"timer":           "timer",
	"flow-executor":   "flowExecutor",
	"email-sender":    "emailSender",
	"sms-sender":      "smsSender",
	"admin-api":       "adminApi",
}

// TestDockerfiles: no Docker engine here to build the images, so check what
// each Dockerfile promises: built from the repository root with the whole
// workspace, a static binary, a distroless non-root image without a shell,
// user 65532, the service's own binary as entrypoint.
func TestDockerfiles(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	for _, svc := range Services {
		t.Run(svc, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(root, "services", svc, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			df := string(b)
			froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
			if len(froms) < 2 {
				t.Fatalf("want a build stage and a runtime stage, got FROM %v", froms)
			}
			if final := froms[len(froms)-1][1]; !strings.HasPrefix(final, "gcr.io/distroless/static") || !strings.HasSuffix(final, ":nonroot") {
				t.Errorf("runtime image %s, want gcr.io/distroless/static...:nonroot (no shell, no libc)", final)
			}
			for _, want := range []*regexp.Regexp{
				regexp.MustCompile(`(?m)^COPY(\s+--\S+)*\s+\.\s+\.$`),                       // the whole workspace (go.work and every module)
				regexp.MustCompile(`CGO_ENABLED=0\s.*go build\b.*\./cmd/` + svc + `\b`),     // static
				regexp.MustCompile(`(?m)^USER 65532(:65532)?$`),                             // non-root
				regexp.MustCompile(`(?m)^ENTRYPOINT \["/` + regexp.QuoteMeta(svc) + `"\]$`), // exec form: no shell
				regexp.MustCompile(`(?m)^EXPOSE\b.*\b9100\b`),                               // the ops port
			} {
				if !want.MatchString(df) {
					t.Errorf("Dockerfile does not match %s", want)
				}
			}
		})
	}
}

// skaffoldConfig mirrors the part of skaffold.yaml (skaffold/v4beta11) the
// repository uses, decoded strictly so a misspelt field fails here.
type skaffoldConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Build struct {
		Local struct {
			Push        bool `json:"push"`
			UseBuildkit bool `json:"useBuildkit"`
		} `json:"local"`
		Artifacts []struct {
			Image  string `json:"image"`
			Docker struct {
				Dockerfile string `json:"dockerfile"`
			} `json:"docker"`
		} `json:"artifacts"`
	} `json:"build"`
	Deploy struct {
		Helm struct {
			Releases []skaffoldRelease `json:"releases"`
		} `json:"helm"`
	} `json:"deploy"`
	Profiles []struct {
		Name    string `json:"name"`
		Patches []struct {
			Op    string `json:"op"`
			Path  string `json:"path"`
			Value any    `json:"value"`
		} `json:"patches"`
	} `json:"profiles"`
}

type skaffoldRelease struct {
	Name              string            `json:"name"`
	ChartPath         string            `json:"chartPath"`
	Namespace         string            `json:"namespace"`
	CreateNamespace   bool              `json:"createNamespace"`
	Wait              bool              `json:"wait"`
	ValuesFiles       []string          `json:"valuesFiles"`
	SetValues         map[string]any    `json:"setValues"`
	SetValueTemplates map[string]string `json:"setValueTemplates"`
}

// TestSkaffold: skaffold.yaml builds every service's image and deploys
// each with the chart under the tag just built, in the dev and prod profiles.
func TestSkaffold(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "skaffold.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg skaffoldConfig
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		t.Fatalf("skaffold.yaml: %v", err)
	}
	if !strings.HasPrefix(cfg.APIVersion, "skaffold/v4") || cfg.Kind != "Config" {
		t.Errorf("apiVersion %q kind %q", cfg.APIVersion, cfg.Kind)
	}
	dockerfiles := map[string]string{}
	for _, a := range cfg.Build.Artifacts {
		dockerfiles[a.Image] = a.Docker.Dockerfile
	}
	if len(cfg.Deploy.Helm.Releases) != 1 {
		t.Fatalf("%d helm releases, want 1", len(cfg.Deploy.Helm.Releases))
	}
	rel := cfg.Deploy.Helm.Releases[0]
	if rel.ChartPath != "charts/greentic-events" {
		t.Errorf("chartPath %q", rel.ChartPath)
	}
	// Skaffold's template variables: IMAGE_REPO_<image>, with every
	// character that cannot be in a template name as '_'.
	sanitize := strings.NewReplacer("/", "_", "-", "_", ".", "_", ":", "_")
	set := map[string]any{}
	for k, v := range rel.SetValues {
		set[k] = v
	}
	for _, svc := range Services {
		image := "greentic/" + svc
		if df := dockerfiles[image]; df != "services/"+svc+"/Dockerfile" {
			t.Errorf("image %s built from %q, want services/%s/Dockerfile", image, df, svc)
		}
		key := valuesKey[svc]
		for field, variable := range map[string]string{"repository": "IMAGE_REPO_", "tag": "IMAGE_TAG_"} {
			want := "{{." + variable + sanitize.Replace(image) + "}}"
			if got := rel.SetValueTemplates[key+".image."+field]; got != want {
				t.Errorf("setValueTemplates[%s.image.%s] = %q, want %q", key, field, got, want)
			}
		}
		set[key+".image.repository"] = "registry.example.com/greentic/" + svc
		set[key+".image.tag"] = "build-" + svc
	}
	if len(cfg.Build.Artifacts) != len(Services) {
		t.Errorf("%d images built, the chart deploys %d", len(cfg.Build.Artifacts), len(Services))
	}

	profiles := map[string][]string{"": rel.ValuesFiles}
	for _, p := range cfg.Profiles {
		for _, patch := range p.Patches {
			if patch.Path == "/deploy/helm/releases/0/valuesFiles" {
				for _, f := range patch.Value.([]any) {
					profiles[p.Name] = append(profiles[p.Name], f.(string))
				}
			}
		}
	}
	for _, name := range []string{"", "dev", "prod"} {
		files, ok := profiles[name]
		if !ok {
			t.Errorf("no profile %q", name)
			continue
		}
		var paths []string
		for _, f := range files {
			paths = append(paths, filepath.Join(root, f))
		}
		objs, err := Render(paths, set)
		if err != nil {
			t.Fatalf("profile %q: %v", name, err)
		}
		for svc, d := range deployments(t, objs) {
			want := fmt.Sprintf("registry.example.com/greentic/%s:build-%s", svc, svc)
			if got := d.Spec.Template.Spec.Containers[0].Image; got != want {
				t.Errorf("profile %q: %s runs %s, want the image skaffold built (%s)", name, svc, got, want)
			}
		}
	}
}
