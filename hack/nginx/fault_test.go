package nginx

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/internal/rendertest"
)

// The nginx is Debian's (1.22 on bookworm), while the fault backend runs
// nginxinc/nginx-unprivileged:1.28-alpine (generators/traffic_fault.go):
// Debian ships no newer one. The configuration uses only directives both
// have had for years (return, listen, the *_temp_path ones).

// nginxBin finds nginx: on PATH, or where Debian's package puts it.
func nginxBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	t.Fatal("nginx not found: run `make nginx` (Debian's package nginx)")
	return ""
}

func faultConfigs(t *testing.T) []rendertest.Config {
	t.Helper()
	cfgs, err := rendertest.Configs(generators.ProgramNginx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) == 0 {
		t.Fatal("no mesh renders a fault backend")
	}
	return cfgs
}

// TestFaultConfigs runs `nginx -t` on every fault backend's nginx.conf.
func TestFaultConfigs(t *testing.T) {
	bin := nginxBin(t)
	for _, c := range faultConfigs(t) {
		if out, err := check(t, bin, c.Data); err != nil {
			t.Errorf("%s: nginx -t: %v\n%s", c.Where(), err, out)
		}
	}
}

// TestBrokenFaultConfig proves that check can fail: on a misspelt
// directive, a directive in the wrong block and a missing brace.
func TestBrokenFaultConfig(t *testing.T) {
	bin := nginxBin(t)
	good := string(faultConfigs(t)[0].Data)
	if out, err := check(t, bin, []byte(good)); err != nil {
		t.Fatalf("the unbroken configuration fails: %v\n%s", err, out)
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"misspelt directive", "return 200", "retrun 200", `unknown directive "retrun"`},
		{"directive in the wrong block", "worker_processes 1;", "worker_processes 1;\nlisten 80;", `"listen" directive is not allowed here`},
		{"missing brace", "location = /ready {", "location = /ready", `directive "location" has no opening "{"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the configuration has no %q to break", tc.old)
			}
			out, err := check(t, bin, []byte(strings.Replace(good, tc.old, tc.new, 1)))
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("nginx -t: %v\n%s\nwant a failure saying %q", err, out, tc.want)
			}
		})
	}
}

// TestFaultBackends runs each fault backend's nginx on loopback: traffic
// gets the fault's status, whatever its path, and only the health port's
// /ready answers 200.
func TestFaultBackends(t *testing.T) {
	bin := nginxBin(t)
	for _, c := range faultConfigs(t) {
		t.Run(c.Object, func(t *testing.T) {
			status := faultStatus(t, c.Data)
			httpAddr, healthAddr := serve(t, bin, c.Data)
			for _, tc := range []struct {
				addr, path string
				want       int
			}{
				{httpAddr, "/", status},
				{httpAddr, "/books/1?x=y", status},
				{httpAddr, "/ready", status},
				{healthAddr, "/ready", http.StatusOK},
			} {
				if got := get(t, tc.addr, tc.path); got != tc.want {
					t.Errorf("%s: GET %s on %s: %d, want %d", c.Where(), tc.path, tc.addr, got, tc.want)
				}
			}
			if got := get(t, healthAddr, "/"); got == http.StatusOK {
				t.Errorf("%s: GET / on the health port: 200, want only /ready to answer 200", c.Where())
			}
		})
	}
}

// TestBrokenFaultBackend proves that TestFaultBackends' checks can fail: a
// backend whose traffic gets 200, and one whose /ready is gone, do not
// answer what it wants.
func TestBrokenFaultBackend(t *testing.T) {
	bin := nginxBin(t)
	c := faultConfigs(t)[0]
	status := faultStatus(t, c.Data)
	tests := []struct {
		name, old, new string
		health         bool // ask the health port, not the traffic one
		path           string
		want           int // what TestFaultBackends wants
	}{
		{"traffic answered 200", fmt.Sprintf("return %d ", status), "return 200 ", false, "/", status},
		{"no /ready", "location = /ready {", "location = /readyz {", true, "/ready", http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			broken := strings.Replace(string(c.Data), tc.old, tc.new, 1)
			if broken == string(c.Data) {
				t.Fatalf("the configuration has no %q to break", tc.old)
			}
			addr, healthAddr := serve(t, bin, []byte(broken))
			if tc.health {
				addr = healthAddr
			}
			if got := get(t, addr, tc.path); got == tc.want {
				t.Errorf("GET %s on the broken backend: %d, what a sound one answers", tc.path, got)
			}
		})
	}
}

// The ports and the writable directory in a rendered nginx.conf: the pod
// mounts an emptyDir at /tmp.
var (
	listenRE = regexp.MustCompile(`(?m)^(\s*listen )(\d+);`)
	pathRE   = regexp.MustCompile(`(?m)^\s*\w+ (/[^\s;]*)[^;{]*;`) // a directive on a file
	statusRE = regexp.MustCompile(`(?m)^\s*location / \{\n\s*return (\d+) `)
)

// localCopy is the configuration nginx can run here: the pod's /tmp is
// dir, and each listen port p is 127.0.0.1:ports[p] (unchanged without one).
func localCopy(t *testing.T, cfg []byte, dir string, ports map[string]string) string {
	t.Helper()
	out := strings.ReplaceAll(string(cfg), " /tmp/", " "+dir+"/")
	out = listenRE.ReplaceAllStringFunc(out, func(l string) string {
		m := listenRE.FindStringSubmatch(l)
		if p, ok := ports[m[2]]; ok {
			return m[1] + "127.0.0.1:" + p + ";"
		}
		return l
	})
	// The pod's root filesystem is read-only: every path nginx writes
	// must be under /tmp, so every path here must be under dir.
	for _, m := range pathRE.FindAllStringSubmatch(out, -1) {
		if !strings.HasPrefix(m[1], dir+"/") {
			t.Fatalf("path %s is not under the pod's /tmp:\n%s", m[1], cfg)
		}
	}
	return out
}

// check runs `nginx -t` on cfg, with the pod's /tmp in a directory of the
// test's own, and returns nginx's output.
func check(t *testing.T, bin string, cfg []byte) (string, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(localCopy(t, cfg, dir, nil)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-t", "-q", "-e", "stderr", "-p", dir, "-c", path).CombinedOutput()
	return string(out), err
}

// faultStatus is the status the configuration answers traffic with.
func faultStatus(t *testing.T, cfg []byte) int {
	t.Helper()
	m := statusRE.FindSubmatch(cfg)
	if m == nil {
		t.Fatalf("no `location / { return STATUS` in\n%s", cfg)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// serve runs nginx on cfg in the foreground, as the pod does, on two free
// loopback ports, until the test ends; it returns the traffic and health
// addresses once both accept connections.
func serve(t *testing.T, bin string, cfg []byte) (httpAddr, healthAddr string) {
	t.Helper()
	dir := t.TempDir()
	httpPort, healthPort := freePort(t), freePort(t)
	path := filepath.Join(dir, "nginx.conf")
	local := localCopy(t, cfg, dir, map[string]string{"8080": httpPort, "8081": healthPort})
	if err := os.WriteFile(path, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "-e", "stderr", "-p", dir, "-c", path, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // nginx's fast shutdown (SIGINT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	httpAddr, healthAddr = "127.0.0.1:"+httpPort, "127.0.0.1:"+healthPort
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, addr := range []string{httpAddr, healthAddr} {
		for {
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("nginx exited: %v\n%s", err, logs.String())
			case <-ctx.Done():
				t.Fatalf("nginx never listened on %s: %v\n%s", addr, err, logs.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return httpAddr, healthAddr
}

// freePort is a loopback port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// get returns the status of GET http://addr/path.
func get(t *testing.T, addr, path string) int {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://%s%s", addr, path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
