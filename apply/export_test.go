package apply

// NotInSync says why InSync is false, for the cluster tests' messages.
var NotInSync = notInSync
