package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"vet valid", []string{"vet", "../../examples/ha.cue"}, exitOK, ""},
		{"vet invalid", []string{"vet", "../../testdata/invalid/split-sum.cue"}, exitInvalid, "split-sum.cue:1:24: services.\"shop/cart\".split: traffic split weights must sum to 100, got 95"},
		{"vet missing file", []string{"vet", "nope.cue"}, exitInvalid, "no such file"},
		{"build invalid renders nothing", []string{"build", "../../testdata/invalid/typo-top.cue"}, exitInvalid, "unknown top-level field"},
		{"build with patches", []string{"build", "../../testdata/golden/patches.cue"}, exitOK, ""},
		{"build a patch that matches nothing", []string{"build", "../../testdata/patch-no-match.cue"}, exitInvalid,
			"../../testdata/patch-no-match.cue:5:9: patches[0] (Deployment linkerd/linkerd-destinaton): matches no rendered object (meshctl build lists them)\n"},
		{"vet a patch that matches nothing", []string{"vet", "../../testdata/patch-no-match.cue"}, exitInvalid, "patch-no-match.cue:5:9: patches[0]"},
		// Nothing is written: the mesh is refused before a cluster is dialled.
		{"apply a patch that matches nothing", []string{"apply", "--kubeconfig=nope", "../../testdata/patch-no-match.cue"}, exitInvalid, "patches[0]"},
		{"diff a patch that matches nothing", []string{"diff", "--kubeconfig=nope", "../../testdata/patch-no-match.cue"}, diffError, "patches[0]"},
		{"bad flag", []string{"build", "--nope"}, exitUsage, "unknown flag"},
		{"bad output", []string{"build", "-o", "xml", "../../examples/ha.cue"}, exitUsage, "yaml or json"},
		{"two paths", []string{"build", "a.cue", "b.cue"}, exitUsage, "at most one PATH"},
		// vet takes several meshes, as a pre-commit hook passes them.
		{"vet two meshes", []string{"vet", "../../examples/ha.cue", "../../examples/smi.cue"}, exitOK, ""},
		{"vet two meshes, one invalid", []string{"vet", "../../examples/ha.cue", "../../testdata/invalid/split-sum.cue"}, exitInvalid, "split-sum.cue:1:24"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "unknown command"},
		{"no command", nil, exitUsage, ""},
		{"help", []string{"help"}, exitOK, ""},
		// Values are checked as flags are parsed, before the (missing)
		// file is read or a cluster is dialled.
		{"bad max-deletions", []string{"apply", "--max-deletions=5x", "--kubeconfig=nope", "nope.cue"}, exitUsage, `invalid argument "5x" for "--max-deletions" flag: invalid limit "5x"`},
		{"bad max-deletions percent", []string{"apply", "--max-deletions", "150%", "nope.cue"}, exitUsage, "want 0%..100%"},
		{"bad apply output", []string{"apply", "-o", "yaml", "nope.cue"}, exitUsage, "want text or json"},
		{"bad diff output", []string{"diff", "--output=yaml", "nope.cue"}, exitUsage, "want text, markdown or json"},
		{"kubectl's namespace is not meshctl's", []string{"apply", "-n", "linkerd", "nope.cue"}, exitUsage, "unknown shorthand flag: 'n'"},
		{"old namespace flag", []string{"diff", "--namespace=meshctl", "nope.cue"}, exitUsage, "unknown flag: --namespace"},
		{"bad request-timeout", []string{"diff", "--request-timeout=soon", "nope.cue"}, exitUsage, `invalid argument "soon" for "--request-timeout" flag`},
		{"unreadable kubeconfig", []string{"apply", "--kubeconfig=nope", "../../examples/ha.cue"}, exitError, "kubeconfig"},
		{"diff unreadable kubeconfig", []string{"diff", "--kubeconfig=nope", "../../examples/ha.cue"}, diffError, "kubeconfig"},
		{"completion needs a shell", []string{"completion"}, exitUsage, "accepts 1 arg"},
		{"status takes one PATH", []string{"status", "a.cue", "b.cue"}, exitUsage, "accepts at most 1 arg(s), received 2"},
		{"status of a mesh that does not load", []string{"status", "../../testdata/invalid/fleet-no-key-cluster.cue"}, exitInvalid, "keyCluster: a value is required here"},
		{"bad status output", []string{"status", "-o", "yaml"}, exitUsage, "want text or json"},
		{"status unreadable kubeconfig", []string{"status", "--kubeconfig=nope"}, exitError, "meshctl status: loading kubeconfig"},
		{"status without a cluster", []string{"status", "--kubeconfig=/dev/null", "--server=https://127.0.0.1:1"}, exitError, "meshctl status: cannot reach the Kubernetes API server at https://127.0.0.1:1 (--kubeconfig /dev/null, --server https://127.0.0.1:1): connection refused"},
		{"check --pre with --data-plane", []string{"check", "--pre", "--data-plane", "nope.cue"}, exitUsage, "give one"},
		{"check of an invalid mesh", []string{"check", "../../testdata/invalid/split-sum.cue"}, exitInvalid, "split-sum.cue:1:24"},
		{"bad check output", []string{"check", "-o", "yaml"}, exitUsage, "want text or json"},
		{"check unreadable kubeconfig", []string{"check", "--kubeconfig=nope", "../../examples/ha.cue"}, checkUnreachable, "meshctl check: loading kubeconfig"},
		{"check without a cluster", []string{"check", "--kubeconfig=/dev/null", "--server=https://127.0.0.1:1", "../../examples/ha.cue"}, checkUnreachable, ""},
		{"bad reconcile mode", []string{"reconcile", "--mode=fix", "nope.cue"}, exitUsage, "want correct or detect"},
		{"bad reconcile log format", []string{"reconcile", "--log-format=xml", "nope.cue"}, exitUsage, "want text or json"},
		{"bad reconcile source", []string{"reconcile", "--kubeconfig=/dev/null", "--server=https://127.0.0.1:1", "--source=git:repo", "nope.cue"}, exitUsage, `"git:repo": want path, flux:GitRepository/NAMESPACE/NAME or flux:OCIRepository/NAMESPACE/NAME`},
		{"reconcile unreadable kubeconfig", []string{"reconcile", "--kubeconfig=nope"}, exitError, "meshctl reconcile: loading kubeconfig"},
		{"completion of an unknown shell", []string{"completion", "tcsh"}, exitUsage, `invalid argument "tcsh"`},
		{"rollout unknown command", []string{"rollout", "resume"}, exitUsage, `unknown command "resume"; use status, promote or abort`},
		{"rollout promote needs a service", []string{"rollout", "promote"}, exitUsage, "accepts between 1 and 2 arg(s)"},
		{"rollout promote of a service without one", []string{"rollout", "promote", "booksapp/nope", "--kubeconfig=nope", "../../examples/rollout.cue"}, exitUsage, "booksapp/nope has no rollout in ../../examples/rollout.cue"},
		{"rollout abort of an invalid mesh", []string{"rollout", "abort", "shop/cart", "../../testdata/invalid/rollout-steps-end.cue"}, exitInvalid, "rollout steps must end at 100"},
		{"bad rollout status output", []string{"rollout", "status", "-o", "yaml"}, exitUsage, "want text or json"},
		{"rollout status without a cluster", []string{"rollout", "status", "--kubeconfig=/dev/null", "--server=https://127.0.0.1:1"}, exitError, "meshctl rollout status: cannot reach the Kubernetes API server at https://127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Errorf("exit %d (want %d), stderr %q (want it to contain %q)", code, tc.code, errOut, tc.stderr)
			}
			if code == exitInvalid && tc.args[0] == "build" && out != "" {
				t.Errorf("build printed objects for an invalid mesh: %q", out)
			}
			// One line per problem: no "Error:" line, no usage dump.
			if code != exitOK && (strings.Contains(errOut, "Error:") || strings.Contains(errOut, "Usage:") || strings.Contains(out, "Flags:") && len(tc.args) > 0) {
				t.Errorf("cobra's own error output leaked:\nstdout %q\nstderr %q", out, errOut)
			}
		})
	}
}

