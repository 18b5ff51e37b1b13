// Package apply applies rendered objects to a cluster with server-side
// apply, keeps an inventory and prunes. It arrives with the apply issue.
package apply
