package main

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshctl/meshctl/plan"
)

// TestReadmeListsEveryCheck: README's table of checks is the catalog,
// row for row: category, id, name, and upstream's hint where it has one.
func TestReadmeListsEveryCheck(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "| category | id | check | hint |\n|---|---|---|---|\n")
	if !ok {
		t.Fatal("README.md has no table of checks")
	}
	var got []plan.CheckInfo
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		hint := ""
		if strings.HasPrefix(cells[3], "[upstream](") {
			hint = strings.TrimSuffix(strings.TrimPrefix(cells[3], "[upstream]("), ")")
		}
		got = append(got, plan.CheckInfo{Category: cells[0], ID: strings.Trim(cells[1], "`"), Name: cells[2], Hint: hint})
	}
	if diff := cmp.Diff(plan.CheckCatalog(), got); diff != "" {
		t.Errorf("README.md's table of checks and the catalog differ (-catalog +README):\n%s", diff)
	}
}

// TestCheckIDsAreUnique: a dashboard keys on the id.
func TestCheckIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range plan.CheckCatalog() {
		if seen[c.ID] {
			t.Errorf("id %s is used twice", c.ID)
		}
		seen[c.ID] = true
	}
}
