// Package drift is the long-running reconciler behind `meshctl reconcile`:
// it keeps the cluster matching mesh.cue without anyone running a command.
//
// It loads the source when it changes (never per event) and applies it
// with plan.Apply, the verb behind `meshctl apply`: a new revision, a
// resync every interval and a certificate that falls due (a timer of its
// own) each render and apply through it, so the loop rotates, warns,
// guards and runs the after-apply steps exactly as the CLI does. It
// watches every managed kind through shared informers filtered by
// meshctl's label, and an object that something else changed or deleted
// is re-applied at once, through a rate-limited, deduplicating workqueue;
// whether it drifted is decided from the cache (apply.InSync), so an
// object in sync costs no request. Replicas share a Lease and only its
// holder writes. The loop serves Prometheus metrics, /healthz and
// /readyz, records Events on the inventory ConfigMap and its state in the
// ConfigMap meshctl-reconciler, which `meshctl status` reads. A panic in
// a step is recovered, logged with its stack and counted; the loop goes
// on.
package drift
