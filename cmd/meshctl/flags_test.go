package main

import (
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/meshctl/meshctl/apply"
)

func TestLimitValue(t *testing.T) {
	var l apply.Limit
	v := limitValue{&l}
	// Not given: the budget is mesh.cue's, else 50%, which the usage says.
	if v.String() != "" {
		t.Errorf("not given: %q, want \"\"", v.String())
	}
	for _, s := range []string{"0", "7", "25%", "0%"} {
		if err := v.Set(s); err != nil {
			t.Errorf("Set(%q): %v", s, err)
		}
	}
	if err := v.Set("7"); err != nil || v.String() != "7" || !l.IsCount || l.Count != 7 {
		t.Errorf("after Set(7): %q %+v %v", v.String(), l, err)
	}
	for _, s := range []string{"", "x", "-1", "101%", "5x"} {
		if err := v.Set(s); err == nil {
			t.Errorf("Set(%q) accepted", s)
		}
	}
}

func TestEnumValue(t *testing.T) {
	var s string
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s = "text"
	fs.VarP(enumValue{&s, []string{"text", "markdown", "json"}}, "output", "o", "")
	if err := fs.Parse([]string{"-o", "markdown"}); err != nil || s != "markdown" {
		t.Errorf("-o markdown: %q %v", s, err)
	}
	err := fs.Parse([]string{"-o", "xml"})
	if want := `invalid argument "xml" for "-o, --output" flag: want text, markdown or json`; err == nil || err.Error() != want {
		t.Errorf("-o xml: got %v, want %s", err, want)
	}
}

// TestReadmeFlagsTable keeps README's flags table and the commands' flags
// the same: a flag missing from either fails.
func TestReadmeFlagsTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	got := readmeFlags(t, string(readme))

	want := map[string][]string{}
	var all []*cobra.Command
	for _, c := range commands() {
		all = append(append(all, c), c.Commands()...)
	}
	for _, c := range all {
		// A subcommand's column is its path: "rotate trust-anchor".
		key := strings.TrimPrefix(c.CommandPath(), "meshctl ")
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			name := "--" + f.Name
			if f.Shorthand != "" {
				name = "-" + f.Shorthand + ", " + name
			}
			want[key] = append(want[key], name)
		})
	}
	for _, names := range want {
		sort.Strings(names)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("README.md's flags table and the commands' flags differ (-commands +README):\n%s", diff)
	}
}

// readmeFlags reads the table under "### Flags": a row per flag, a column
// per command, non-empty where the command has the flag.
func readmeFlags(t *testing.T, readme string) map[string][]string {
	_, section, ok := strings.Cut(readme, "\n### Flags\n")
	if !ok {
		t.Fatal(`README.md has no "### Flags" section`)
	}
	var rows [][]string
	for _, line := range strings.Split(section, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	if len(rows) < 3 || rows[0][0] != "flag" {
		t.Fatalf("README.md's flags table should start | flag | command... |, got %q", rows)
	}
	header := rows[0]
	spelling := regexp.MustCompile("`(-[^`]+)`")
	got := map[string][]string{}
	for _, row := range rows[2:] {
		if len(row) != len(header) {
			t.Fatalf("README.md flags row %q has %d cells, want %d", row, len(row), len(header))
		}
		var names []string
		for _, m := range spelling.FindAllStringSubmatch(row[0], -1) {
			names = append(names, m[1])
		}
		name := strings.Join(names, ", ")
		// The columns between the flag and its meaning are commands.
		for i := 1; i < len(header)-1; i++ {
			if row[i] != "" {
				got[header[i]] = append(got[header[i]], name)
			}
		}
	}
	for _, names := range got {
		sort.Strings(names)
	}
	return got
}

func TestRequestTimeout(t *testing.T) {
	s := "0"
	v := requestTimeout{&s}
	for _, ok := range []string{"0", "30", "30s", "2m"} {
		if err := v.Set(ok); err != nil || s != ok {
			t.Errorf("Set(%q): %q %v", ok, s, err)
		}
	}
	for _, bad := range []string{"", "soon", "-1", "-5s", "1.5"} {
		if err := v.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}
