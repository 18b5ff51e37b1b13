package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshctl/meshctl/schema"
)

// CheckStatus is a check's outcome.
type CheckStatus string

// The outcomes of a check. A warning does not fail `meshctl check`.
const (
	CheckOK      CheckStatus = "ok"
	CheckWarning CheckStatus = "warning"
	CheckError   CheckStatus = "error"
)

// CheckResult is one check in one cluster.
type CheckResult struct {
	// Cluster is the mesh's cluster, "" for a mesh without clusters.
	Cluster string `json:"cluster,omitempty"`
	// Category and Name are `linkerd check`'s, where it has the check.
	Category string `json:"category"`
	Name     string `json:"name"`
	// ID is stable: upstream's hint anchor where upstream has the check
	// ("l5d-identity-issuer-cert-not-expiring-soon"), "meshctl-…" for
	// what only meshctl checks.
	ID     string      `json:"id"`
	Status CheckStatus `json:"status"`
	// Message says what is wrong, or, for a check that passed, what
	// meshctl knows beyond the pass (when it rotates a certificate).
	Message string `json:"message,omitempty"`
	// Next is the next step, for a check that did not pass.
	Next string `json:"next,omitempty"`
	// Hint is upstream's page on the check, for the checks it has.
	Hint string `json:"hint,omitempty"`
}

// CheckReport is every check, cluster by cluster, in order.
type CheckReport struct {
	Results []CheckResult `json:"results"`
	// Unreachable names the clusters whose API server did not answer;
	// their other checks were not run.
	Unreachable []string `json:"unreachable,omitempty"`
}

// Count counts the results with status s.
func (r *CheckReport) Count(s CheckStatus) int {
	n := 0
	for _, c := range r.Results {
		if c.Status == s {
			n++
		}
	}
	return n
}

// CheckOptions control the check verb.
type CheckOptions struct {
	Version string
	// Cluster, with a mesh that declares clusters, is the one to check;
	// "" checks them all.
	Cluster string
	// Pre checks a cluster before the first apply: the caller's
	// permissions for what apply will write, and the kinds the server
	// serves.
	Pre bool
	// DataPlane checks every meshed pod as well.
	DataPlane bool
	// PrometheusURL, when set, is where viz's metrics are read, rather
	// than viz's Prometheus through the API server's service proxy (or
	// viz.prometheus.externalURL).
	PrometheusURL string
	// Wait, when positive, runs the checks again until none fails or it
	// has passed, writing each round's failures to Progress.
	Wait     time.Duration
	Progress io.Writer
}

// HintBase is where upstream's check pages are, by hint anchor, as
// `linkerd check` of an edge release links them.
const HintBase = "https://linkerd.io/2/checks/#"

// Check runs `meshctl check` on every cluster of the fleet (or the one
// o.Cluster names): upstream's checks, under upstream's names and hint
// anchors, measured against m, and what only meshctl knows (whether the
// cluster is in sync with m, the inventory, the loop's record). It reads
// and never writes. The error is for what keeps the checks from running
// (a --cluster the mesh does not declare); a cluster that cannot be reached
// is a failed check and a name in Unreachable.
func Check(ctx context.Context, m *schema.Mesh, f *Fleet, o CheckOptions) (*CheckReport, error) {
	rep, err := checkOnce(ctx, m, f, o)
	if err != nil || o.Wait <= 0 || rep.Count(CheckError) == 0 {
		return rep, err
	}
	began := time.Now()
	werr := wait.PollUntilContextTimeout(ctx, 2*time.Second, o.Wait, false, func(ctx context.Context) (bool, error) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "waiting for %s (%s so far)\n", failing(rep), time.Since(began).Round(time.Second))
		}
		next, err := checkOnce(ctx, m, f, o)
		if err != nil {
			return false, err
		}
		rep = next
		return rep.Count(CheckError) == 0, nil
	})
	if werr != nil && !wait.Interrupted(werr) && !errors.Is(werr, context.DeadlineExceeded) {
		return rep, werr
	}
	return rep, nil
}

// failing names the checks that failed, for --wait's progress.
func failing(r *CheckReport) string {
	var ids []string
	for _, c := range r.Results {
		if c.Status == CheckError {
			id := c.ID
			if c.Cluster != "" {
				id = c.Cluster + ": " + id
			}
			ids = append(ids, id)
		}
	}
	return fmt.Sprintf("%d failing check(s): %s", len(ids), strings.Join(ids, ", "))
}

// checkOnce runs every check once, cluster by cluster.
func checkOnce(ctx context.Context, m *schema.Mesh, f *Fleet, o CheckOptions) (*CheckReport, error) {
	order, err := f.targets(m, o.Cluster)
	if err != nil {
		return nil, err
	}
	// The fleet's signing step as diff takes it: in memory, so that the
	// render each cluster is compared with is what apply would write. What
	// keeps it from being taken (a refusal, a cluster that cannot be read)
	// is the trust check's to report; the other checks go on.
	sig, _, trustErr := f.trustStep(ctx, m, order, true, nil)
	rep := &CheckReport{Results: []CheckResult{}}
	for _, name := range order {
		e := &checkEnv{m: m, f: f, name: name, o: o, sig: sig, trustErr: trustErr, now: time.Now()}
		results, reached := e.run(ctx)
		rep.Results = append(rep.Results, results...)
		if !reached {
			rep.Unreachable = append(rep.Unreachable, name)
		}
	}
	return rep, nil
}

// CheckInfo describes one check, for README and tests.
type CheckInfo struct {
	Category, ID, Name string
	// Hint is upstream's page on it, "" for meshctl's own.
	Hint string
}

// CheckCatalog lists every check `meshctl check` can run, in order.
func CheckCatalog() []CheckInfo {
	var out []CheckInfo
	for _, d := range append([]checkDef{checkClient, checkAPI}, checkList()...) {
		out = append(out, CheckInfo{Category: d.category, ID: d.id, Name: d.name, Hint: d.hint()})
	}
	return out
}
