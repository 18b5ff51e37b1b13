package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/plan"
)

// markdown writes diff reports for a pull request's comment: for each
// cluster, what the change means, the warnings and a table of the objects
// first, always; then the objects' diffs, folded, as many as fit in
// maxBytes. GitHub refuses a comment over 65,536 characters, and a change
// of 1,000 services renders several times that.
type markdown struct {
	// maxBytes bounds the whole output; 0 is no bound.
	maxBytes int
	// base is what an offline diff compares with ("`main...HEAD`
	// (1a2b3c4d5e6f)"), "" for a cluster.
	base string
	// again is the command that shows the whole diff, for the line that
	// says what was left out.
	again string
}

// mdSymbols mark a table row's action.
var mdSymbols = map[apply.Action]string{apply.Created: "+", apply.Configured: "~", apply.Deleted: "-", apply.Skipped: "="}

// mdTableRows is how many rows a cluster's table lists one object per row;
// a longer table is grouped by action, kind and namespace, so that it fits
// whatever the change.
const mdTableRows = 200

func (md markdown) write(w io.Writer, rep *plan.DiffReport) error {
	multi := len(rep.Clusters) > 1 || rep.Clusters[0].Cluster != ""
	var b strings.Builder
	b.WriteString("### meshctl diff")
	if md.base != "" {
		b.WriteString(" against " + md.base)
	}
	b.WriteString("\n\n")
	heads := make([]string, len(rep.Clusters))
	grouped := false
	for {
		size := b.Len()
		for i, c := range rep.Clusters {
			heads[i] = md.head(c, multi, grouped)
			size += len(heads[i])
		}
		// The heads take at most three quarters of the budget; the rest is
		// for the diffs. Grouped tables are as small as they get.
		if md.maxBytes == 0 || grouped || size <= md.maxBytes*3/4 {
			break
		}
		grouped = true
	}
	for _, h := range heads {
		b.WriteString(h)
	}
	type diffText struct{ cluster, id, text string }
	var diffs []diffText
	for _, c := range rep.Clusters {
		for _, o := range c.Result.Objects {
			if o.Action != apply.Unchanged && o.Diff != "" {
				diffs = append(diffs, diffText{c.Cluster, o.ID, o.Diff})
			}
		}
	}
	if len(diffs) == 0 {
		_, err := io.WriteString(w, b.String())
		return err
	}
	const open, closing = "<details><summary>Full diff</summary>\n\n```diff\n", "```\n\n</details>\n"
	// What the line about left-out diffs takes at most.
	const reserve = 400
	var body strings.Builder
	left, leftBytes := 0, 0
	for _, d := range diffs {
		text := d.text
		if multi {
			text = "# cluster " + d.cluster + "\n" + text
		}
		if md.maxBytes > 0 && b.Len()+len(open)+body.Len()+len(text)+len(closing)+reserve > md.maxBytes {
			left++
			leftBytes += len(text)
			continue
		}
		body.WriteString(text)
	}
	if body.Len() > 0 {
		b.WriteString(open + body.String() + closing)
	}
	if left > 0 {
		fmt.Fprintf(&b, "\n_The diffs of %d of %d objects (%s) are left out, to keep this comment under %d bytes; see them with `%s`._\n",
			left, len(diffs), size(leftBytes), md.maxBytes, md.again)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// head is a cluster's summary, warnings, meanings and table of objects.
func (md markdown) head(c *plan.ClusterDiff, multi, grouped bool) string {
	var b strings.Builder
	r := c.Result
	if multi {
		fmt.Fprintf(&b, "#### cluster `%s`\n\n", c.Cluster)
	}
	for _, warning := range r.Warnings {
		fmt.Fprintf(&b, "> **Warning:** %s\n\n", warning)
	}
	for _, s := range c.Rollouts {
		fmt.Fprintf(&b, "> **Rollout** %s\n\n", s.Summary(time.Now()))
	}
	if !r.Changed() {
		if md.base != "" {
			fmt.Fprintf(&b, "No changes: both revisions render the same %d objects.\n\n", r.Summary[apply.Unchanged])
		} else {
			fmt.Fprintf(&b, "No changes: the cluster matches mesh.cue (%d objects).\n\n", r.Summary[apply.Unchanged])
		}
		return b.String()
	}
	for _, m := range r.Meanings {
		fmt.Fprintf(&b, "- **%s**\n", m)
	}
	if len(r.Meanings) > 0 {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%s.\n\n", r.SummaryLine())
	var changed []apply.ObjectDiff
	for _, o := range r.Objects {
		if o.Action != apply.Unchanged {
			changed = append(changed, o)
		}
	}
	if grouped || len(changed) > mdTableRows {
		writeGroupedTable(&b, changed)
		return b.String() + "\n"
	}
	b.WriteString("| | object | |\n|---|---|---|\n")
	for _, o := range changed {
		reason := ""
		if o.Reason != "" {
			reason = ": " + o.Reason
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s%s |\n", mdSymbols[o.Action], o.ID, o.Action, reason)
	}
	return b.String() + "\n"
}

// writeGroupedTable writes a row per action, kind and namespace: how many
// objects, and the first and last of them by name.
func writeGroupedTable(b *strings.Builder, changed []apply.ObjectDiff) {
	type group struct {
		action          apply.Action
		kind, namespace string
	}
	byGroup := map[group][]string{}
	for _, o := range changed {
		g := group{o.Action, o.Kind, o.Namespace}
		byGroup[g] = append(byGroup[g], o.ID)
	}
	groups := make([]group, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	order := map[apply.Action]int{apply.Created: 0, apply.Configured: 1, apply.Deleted: 2, apply.Skipped: 3}
	sort.Slice(groups, func(i, j int) bool {
		a, c := groups[i], groups[j]
		if a.action != c.action {
			return order[a.action] < order[c.action]
		}
		if a.kind != c.kind {
			return a.kind < c.kind
		}
		return a.namespace < c.namespace
	})
	b.WriteString("| | objects | |\n|---|---|---|\n")
	for _, g := range groups {
		ids := byGroup[g]
		sort.Strings(ids)
		where := g.kind
		if g.namespace != "" {
			where += " in " + g.namespace
		}
		list := "`" + ids[0] + "`"
		if len(ids) > 1 {
			list += " … `" + ids[len(ids)-1] + "`"
		}
		fmt.Fprintf(b, "| %s | %d %s: %s | %s |\n", mdSymbols[g.action], len(ids), where, list, g.action)
	}
}

// size prints a byte count as a person reads it.
func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
