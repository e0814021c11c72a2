package flow

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/greentic/events/pkg/safehttp"
)

// httpFlow is a flow whose node "call" is an http node with the given
// config (indented by six spaces) and node-level keys (by four); then a
// respond node "after" echoes its output.
func httpFlow(config, nodeKeys string) string {
	return `name: h
version: "1"
nodes:
  - id: call
    type: http
    config:
` + config + nodeKeys + `    next: after
  - id: after
    type: script
    config: {script: "nodes.call"}
triggers:
  - {type: event, event_type: ">", target: call}
`
}

// server is an httptest server counting its requests.
type server struct {
	*httptest.Server
	hits atomic.Int32
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// payloadFor is an event payload giving a flow the server's base URL.
func payloadFor(s *server, extra string) string {
	b, _ := json.Marshal(s.URL)
	if extra != "" {
		extra = ", " + extra
	}
	return `{"base": ` + string(b) + extra + `}`
}

func TestHTTPNode(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery,
			"auth": r.Header.Get("Authorization"), "count": r.Header.Get("X-Count"),
			"ctype": r.Header.Get("Content-Type"), "body": string(body),
		})
	}
	tests := []struct {
		name    string
		config  string
		payload string
		handler http.HandlerFunc
		lim     Limits
		noHTTP  bool
		want    string // JSON of nodes.call
		wantErr string
		hits    int32
	}{
		{
			name: "GET with templated url and headers",
			config: `      url: "{{ event.payload.base }}/orders/{{ event.payload.id }}?q={{ event.payload.q }}"
      headers:
        Authorization: "Bearer {{ event.payload.token }}"
        X-Count: "{{ event.payload.n }}"
`,
			payload: `"id": "o-7", "q": "x", "token": "t0k", "n": 2`,
			handler: echo,
			want: `{"status": 200, "headers": {"content-type": "application/json; charset=utf-8", "x-multi": "a, b"},
				"body": {"method": "GET", "path": "/orders/o-7", "query": "q=x", "auth": "Bearer t0k", "count": "2", "ctype": "", "body": ""}}`,
			hits: 1,
		},
		{
			name: "POST JSON body",
			config: `      method: POST
      url: "{{ event.payload.base }}/orders"
      body: {id: "{{ event.payload.id }}", n: "{{ event.payload.n }}", tags: [a]}
`,
			payload: `"id": "o-7", "n": 2`,
			handler: echo,
			want: `{"status": 200, "headers": {"content-type": "application/json; charset=utf-8", "x-multi": "a, b"},
				"body": {"method": "POST", "path": "/orders", "query": "", "auth": "", "count": "", "ctype": "application/json", "body": "{\"id\":\"o-7\",\"n\":2,\"tags\":[\"a\"]}"}}`,
			hits: 1,
		},
		{
			name: "string body and own content type",
			config: `      method: PUT
      url: "{{ event.payload.base }}/csv"
      headers: {Content-Type: text/csv}
      body: "{{ event.payload.id }},1"
`,
			payload: `"id": "o-7"`,
			handler: echo,
			want: `{"status": 200, "headers": {"content-type": "application/json; charset=utf-8", "x-multi": "a, b"},
				"body": {"method": "PUT", "path": "/csv", "query": "", "auth": "", "count": "", "ctype": "text/csv", "body": "o-7,1"}}`,
			hits: 1,
		},
		{
			name:   "text response",
			config: "      url: \"{{ event.payload.base }}/t\"\n",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusCreated)
				io.WriteString(w, `{"not": "parsed"}`)
			},
			want: `{"status": 201, "headers": {"content-type": "text/plain"}, "body": "{\"not\": \"parsed\"}"}`,
			hits: 1,
		},
		{
			name:   "JSON that does not parse stays text",
			config: "      url: \"{{ event.payload.base }}/t\"\n",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/problem+json")
				io.WriteString(w, `{oops`)
			},
			want: `{"status": 200, "headers": {"content-type": "application/problem+json"}, "body": "{oops"}`,
			hits: 1,
		},
		{
			name:   "HEAD",
			config: "      method: HEAD\n      url: \"{{ event.payload.base }}/h\"\n",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodHead {
					w.WriteHeader(http.StatusMethodNotAllowed)
				}
			},
			want: `{"status": 200, "headers": {}, "body": ""}`,
			hits: 1,
		},
		{
			name:    "404 fails the node without showing the query",
			config:  "      url: \"{{ event.payload.base }}/missing?api_key=s3cret\"\n",
			handler: http.NotFound,
			wantErr: `node "call" (http): GET http://127.0.0.1:PORT/missing: status 404`,
			hits:    1,
		},
		{
			name:    "fail_on_status false",
			config:  "      url: \"{{ event.payload.base }}/missing\"\n      fail_on_status: false\n",
			handler: http.NotFound,
			want: `{"status": 404, "headers": {"content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff"},
				"body": "404 page not found\n"}`,
			hits: 1,
		},
		{
			name:    "allowed_hosts refuses the host",
			config:  "      url: \"{{ event.payload.base }}/x?token=s3cret\"\n      allowed_hosts: [api.example.com, \"*.example.com\"]\n",
			handler: echo,
			wantErr: `GET http://127.0.0.1:PORT/x: host "127.0.0.1" is not in allowed_hosts`,
		},
		{
			name:    "allowed_hosts lets the host through",
			config:  "      url: \"{{ event.payload.base }}/x\"\n      allowed_hosts: [api.example.com, 127.0.0.1]\n",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			want:    `{"status": 200, "headers": {}, "body": ""}`,
			hits:    1,
		},
		{
			name:    "no HTTP client",
			config:  "      url: \"{{ event.payload.base }}/x\"\n",
			handler: echo,
			noHTTP:  true,
			wantErr: ErrNoHTTP.Error(),
		},
		{
			name:   "response too large",
			config: "      url: \"{{ event.payload.base }}/big\"\n",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, strings.Repeat("x", 3000))
			},
			lim:     Limits{MaxOutputBytes: 2000},
			wantErr: "GET http://127.0.0.1:PORT/big: response body larger than 2000 bytes",
			hits:    1,
		},
		{
			name:    "rendered url not absolute",
			config:  "      url: \"{{ event.payload.id }}/x\"\n",
			payload: `"id": "o-7"`,
			handler: echo,
			wantErr: `url "o-7/x" is not an absolute http(s) URL`,
		},
		{
			name:    "header value with a newline",
			config:  "      url: \"{{ event.payload.base }}/x\"\n      headers: {X-Token: \"{{ event.payload.token }}\"}\n",
			payload: `"token": "s3cret\r\nX-Evil: 1"`,
			handler: echo,
			wantErr: "headers.X-Token: the value contains control characters",
		},
		{
			name:    "url not a string",
			config:  "      url: \"{{ event.payload.n }}\"\n",
			payload: `"n": 1`,
			handler: echo,
			wantErr: "url: must be a string, got a number",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.handler)
			p := mustCompile(t, httpFlow(tt.config, ""), tt.lim)
			in := Input{Event: event("x", payloadFor(srv, tt.payload)), HTTP: srv.Client()}
			if tt.noHTTP {
				in.HTTP = nil
			}
			res := p.Run(context.Background(), in, "call")
			if got := srv.hits.Load(); got != tt.hits {
				t.Errorf("server saw %d requests, want %d", got, tt.hits)
			}
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "http://127.0.0.1:PORT", srv.URL)
				if res.Status != StatusError || !strings.Contains(res.Error, want) {
					t.Fatalf("got %v %q, want an error containing %q", res.Status, res.Error, want)
				}
				if strings.Contains(res.Error, "s3cret") || strings.Contains(res.Trace[0].Error, "s3cret") {
					t.Errorf("error shows a secret: %q", res.Error)
				}
				if res.Transient {
					t.Errorf("Transient is set for %q", res.Error)
				}
				return
			}
			if res.Status != StatusOK {
				t.Fatalf("run: %s", res.Error)
			}
			// Date and Content-Length vary: compare without them.
			var out map[string]any
			json.Unmarshal(res.Output, &out)
			delete(out["headers"].(map[string]any), "date")
			delete(out["headers"].(map[string]any), "content-length")
			b, _ := json.Marshal(out)
			jsonEqual(t, b, tt.want)
			if res.Trace[0].Attempts != 1 {
				t.Errorf("attempts = %d", res.Trace[0].Attempts)
			}
		})
	}
}

