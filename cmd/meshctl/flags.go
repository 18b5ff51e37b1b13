package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshctl/meshctl/apply"
)

// limitValue is --max-deletions: a count or a percentage, checked when the
// flag is parsed.
type limitValue struct{ l *apply.Limit }

// String is "" when not given: the budget is then mesh.cue's, or 50%,
// which the flag's usage says.
func (v limitValue) String() string {
	if *v.l == (apply.Limit{}) {
		return ""
	}
	return v.l.String()
}
func (v limitValue) Type() string { return "N|N%" }

func (v limitValue) Set(s string) error {
	l, err := apply.ParseLimit(s)
	if err != nil {
		return err
	}
	*v.l = l
	return nil
}

// requestTimeout is kubectl's --request-timeout, a string in ConfigFlags,
// checked when the flag is parsed rather than when the client is built.
type requestTimeout struct{ s *string }

func (v requestTimeout) String() string { return *v.s }
func (v requestTimeout) Type() string   { return "duration" }

// Set accepts what clientcmd does: whole seconds, or a duration.
func (v requestTimeout) Set(s string) error {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		*v.s = s
		return nil
	}
	if d, err := time.ParseDuration(s); err != nil || d < 0 {
		return fmt.Errorf("want a duration like 30s, or 0 for none")
	}
	*v.s = s
	return nil
}

// enumValue is a string flag that takes one of a few values, checked when
// the flag is parsed.
type enumValue struct {
	value   *string
	allowed []string
}

func (v enumValue) String() string { return *v.value }
func (v enumValue) Type() string   { return "string" }

func (v enumValue) Set(s string) error {
	if !slices.Contains(v.allowed, s) {
		return fmt.Errorf("want %s", oneOf(v.allowed))
	}
	*v.value = s
	return nil
}

// oneOf reads "a, b or c".
func oneOf(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

// addOutputFlag registers -o/--output with its allowed formats, the first
// being the default, and completes them.
func addOutputFlag(cmd *cobra.Command, output *string, formats []string, usage string) {
	*output = formats[0]
	cmd.Flags().VarP(enumValue{output, formats}, "output", "o", usage)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}
