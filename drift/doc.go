// Package drift is the long-running reconciler that keeps the cluster
// matching mesh.cue. It arrives with the reconcile issue.
package drift
