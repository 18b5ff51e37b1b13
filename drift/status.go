package drift

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/internal/ident"
)

// StatusName is the ConfigMap, beside the inventory, where the loop records
// how it stands; `meshctl status` reads it.
const StatusName = "meshctl-reconciler"

const statusKey = "status.json"

// maxListed bounds the drifted objects the status names, so that it stays
// small when a whole mesh drifts.
const maxListed = 50

// States of the loop.
const (
	StateInSync  = "in sync"
	StateDrifted = "drifted"
	StateFailing = "failing"
)

// Status is what the loop records. It is written only when it changes, so
// a loop with nothing to do writes nothing.
type Status struct {
	Source string `json:"source"`
	Mode   Mode   `json:"mode"`
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
	// DriftedTotal counts them all; Drifted lists the first maxListed.
	DriftedTotal int `json:"driftedTotal,omitempty"`
	// Warnings are what the last apply said keeps the mesh from running
	// as mesh.cue asks: too few nodes for HA, a headless Service, a
	// certificate meshctl cannot rotate that expires within 60 days.
	Warnings []string `json:"warnings,omitempty"`
	Objects  int      `json:"objects"`
	Leader   string   `json:"leader,omitempty"`
}

// ReadStatus returns the loop's record in namespace, or nil when no loop
// has run there.
func ReadStatus(ctx context.Context, kube client.Client, namespace string) (*Status, error) {
	cm := &corev1.ConfigMap{}
	err := kube.Get(ctx, client.ObjectKey{Namespace: namespace, Name: StatusName}, cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s/%s: %w", namespace, StatusName, err)
	}
	st := &Status{}
	if err := json.Unmarshal([]byte(cm.Data[statusKey]), st); err != nil {
		return nil, fmt.Errorf("%s/%s holds no status meshctl can read: %w", namespace, StatusName, err)
	}
	return st, nil
}

// writeStatus records st when it differs from what was written last.
func writeStatus(ctx context.Context, kube client.Client, namespace string, st *Status, last *string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if string(b) == *last {
		return nil
	}
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: StatusName, Namespace: namespace,
			Labels: map[string]string{"app.kubernetes.io/name": "meshctl-reconciler"}},
		Data: map[string]string{statusKey: string(b)},
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := kube.Patch(ctx, cm, client.Apply, client.FieldOwner(ident.FieldManager+"-reconciler"), client.ForceOwnership); err != nil {
		return fmt.Errorf("recording status in %s/%s: %w", namespace, StatusName, err)
	}
	*last = string(b)
	return nil
}
