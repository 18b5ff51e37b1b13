package generators

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/schema"
)

var update = flag.Bool("update", false, "rewrite the golden renders in testdata/golden")

func load(t testing.TB, src string) *schema.Mesh {
	t.Helper()
	m, err := schema.LoadSources(schema.Source{Name: "mesh.cue", Data: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func build(t testing.TB, m *schema.Mesh, in Inputs) []byte {
	t.Helper()
	objs, err := Render(m, in)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, objs, "yaml"); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestGolden renders each testdata/golden/*.cue and compares it with the
// .yaml beside it (refresh with go test ./generators -update).
func TestGolden(t *testing.T) {
	inputs, _ := filepath.Glob("../testdata/golden/*.cue")
	if len(inputs) < 4 {
		t.Fatalf("expected the default, ha, cni and replicas inputs, found %v", inputs)
	}
	for _, f := range inputs {
		t.Run(filepath.Base(f), func(t *testing.T) {
			m, err := schema.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			got := build(t, m, Inputs{})
			golden := strings.TrimSuffix(f, ".cue") + ".yaml"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./generators -update)", err)
			}
			if d := cmp.Diff(string(want), string(got)); d != "" {
				t.Errorf("render differs from %s (-want +got):\n%s", golden, d)
			}
		})
	}
}

func testCerts(t testing.TB) *certs.Bundle {
	t.Helper()
	b, err := certs.Generate(CertOptions(load(t, ""), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildTwiceIsIdentical(t *testing.T) {
	c := testCerts(t)
	for _, src := range []string{"", "controlPlane: ha: true\ncni: enabled: true", "namespaces: {a: {}, b: {}, c: {inject: \"ingress\"}}"} {
		for _, in := range []Inputs{{}, {Certs: c}} {
			first, second := build(t, load(t, src), in), build(t, load(t, src), in)
			if !bytes.Equal(first, second) {
				t.Errorf("two builds of %q differ", src)
			}
		}
	}
}

func ids(t *testing.T, m *schema.Mesh, in Inputs) []string {
	t.Helper()
	objs, err := Render(m, in)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		if o.Object.GetKind() != "CustomResourceDefinition" {
			out = append(out, o.ID())
		}
	}
	return out
}

// upstreamCore is the object set of `linkerd install` at 2.19 (FACTS §5.1),
// without its CRDs.
var upstreamCore = []string{
	"Namespace/linkerd",
	"ClusterRole/linkerd-heartbeat", "ClusterRole/linkerd-linkerd-destination", "ClusterRole/linkerd-linkerd-identity",
	"ClusterRole/linkerd-linkerd-proxy-injector", "ClusterRole/linkerd-policy",
	"ClusterRoleBinding/linkerd-destination-policy", "ClusterRoleBinding/linkerd-heartbeat", "ClusterRoleBinding/linkerd-linkerd-destination",
	"ClusterRoleBinding/linkerd-linkerd-identity", "ClusterRoleBinding/linkerd-linkerd-proxy-injector",
	"MutatingWebhookConfiguration/linkerd-proxy-injector-webhook-config",
	"ValidatingWebhookConfiguration/linkerd-policy-validator-webhook-config", "ValidatingWebhookConfiguration/linkerd-sp-validator-webhook-config",
	"ConfigMap/linkerd/linkerd-config", "ConfigMap/linkerd/linkerd-identity-trust-roots",
	"CronJob/linkerd/linkerd-heartbeat",
	"Deployment/linkerd/linkerd-destination", "Deployment/linkerd/linkerd-identity", "Deployment/linkerd/linkerd-proxy-injector",
	"Role/linkerd/ext-namespace-metadata-linkerd-config", "Role/linkerd/linkerd-heartbeat", "Role/linkerd/remote-discovery",
	"RoleBinding/linkerd/linkerd-destination-remote-discovery", "RoleBinding/linkerd/linkerd-heartbeat",
	"Secret/linkerd/linkerd-config-overrides", "Secret/linkerd/linkerd-identity-issuer", "Secret/linkerd/linkerd-policy-validator-k8s-tls",
	"Secret/linkerd/linkerd-proxy-injector-k8s-tls", "Secret/linkerd/linkerd-sp-validator-k8s-tls",
	"Service/linkerd/linkerd-dst", "Service/linkerd/linkerd-dst-headless", "Service/linkerd/linkerd-identity",
	"Service/linkerd/linkerd-identity-headless", "Service/linkerd/linkerd-policy", "Service/linkerd/linkerd-policy-validator",
	"Service/linkerd/linkerd-proxy-injector", "Service/linkerd/linkerd-sp-validator",
	"ServiceAccount/linkerd/linkerd-destination", "ServiceAccount/linkerd/linkerd-heartbeat",
	"ServiceAccount/linkerd/linkerd-identity", "ServiceAccount/linkerd/linkerd-proxy-injector",
}

func without(list []string, drop ...string) []string {
	var out []string
	for _, s := range list {
		keep := true
		for _, d := range drop {
			keep = keep && s != d
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}

func TestObjectSetMatchesUpstream(t *testing.T) {
	certObjects := []string{"ConfigMap/linkerd/linkerd-identity-trust-roots", "Secret/linkerd/linkerd-identity-issuer",
		"Secret/linkerd/linkerd-policy-validator-k8s-tls", "Secret/linkerd/linkerd-proxy-injector-k8s-tls", "Secret/linkerd/linkerd-sp-validator-k8s-tls"}
	noKubeSystem := "controlPlane: labelKubeSystem: false\n"
	tests := []struct {
		name string
		src  string
		in   Inputs
		want []string
	}{
		{"with certificates, as linkerd install", noKubeSystem, Inputs{Certs: testCerts(t)}, upstreamCore},
		{"without certificates", noKubeSystem, Inputs{}, without(upstreamCore, certObjects...)},
		{"ha adds three PDBs", noKubeSystem + "controlPlane: ha: true", Inputs{Certs: testCerts(t)},
			append(append([]string{}, upstreamCore...), "PodDisruptionBudget/linkerd/linkerd-dst",
				"PodDisruptionBudget/linkerd/linkerd-identity", "PodDisruptionBudget/linkerd/linkerd-proxy-injector")},
		{"heartbeat off", noKubeSystem + "controlPlane: heartbeat: enabled: false", Inputs{Certs: testCerts(t)},
			without(upstreamCore, "ClusterRole/linkerd-heartbeat", "ClusterRoleBinding/linkerd-heartbeat", "CronJob/linkerd/linkerd-heartbeat",
				"Role/linkerd/linkerd-heartbeat", "RoleBinding/linkerd/linkerd-heartbeat", "ServiceAccount/linkerd/linkerd-heartbeat")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(sorted(tc.want), sorted(ids(t, load(t, tc.src), tc.in))); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
