// Command traffic stands in for real traffic in README's rollout
// tutorials: it serves the inbound metrics Linkerd proxies export for the
// workloads it is given, and runs a Prometheus (built by make testbin)
// that scrapes them every second, both on 127.0.0.1.
//
//	go run ./hack/traffic booksapp/books=50,99.9,20 booksapp/books-v2=50,99.9,20
//
// Each workload is NAMESPACE/DEPLOYMENT=RPS,SUCCESS%,LATENCY_MS. While it
// runs, change one with an HTTP POST of the same form:
//
//	curl -d booksapp/books-v2=50,97,20 127.0.0.1:9099/set
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/meshctl/meshctl/internal/promtest"
)

func main() {
	exporterAddr := flag.String("exporter", "127.0.0.1:9099", "where the proxies' metrics are served, and /set")
	promAddr := flag.String("prometheus", "127.0.0.1:9090", "where Prometheus listens")
	dir := flag.String("dir", "", "Prometheus's data and log (default a temporary directory)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: go run ./hack/traffic [flags] NAMESPACE/DEPLOYMENT=RPS,SUCCESS%%,LATENCY_MS ...\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*exporterAddr, *promAddr, *dir, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "traffic: %v\n", err)
		os.Exit(1)
	}
}

func run(exporterAddr, promAddr, dir string, args []string) error {
	if len(args) == 0 {
		flag.Usage()
		return fmt.Errorf("no workloads")
	}
	ex, err := promtest.Listen(exporterAddr)
	if err != nil {
		return err
	}
	defer ex.Close()
	for _, a := range args {
		if err := set(ex, a); err != nil {
			return err
		}
	}
	// POST /set changes a workload's traffic, beside /metrics.
	ex.Handle("POST /set", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		if err := set(ex, strings.TrimSpace(string(body))); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "set %s\n", strings.TrimSpace(string(body)))
	}))
	if dir == "" {
		if dir, err = os.MkdirTemp("", "meshctl-traffic-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	prom, err := promtest.Launch(ctx, dir, promAddr, ex.Addr())
	if err != nil {
		return err
	}
	defer prom.Stop()
	fmt.Printf("metrics of %d workloads at http://%s/metrics; Prometheus at %s (scrapes every 1s); Ctrl-C stops both\n", len(args), ex.Addr(), prom.URL())
	<-ctx.Done()
	return nil
}

// set parses NAMESPACE/DEPLOYMENT=RPS,SUCCESS%,LATENCY_MS and sets it.
func set(ex *promtest.Exporter, a string) error {
	name, spec, ok := strings.Cut(a, "=")
	ns, dep, ok2 := strings.Cut(name, "/")
	f := strings.Split(spec, ",")
	if !ok || !ok2 || len(f) != 3 {
		return fmt.Errorf("%q: want NAMESPACE/DEPLOYMENT=RPS,SUCCESS%%,LATENCY_MS, such as booksapp/books=50,99.9,20", a)
	}
	var v [3]float64
	for i, s := range f {
		x, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
		if err != nil {
			return fmt.Errorf("%q: %v", a, err)
		}
		v[i] = x
	}
	tr := promtest.Traffic{RPS: v[0], SuccessRate: v[1] / 100, LatencyMs: v[2]}
	if err := tr.Err(); err != nil {
		return fmt.Errorf("%q: %v", a, err)
	}
	ex.Set(ns, dep, tr)
	return nil
}
