package promtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshctl/meshctl/internal/testbin"
	"github.com/meshctl/meshctl/internal/testcluster"
)

// How long Prometheus may take to become ready, and to stop after SIGTERM.
// Generous: tests run with every CPU busy.
const (
	readyTimeout = 90 * time.Second
	stopTimeout  = 30 * time.Second
)

// Server is a Prometheus server on 127.0.0.1 that scrapes its targets
// every second. It is driven from the test's goroutine.
type Server struct {
	bin  string
	dir  string // holds prometheus.yml, data/ and prometheus.log
	addr string // 127.0.0.1:PORT, kept across Restart
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start runs Prometheus, scraping each of scrapeTargets (host:port, path
// /metrics) every second with honor_labels, and waits until it is ready.
// t.Cleanup stops it, and prints its log when the test failed.
func Start(t testing.TB, scrapeTargets ...string) *Server {
	t.Helper()
	addr, err := testcluster.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Launch(t.Context(), t.TempDir(), addr, scrapeTargets...)
	if s != nil {
		t.Cleanup(func() {
			s.Stop()
			if t.Failed() {
				t.Logf("promtest: Prometheus log (last 40 lines):\n%s", s.logTail())
			}
		})
	}
	if err != nil {
		t.Fatalf("promtest: %v", err)
	}
	return s
}

// Launch runs Prometheus on addr with its configuration, data and log in
// dir, as Start does, for a program (hack/traffic) rather than a test.
// The caller stops it.
func Launch(ctx context.Context, dir, addr string, scrapeTargets ...string) (*Server, error) {
	bins, err := testbin.Find()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bins.Prometheus, dir: dir, addr: addr}
	if err := os.WriteFile(s.configFile(), []byte(config(scrapeTargets)), 0o644); err != nil {
		return nil, err
	}
	return s, s.run(ctx)
}

// URL is the server's base URL, http://127.0.0.1:PORT.
func (s *Server) URL() string {
	return "http://" + s.addr
}

// Stop stops Prometheus, with SIGTERM and then, if it lingers, SIGKILL.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Restart stops Prometheus if it runs and starts it again on the same
// port and data directory, so the samples scraped so far are kept.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.run(t.Context()); err != nil {
		t.Fatalf("promtest: %v", err)
	}
}

// Log is the end of Prometheus's log, for a failure's message.
func (s *Server) Log() string { return s.logTail() }

// run runs the binary and waits until /-/ready answers 200.
func (s *Server) run(ctx context.Context) error {
	logf, err := os.OpenFile(s.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(s.bin,
		"--config.file="+s.configFile(),
		"--storage.tsdb.path="+filepath.Join(s.dir, "data"),
		"--web.listen-address="+s.addr,
		// The default external URL is built from the host name.
		"--web.external-url="+s.URL()+"/",
		"--log.level=info", // to the file, printed only on failure
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.done)
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return fmt.Errorf("Prometheus on %s: %w\n%s", s.addr, err, s.logTail())
	}
	return nil
}

// waitReady polls /-/ready until it answers 200, Prometheus exits or
// readyTimeout passes.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/-/ready", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/-/ready: %s", resp.Status)
		}
		last = err
		select {
		case <-s.done:
			return fmt.Errorf("exited before it was ready: %s", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("not ready within %s: %w", readyTimeout, errors.Join(ctx.Err(), last))
		case <-tick.C:
		}
	}
}

func (s *Server) configFile() string { return filepath.Join(s.dir, "prometheus.yml") }
func (s *Server) logFile() string    { return filepath.Join(s.dir, "prometheus.log") }

func (s *Server) logTail() string {
	data, err := os.ReadFile(s.logFile())
	if err != nil {
		return err.Error()
	}
	return testbin.LastLines(string(data), 40)
}

// config is a prometheus.yml with one job, promtest, that scrapes targets.
// honor_labels keeps the namespace, deployment and pod labels the
// exporter serves, which a real setup takes from Kubernetes discovery.
func config(targets []string) string {
	quoted := make([]string, len(targets))
	for i, t := range targets {
		quoted[i] = strconv.Quote(t)
	}
	return fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: promtest
    honor_labels: true
    static_configs:
      - targets: [%s]
`, strings.Join(quoted, ", "))
}
