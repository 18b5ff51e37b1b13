// Package testbin knows where the test cluster's binaries, a kubectl of
// the cluster's version and a Prometheus server live, and how to build them
// from the Go module proxy at pinned versions.
//
// The binaries are cached outside the checkout, under
// ${XDG_CACHE_HOME:-$HOME/.cache}/meshctl/testbin/<versions>, so a second
// build costs nothing. MESHCTL_TESTBIN overrides the directory.
package testbin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Pinned versions. Changing one changes the cache directory, or for
// Prometheus its file name, so an old build is never mistaken for a new one.
const (
	KubernetesVersion = "v1.37.2"
	StagingVersion    = "v0.37.2" // k8s.io/<staging> modules that match KubernetesVersion
	EtcdVersion       = "v3.6.16"
	KwokVersion       = "v0.8.0"
	// PrometheusVersion is the github.com/prometheus/prometheus module
	// version, the one hack/promql pins for its parser.
	PrometheusVersion = "v0.316.0"
)

// EnvDir overrides the cache directory.
const EnvDir = "MESHCTL_TESTBIN"

// Paths are the binaries and kwok stage file of one build.
type Paths struct {
	Dir               string
	Etcd              string
	APIServer         string
	ControllerManager string
	Scheduler         string
	// Kubectl is built from the same k8s.io/kubernetes sources as
	// APIServer, so that benchmarks and tests never use a kubectl outside
	// the supported version skew.
	Kubectl string
	Kwok    string
	// KwokStages is a multi-document YAML of kwok Stage objects: node/fast,
	// node/heartbeat-with-lease and pod/fast, as shipped in kwok's module.
	KwokStages string
	// Prometheus is the Prometheus server. Its file name carries
	// PrometheusVersion, which the directory name does not, so that a
	// cache from before it joined keeps its other binaries.
	Prometheus string
}

// Dir is the directory that holds (or will hold) the binaries.
func Dir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "meshctl", "testbin", fmt.Sprintf("k8s-%s_etcd-%s_kwok-%s", KubernetesVersion, EtcdVersion, KwokVersion))
}

// In returns the paths inside dir.
func In(dir string) Paths {
	return Paths{
		Dir:               dir,
		Etcd:              filepath.Join(dir, "etcd"),
		APIServer:         filepath.Join(dir, "kube-apiserver"),
		ControllerManager: filepath.Join(dir, "kube-controller-manager"),
		Scheduler:         filepath.Join(dir, "kube-scheduler"),
		Kubectl:           filepath.Join(dir, "kubectl"),
		Kwok:              filepath.Join(dir, "kwok"),
		KwokStages:        filepath.Join(dir, "kwok-stages.yaml"),
		Prometheus:        filepath.Join(dir, "prometheus-"+PrometheusVersion),
	}
}

func (p Paths) all() []string {
	return []string{p.Etcd, p.APIServer, p.ControllerManager, p.Scheduler, p.Kubectl, p.Kwok, p.KwokStages, p.Prometheus}
}

// ErrMissing is wrapped by Find when a binary is absent.
var ErrMissing = errors.New("test binaries missing")

// Find returns the cached binaries, or an error that says how to build them.
func Find() (Paths, error) {
	p := In(Dir())
	for _, f := range p.all() {
		if _, err := os.Stat(f); err != nil {
			return p, fmt.Errorf("%w: %s not found; run `make testbin` (builds kube-apiserver and kubectl %s, etcd %s, kwok %s and prometheus %s from the Go module proxy, about 20 minutes cold on 2 cores; only what is missing) or set %s",
				ErrMissing, f, KubernetesVersion, EtcdVersion, KwokVersion, PrometheusVersion, EnvDir)
		}
	}
	return p, nil
}