// commands are meshctl's user-facing commands.
func commands() []*cobra.Command {
	var cmds []*cobra.Command
	for _, c := range newRoot(io.Discard, io.Discard).Commands() {
		if c.IsAvailableCommand() || c.Name() == "help" {
			cmds = append(cmds, c)
		}
	}
	return cmds
}

func TestHelpHasExamples(t *testing.T) {
	names := []string{}
	for _, c := range commands() {
		names = append(names, c.Name())
		code, out, _ := runCLI(c.Name(), "--help")
		if code != exitOK || !strings.Contains(out, "Examples:\n  ") || !strings.Contains(out, "meshctl "+c.Name()) || !strings.HasPrefix(out, c.Long) || c.Long == "" {
			t.Errorf("%s --help: exit %d, output %q", c.Name(), code, out)
		}
	}
	want := []string{"apply", "build", "check", "completion", "diff", "help", "install-reconciler", "reconcile", "rollout", "rotate", "status", "version", "vet"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
	code, out, _ := runCLI("--help")
	if code != exitOK || !strings.Contains(out, "Examples:") || !strings.Contains(out, "completion") {
		t.Errorf("meshctl --help: exit %d, output %q", code, out)
	}
	// kubectl's client flags are listed apart from apply's own.
	_, out, _ = runCLI("apply", "--help")
	own, client, ok := strings.Cut(out, "Client flags, as kubectl's:")
	if !ok || !strings.Contains(own, "--max-deletions N|N%") || !strings.Contains(own, "--meshctl-namespace") || strings.Contains(own, "--kubeconfig string") ||
		!strings.Contains(client, "--kubeconfig") || !strings.Contains(client, "--as-group") || strings.Contains(client, "--namespace") {
		t.Errorf("apply --help does not list its own flags apart from the client flags:\n%s", out)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := runCLI("completion", shell)
		if code != exitOK || errOut != "" || !strings.Contains(out, "meshctl") || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d, stderr %q, %d bytes", shell, code, errOut, len(out))
		}
	}

	complete := func(args ...string) (words []string, directive string) {
		t.Helper()
		code, out, _ := runCLI(append([]string{"__complete"}, args...)...)
		if code != exitOK {
			t.Fatalf("__complete %q: exit %d", args, code)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, l := range lines[:len(lines)-1] {
			word, _, _ := strings.Cut(l, "\t")
			words = append(words, word)
		}
		return words, lines[len(lines)-1]
	}
	if words, _ := complete(""); !slices.Contains(words, "apply") || !slices.Contains(words, "diff") || !slices.Contains(words, "completion") {
		t.Errorf("commands offered: %q", words)
	}
	if words, _ := complete("apply", "--max"); !slices.Equal(words, []string{"--max-deletions"}) {
		t.Errorf("apply --max offers %q", words)
	}
	if words, _ := complete("apply", "--kube"); !slices.Equal(words, []string{"--kubeconfig"}) {
		t.Errorf("apply --kube offers %q", words)
	}
	if words, _ := complete("diff", "-o", ""); !slices.Equal(words, []string{"text", "markdown", "json"}) {
		t.Errorf("diff -o offers %q", words)
	}
	// PATH: .cue files and directories.
	words, directive := complete("vet", "")
	if !slices.Equal(words, []string{"cue"}) || directive != fmt.Sprintf(":%d", cobra.ShellCompDirectiveFilterFileExt) {
		t.Errorf("vet PATH completes %q %s", words, directive)
	}
	if words, _ := complete("completion", ""); !slices.Equal(words, []string{"bash", "zsh", "fish"}) {
		t.Errorf("completion offers %q", words)
	}
}

func TestBuildDefaultPathAndFormats(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mesh.cue"), []byte("controlPlane: ha: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	code, yamlOut, _ := runCLI("build")
	if code != exitOK || !strings.HasPrefix(yamlOut, "---\napiVersion: apiextensions.k8s.io/v1\n") || !strings.Contains(yamlOut, "kind: PodDisruptionBudget") {
		t.Fatalf("build: exit %d, output starts %q", code, yamlOut[:min(len(yamlOut), 80)])
	}
	code, jsonOut, _ := runCLI("build", "-o", "json")
	if code != exitOK || !strings.Contains(jsonOut, `"kind": "List"`) {
		t.Fatalf("build -o json: exit %d", code)
	}
	code, out, errOut := runCLI("build", "--certs-dir", "certs")
	if code != exitOK || !strings.Contains(out, "key.pem") || !strings.Contains(errOut, "generated certificates") {
		t.Fatalf("build --certs-dir: exit %d, stderr %q", code, errOut)
	}
	_, again, errAgain := runCLI("build", "--certs-dir", "certs")
	if again != out || strings.Contains(errAgain, "generated") {
		t.Error("a second build with the same --certs-dir rotated certificates")
	}
}

// TestVetExplainsPrometheusMemory: vet says, in one line, the memory it
// chose for viz's Prometheus and why; quiet says nothing.
func TestVetExplainsPrometheusMemory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mesh.cue")
	if err := os.WriteFile(path, []byte("viz: {enabled: true, prometheus: expectedPods: 1000}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("vet", path)
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], path+": note: viz Prometheus memory: request 5256Mi, limit 10512Mi (256Mi base + 5Mi × 1000 expected pods") {
		t.Errorf("vet said %q", out)
	}
	if code, out, _ := runCLI("vet", "-q", path); code != exitOK || out != "" {
		t.Errorf("vet -q: exit %d, said %q", code, out)
	}
}

