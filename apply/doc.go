// Package apply makes a cluster match a rendered set of objects.
//
// It works in stages, in order, through server-side apply
// (github.com/fluxcd/pkg/ssa) with the field manager "meshctl"; it records
// what it applied in an inventory ConfigMap, writing a pending record before
// it touches anything, so that a run killed halfway is cleaned up by the next;
// it prunes what left the render, within safety limits; and it diffs the
// render against the cluster with server-side dry-runs. An object whose live
// copy already holds what meshctl would apply, by meshctl's managed fields
// (InSync), is neither dry-run nor written: a no-op apply reads one LIST per
// kind and the inventory, and writes nothing.
//
// It knows nothing about Linkerd: callers hand it stages of unstructured
// objects.
package apply