// TestHTTPSafeClient runs the http node with safehttp's clients: the default
// policy refuses loopback, naming the address, and the refusal is not
// retried; a policy allowing loopback reaches the server.
func TestHTTPSafeClient(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	p := mustCompile(t, httpFlow("      url: \"{{ event.payload.base }}/x?key=s3cret\"\n", "    retry: {max_attempts: 3, backoff: 1ms}\n"), Limits{})
	in := Input{Event: event("x", payloadFor(srv, ""))}

	in.HTTP = safehttp.Policy{}.Client()
	res := p.Run(context.Background(), in, "call")
	if res.Status != StatusError || !strings.Contains(res.Error, "GET "+srv.URL+"/x: ") || !strings.Contains(res.Error, "127.0.0.1 is a loopback address") {
		t.Fatalf("default policy: got %v %q", res.Status, res.Error)
	}
	t.Logf("blocked: %s", res.Error)
	if strings.Contains(res.Error, "s3cret") {
		t.Errorf("error shows the query: %q", res.Error)
	}
	if res.Transient || res.Trace[0].Attempts != 1 || srv.hits.Load() != 0 {
		t.Errorf("blocked: transient %v, attempts %d, hits %d; want false, 1, 0", res.Transient, res.Trace[0].Attempts, srv.hits.Load())
	}

	for name, pol := range map[string]safehttp.Policy{
		"AllowPrivate": {AllowPrivate: true},
		"AllowCIDRs":   {AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	} {
		t.Run(name, func(t *testing.T) {
			in.HTTP = pol.Client()
			res := p.Run(context.Background(), in, "call")
			if res.Status != StatusOK {
				t.Fatalf("run: %s", res.Error)
			}
			var out struct{ Status int }
			json.Unmarshal(res.Output, &out)
			if out.Status != 200 {
				t.Errorf("output %s", res.Output)
			}
		})
	}
}
