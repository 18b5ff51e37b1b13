package generators

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshctl/meshctl/schema"
)

// benchLoadBuild measures what `meshctl build` does: load and vet mesh.cue
// against the schema, render, and encode to YAML.
func benchLoadBuild(b *testing.B, src string) {
	b.ReportAllocs()
	for b.Loop() {
		m, err := schema.LoadSources(schema.Source{Name: "mesh.cue", Data: []byte(src)})
		if err != nil {
			b.Fatal(err)
		}
		objs, err := Render(m, Inputs{})
		if err != nil {
			b.Fatal(err)
		}
		if err := Encode(io.Discard, objs, "yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadBuildDefault(b *testing.B) { benchLoadBuild(b, "") }

func BenchmarkLoadBuild1000Namespaces(b *testing.B) {
	var sb strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&sb, "namespaces: \"app-%d\": inject: \"enabled\"\n", i)
	}
	benchLoadBuild(b, sb.String())
}

// benchMesh is the generated mesh of n services × 5 routes, every route
// different (testdata/bench).
func benchMesh(b *testing.B, n int) string {
	b.Helper()
	out, err := exec.Command("go", "run", "../testdata/bench", "-services", fmt.Sprint(n), "-routes", "5").Output()
	if err != nil {
		b.Fatalf("go run ../testdata/bench: %v", err)
	}
	return string(out)
}

func BenchmarkLoadBuild1000Services(b *testing.B) { benchLoadBuild(b, benchMesh(b, 1000)) }

// BenchmarkBuildProcess times `meshctl build` as a user runs it, a process
// per run, on generated meshes of 1,000, 4,000 and 10,000 services × 5
// routes, every route different, each service model "serviceprofile"
// (testdata/bench). meshctl runs three ways:
//
//   - cold: MESHCTL_CACHE=off, every service evaluated (a first run, or CI
//     without a kept cache);
//   - warm: the cache directory filled by the warm-up run of the same file
//     (a run on a mesh that did not change, such as a second diff);
//   - 1 edited: the cache filled from the file, and every run on the same
//     file with one service's port changed to a value no run used before,
//     so that every run evaluates exactly one service (the edit-and-diff
//     loop).
//
// In the same run it times the pure-CUE anchor, `cue export` (v0.17.1) of
// testdata/bench/anchor.cue, which renders the same ServiceProfiles with
// comprehensions and a light schema; `cue export` of the mesh file alone
// (no schema, nothing rendered, JSON out: what CUE takes to evaluate the
// data at all, the floor of a cold run); and, when MESHCTL_BEFORE names a
// meshctl binary from before issue 12, that binary (on the mesh without
// model fields, which it predates). The tools run interleaved, buildRuns
// times each; the benchmark reports each one's minimum and median wall
// time and its largest peak RSS, and logs a table. It runs once
// (-benchtime 1x), as `make bench` does.
func BenchmarkBuildProcess(b *testing.B) {
	dir := b.TempDir()
	meshctl := filepath.Join(dir, "meshctl")
	if out, err := exec.Command("go", "build", "-o", meshctl, "../cmd/meshctl").CombinedOutput(); err != nil {
		b.Fatalf("go build meshctl: %v\n%s", err, out)
	}
	cue := benchCUE(b)
	before := os.Getenv("MESHCTL_BEFORE")
	runs := 5
	if s := os.Getenv("BENCH_BUILD_RUNS"); s != "" {
		fmt.Sscan(s, &runs)
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n| services × routes | tool | wall min / median | peak RSS (max) | CPU user+sys (median) |\n|---|---|---|---|---|\n")
	for _, n := range []int{1000, 4000, 10000} {
		mesh := filepath.Join(dir, fmt.Sprintf("mesh-%d.cue", n))
		oldMesh := filepath.Join(dir, fmt.Sprintf("mesh-%d-nomodel.cue", n))
		for path, model := range map[string]bool{mesh: true, oldMesh: false} {
			out, err := exec.Command("go", "run", "../testdata/bench", "-services", fmt.Sprint(n), "-routes", "5", fmt.Sprintf("-model=%v", model)).Output()
			if err != nil {
				b.Fatalf("go run ../testdata/bench: %v", err)
			}
			if err := os.WriteFile(path, out, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		src, err := os.ReadFile(mesh)
		if err != nil {
			b.Fatal(err)
		}
		// edited writes the mesh to one path, the file a user edits: as
		// generated for the warm-up (run -1), and with service 0's port
		// changed to a new value for each run after it.
		editedPath := filepath.Join(dir, fmt.Sprintf("mesh-%d-edited.cue", n))
		edited := func(b *testing.B, run int) string {
			changed := src
			if run >= 0 {
				changed = bytes.Replace(src, []byte("port:  8000\n"), []byte(fmt.Sprintf("port:  %d\n", 20000+run)), 1)
				if bytes.Equal(changed, src) {
					b.Fatal("testdata/bench no longer writes service 0 with port:  8000")
				}
			}
			if err := os.WriteFile(editedPath, changed, 0o644); err != nil {
				b.Fatal(err)
			}
			return editedPath
		}
		warm, edit := filepath.Join(dir, fmt.Sprintf("cache-warm-%d", n)), filepath.Join(dir, fmt.Sprintf("cache-edit-%d", n))
		type tool struct {
			name string
			env  []string
			args func(b *testing.B, run int) []string
		}
		fixed := func(args ...string) func(*testing.B, int) []string {
			return func(*testing.B, int) []string { return args }
		}
		tools := []tool{
			{"meshctl, cold", []string{"MESHCTL_CACHE=off"}, fixed(meshctl, "build", mesh)},
			{"meshctl, warm", []string{"MESHCTL_CACHE=" + warm}, fixed(meshctl, "build", mesh)},
			{"meshctl, 1 edited", []string{"MESHCTL_CACHE=" + edit}, func(b *testing.B, run int) []string {
				return []string{meshctl, "build", edited(b, run)}
			}},
			{"cue export (anchor)", nil, fixed(cue, "export", "../testdata/bench/anchor.cue", mesh, "-e", "objects", "--out", "yaml")},
			// The floor of any render that evaluates the file with CUE:
			// the data alone, no schema, written as JSON (cue's fastest).
			{"cue export (data only)", nil, fixed(cue, "export", mesh)},
		}
		if before != "" {
			tools = append(tools, tool{"meshctl before", nil, fixed(before, "build", oldMesh)})
		}
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			results := make([][]procRun, len(tools))
			for _, t := range tools { // warm-up, and a check of what each renders
				r := runProc(b, t.env, t.args(b, -1), true)
				if got := strings.Count(r.out, "kind: ServiceProfile\n"); got < n && !strings.HasSuffix(t.name, "(data only)") {
					b.Fatalf("%s rendered %d ServiceProfiles, want %d", t.name, got, n)
				}
			}
			for run := range runs {
				for i, t := range tools {
					results[i] = append(results[i], runProc(b, t.env, t.args(b, run), false))
				}
			}
			medians := map[string]time.Duration{}
			for i, t := range tools {
				rs := results[i]
				walls := make([]time.Duration, len(rs))
				cpus := make([]time.Duration, len(rs))
				var rss int64
				for j, r := range rs {
					walls[j], cpus[j], rss = r.wall, r.cpu, max(rss, r.maxRSS)
				}
				slices.Sort(walls)
				slices.Sort(cpus)
				med := walls[len(walls)/2]
				medians[t.name] = med
				metric := strings.NewReplacer("(", "", ")", "", ",", "", " ", "-").Replace(t.name)
				b.ReportMetric(walls[0].Seconds(), metric+"-min-s")
				b.ReportMetric(med.Seconds(), metric+"-median-s")
				b.ReportMetric(float64(rss)/(1<<20), metric+"-peak-MB")
				b.Logf("%s: wall %v, cpu %v, peak RSS %d MB", t.name, walls, cpus, rss>>20)
				fmt.Fprintf(&table, "| %d × 5 | %s | %.2f s / %.2f s | %d MB | %.2f s |\n", n, t.name, walls[0].Seconds(), med.Seconds(), rss>>20, cpus[len(cpus)/2].Seconds())
			}
			for _, mode := range []string{"cold", "warm", "1 edited"} {
				b.ReportMetric(float64(medians["cue export (anchor)"])/float64(medians["meshctl, "+mode]), "anchor/meshctl-"+strings.ReplaceAll(mode, " ", "-"))
			}
			b.ReportMetric(0, "ns/op")
		})
	}
	fmt.Print(table.String()) // for BENCHMARKS.md
}

type procRun struct {
	out       string // stdout, when asked for
	wall, cpu time.Duration
	maxRSS    int64 // bytes
}

// timeBin measures each run: GNU time reports the child's own peak RSS. A
// child's rusage from wait4 does not: Go starts it sharing the test
// process's memory (vfork), and Linux carries that memory's high-water
// mark into the child's maxrss, so every child of a test holding a few
// hundred MB would report at least that.
const timeBin = "/usr/bin/time"

// runProc runs a command under GNU time and measures it: wall time, and
// the CPU (user+sys) and peak RSS of the command itself. keepOut keeps its
// stdout (the warm-up's check); timed runs discard it, so that the test
// process stays small.
func runProc(b *testing.B, env, args []string, keepOut bool) procRun {
	b.Helper()
	if _, err := os.Stat(timeBin); err != nil {
		b.Fatalf("the process benchmarks measure with GNU time: %v (apt-get install time)", err)
	}
	cmd := exec.Command(timeBin, append([]string{"-f", "\nBENCHRUSAGE %U %S %M"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stderr = &stderr
	if keepOut {
		cmd.Stdout = &stdout
	}
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var user, sys float64
	var rssKiB int64
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if _, err := fmt.Sscanf(lines[len(lines)-1], "BENCHRUSAGE %f %f %d", &user, &sys, &rssKiB); err != nil {
		b.Fatalf("%s: no rusage from %s: %v\n%s", strings.Join(args, " "), timeBin, err, stderr.String())
	}
	return procRun{
		out:    stdout.String(),
		wall:   wall,
		cpu:    time.Duration((user + sys) * float64(time.Second)),
		maxRSS: rssKiB << 10,
	}
}

// benchCUE builds the upstream cue command, v0.17.1, from the Go module
// proxy into the user's cache (once; later runs find it there).
func benchCUE(b *testing.B) string {
	b.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(cache, "meshctl-bench", "cue-v0.17.1")
	cue := filepath.Join(bin, "cue")
	if _, err := os.Stat(cue); err == nil {
		return cue
	}
	cmd := exec.Command("go", "install", "cuelang.org/go/cmd/cue@v0.17.1")
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building cue v0.17.1: %v\n%s", err, out)
	}
	return cue
}