// TestPanicIsOneLine: a panic (a bug) is one line and exit 3; the stack
// only with -v.
func TestPanicIsOneLine(t *testing.T) {
	boom := func() int { panic("range function continued iteration") }
	for _, tc := range []struct {
		args  []string
		stack bool
	}{
		{[]string{"apply", "mesh.cue"}, false},
		{[]string{"apply", "-v", "mesh.cue"}, true},
		{[]string{"diff", "--verbose", "mesh.cue"}, true},
		{[]string{"diff", "--", "-v"}, false},
	} {
		var errOut bytes.Buffer
		code := guarded(tc.args, &errOut, boom)
		got := errOut.String()
		if code != exitError {
			t.Errorf("%v: exit %d, want %d", tc.args, code, exitError)
		}
		first, _, _ := strings.Cut(got, "\n")
		want := "meshctl " + tc.args[0] + ": internal error: range function continued iteration; this is a bug in meshctl"
		if !strings.HasPrefix(first, want) {
			t.Errorf("%v: first line %q, want it to start %q", tc.args, first, want)
		}
		if hasStack := strings.Contains(got, "goroutine ") && strings.Contains(got, ".go:"); hasStack != tc.stack {
			t.Errorf("%v: stack printed %v, want %v:\n%s", tc.args, hasStack, tc.stack, got)
		}
		if !tc.stack && strings.Count(got, "\n") != 1 {
			t.Errorf("%v: want one line, got %q", tc.args, got)
		}
	}
	// -v is a flag every command accepts.
	if code, _, errOut := runCLI("vet", "-v", "../../examples/ha.cue"); code != exitOK {
		t.Errorf("vet -v: exit %d: %s", code, errOut)
	}
}
