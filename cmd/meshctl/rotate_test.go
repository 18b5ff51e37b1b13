package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
)

func TestRotateUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no certificate", []string{"rotate"}, exitUsage, ""},
		{"unknown certificate", []string{"rotate", "issuer"}, exitUsage, `meshctl rotate: unknown certificate "issuer"; meshctl rotates trust-anchor`},
		{"two paths", []string{"rotate", "trust-anchor", "a.cue", "b.cue"}, exitUsage, "at most one PATH"},
		{"invalid mesh", []string{"rotate", "trust-anchor", "../../testdata/invalid/split-sum.cue"}, exitInvalid, "traffic split weights must sum to 100"},
		{"unreadable kubeconfig", []string{"rotate", "trust-anchor", "--kubeconfig=nope", "../../examples/ha.cue"}, exitError, "meshctl rotate trust-anchor: loading kubeconfig"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) || strings.Contains(errOut, "Error:") {
				t.Errorf("exit %d (want %d), stderr %q (want it to contain %q)", code, tc.code, errOut, tc.stderr)
			}
		})
	}
}

// TestRotateTrustAnchorCommand drives `meshctl rotate trust-anchor` through
// its steps on its own cluster: the dry run writes nothing, the guards
// exit 4 and write nothing, --force lifts them, and no key is printed.
func TestRotateTrustAnchorCommand(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	ctx := context.Background()
	kc := "--kubeconfig=" + cluster.Kubeconfig
	path := writeMesh(t, t.TempDir(), `controlPlane: identity: issuanceLifetime: "1h"`+"\n")
	version := func() string {
		t.Helper()
		s, err := cluster.Client.CoreV1().Secrets("meshctl").Get(ctx, plan.CertificatesSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s.ResourceVersion
	}
	run := func(want int, args ...string) (string, string) {
		t.Helper()
		code, out, errOut := runCLI(append([]string{"rotate", "trust-anchor", kc, path}, args...)...)
		if code != want {
			t.Fatalf("rotate trust-anchor %q: exit %d, want %d\n%s\n%s", args, code, want, out, errOut)
		}
		if strings.Contains(out+errOut, "PRIVATE KEY") {
			t.Fatalf("rotate trust-anchor %q printed a private key", args)
		}
		return out, errOut
	}

	if code, out, errOut := runCLI("rotate", "trust-anchor", kc, path); code != exitError || !strings.Contains(errOut, "run meshctl apply first") {
		t.Fatalf("rotate before apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, err := cluster.Client.CoreV1().Secrets("meshctl").Get(ctx, plan.CertificatesSecret, metav1.GetOptions{}); err == nil {
		t.Fatal("rotate before apply created the certificates")
	}
	if code, out, errOut := runCLI("apply", kc, path); code != exitOK {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	rv := version()
	out, _ := run(exitOK, "--dry-run")
	if !strings.HasPrefix(out, "next step: bundle (dry run; nothing written)\n") || !strings.Contains(out, "trust anchor added: the trust roots now hold the old and the new anchor") ||
		!strings.Contains(out, "ConfigMap/linkerd/linkerd-identity-trust-roots") || version() != rv {
		t.Fatalf("dry run of the bundle step:\n%s", out)
	}
	out, _ = run(exitOK)
	if !strings.Contains(out, "rotate trust-anchor: step bundle: trust anchor added:") || !strings.Contains(out, "next: restart the meshed pods") {
		t.Fatalf("bundle step:\n%s", out)
	}

	// A meshed pod that has not restarted holds the re-sign step back.
	if _, err := cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.CoreV1().ServiceAccounts("shop").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Log(err) // a controller may have made it
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cart", Annotations: map[string]string{generators.AnnotationTrustRoot: "0123abcd"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "cart", Image: "registry.example/cart:1"}}}}
	if _, err := cluster.Client.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rv = version()
	const behind = "1 of 1 meshed pods still trust only the old anchor: restart them (kubectl rollout restart deployment,statefulset,daemonset -n shop)"
	if _, errOut := run(exitRefused); !strings.Contains(errOut, behind) || version() != rv {
		t.Fatalf("re-sign with a pod behind:\n%s", errOut)
	}
	if code, out, _ := runCLI("status", kc); code != exitOK || !strings.Contains(out, "trust-anchor rotation: "+behind) {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	if _, errOut := run(exitOK, "--force"); !strings.Contains(errOut, "warning: --force: "+behind) {
		t.Fatalf("forced re-sign:\n%s", errOut)
	}

	// The issuance lifetime (1h) holds the drop step back.
	rv = version()
	if _, errOut := run(exitRefused); !strings.Contains(errOut, "the issuance lifetime (1h0m0s) has not passed since the issuer was re-signed at ") ||
		!regexp.MustCompile(`the old anchor can be dropped from then \(in (59m|1h0m0s)`).MatchString(errOut) || version() != rv {
		t.Fatalf("drop within the issuance lifetime:\n%s", errOut)
	}
	out, _ = run(exitOK, "--force", "--dry-run")
	if !strings.HasPrefix(out, "next step: drop") || !strings.Contains(out, "old trust anchor dropped") || version() != rv {
		t.Fatalf("dry run of the drop step:\n%s", out)
	}
	if out, _ = run(exitOK, "--force"); !strings.Contains(out, "rotate trust-anchor: step drop: old trust anchor dropped") {
		t.Fatalf("drop step:\n%s", out)
	}
	if code, out, _ := runCLI("diff", kc, path); code != diffSame {
		t.Errorf("diff after the rotation: exit %d\n%s", code, out)
	}
}
