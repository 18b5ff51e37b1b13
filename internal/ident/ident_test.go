package ident_test

import (
	"testing"

	"github.com/meshctl/meshctl/internal/ident"
)

func TestID(t *testing.T) {
	for _, tc := range []struct {
		name, kind, namespace, object, want string
	}{
		{name: "namespaced", kind: "Deployment", namespace: "linkerd", object: "linkerd-destination", want: "Deployment/linkerd/linkerd-destination"},
		{name: "cluster-scoped", kind: "ClusterRole", object: "linkerd-heartbeat", want: "ClusterRole/linkerd-heartbeat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ident.ID(tc.kind, tc.namespace, tc.object); got != tc.want {
				t.Errorf("ID = %q, want %q", got, tc.want)
			}
		})
	}
}
