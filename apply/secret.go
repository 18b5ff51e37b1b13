package apply

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// StoredSecret is the data of one of meshctl's own Secrets, as read or
// created, with the version UpdateSecret needs.
type StoredSecret struct {
	Data map[string][]byte
	// Created: this call created it (with dryRun, generated it in memory).
	Created bool

	name   string
	secret *corev1.Secret // nil when generated in a dry run
}

// EnsureSecret returns the Secret name in the meshctl namespace, creating
// it from gen when it does not exist. Later runs change it only through
// UpdateSecret (a rotation), so a re-render rotates nothing. It is not in
// the inventory and carries meshctl.io/prune: disabled. With dryRun, a
// missing Secret is generated but not stored.
func (c *Client) EnsureSecret(ctx context.Context, name string, dryRun bool, gen func() (map[string][]byte, error)) (StoredSecret, error) {
	s := &corev1.Secret{}
	err := c.kube.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: name}, s)
	if err == nil {
		return StoredSecret{Data: s.Data, name: name, secret: s}, nil
	}
	if !apierrors.IsNotFound(err) {
		return StoredSecret{}, fmt.Errorf("reading secret %s/%s: %w", c.namespace, name, err)
	}
	data, err := gen()
	if err != nil {
		return StoredSecret{}, err
	}
	if dryRun {
		return StoredSecret{Data: data, Created: true, name: name}, nil
	}
	if err := c.ensureNamespace(ctx); err != nil {
		return StoredSecret{}, err
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
		return StoredSecret{}, fmt.Errorf("creating secret %s/%s: %w", c.namespace, name, err)
	}
	return StoredSecret{Data: data, Created: true, name: name, secret: s}, nil
}

// UpdateSecret replaces the data of a Secret EnsureSecret returned, at the
// resourceVersion it was read at, so that two runs rotating at once cannot
// both win: the second fails and says to try again.
func (c *Client) UpdateSecret(ctx context.Context, stored *StoredSecret, data map[string][]byte) error {
	if stored.secret == nil {
		return fmt.Errorf("secret %s/%s was not stored, so it cannot be updated", c.namespace, stored.name)
	}
	s := stored.secret.DeepCopy()
	s.Data = data
	err := c.kube.Update(ctx, s, client.FieldOwner(FieldManager))
	if apierrors.IsConflict(err) {
		return fmt.Errorf("secret %s/%s changed during this run: another meshctl apply or reconcile is running; try again", c.namespace, stored.name)
	}
	if err != nil {
		return fmt.Errorf("updating secret %s/%s: %w", c.namespace, stored.name, err)
	}
	stored.Data, stored.secret = data, s
	return nil
}

// ReadSecret returns the data of the Secret name in the meshctl
// namespace, or nil when there is none.
func (c *Client) ReadSecret(ctx context.Context, name string) (map[string][]byte, error) {
	s := &corev1.Secret{}
	err := c.kube.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading secret %s/%s: %w", c.namespace, name, err)
	}
	return s.Data, nil
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
