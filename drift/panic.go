package drift

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// PanicError is a panic in one step of the loop (a render, an apply, a
// correction), recovered: a bug in meshctl, which must not stop the loop
// that keeps the mesh.
type PanicError struct {
	// Step is what panicked: "render", "apply" or "correct".
	Step  string
	Value any
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("internal error in %s: %v (a bug in meshctl; its stack is in the log)", e.Step, e.Value)
}

// recovered is deferred around one step: a panic becomes a *PanicError in
// *err, its stack goes to the log, and meshctl_errors_total{where="panic"}
// counts it. The caller then records the error as it records any failure
// (status, Event), and the loop goes on.
func (l *Loop) recovered(step string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	l.m.errors.WithLabelValues("panic").Inc()
	l.log.Error("recovered from a panic: this is a bug in meshctl", "step", step, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	*err = &PanicError{Step: step, Value: r}
}

// reason is the Event reason for a failure of a step: Panicked for a
// recovered panic, otherwise the step's own.
func reason(err error, otherwise string) string {
	var p *PanicError
	if errors.As(err, &p) {
		return "Panicked"
	}
	return otherwise
}
