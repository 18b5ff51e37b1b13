// Package otelcol validates the OpenTelemetry Collector configurations
// meshctl renders (tracing.collector.deploy) with the Collector's own
// validation: the check `otelcol validate --config=FILE` runs, on a
// Collector built from exactly the components those configurations use.
// It is a module of its own, like hack/promql, so that the Collector's
// dependencies do not move meshctl's pinned ones.
package otelcol
