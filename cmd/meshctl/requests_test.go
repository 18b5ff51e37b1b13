package main

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshctl/meshctl/internal/testcluster"
)

// TestNoopRequests counts, at the wire, what a no-op `meshctl apply` and a
// `meshctl diff` of a cluster in sync ask of the API server: no write, no
// dry-run, and no more than one LIST of any kind, with the headless Service
// warning still given (it reads the Services from the apply's own LIST).
//
// The cluster is the test's own (an API server and etcd): on the package's
// shared one, other tests' out-of-band edits leave field managers behind
// that make meshctl rightly dry-run the objects they touched.
func TestNoopRequests(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	path := writeMesh(t, t.TempDir(), `namespaces: "reqs-a": {inject: "enabled", create: true}
namespaces: "reqs-b": {inject: "enabled", create: true}
services: "reqs-a/web": {model: "serviceprofile", routes: [{name: "GET /", method: "GET", pathRegex: "/"}]}
services: "reqs-a/api": {model: "serviceprofile", retryBudget: {}}
services: "reqs-b/db": {model: "serviceprofile", routes: [{name: "GET /", method: "GET", pathRegex: "/"}]}
`)
	if code, out, errOut := runCLI("apply", "--kubeconfig="+cluster.Kubeconfig, path); code != exitOK {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	// A headless Service that mesh.cue routes: warned of on every run.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "reqs-a"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	if _, err := cluster.Client.CoreV1().Services("reqs-a").Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	proxy := cluster.StartProxy(t)
	kc := "--kubeconfig=" + proxy.Kubeconfig
	const warning = "Service reqs-a/web is headless"
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"apply", kc, path}, exitOK},
		{[]string{"diff", kc, path}, diffSame},
	} {
		proxy.Take()
		code, out, errOut := runCLI(tc.args...)
		reqs := proxy.Take()
		if code != tc.code || !strings.Contains(out+errOut, warning) {
			t.Fatalf("%s: exit %d, want %d, and the warning %q\n%s%s", tc.args[0], code, tc.code, warning, out, errOut)
		}
		lists := map[string]int{}
		for _, r := range reqs {
			switch r.Class {
			case "write", "dryrun", "watch":
				t.Errorf("%s on a cluster in sync: %s %s %s", tc.args[0], r.Class, r.Method, r.Path)
			case "list":
				lists[r.Collection()]++
			}
		}
		if len(lists) == 0 {
			t.Errorf("%s made no LIST at all: the proxy saw %d requests", tc.args[0], len(reqs))
		}
		for collection, n := range lists {
			if n > 1 {
				t.Errorf("%s listed %s %d times, want once", tc.args[0], collection, n)
			}
		}
	}
}
