// Package promql parses meshctl's Grafana dashboard queries with
// Prometheus's own PromQL parser. It is a module of its own because
// github.com/prometheus/prometheus raises the k8s.io/* requirements of
// meshctl's module; the test is all there is.
package promql
