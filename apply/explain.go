package apply

import (
	"errors"
	"fmt"
	"strings"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// explain turns an apply error into one that says what to do. It reads the
// API server's status (reason and causes), not the message text, so that
// force is advised only for a real immutable-field change; force is whether
// the run already had --force.
func explain(stage string, err error, force bool) error {
	msg := err.Error()
	var dre *ssaerrors.DryRunErr
	errors.As(err, &dre)
	switch {
	case meta.IsNoMatchError(err) || strings.Contains(msg, "no matches for kind"):
		return fmt.Errorf("stage %s: %w\n  the cluster does not serve this kind and mesh.cue does not install it: install its CRDs first (cert-manager's, for a Certificate)", stage, err)
	case strings.Contains(msg, "failed calling webhook"):
		return fmt.Errorf("stage %s: %w\n  the admission webhook is unreachable (its Service has no ready endpoints). With failurePolicy Fail (HA) the API server rejects what the webhook guards until the control plane runs; check the control plane's pods", stage, err)
	}
	if fields, ok := immutableFields(err); ok {
		if dre != nil && dre.InvolvedObject() != nil {
			if why, never := neverRecreated(dre.InvolvedObject()); never {
				return fmt.Errorf("stage %s: %w\n  %s cannot change in place, and meshctl never deletes and recreates a %s, even with --force: %s. Change mesh.cue back, or migrate by hand", stage, err, strings.Join(fields, ", "), dre.InvolvedObject().GetKind(), why)
			}
		}
		if force {
			return fmt.Errorf("stage %s: %w", stage, err)
		}
		return fmt.Errorf("stage %s: %w\n  %s is immutable; rerun with --force, or annotate the object %s=enabled in mesh.cue, to delete and recreate it", stage, err, strings.Join(fields, ", "), AnnotationForce)
	}
	if causes := invalidCauses(err); causes != "" {
		return fmt.Errorf("stage %s: %w\n  the API server rejected the object as invalid (%s): fix it in mesh.cue; --force does not help", stage, err, causes)
	}
	return fmt.Errorf("stage %s: %w", stage, err)
}

// invalidCauses lists the causes of an Invalid status, "" for any other
// error.
func invalidCauses(err error) string {
	var st apierrors.APIStatus
	if !errors.As(err, &st) || st.Status().Reason != metav1.StatusReasonInvalid || st.Status().Details == nil {
		return ""
	}
	var parts []string
	for _, c := range st.Status().Details.Causes {
		parts = append(parts, c.Field+": "+c.Message)
	}
	return strings.Join(parts, "; ")
}
