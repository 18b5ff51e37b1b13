package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// meshctlProcess runs the test binary as meshctl (see TestMain) and returns
// its exit code and whole output.
func meshctlProcess(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return meshctlProcessEnv(t, nil, args...)
}

// meshctlProcessEnv is meshctlProcess with env added to the environment.
func meshctlProcessEnv(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "MESHCTL_TEST_MAIN=1"), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), o.String(), e.String()
}

func writeKubeconfig(t *testing.T, dir, server string, insecure bool) string {
	t.Helper()
	p := filepath.Join(dir, "kubeconfig")
	src := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, insecure-skip-tls-verify: %t}}]
users: [{name: u, user: {token: t0ken}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, server, insecure)
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConnectionFailureIsOneLine: when the cluster cannot be reached,
// meshctl prints its own line and nothing of client-go's logging.
func TestConnectionFailureIsOneLine(t *testing.T) {
	dir := t.TempDir()
	mesh := writeMesh(t, dir, "{}\n")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "https://" + l.Addr().String()
	l.Close()
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	untrusted := httptest.NewUnstartedServer(http.NotFoundHandler())
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0) // its TLS handshake errors
	untrusted.StartTLS()
	defer untrusted.Close()

	for _, tc := range []struct{ name, server, want string }{
		// The cluster is named, with where its address came from, as
		// kubectl would name it.
		{"refused", refused, "cannot reach the Kubernetes API server at " + refused + " (--kubeconfig KC, context c): connection refused"},
		{"unavailable", unavailable.URL, "unable to handle the request"},
		{"untrusted certificate", untrusted.URL, "cannot reach the Kubernetes API server at " + untrusted.URL + " (--kubeconfig KC, context c): tls: failed to verify certificate"},
	} {
		kc := writeKubeconfig(t, t.TempDir(), tc.server, false)
		for _, verb := range []string{"apply", "diff", "status", "rotate trust-anchor"} {
			t.Run(tc.name+"/"+verb, func(t *testing.T) {
				args := append(strings.Fields(verb), "--kubeconfig="+kc, "--request-timeout=20s")
				if verb != "status" {
					args = append(args, mesh)
				}
				code, out, errOut := meshctlProcess(t, args...)
				want := strings.ReplaceAll(tc.want, "KC", kc)
				lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
				if code != exitError || out != "" || len(lines) != 1 || !strings.HasPrefix(errOut, "meshctl "+verb+": ") || !strings.Contains(errOut, want) {
					t.Errorf("exit %d (want %d), stdout %q, stderr (want one meshctl line with %q):\n%s", code, exitError, out, want, errOut)
				}
			})
		}
	}
	// No kubeconfig anywhere: client-go's default, said as such.
	home := t.TempDir()
	code, out, errOut := meshctlProcessEnv(t, []string{"HOME=" + home, "KUBECONFIG=", "KUBERNETES_SERVICE_HOST="}, "apply", mesh)
	want := "meshctl apply: cannot reach the Kubernetes API server at http://localhost:8080 (no kubeconfig: neither --kubeconfig, $KUBECONFIG nor " + filepath.Join(home, ".kube", "config") + ", and not in a pod, so client-go's default): connection refused"
	if code != exitError || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, want) {
		t.Errorf("no kubeconfig: exit %d, stdout %q, stderr:\n%s\nwant it to start:\n%s", code, out, errOut, want)
	}
}
