package plan

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/testcluster"
)

// BenchmarkCheck measures `meshctl check` on the repository's mesh.cue with
// the CNI plugin and viz, applied to a real API server, against the anchor
// of `meshctl diff` of the same mesh in the same run (the same render and
// LIST per kind, and a dry-run of what differs: nothing here). Each figure
// is the median of five interleaved runs, from a fresh client, as a CLI run
// connects afresh; requests are counted at the wire, by class (check's one
// POST is its Prometheus query, through the service proxy: a read).
func BenchmarkCheck(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cluster := testcluster.StartForTest(b, testcluster.Options{Full: true})
	base, err := os.ReadFile("../mesh.cue")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "mesh.cue")
	if err := os.WriteFile(path, append(base, "cni: enabled: true\nviz: enabled: true\n"...), 0o644); err != nil {
		b.Fatal(err)
	}
	m, err := (&Loader{}).Load(path)
	if err != nil {
		b.Fatal(err)
	}
	rec := &testcluster.Recorder{}
	fleet := func() *Fleet {
		cfg := rest.CopyConfig(cluster.Config)
		cfg.Wrap(rec.Wrap)
		c, err := apply.New(cfg, "")
		if err != nil {
			b.Fatal(err)
		}
		return Single(&Member{Client: c})
	}
	if _, err := Apply(ctx, m, fleet(), ApplyOptions{Apply: apply.Options{Wait: true, Timeout: 3 * time.Minute}}); err != nil {
		b.Fatal(err)
	}
	s := map[string][]time.Duration{}
	reqs := map[string]map[string]int{}
	timed := func(what string, f func()) {
		rec.Take()
		began := time.Now()
		f()
		s[what] = append(s[what], time.Since(began))
		byClass := map[string]int{}
		for _, r := range rec.Take() {
			byClass[r.Class]++
		}
		reqs[what] = byClass
	}
	b.ResetTimer()
	for range b.N * 5 {
		timed("diff", func() {
			rep, err := Diff(ctx, m, fleet(), DiffOptions{})
			if err != nil || rep.Changed() {
				b.Fatalf("diff: changed %v, %v", rep != nil && rep.Changed(), err)
			}
		})
		for _, o := range []CheckOptions{{}, {DataPlane: true}} {
			what := "check"
			if o.DataPlane {
				what = "check --data-plane"
			}
			timed(what, func() {
				rep, err := Check(ctx, m, fleet(), o)
				if err != nil || rep.Count(CheckError) > 0 {
					b.Fatalf("%s: %d failed, %v", what, rep.Count(CheckError), err)
				}
			})
		}
	}
	b.StopTimer()
	anchor := median(s["diff"])
	b.ReportMetric(0, "ns/op")
	for _, what := range []string{"diff", "check", "check --data-plane"} {
		var classes []string
		for _, c := range slices.Sorted(maps.Keys(reqs[what])) {
			classes = append(classes, fmt.Sprintf("%s %d", c, reqs[what][c]))
		}
		med := median(s[what])
		fmt.Printf("BenchmarkCheck: %-18s median %5.0f ms, %.2f × diff; requests: %s\n", what, float64(med.Microseconds())/1000, med.Seconds()/anchor.Seconds(), strings.Join(classes, ", "))
	}
}
