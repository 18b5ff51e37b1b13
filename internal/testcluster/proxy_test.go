package testcluster

import (
	"net/http"
	"testing"
)

func TestClassify(t *testing.T) {
	for target, want := range map[string]string{
		"/api":                                              "discovery",
		"/apis":                                             "discovery",
		"/apis/apps/v1":                                     "discovery",
		"/api/v1/namespaces":                                "list",
		"/api/v1/namespaces/web":                            "get",
		"/api/v1/namespaces/web/configmaps":                 "list",
		"/api/v1/namespaces/web/configmaps/a":               "get",
		"/apis/apps/v1/deployments":                         "list",
		"/apis/apps/v1/namespaces/x/deployments":            "list",
		"/apis/apps/v1/namespaces/x/deployments/d/scale":    "get",
		"/apis/rbac.authorization.k8s.io/v1/clusterroles/r": "get",
		"/api/v1/namespaces/web/services?watch=true":        "watch",
		"/api/v1/namespaces/web/services/a?dryRun=All":      "dryrun",
	} {
		r, _ := http.NewRequest(http.MethodGet, "https://h"+target, nil)
		if got := Classify(r); got != want {
			t.Errorf("GET %s: %s, want %s", target, got, want)
		}
	}
	r, _ := http.NewRequest(http.MethodPatch, "https://h/api/v1/namespaces/web/services/a", nil)
	if got := Classify(r); got != "write" {
		t.Errorf("PATCH: %s, want write", got)
	}
}

func TestCollection(t *testing.T) {
	for path, want := range map[string]string{
		"/api/v1/namespaces":                         "/api/v1/namespaces",
		"/api/v1/services":                           "/api/v1/services",
		"/api/v1/namespaces/web/services":            "/api/v1/services",
		"/apis/apps/v1/namespaces/x/deployments":     "/apis/apps/v1/deployments",
		"/apis/linkerd.io/v1alpha2/serviceprofiles":  "/apis/linkerd.io/v1alpha2/serviceprofiles",
		"/apis/rbac.authorization.k8s.io/v1/roles":   "/apis/rbac.authorization.k8s.io/v1/roles",
		"/apis/apps/v1/namespaces/x/deployments/d/x": "/apis/apps/v1/deployments/d/x",
	} {
		if got := (Request{Path: path}).Collection(); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
}
