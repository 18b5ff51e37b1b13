package schema

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the expected error files")

func TestDefaultMesh(t *testing.T) {
	m, err := LoadSources(Source{Name: "mesh.cue", Data: nil})
	if err != nil {
		t.Fatal(err)
	}
	got := struct {
		Version, Policy, Scheme, Anchor string
		Replicas                        int
		HA, PDB, CNI, Viz, Heartbeat    bool
	}{m.Linkerd.Version, m.ControlPlane.WebhookFailurePolicy, m.ControlPlane.Identity.Issuer.Scheme,
		m.ControlPlane.Identity.TrustAnchor.Source, m.ControlPlane.Replicas, m.ControlPlane.HA,
		m.ControlPlane.PodDisruptionBudget, m.CNI.Enabled, m.Viz.Enabled, m.ControlPlane.Heartbeat.Enabled}
	want := got
	want.Version, want.Policy, want.Scheme, want.Anchor = "edge-25.10.7", "Ignore", "linkerd.io/tls", "generated"
	want.Replicas, want.HA, want.PDB, want.CNI, want.Viz, want.Heartbeat = 1, false, false, false, false, true
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
}

func TestHADefaults(t *testing.T) {
	tests := []struct {
		name, src    string
		replicas     int
		policy       string
		identityCPU  string
		proxyMemory  string
		antiAffinity bool
	}{
		{"ha", "controlPlane: ha: true", 3, "Fail", "100m", "250Mi", true},
		{"ha with replicas", "controlPlane: {ha: true, replicas: 2}", 2, "Fail", "100m", "250Mi", true},
		{"ha with overrides", `controlPlane: {ha: true, webhookFailurePolicy: "Ignore", resources: identity: cpu: request: "1"}`, 3, "Ignore", "1", "250Mi", true},
		{"replicas without ha", "controlPlane: replicas: 2", 2, "Ignore", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := LoadSources(Source{Name: "mesh.cue", Data: []byte(tc.src)})
			if err != nil {
				t.Fatal(err)
			}
			cp := m.ControlPlane
			got := []any{cp.Replicas, cp.WebhookFailurePolicy, cp.Resources.Identity.CPU.Request, cp.Proxy.Resources.Memory.Limit, cp.PodAntiAffinity}
			want := []any{tc.replicas, tc.policy, tc.identityCPU, tc.proxyMemory, tc.antiAffinity}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// TestInvalid checks that every file in testdata/invalid fails with exactly
// the text in its .err file (refresh with -update).
func TestInvalid(t *testing.T) {
	files, err := filepath.Glob("../testdata/invalid/*.cue")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid inputs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = LoadSources(Source{Name: filepath.Base(f), Data: data})
			if err == nil {
				t.Fatal("loaded without error")
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error is %T, not *Error: %v", err, err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".cue") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./schema -update)", err)
			}
			if d := cmp.Diff(string(want), got); d != "" {
				t.Errorf("error text (-want +got):\n%s", d)
			}
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				if !strings.HasPrefix(line, filepath.Base(f)+":") {
					t.Errorf("line without a position in the user's file: %q", line)
				}
			}
		})
	}
}

// TestExamplesVetLikeCUE loads each example with the schema exactly as
// `cue vet -c schema/mesh.cue FILE` does, and with meshctl's loader.
func TestExamplesVetLikeCUE(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.cue")
	files = append(files, "../mesh.cue")
	if len(files) < 2 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			insts := load.Instances([]string{"schema/mesh.cue", strings.TrimPrefix(f, "../")}, &load.Config{Dir: ".."})
			if len(insts) != 1 || insts[0].Err != nil {
				t.Fatalf("load: %v", insts[0].Err)
			}
			v := cuecontext.New().BuildInstance(insts[0])
			if err := v.Validate(cue.Concrete(true)); err != nil {
				t.Fatalf("cue vet -c would fail: %v", err)
			}
			if _, err := Load(f); err != nil {
				t.Fatalf("meshctl loader: %v", err)
			}
		})
	}
	// The same check must fail on an invalid file, or it proves nothing.
	insts := load.Instances([]string{"schema/mesh.cue", "testdata/invalid/split-sum.cue"}, &load.Config{Dir: ".."})
	if err := cuecontext.New().BuildInstance(insts[0]).Validate(cue.Concrete(true)); err == nil {
		t.Fatal("cue vet accepted testdata/invalid/split-sum.cue")
	}
}

func TestLoadDirectoryMergesFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.cue", "package mesh\ncontrolPlane: ha: true\n")
	write("b.cue", "package mesh\nnamespaces: shop: inject: \"enabled\"\n_replicas: 5\ncontrolPlane: replicas: _replicas\n")
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.ControlPlane.Replicas != 5 || !m.ControlPlane.HA || m.Namespaces["shop"].Inject != "enabled" {
		t.Errorf("merged mesh: replicas %d, ha %v, namespaces %v", m.ControlPlane.Replicas, m.ControlPlane.HA, m.Namespaces)
	}
	write("c.cue", "package other\n")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "package other") {
		t.Errorf("mixed packages: got %v", err)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no .cue files") {
		t.Errorf("empty directory: got %v", err)
	}
}

// FuzzLoad feeds arbitrary bytes to the loader: it must return a mesh or an
// error, never panic.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/invalid/*.cue")
	ex, _ := filepath.Glob("../examples/*.cue")
	for _, s := range append(seeds, ex...) {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := LoadSources(Source{Name: "fuzz.cue", Data: data})
		if err == nil && m == nil {
			t.Fatal("nil mesh without error")
		}
	})
}
