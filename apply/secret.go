package apply

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// EnsureSecret returns the data of the Secret name in the meshctl
// namespace, creating it from gen when it does not exist. The Secret is
// created once and never updated, so what it holds (certificates, say) is
// not rotated by later runs. It is not in the inventory and carries
// meshctl.io/prune: disabled. With dryRun, a missing Secret is generated
// but not stored.
func (c *Client) EnsureSecret(ctx context.Context, name string, dryRun bool, gen func() (map[string][]byte, error)) (data map[string][]byte, created bool, err error) {
	s := &corev1.Secret{}
	err = c.kube.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: name}, s)
	if err == nil {
		return s.Data, false, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, false, fmt.Errorf("reading secret %s/%s: %w", c.namespace, name, err)
	}
	if data, err = gen(); err != nil {
		return nil, false, err
	}
	if dryRun {
		return data, true, nil
	}
	if err := c.ensureNamespace(ctx); err != nil {
		return nil, false, err
	}
	s = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: c.namespace,
			Labels:      map[string]string{LabelManagedBy: ManagedByMeshctl},
			Annotations: map[string]string{AnnotationPrune: "disabled"},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	err = c.kube.Create(ctx, s, client.FieldOwner(FieldManager))
	if apierrors.IsAlreadyExists(err) {
		// Another run created it first: use theirs.
		return c.EnsureSecret(ctx, name, dryRun, gen)
	}
	if err != nil {
		return nil, false, fmt.Errorf("creating secret %s/%s: %w", c.namespace, name, err)
	}
	return data, true, nil
}

// SecretKey reads one key of a Secret anywhere in the cluster.
func (c *Client) SecretKey(ctx context.Context, namespace, name, key string) ([]byte, error) {
	s := &corev1.Secret{}
	if err := c.kube.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s); err != nil {
		return nil, fmt.Errorf("reading secret %s/%s: %w", namespace, name, err)
	}
	v, ok := s.Data[key]
	if !ok {
		return nil, fmt.Errorf("secret %s/%s has no key %q", namespace, name, key)
	}
	return v, nil
}
