package sendertest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// Request is one request a Fake received.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// Form is the body read as a URL-encoded form, as much of it as parses.
func (r Request) Form() url.Values {
	form, _ := url.ParseQuery(string(r.Body))
	return form
}

// Fake is an httptest server standing in for a provider's API: it records
// every request and answers with answer.
type Fake struct {
	*httptest.Server
	name   string
	mu     sync.Mutex
	reqs   []Request
	answer http.HandlerFunc
}

// NewFake starts a Fake of the provider name, closed at cleanup. answer
// reads the request body again if it needs it.
func NewFake(t testing.TB, name string, answer http.HandlerFunc) *Fake {
	t.Helper()
	f := &Fake{name: name, answer: answer}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.answer(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// Requests returns the requests received so far.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.reqs...)
}

// Only returns the single request the fake received.
func (f *Fake) Only(t testing.TB) Request {
	t.Helper()
	reqs := f.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake %s got %d requests, want 1", f.name, len(reqs))
	}
	return reqs[0]
}
