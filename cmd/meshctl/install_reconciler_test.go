package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/meshctl/meshctl/internal/testbin"
)

// decodeStream reads a multi-document YAML stream into Kind/ns/name IDs.
func decodeStream(t *testing.T, s string) []string {
	t.Helper()
	dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(s), 4096)
	var ids []string
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if err.Error() == "EOF" {
				return ids
			}
			t.Fatalf("%v\n%s", err, s)
		}
		if u.Object == nil {
			continue
		}
		id := u.GetKind() + "/" + u.GetName()
		if u.GetNamespace() != "" {
			id = u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
		}
		ids = append(ids, id)
	}
}

// TestInstallReconcilerCommand: the stream, in apply order, is the same on
// every run, and each mistake is one line with exit code 2.
func TestInstallReconcilerCommand(t *testing.T) {
	base := []string{"Namespace/meshctl", "ServiceAccount/meshctl/meshctl-reconciler", "ClusterRole/meshctl-reconciler",
		"ClusterRoleBinding/meshctl-reconciler", "Role/meshctl/meshctl-reconciler", "RoleBinding/meshctl/meshctl-reconciler"}
	tests := []struct {
		name   string
		args   []string
		code   int
		ids    []string
		has    string
		stderr string
	}{
		{name: "defaults", code: exitOK, ids: append(base, "Deployment/meshctl/meshctl-reconciler"),
			has: "image: ghcr.io/meshctl/meshctl:" + version},
		{name: "flux source", args: []string{"--source", "flux:GitRepository/flux-system/mesh", "--source-path", "prod/mesh.cue", "--image", "registry.local/meshctl:1"},
			code: exitOK, ids: append(append(base[:6:6], "Role/flux-system/meshctl-reconciler-source", "RoleBinding/flux-system/meshctl-reconciler-source"), "Deployment/meshctl/meshctl-reconciler"),
			has: "- --source-path=prod/mesh.cue\n"},
		{name: "bad source", args: []string{"--source", "git:mesh"}, code: exitUsage,
			stderr: "meshctl install-reconciler: --source \"git:mesh\": want flux:GitRepository/NAMESPACE/NAME or flux:OCIRepository/NAMESPACE/NAME\n"},
		{name: "source and configmap", args: []string{"--source", "flux:GitRepository/a/b", "--configmap", "mesh"}, code: exitUsage,
			stderr: "meshctl install-reconciler: if any flags in the group [source configmap] are set none of the others can be; [configmap source] were all set\n"},
		{name: "source path alone", args: []string{"--source-path", "mesh.cue"}, code: exitUsage,
			stderr: "meshctl install-reconciler: --source-path needs --source: the ConfigMap's mesh.cue is mounted at /etc/mesh/mesh.cue\n"},
		{name: "bad interval", args: []string{"--interval", "-1m"}, code: exitUsage,
			stderr: "meshctl install-reconciler: --interval -1m0s: want a positive duration, such as 10m\n"},
		{name: "no arguments", args: []string{"mesh.cue"}, code: exitUsage,
			stderr: "meshctl install-reconciler: unknown command \"mesh.cue\" for \"meshctl install-reconciler\"\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(append([]string{"install-reconciler"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, errOut)
			}
			if d := cmp.Diff(tc.stderr, errOut); d != "" {
				t.Errorf("stderr (-want +got):\n%s", d)
			}
			if tc.code != exitOK {
				if out != "" {
					t.Errorf("printed on failure:\n%s", out)
				}
				return
			}
			if d := cmp.Diff(tc.ids, decodeStream(t, out)); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
			if !strings.Contains(out, tc.has) {
				t.Errorf("no %q in\n%s", tc.has, out)
			}
			if _, again, _ := runCLI(append([]string{"install-reconciler"}, tc.args...)...); again != out {
				t.Error("a second run printed something else")
			}
		})
	}
}

// TestInstallReconcilerServerDryRun: the pinned kubectl's server dry run
// accepts the stream as it is, on a real API server. The namespaces exist
// first, as they do where the ConfigMap or the Flux source is: a server dry
// run creates nothing, so an object in a namespace it would create is
// refused (NamespaceLifecycle).
func TestInstallReconcilerServerDryRun(t *testing.T) {
	cluster := shared.Get(t)
	bins, err := testbin.Find()
	if err != nil {
		t.Fatal(err)
	}
	kubectl := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(bins.Kubectl, append([]string{"--kubeconfig=" + cluster.Kubeconfig}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	for _, ns := range []string{"install-dry-run", "install-dry-run-flux", "install-dry-run-source"} {
		if out, err := kubectl("", "create", "namespace", ns); err != nil && !strings.Contains(out, "AlreadyExists") {
			t.Fatalf("kubectl create namespace %s: %v\n%s", ns, err, out)
		}
	}
	for _, args := range [][]string{
		{"--meshctl-namespace", "install-dry-run"},
		{"--meshctl-namespace", "install-dry-run-flux", "--source", "flux:OCIRepository/install-dry-run-source/mesh"},
	} {
		t.Run(args[len(args)-1], func(t *testing.T) {
			code, out, errOut := runCLI(append([]string{"install-reconciler"}, args...)...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			got, err := kubectl(out, "apply", "--dry-run=server", "-f", "-")
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=server: %v\n%s", err, got)
			}
			if n := strings.Count(got, "(server dry run)"); n != len(decodeStream(t, out)) {
				t.Errorf("kubectl dry-ran %d objects, want %d:\n%s", n, len(decodeStream(t, out)), got)
			}
		})
	}
}
