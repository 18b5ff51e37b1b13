package testcluster

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Recorder records the requests a client sends the API server, so that a
// test can count what the client asks of the server at the wire: the
// outcome where it lives, not the client's own account of it. A client in
// the test's process is recorded by wrapping its transport (Wrap); a
// client process, through a Proxy.
type Recorder struct {
	mu   sync.Mutex
	reqs []Request
}

func (rec *Recorder) record(r *http.Request) {
	rec.add(requestOf(r))
}

// requestOf is r as recorded when it is sent.
func requestOf(r *http.Request) Request {
	return Request{Class: Classify(r), Method: r.Method, Path: r.URL.Path, At: time.Now()}
}

func (rec *Recorder) add(req Request) {
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, req)
	rec.mu.Unlock()
}

// Wrap returns next, recording each request before it is sent; it is what
// rest.Config.Wrap takes.
func (rec *Recorder) Wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		rec.record(r)
		return next.RoundTrip(r)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Take returns the requests recorded since the last Take, and forgets them.
func (rec *Recorder) Take() []Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.reqs
	rec.reqs = nil
	return out
}

// Proxy stands between a client process and the cluster's API server and
// records every request. It serves plain HTTP on loopback and forwards
// each request with the cluster's admin credentials.
type Proxy struct {
	Recorder
	// Kubeconfig points at the proxy.
	Kubeconfig string
}

// Request is one request the proxy forwarded.
type Request struct {
	// Class is what the request does: "discovery", "get", "list",
	// "watch", "dryrun" or "write" (Classify).
	Class string
	// Method and Path are the request's.
	Method, Path string
	// At is when it was sent.
	At time.Time
	// Status is the server's answer, for a request a proxy forwarded
	// (not a watch); 0 when unknown.
	Status int
}

// statusWriter remembers the status a response was written with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap is the writer below, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes on to the writer below, so that streams keep streaming.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Collection is the path of the request's collection with any namespace
// left out ("/api/v1/services" for "/api/v1/namespaces/web/services"):
// what a LIST lists, whatever namespace it was limited to.
func (r Request) Collection() string {
	parts := strings.Split(strings.Trim(r.Path, "/"), "/")
	prefix := min(2, len(parts)) // api/v1
	if parts[0] == "apis" {
		prefix = min(3, len(parts)) // apis/group/version
	}
	rest := parts[prefix:]
	if len(rest) > 2 && rest[0] == "namespaces" {
		rest = rest[2:]
	}
	return "/" + strings.Join(append(parts[:prefix:prefix], rest...), "/")
}

// ProxyOption changes how a proxy forwards.
type ProxyOption func(*http.Request)

// ServerTimesOutWatches drops the timeoutSeconds that clients put on
// watches (client-go's reflectors ask for 5 to 10 minutes), so that the
// API server ends each watch after its own --min-request-timeout (a
// random time between it and twice it): watches closed by the server, as
// often as the cluster is started to close them.
func ServerTimesOutWatches() ProxyOption {
	return func(r *http.Request) {
		q := r.URL.Query()
		if w := q.Get("watch"); w == "true" || w == "1" {
			q.Del("timeoutSeconds")
			r.URL.RawQuery = q.Encode()
		}
	}
}

// StartProxy starts a proxy in front of the cluster, stopped when the test
// ends.
func (c *Cluster) StartProxy(t testing.TB, opts ...ProxyOption) *Proxy {
	t.Helper()
	target, err := url.Parse(c.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{}
	forward := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:     transport,
		FlushInterval: -1, // watches stream
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, o := range opts {
			o(r)
		}
		// A watch is recorded when it starts; any other request when the
		// server has answered, with its status.
		req := requestOf(r)
		if req.Class == "watch" {
			p.add(req)
			forward.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		forward.ServeHTTP(sw, r)
		req.Status = sw.status
		p.add(req)
	}))
	t.Cleanup(srv.Close)

	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["proxy"] = &clientcmdapi.Cluster{Server: srv.URL}
	cfg.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	cfg.CurrentContext = "proxy"
	p.Kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	return p
}

// Classify names what a request to the API server does: "discovery" (/api,
// /apis/group/version), "get" (a named object), "list" (a collection),
// "watch", "dryrun" or "write".
func Classify(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case q.Has("dryRun"):
		return "dryrun"
	case r.Method != http.MethodGet:
		return "write"
	case q.Get("watch") == "true" || q.Get("watch") == "1":
		return "watch"
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// /api/v1/RES[/NAME], /api/v1/namespaces/NS/RES[/NAME],
	// /apis/G/V/RES[/NAME], /apis/G/V/namespaces/NS/RES[/NAME]
	rest := parts[min(2, len(parts)):]
	if parts[0] == "apis" {
		rest = parts[min(3, len(parts)):]
	}
	if len(rest) > 2 && rest[0] == "namespaces" {
		rest = rest[2:]
	}
	switch len(rest) {
	case 0:
		return "discovery"
	case 1:
		return "list"
	}
	return "get"
}
