package apply

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// InventoryName is the ConfigMap, in the meshctl namespace, that records
// what meshctl applied.
const InventoryName = "meshctl-inventory"

const (
	inventoryKey = "inventory.json"
	// inventoryGzKey holds the same JSON, gzipped, once it is too large to
	// sit in a ConfigMap as text (the API server caps objects at 1 MiB; a
	// mesh of 10,000 objects lists about 1.5 MiB while a run is pending).
	inventoryGzKey = "inventory.json.gz"
	// inventoryPlainMax is the largest inventory kept as text, readable
	// with kubectl.
	inventoryPlainMax = 256 << 10
)

// Inventory is meshctl's record of the objects it manages.
type Inventory struct {
	// Version is the meshctl version of the last run that wrote it.
	Version string `json:"meshctlVersion"`
	// Digest is the sha256 of the rendered set that was last committed.
	Digest string `json:"digest"`
	// Objects were applied by a run that finished.
	Objects []Ref `json:"objects"`
	// Pending were about to be applied by a run that has not finished:
	// a run killed halfway leaves them here, and the next run prunes the
	// ones its render no longer holds.
	Pending []Ref `json:"pending,omitempty"`

	resourceVersion string
}

// all is Objects and Pending, without duplicates.
func (inv *Inventory) all() []Ref {
	if inv == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []Ref
	for _, r := range append(slices.Clone(inv.Objects), inv.Pending...) {
		if !seen[r.key()] {
			seen[r.key()] = true
			out = append(out, r)
		}
	}
	return out
}

// Digest hashes a rendered set: object order and content, so any change to
// the render changes it.
func Digest(set Set) (string, error) {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, st := range set.Stages {
		for _, o := range st.Objects {
			// Encode writes the JSON and a newline straight into the
			// hash: the same bytes as Marshal and a '\n', without them.
			if err := enc.Encode(o.Object); err != nil {
				return "", err
			}
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// ReadInventory returns the inventory, or nil when there is none.
func (c *Client) ReadInventory(ctx context.Context) (*Inventory, error) {
	cm := &corev1.ConfigMap{}
	err := c.kube.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: InventoryName}, cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading inventory %s/%s: %w", c.namespace, InventoryName, err)
	}
	raw := []byte(cm.Data[inventoryKey])
	if gz, ok := cm.BinaryData[inventoryGzKey]; ok && len(raw) == 0 {
		if raw, err = gunzip(gz); err != nil {
			return nil, fmt.Errorf("inventory %s/%s is corrupt (%v); refusing to prune on its strength", c.namespace, InventoryName, err)
		}
	}
	inv := &Inventory{}
	if err := json.Unmarshal(raw, inv); err != nil {
		return nil, fmt.Errorf("inventory %s/%s is corrupt (%v); refusing to prune on its strength", c.namespace, InventoryName, err)
	}
	inv.resourceVersion = cm.ResourceVersion
	return inv, nil
}

// writeInventory stores inv, creating the namespace and ConfigMap when
// needed. It uses the resourceVersion it read, so two runs at once cannot
// both win.
func (c *Client) writeInventory(ctx context.Context, inv *Inventory) error {
	sortRefs(inv.Objects)
	sortRefs(inv.Pending)
	data, err := json.MarshalIndent(inv, "", " ")
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name: InventoryName, Namespace: c.namespace,
			Labels:          map[string]string{LabelManagedBy: ManagedByMeshctl},
			ResourceVersion: inv.resourceVersion,
		},
	}
	if len(data) <= inventoryPlainMax {
		cm.Data = map[string]string{inventoryKey: string(data)}
	} else {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(data); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		cm.BinaryData = map[string][]byte{inventoryGzKey: buf.Bytes()}
	}
	if inv.resourceVersion == "" {
		if err := c.ensureNamespace(ctx); err != nil {
			return err
		}
		err = c.kube.Create(ctx, cm, client.FieldOwner(FieldManager))
	} else {
		err = c.kube.Update(ctx, cm, client.FieldOwner(FieldManager))
	}
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("inventory %s/%s changed during this run: another meshctl apply or reconcile is running; try again", c.namespace, InventoryName)
	}
	if err != nil {
		return fmt.Errorf("writing inventory %s/%s: %w", c.namespace, InventoryName, err)
	}
	inv.resourceVersion = cm.ResourceVersion
	return nil
}

// gunzip reads a gzipped inventory, up to 64 MiB.
func gunzip(gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(io.LimitReader(zr, 64<<20))
}

// ensureNamespace creates the meshctl namespace if it is missing. meshctl
// never prunes it.
func (c *Client) ensureNamespace(ctx context.Context) error {
	ns := &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        c.namespace,
			Labels:      map[string]string{LabelManagedBy: ManagedByMeshctl},
			Annotations: map[string]string{AnnotationPrune: "disabled"},
		},
	}
	err := c.kube.Create(ctx, ns, client.FieldOwner(FieldManager))
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", c.namespace, err)
	}
	return nil
}

func refsOf(set Set) []Ref {
	var out []Ref
	for _, st := range set.Stages {
		for _, o := range st.Objects {
			out = append(out, refOf(o))
		}
	}
	sortRefs(out)
	return out
}

func refSet(rs []Ref) map[string]Ref {
	m := make(map[string]Ref, len(rs))
	for _, r := range rs {
		m[r.key()] = r
	}
	return m
}

// pruneCandidates are the inventory's objects that the new render lacks.
func pruneCandidates(prev *Inventory, next []Ref) []Ref {
	want := refSet(next)
	var out []Ref
	for _, r := range prev.all() {
		if _, ok := want[r.key()]; !ok {
			out = append(out, r)
		}
	}
	return out
}

func sameRefs(a, b []Ref) bool {
	if len(a) != len(b) {
		return false
	}
	sa := refSet(a)
	for _, r := range b {
		if x, ok := sa[r.key()]; !ok || x.APIVersion != r.APIVersion {
			return false
		}
	}
	return true
}
