// Package promql checks what meshctl writes for Prometheus and Grafana
// with their own code: it parses every Grafana dashboard query with
// Prometheus's PromQL parser, loads viz's prometheus.yml and both keys of
// the scrape-config Secret with Prometheus's config package, and decodes
// every dashboard strictly into the Grafana Foundation SDK's types (issue
// 27). It is a module of its own because github.com/prometheus/prometheus
// raises the k8s.io/* requirements of meshctl's module; the tests are all
// there is.
package promql
