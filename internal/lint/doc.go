// Package lint holds tests that read meshctl's own source and refuse
// patterns that compile, pass review and fail at run time. It has no code
// of its own.
package lint
