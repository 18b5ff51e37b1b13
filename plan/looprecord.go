package plan

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LoopRecordName is the ConfigMap, beside the inventory, where the
// reconcile loop records how it stands; `meshctl status` and `meshctl
// check` read it, and the loop (drift) writes it under LoopRecordKey.
const (
	LoopRecordName = "meshctl-reconciler"
	LoopRecordKey  = "status.json"
)

// States of the loop.
const (
	LoopInSync  = "in sync"
	LoopDrifted = "drifted"
	LoopFailing = "failing"
)

// LoopRecord is what the loop records. It is written only when it changes,
// so a loop with nothing to do writes nothing.
type LoopRecord struct {
	Source string `json:"source"`
	// Mode is "correct" or "detect".
	Mode string `json:"mode"`
	// Revision is the revision of mesh.cue applied last: a Flux artifact's
	// revision shows the git commit that is live.
	Revision string `json:"revision,omitempty"`
	State    string `json:"state"`
	// LastApplyTime is when a reconcile last changed the cluster, or
	// applied a new revision.
	LastApplyTime *metav1.Time `json:"lastApplyTime,omitempty"`
	// LastError is the last failure, "" once a reconcile succeeds.
	LastError     string       `json:"lastError,omitempty"`
	LastErrorTime *metav1.Time `json:"lastErrorTime,omitempty"`
	// FailedRevision is a revision that did not render; the one before
	// stays applied.
	FailedRevision string `json:"failedRevision,omitempty"`
	// Drifted lists objects that differ from the render and were not
	// corrected (detect mode, or a correction that failed).
	Drifted []string `json:"drifted,omitempty"`
	// DriftedTotal counts them all; Drifted lists the first few.
	DriftedTotal int `json:"driftedTotal,omitempty"`
	// Warnings are what the last apply said keeps the mesh from running
	// as mesh.cue asks: too few nodes for HA, a headless Service, a
	// certificate meshctl cannot rotate that expires within 60 days.
	Warnings []string `json:"warnings,omitempty"`
	Objects  int      `json:"objects"`
	Leader   string   `json:"leader,omitempty"`
}

// ReadLoopRecord returns the loop's record in namespace, or nil when no
// loop has run there.
func ReadLoopRecord(ctx context.Context, kube client.Client, namespace string) (*LoopRecord, error) {
	cm := &corev1.ConfigMap{}
	err := kube.Get(ctx, client.ObjectKey{Namespace: namespace, Name: LoopRecordName}, cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s/%s: %w", namespace, LoopRecordName, err)
	}
	st := &LoopRecord{}
	if err := json.Unmarshal([]byte(cm.Data[LoopRecordKey]), st); err != nil {
		return nil, fmt.Errorf("%s/%s holds no status meshctl can read: %w", namespace, LoopRecordName, err)
	}
	return st, nil
}
