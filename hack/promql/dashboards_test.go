package promql

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/meshctl/meshctl/generators"
)

// TestDashboardQueries parses every dashboard query with Prometheus's
// parser and checks the metrics and labels it names against the ones
// Linkerd exports (generators.DashboardMetrics).
func TestDashboardQueries(t *testing.T) {
	queries, err := generators.DashboardQueries()
	if err != nil {
		t.Fatal(err)
	}
	if len(queries) < 10 {
		t.Fatalf("only %d dashboard queries", len(queries))
	}
	metrics := generators.DashboardMetrics()
	for _, q := range queries {
		for _, problem := range check(q.Expr, metrics) {
			t.Errorf("%s: %s: %s\n%s", q.Dashboard, q.Where, problem, q.Expr)
		}
	}
}

// TestCheck proves that check can fail, on each kind of problem.
func TestCheck(t *testing.T) {
	metrics := map[string][]string{
		"request_total":              {"namespace", "pod", "direction"},
		"response_latency_ms_bucket": {"namespace", "le"},
		"up":                         {"job", "namespace"},
	}
	tests := []struct {
		name, expr string
		want       []string
	}{
		{"fine", `histogram_quantile(0.95, sum by (le) (rate(response_latency_ms_bucket{namespace="a"}[5m])))`, nil},
		{"fine binary", `sum by (namespace) (rate(request_total{direction="inbound"}[5m])) / on (namespace) group_left sum by (namespace) (up)`, nil},
		{"name matcher", `{__name__="up", job="x"}`, nil},
		{"unbalanced", `sum(rate(request_total[5m])`, []string{"parse: 1:28: parse error: unclosed left parenthesis"}},
		{"matcher syntax", `request_total{namespace="a"`, []string{"parse: "}},
		{"bad regexp", `request_total{namespace=~"("}`, []string{"parse: "}},
		{"unknown function", `rte(request_total[5m])`, []string{"parse: 1:1: parse error: unknown function with name \"rte\""}},
		{"range of an instant", `rate(sum(request_total)[5m])`, []string{"parse: "}},
		{"unknown metric", `sum(rate(requests_total[5m]))`, []string{`selects requests_total, which Linkerd does not export`}},
		{"unknown label", `request_total{deployment="a"}`, []string{`matches request_total on "deployment", not one of its labels`}},
		{"grouping", `sum by (le) (request_total)`, []string{`groups by "le", which none of request_total carries`}},
		{"grouping in the other subtree", `sum by (le) (request_total) + sum by (le) (response_latency_ms_bucket)`,
			[]string{`groups by "le", which none of request_total carries`}},
		{"on", `request_total / on (job) up`, []string{`matches on "job", which none of request_total carries`}},
		{"ignoring", `request_total / ignoring (le) up`, []string{`ignores "le", which none of request_total, up carries`}},
		{"group_left", `request_total / on (namespace) group_left (le) up`, []string{`copies "le", which none of up carries`}},
		{"group_right", `up / on (namespace) group_right (le) request_total`, []string{`copies "le", which none of up carries`}},
		{"group_left from the right", `up / on (namespace) group_left (direction) request_total`, nil},
		{"no metric", `vector(1)`, []string{"selects no metric"}},
		{"no metric name", `{namespace="a"}`, []string{"selects no metric by name"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := check(tc.expr, metrics)
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("problem %q, want one starting %q", got[i], tc.want[i])
				}
			}
		})
	}
}

var promParser = parser.NewParser(parser.Options{})

// check parses expr and returns what is wrong with it: a parse error, a
// metric not in metrics, a matcher on a label the metric lacks, or a
// by/without/on/ignoring/group_x label that none of the metrics it applies
// to carries.
func check(expr string, metrics map[string][]string) []string {
	root, err := promParser.ParseExpr(expr)
	if err != nil {
		return []string{"parse: " + err.Error()}
	}
	var problems []string
	if len(selected(root)) == 0 {
		problems = append(problems, "selects no metric")
	}
	parser.Inspect(root, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			problems = append(problems, checkSelector(n, metrics)...)
		case *parser.AggregateExpr:
			problems = append(problems, checkLabels("groups by", n.Grouping, n.Expr, metrics)...)
		case *parser.BinaryExpr:
			if vm := n.VectorMatching; vm != nil {
				if vm.On { // both sides need the labels they match on
					problems = append(problems, checkLabels("matches on", vm.MatchingLabels, n.LHS, metrics)...)
					problems = append(problems, checkLabels("matches on", vm.MatchingLabels, n.RHS, metrics)...)
				} else {
					problems = append(problems, checkLabels("ignores", vm.MatchingLabels, parser.Expressions{n.LHS, n.RHS}, metrics)...)
				}
				// group_left copies labels from the "one" side, the right.
				one := n.RHS
				if vm.Card == parser.CardOneToMany {
					one = n.LHS
				}
				problems = append(problems, checkLabels("copies", vm.Include, one, metrics)...)
			}
		}
		return nil
	})
	return problems
}

// metricName is the metric a selector names, by name or __name__="...".
func metricName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

func checkSelector(vs *parser.VectorSelector, metrics map[string][]string) []string {
	name := metricName(vs)
	known, ok := metrics[name]
	if name == "" {
		return []string{"selects no metric by name"}
	}
	if !ok {
		return []string{fmt.Sprintf("selects %s, which Linkerd does not export", name)}
	}
	var problems []string
	for _, m := range vs.LabelMatchers {
		if m.Name != labels.MetricName && !slices.Contains(known, m.Name) {
			problems = append(problems, fmt.Sprintf("matches %s on %q, not one of its labels", name, m.Name))
		}
	}
	return problems
}

// checkLabels fails on a label that no metric selected under node carries.
func checkLabels(what string, names []string, node parser.Node, metrics map[string][]string) []string {
	sels := selected(node)
	var problems []string
	for _, l := range names {
		carried := slices.ContainsFunc(sels, func(metric string) bool {
			return l == labels.MetricName || slices.Contains(metrics[metric], l)
		})
		if !carried {
			problems = append(problems, fmt.Sprintf("%s %q, which none of %s carries", what, l, strings.Join(sels, ", ")))
		}
	}
	return problems
}

// selected is the metrics node selects, sorted and once each.
func selected(node parser.Node) []string {
	var out []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && !slices.Contains(out, metricName(vs)) {
			out = append(out, metricName(vs))
		}
		return nil
	})
	slices.Sort(out)
	return out
}
