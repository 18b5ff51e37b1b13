package drift_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/drift"
	"github.com/meshctl/meshctl/drift/source"
)

// TestLoopNamesAnUnreachableServer: with no API server answering, the
// loop's log names the server and where its address came from, as every
// verb does, not client-go's "failed to get server groups".
func TestLoopNamesAnUnreachableServer(t *testing.T) {
	cfg := &rest.Config{Host: "http://127.0.0.1:1"}
	c, err := apply.New(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	src, err := source.Parse("", filepath.Join(t.TempDir(), "mesh.cue"), "", t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	l, err := drift.New(drift.Options{
		Config: cfg, Client: c, ClientSource: "--server http://127.0.0.1:1", Source: src, Version: "test",
		Log: slog.New(slog.NewTextHandler(logs, nil)), Poll: 50 * time.Millisecond, MetricsAddr: "0", HealthAddr: "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	want := "cannot reach the Kubernetes API server at http://127.0.0.1:1 (--server http://127.0.0.1:1): connection refused"
	deadline := time.After(time.Minute)
	for !strings.Contains(logs.String(), want) {
		select {
		case <-deadline:
			t.Fatalf("the log never said %q:\n%s", want, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if strings.Contains(logs.String(), "failed to get server groups") {
		t.Errorf("the log still says client-go's words:\n%s", logs.String())
	}
}
