package drift

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/internal/ident"
	"github.com/meshctl/meshctl/plan"
)

// StatusName is the ConfigMap, beside the inventory, where the loop records
// how it stands (plan.LoopRecordName).
const StatusName = plan.LoopRecordName

const statusKey = plan.LoopRecordKey

// maxListed bounds the drifted objects the status names, so that it stays
// small when a whole mesh drifts.
const maxListed = 50

// States of the loop.
const (
	StateInSync  = plan.LoopInSync
	StateDrifted = plan.LoopDrifted
	StateFailing = plan.LoopFailing
)

// Status is what the loop records (plan.LoopRecord, where `meshctl status`
// and `meshctl check` read it).
type Status = plan.LoopRecord

// ReadStatus returns the loop's record in namespace, or nil when no loop
// has run there.
func ReadStatus(ctx context.Context, kube client.Client, namespace string) (*Status, error) {
	return plan.ReadLoopRecord(ctx, kube, namespace)
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
