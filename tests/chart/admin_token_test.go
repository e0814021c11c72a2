package chart

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"text/template"
)

// generatedTokens is the tokens file of a generated operator token: one
// line, the token named "generated" for admin-api's logs.
var generatedTokens = regexp.MustCompile(`^generated@operator=([A-Za-z0-9]{48})$`)

// adminTokensSecret is the Secret the chart creates for admin-api's tokens.
var adminTokensSecret = Name("admin-tokens")

// TestGeneratedOperatorToken: with neither existingSecret nor tokens (the
// defaults, development), the chart generates one operator token of 48
// letters and digits into its Secret, a new one on each render without a
// cluster; admin-api mounts it, no other object holds it, and the pods'
// checksum is that of the same token.
func TestGeneratedOperatorToken(t *testing.T) {
	t.Parallel()
	for _, vs := range []struct {
		name  string
		files []string
	}{{"defaults", nil}, {"dev", []string{"values-dev.yaml"}}} {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			objs, err := Render(vs.files, nil)
			if err != nil {
				t.Fatal(err)
			}
			first := checkGeneratedToken(t, objs)
			objs, err = Render(vs.files, nil)
			if err != nil {
				t.Fatal(err)
			}
			if second := checkGeneratedToken(t, objs); second == first {
				t.Errorf("two renders generated the same token")
			}
		})
	}
}

// checkGeneratedToken checks the generated token of a render and returns it.
func checkGeneratedToken(t *testing.T, objs []Object) string {
	t.Helper()
	data, ok, err := SecretData(objs, adminTokensSecret)
	if err != nil || !ok {
		t.Fatalf("Secret %s: rendered %v, %v", adminTokensSecret, ok, err)
	}
	if len(data) != 1 {
		t.Errorf("Secret %s has %d keys, want 1 (tokens)", adminTokensSecret, len(data))
	}
	file := string(data["tokens"])
	m := generatedTokens.FindStringSubmatch(file)
	if m == nil {
		t.Fatalf("Secret %s holds %q, want one line generated@operator=<48 letters and digits>", adminTokensSecret, file)
	}
	token := m[1]
	checkAdminTokensFile(t, objs, file)
	for _, o := range objs {
		if o.Kind == "Secret" {
			continue
		}
		for _, form := range []string{token, base64.StdEncoding.EncodeToString([]byte(file))} {
			if strings.Contains(string(o.YAML), form) {
				t.Errorf("%s (%s) holds the generated token", o, o.Source)
			}
		}
	}
	checkTokensChecksum(t, objs, file)
	return token
}

// checkTokensChecksum: admin-api reads its tokens at start, so its pods
// carry the checksum of the tokens file, and change with it.
func checkTokensChecksum(t *testing.T, objs []Object, file string) {
	t.Helper()
	d, err := Deployment(objs, "admin-api")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(file))
	if got, want := d.Spec.Template.Annotations["checksum/secrets"], hex.EncodeToString(sum[:]); got != want {
		t.Errorf("admin-api's pods carry checksum %q, want %q (that of the tokens in the Secret)", got, want)
	}
}

// TestGeneratedTokenKept: on an upgrade the chart finds its Secret in the
// cluster (lookup) and keeps the token it holds; a Secret without the key
// gets a new token.
func TestGeneratedTokenKept(t *testing.T) {
	t.Parallel()
	const kept = "generated@operator=KeptKeptKeptKeptKeptKeptKeptKeptKeptKeptKeptKept"
	tests := []struct {
		name string
		data map[string]any // the Secret's data in the cluster; nil: no Secret
		want string         // the tokens file; "": a new token
	}{
		{"kept", map[string]any{"tokens": base64.StdEncoding.EncodeToString([]byte(kept))}, kept},
		{"no Secret", nil, ""},
		{"another key", map[string]any{"other": base64.StdEncoding.EncodeToString([]byte(kept))}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var looked []string
			lookup := func(apiVersion, kind, namespace, name string) (map[string]any, error) {
				looked = append(looked, strings.Join([]string{apiVersion, kind, namespace, name}, " "))
				if tt.data == nil || apiVersion != "v1" || kind != "Secret" || namespace != "greentic-dev" || name != adminTokensSecret {
					return map[string]any{}, nil
				}
				return map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": name, "namespace": namespace}, "type": "Opaque", "data": tt.data}, nil
			}
			files, err := renderFiles([]string{"values-dev.yaml"}, nil, template.FuncMap{"lookup": lookup})
			if err != nil {
				t.Fatal(err)
			}
			if want := "v1 Secret greentic-dev " + adminTokensSecret; len(looked) != 1 || looked[0] != want {
				t.Errorf("lookups %q, want one: %q", looked, want)
			}
			objs, err := split(files)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				checkGeneratedToken(t, objs)
				return
			}
			checkAdminTokensFile(t, objs, tt.want)
			checkTokensChecksum(t, objs, tt.want)
		})
	}
}

// TestGeneratedTokenNotes: after an install with a generated token, the
// notes say where it is and how to give it to greenticctl; with tokens
// given, they do not.
func TestGeneratedTokenNotes(t *testing.T) {
	t.Parallel()
	files, err := renderFiles([]string{"values-dev.yaml"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	notes := files[ReleaseName+"/templates/NOTES.txt"]
	for _, want := range []string{
		"kubectl -n greentic-dev get secret " + adminTokensSecret + " -o jsonpath='{.data.tokens}' | base64 -d > admin-token",
		"generated@operator=TOKEN",
		"--token-file admin-token",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES.txt does not say %q:\n%s", want, notes)
		}
	}
	files, err = renderFiles([]string{"values-dev.yaml"}, map[string]any{"adminApi.auth.tokens": []any{"ops@operator=0123456789abcdef"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if notes := files[ReleaseName+"/templates/NOTES.txt"]; strings.Contains(notes, "generated") {
		t.Errorf("NOTES.txt speaks of a generated token although tokens are given:\n%s", notes)
	}
}

// TestNoTokenInValuesFiles: no values file the chart ships holds a bearer
// token: whoever reads the repository must not be able to call an
// installation's admin API.
func TestNoTokenInValuesFiles(t *testing.T) {
	t.Parallel()
	token := regexp.MustCompile(`(^|@)(operator|tenant:[^=\s]+)=\S`)
	for _, f := range []string{"values.yaml", "values-dev.yaml", "values-staging.yaml", "values-prod.yaml"} {
		vals, err := LoadValues([]string{f}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tokens, _ := dig(vals, "adminApi", "auth", "tokens").([]any); len(tokens) > 0 {
			t.Errorf("%s: adminApi.auth.tokens holds %d token(s)", f, len(tokens))
		}
		walkStrings(vals, "", func(path, s string) {
			if token.MatchString(s) {
				t.Errorf("%s: %s holds a token", f, path)
			}
		})
	}
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// walkStrings calls fn with every string in v and its dotted path.
func walkStrings(v any, path string, fn func(path, s string)) {
	switch v := v.(type) {
	case string:
		fn(path, v)
	case map[string]any:
		for k, e := range v {
			walkStrings(e, strings.TrimPrefix(path+"."+k, "."), fn)
		}
	case []any:
		for i, e := range v {
			walkStrings(e, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}
