package generators

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/cryptotest"
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
// .yaml beside it, and renders it again with fixed test certificates into
// .certs.yaml, so that the certificate-bearing objects are covered too.
// Refresh with go test ./generators -update; `make golden-check` fails when
// refreshing would change, add or remove a file.
func TestGolden(t *testing.T) {
	inputs, _ := filepath.Glob("../testdata/golden/*.cue")
	if len(inputs) < 4 {
		t.Fatalf("expected the default, ha, cni and replicas inputs, found %v", inputs)
	}
	want := map[string]bool{}
	for _, f := range inputs {
		base := strings.TrimSuffix(f, ".cue")
		want[base+".yaml"], want[base+".certs.yaml"] = true, true
		t.Run(filepath.Base(f), func(t *testing.T) {
			m, err := schema.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, base+".yaml", build(t, m, Inputs{}))
			withCerts := redactKeys(t, build(t, m, Inputs{Certs: fixedCerts(t)}))
			checkGolden(t, base+".certs.yaml", withCerts)
		})
	}
	// A golden whose input is gone is stale.
	goldens, _ := filepath.Glob("../testdata/golden/*.yaml")
	for _, g := range goldens {
		if !want[g] {
			t.Errorf("%s has no input .cue beside it: remove it", g)
		}
	}
}

// checkGolden compares got with the golden file, or rewrites the file with
// -update (and then reports nothing: the rewrite is the result).
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./generators -update)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("render differs from %s (-want +got):\n%s", golden, d)
	}
}

// fixedCerts generates the mesh's certificates from a fixed random seed and
// a fixed time, so that they render the same bytes every time.
func fixedCerts(t *testing.T) *certs.Bundle {
	t.Helper()
	cryptotest.SetGlobalRandom(t, 2019)
	return testCerts(t)
}

// privateKey matches a base64-encoded PEM private key in a rendered Secret's
// data: "-----BEGIN " base64-encoded, then anything up to the line's end.
var privateKey = regexp.MustCompile(`(?m)^(\s+[\w.-]+: )(LS0tLS1CRUdJTi[A-Za-z0-9+/=]+)$`)

// redactKeys replaces every private key in a render with a marker, so that
// no key material goes into git, and fails if one is left.
func redactKeys(t *testing.T, render []byte) []byte {
	t.Helper()
	n := 0
	out := privateKey.ReplaceAllFunc(render, func(line []byte) []byte {
		m := privateKey.FindSubmatch(line)
		pemBytes, err := base64.StdEncoding.DecodeString(string(m[2]))
		if err != nil {
			t.Errorf("undecodable Secret value in %q", line)
			return line
		}
		block, _ := pem.Decode(pemBytes)
		if block == nil || !strings.Contains(block.Type, "PRIVATE KEY") {
			return line // a certificate: public, and worth comparing
		}
		n++
		return append(m[1], []byte("REDACTED-"+strings.ReplaceAll(block.Type, " ", "-"))...)
	})
	if n == 0 {
		t.Error("the render with certificates holds no private key to redact: is the issuer Secret gone?")
	}
	if bytes.Contains(out, []byte("PRIVATE KEY")) || bytes.Contains(out, []byte("LS0tLS1CRUdJTiBFQyBQUklWQVRF")) || bytes.Contains(out, []byte("LS0tLS1CRUdJTiBQUklWQVRF")) {
		t.Fatal("a private key survived the redaction")
	}
	return out
}

func testCerts(t testing.TB) *certs.Bundle {
	t.Helper()
	// viz's pairs come last, so the control plane's stay those of the
	// goldens made before viz.
	b, err := certs.Generate(CertOptions(load(t, "viz: enabled: true"), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildTwiceIsIdentical(t *testing.T) {
	c := testCerts(t)
	platform, err := os.ReadFile("../examples/platform.cue")
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"", "controlPlane: ha: true\ncni: enabled: true", "namespaces: {a: {}, b: {}, c: {inject: \"ingress\"}}", string(platform)} {
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
