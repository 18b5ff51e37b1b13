package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshctl/meshctl/schema"
)

func liveServices(headless ...string) map[string]*corev1.Service {
	out := map[string]*corev1.Service{}
	for _, name := range []string{"books", "books-v2", "authors"} {
		out[name] = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.1"}}
	}
	for _, name := range headless {
		out[name].Spec.ClusterIP = corev1.ClusterIPNone
	}
	return out
}

func TestServiceWarnings(t *testing.T) {
	const advice = "give the Service a cluster IP, or add a Service with a cluster IP for the same pods and key the settings by it"
	fault := &schema.Fault{Percent: 10, Status: 500}
	for _, tc := range []struct {
		name string
		key  string
		svc  schema.Service
		live map[string]*corev1.Service
		want []string
	}{
		{name: "routed", key: "shop/books", svc: schema.Service{Split: map[string]int{"books": 90, "books-v2": 10}}, live: liveServices()},
		{
			name: "headless with a split and a fault", key: "shop/books",
			svc:  schema.Service{Split: map[string]int{"books": 90, "books-v2": 10}, Fault: fault},
			live: liveServices("books"),
			want: []string{"Service shop/books is headless (clusterIP: None): Linkerd cannot route a headless Service, so what mesh.cue gives it (split and fault) does nothing; " + advice},
		},
		{
			name: "headless with everything", key: "shop/books",
			svc:  schema.Service{Routes: []schema.Route{{Name: "GET /"}}, RetryBudget: &schema.RetryBudget{}, Split: map[string]int{"books": 100}, Fault: fault},
			live: liveServices("books"),
			want: []string{"Service shop/books is headless (clusterIP: None): Linkerd cannot route a headless Service, so what mesh.cue gives it (routes, retry budget, split and fault) does nothing; " + advice},
		},
		{
			name: "headless with routes", key: "shop/authors",
			svc:  schema.Service{Routes: []schema.Route{{Name: "GET /"}}},
			live: liveServices("authors"),
			want: []string{"Service shop/authors is headless (clusterIP: None): Linkerd cannot route a headless Service, so what mesh.cue gives it (routes) does nothing; " + advice},
		},
		// Only the Service mesh.cue routes counts: a headless backend is
		// reached through the apex's route.
		{name: "headless backend", key: "shop/books", svc: schema.Service{Split: map[string]int{"books": 90, "books-v2": 10}}, live: liveServices("books-v2")},
		{name: "not deployed yet", key: "shop/reviews", svc: schema.Service{Split: map[string]int{"reviews": 90, "reviews-v2": 10}}, live: liveServices()},
		{
			name: "backends missing", key: "shop/books",
			svc:  schema.Service{Split: map[string]int{"books": 80, "books-v3": 5, "books-v4": 15}},
			live: liveServices(),
			want: []string{
				"Service shop/books: split backend Service shop/books-v3 does not exist, so its 5% of the requests will fail; deploy it, or give it weight 0",
				"Service shop/books: split backend Service shop/books-v4 does not exist, so its 15% of the requests will fail; deploy it, or give it weight 0",
			},
		},
		{name: "missing backend without traffic", key: "shop/authors", svc: schema.Service{Split: map[string]int{"authors": 100, "authors-blue": 0}}, live: liveServices()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, serviceWarnings(tc.key, tc.svc, tc.live)); diff != "" {
				t.Errorf("serviceWarnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRouted(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  schema.Service
		want bool
	}{
		{name: "nothing", svc: schema.Service{Model: "httproute", Port: 80}},
		{name: "export only", svc: schema.Service{Export: "gateway"}},
		{name: "routes", svc: schema.Service{Routes: []schema.Route{{Name: "r"}}}, want: true},
		{name: "retry budget", svc: schema.Service{RetryBudget: &schema.RetryBudget{}}, want: true},
		{name: "split", svc: schema.Service{Split: map[string]int{"a": 100}}, want: true},
		{name: "fault", svc: schema.Service{Fault: &schema.Fault{Percent: 1, Status: 500}}, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := routed(tc.svc); got != tc.want {
				t.Errorf("routed = %v, want %v", got, tc.want)
			}
		})
	}
}
