package generators

import (
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The programs other than Kubernetes and Linkerd that read a configuration
// file meshctl renders. To the API server each file is only a string; the
// program is the first to judge it, so the tests load every one with the
// program's own parser: hack/promql (Prometheus, Grafana's dashboard
// schema), hack/otelcol (the Collector) and hack/nginx (issue 27).
const (
	// ProgramPrometheus is viz's prometheus.yml.
	ProgramPrometheus = "prometheus"
	// ProgramPrometheusScrapeFile is a file for a Prometheus's
	// scrape_config_files.
	ProgramPrometheusScrapeFile = "prometheus-scrape-config-file"
	// ProgramPrometheusOperatorScrape is a list of scrape jobs for the
	// Prometheus Operator's additionalScrapeConfigs.
	ProgramPrometheusOperatorScrape = "prometheus-operator-additional-scrape-configs"
	// ProgramOtelCol is the OpenTelemetry Collector's configuration.
	ProgramOtelCol = "otelcol"
	// ProgramNginx is a fault backend's nginx.conf.
	ProgramNginx = "nginx"
	// ProgramGrafanaDashboard is one Grafana dashboard's JSON model.
	ProgramGrafanaDashboard = "grafana-dashboard"
)

// ProgramConfig is one configuration file in a render, for a program other
// than Kubernetes and Linkerd.
type ProgramConfig struct {
	// Program is one of the Program* constants.
	Program string
	// Object is the ID of the ConfigMap or Secret that holds the file, and
	// Key its key there.
	Object, Key string
	Data        []byte
}

// ProgramConfigs finds every configuration file in objs that a program
// other than Kubernetes and Linkerd reads, in the order of objs, then of
// key. It reads the objects as rendered, patches included.
func ProgramConfigs(objs []Object) ([]ProgramConfig, error) {
	var out []ProgramConfig
	for _, o := range objs {
		kind := o.Object.GetKind()
		if kind != "ConfigMap" && kind != "Secret" {
			continue
		}
		// A Secret's data is base64 in an unstructured object.
		data, _ := o.Object.Object["data"].(map[string]any)
		for _, key := range slices.Sorted(maps.Keys(data)) {
			program := programOf(o, key)
			if program == "" {
				continue
			}
			s, ok := data[key].(string)
			if !ok {
				return nil, fmt.Errorf("%s: key %s is not a string", o.ID(), key)
			}
			b := []byte(s)
			if kind == "Secret" {
				var err error
				if b, err = base64.StdEncoding.DecodeString(s); err != nil {
					return nil, fmt.Errorf("%s: key %s: %w", o.ID(), key, err)
				}
			}
			out = append(out, ProgramConfig{Program: program, Object: o.ID(), Key: key, Data: b})
		}
	}
	return out, nil
}

// programOf names the program that reads key of o, or "" for none.
func programOf(o Object, key string) string {
	u := o.Object
	labels := u.GetLabels()
	switch kind, ns, name := u.GetKind(), u.GetNamespace(), u.GetName(); {
	case kind == "ConfigMap" && ns == vizNamespace && name == promConfigMap && key == promConfigFile:
		return ProgramPrometheus
	case kind == "Secret" && ns == vizNamespace && name == promScrapeSecret && key == promScrapeFileKey:
		return ProgramPrometheusScrapeFile
	case kind == "Secret" && ns == vizNamespace && name == promScrapeSecret && key == promScrapeOperatorKey:
		return ProgramPrometheusOperatorScrape
	case kind == "ConfigMap" && labels[labelExtension] == traceExtension && name == collectorName+"-config" && key == collectorConfigKey:
		return ProgramOtelCol
	case kind == "ConfigMap" && labels["app.kubernetes.io/component"] == "fault" && key == faultConfigKey:
		return ProgramNginx
	case kind == "ConfigMap" && labels[labelGrafanaDashboard] == "1" && strings.HasSuffix(key, ".json"):
		return ProgramGrafanaDashboard
	}
	return ""
}
