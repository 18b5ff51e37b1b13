package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{"bad flag", []string{"build", "--nope"}, exitUsage, "unknown flag"},
		{"bad output", []string{"build", "-o", "xml", "../../examples/ha.cue"}, exitUsage, "yaml or json"},
		{"two paths", []string{"vet", "a.cue", "b.cue"}, exitUsage, "at most one PATH"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "unknown command"},
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
		})
	}
}

func TestHelpHasExamples(t *testing.T) {
	for _, c := range commands() {
		code, out, _ := runCLI(c.name, "--help")
		if code != exitOK || !strings.Contains(out, "Examples:") || !strings.Contains(out, "meshctl "+c.name) {
			t.Errorf("%s --help: exit %d, output %q", c.name, code, out)
		}
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
