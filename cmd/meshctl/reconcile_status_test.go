package main

import (
	"bytes"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshctl/meshctl/drift"
)

func TestStatusPrintsTheReconcilersRecord(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	applied := metav1.NewTime(now.Add(-3 * time.Minute))
	failed := metav1.NewTime(now.Add(-time.Minute))
	tests := []struct {
		name string
		st   *drift.Status
		want string
	}{
		{"none", nil, "reconciler: none has run against this cluster\n"},
		{"in sync", &drift.Status{Source: "flux GitRepository flux-system/mesh", Mode: string(drift.Correct), Revision: "main@sha1:0123abcd",
			State: drift.StateInSync, LastApplyTime: &applied, Objects: 61, Leader: "meshctl-reconciler-7d9-x"},
			"reconciler: in sync; revision main@sha1:0123abcd from flux GitRepository flux-system/mesh; mode correct; last apply 2026-11-25T11:57:00Z (3m0s ago); 61 objects; leader meshctl-reconciler-7d9-x\n"},
		{"in sync, with warnings", &drift.Status{Source: "path mesh.cue", Mode: string(drift.Correct), Revision: "sha256:aa",
			State: drift.StateInSync, LastApplyTime: &applied, Objects: 61, Leader: "a", Warnings: []string{"Service shop/web is headless (clusterIP: None): …"}},
			"reconciler: in sync; revision sha256:aa from path mesh.cue; mode correct; last apply 2026-11-25T11:57:00Z (3m0s ago); 61 objects; leader a\n" +
				"  warning: Service shop/web is headless (clusterIP: None): …\n"},
		{"failing, drifted", &drift.Status{Source: "path /etc/mesh/mesh.cue", Mode: string(drift.Detect), Revision: "sha256:aa", State: drift.StateFailing,
			Drifted: []string{"ConfigMap/linkerd/linkerd-config"}, DriftedTotal: 3, FailedRevision: "sha256:bb",
			LastError: "revision sha256:bb does not render: /etc/mesh/mesh.cue:3:5: controlPlane.replicas: replicas must be between 1 and 10", LastErrorTime: &failed, Leader: "a"},
			"reconciler: failing; revision sha256:aa from path /etc/mesh/mesh.cue; mode detect; last apply never; 0 objects; leader a\n" +
				"  drifted: ConfigMap/linkerd/linkerd-config\n  and 2 more drifted objects\n" +
				"  revision sha256:bb does not render; sha256:aa stays applied\n" +
				"  last error at 2026-11-25T11:59:00Z: revision sha256:bb does not render: /etc/mesh/mesh.cue:3:5: controlPlane.replicas: replicas must be between 1 and 10\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			writeReconciler(&out, tc.st, now)
			if out.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), tc.want)
			}
		})
	}
}
