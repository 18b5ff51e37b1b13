// Package drift is the long-running reconciler behind `meshctl reconcile`:
// it keeps the cluster matching mesh.cue without anyone running a command.
//
// It renders the source when it changes (never per event), applies the
// render with package apply, and watches every managed kind through
// shared informers filtered by meshctl's label. An object that something
// else changed or deleted is re-applied at once, through a rate-limited,
// deduplicating workqueue; whether it drifted is decided from the cache
// (apply.InSync), so an object in sync costs no request. A full resync
// every interval re-applies what differs and prunes. Replicas share a
// Lease and only its holder writes. The loop serves Prometheus metrics,
// /healthz and /readyz, records Events on the inventory ConfigMap and its
// state in the ConfigMap meshctl-reconciler, which `meshctl status` reads.
package drift
