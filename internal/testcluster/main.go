package testcluster

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Shared is one test package's cluster: a full cluster with 3 fake nodes,
// started on first use, so that the package's pure tests run without the
// cluster's binaries and cost nothing when run alone (go test -run).
type Shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Get returns the package's cluster, starting it on the first call. When it
// cannot start (the binaries are missing, say) the test fails with a message
// that says how to fix it; it is never skipped.
func (s *Shared) Get(t testing.TB) *Cluster {
	t.Helper()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		s.c, s.err = Start(ctx, Options{Full: true, Nodes: 3})
	})
	if s.err != nil {
		t.Fatalf("this test needs a real cluster: %v", s.err)
	}
	return s.c
}

func (s *Shared) stop() {
	if s.c != nil {
		s.c.Stop()
	}
}

// Main is a test package's TestMain: it runs the tests and stops the
// package's shared cluster, if one of them started it.
func Main(m *testing.M, s *Shared) {
	// controller-runtime's client warns, with a stack trace, when no
	// logger was ever set; meshctl's CLI sets one, tests do it here.
	ctrllog.SetLogger(logr.Discard())
	code := m.Run()
	s.stop()
	os.Exit(code)
}

// StartForTest starts a cluster of the test's own, for a test that changes
// cluster-wide state (nodes, fail-closed webhooks) that later tests must
// not see. It is stopped when the test ends.
func StartForTest(t testing.TB, o Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("this test needs a real cluster: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// StartManyForTest starts n clusters of the test's own at once (a fleet),
// each stopped when the test ends.
func StartManyForTest(t testing.TB, n int, o Options) []*Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs := make([]*Cluster, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range cs {
		wg.Go(func() { cs[i], errs[i] = Start(ctx, o) })
	}
	wg.Wait()
	for _, c := range cs {
		if c != nil {
			t.Cleanup(c.Stop)
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("this test needs %d real clusters: %v", n, err)
	}
	return cs
}
