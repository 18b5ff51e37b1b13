package plan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kschema "k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/schema"
)

// checkDef is one check: upstream's category, name and hint anchor (or
// meshctl's own ID), when it applies, and what it looks at.
type checkDef struct {
	category, id, name string
	// upstream: the check is `linkerd check`'s, and its hint is at
	// HintBase + anchor (id when anchor is empty; upstream shares some
	// anchors between checks, and ids are unique).
	upstream bool
	anchor   string
	applies  func(e *checkEnv) bool
	run      func(ctx context.Context, e *checkEnv) verdict
}

// verdict is what a check found.
type verdict struct {
	status    CheckStatus
	msg, next string
}

func pass(msg string) verdict { return verdict{status: CheckOK, msg: msg} }

func warn(msg, next string) verdict { return verdict{status: CheckWarning, msg: msg, next: next} }

func fail(msg, next string) verdict { return verdict{status: CheckError, msg: msg, next: next} }

// unread is a check that could not read what it looks at.
func unread(err error) verdict {
	return fail(err.Error(), "give the credentials read access to it (meshctl check only reads), or reach the API server")
}

// found is a check of a list of problems: a pass when there are none.
func found(status CheckStatus, problems []string, next string) verdict {
	if len(problems) == 0 {
		return pass("")
	}
	return verdict{status: status, msg: listed(problems), next: next}
}

// listed joins problems, naming at most the first ten.
func listed(problems []string) string {
	if len(problems) <= 10 {
		return strings.Join(problems, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(problems[:10], "; "), len(problems)-10)
}

// checkEnv is one cluster under check. What several checks read is read
// once, when the first of them needs it.
type checkEnv struct {
	m    *schema.Mesh
	f    *Fleet
	name string
	o    CheckOptions
	now  time.Time
	// sig and trustErr are the fleet's trust step, taken in memory.
	sig      *fleetSigning
	trustErr error

	mem *Member

	prepDone bool
	p        *prepared
	pErr     error

	bundleDone bool
	bundle     *certs.Bundle
	bundleErr  error

	drift *[]apply.Drift

	nodesDone bool
	nodes     []corev1.Node
	nodesErr  error

	// podsIn holds the pods of each namespace listed whole ("" for all).
	podsIn map[string][]corev1.Pod
}

// run runs every check that applies to the cluster, in order. reached is
// false when its API server did not answer: the rest is not checked.
func (e *checkEnv) run(ctx context.Context) (out []CheckResult, reached bool) {
	add := func(d checkDef, v verdict) {
		r := CheckResult{Cluster: e.name, Category: d.category, Name: d.name, ID: d.id, Status: v.status, Message: v.msg}
		if v.status != CheckOK {
			r.Next = v.next
			r.Hint = d.hint()
		}
		out = append(out, r)
	}
	mem, err := e.f.Member(ctx, e.name)
	var unreachable *UnreachableError
	switch {
	case errors.As(err, &unreachable):
		add(checkClient, pass(""))
		add(checkAPI, fail(err.Error(), ""))
		return out, false
	case err != nil:
		add(checkClient, fail(err.Error(), "check the kubeconfig and the context"))
		return out, false
	}
	e.mem = mem
	add(checkClient, pass(""))
	add(checkAPI, pass(mem.Client.Host()))
	for _, d := range checkList() {
		if d.applies != nil && !d.applies(e) {
			continue
		}
		if d.applies == nil && e.o.Pre != d.pre() {
			continue
		}
		add(d, d.run(ctx, e))
	}
	return out, true
}

// hint is upstream's page on the check, "" for meshctl's own.
func (d checkDef) hint() string {
	if !d.upstream {
		return ""
	}
	return HintBase + cmp.Or(d.anchor, d.id)
}

// pre reports a check that runs only under --pre.
func (d checkDef) pre() bool { return strings.HasPrefix(d.category, "pre-") }

// prepared renders the cluster and reads its live objects, as diff does:
// nothing is written, certificates that would be made or rotated live in
// memory.
func (e *checkEnv) prepared(ctx context.Context) (*prepared, error) {
	if !e.prepDone {
		e.prepDone = true
		e.p, e.pErr = e.f.prepare(ctx, e.m, e.name, runOptions{version: e.o.Version, dryRun: true, diff: true, signed: e.sig})
	}
	return e.p, e.pErr
}

// liveBundle reads the certificates the mesh runs on.
func (e *checkEnv) liveBundle(ctx context.Context) (*certs.Bundle, error) {
	if !e.bundleDone {
		e.bundleDone = true
		e.bundle, e.bundleErr = liveBundle(ctx, e.mem.Client)
	}
	return e.bundle, e.bundleErr
}

// nodeList lists the cluster's nodes.
func (e *checkEnv) nodeList(ctx context.Context) ([]corev1.Node, error) {
	if !e.nodesDone {
		e.nodesDone = true
		l := &corev1.NodeList{}
		if e.nodesErr = e.mem.Client.Kube().List(ctx, l); e.nodesErr != nil {
			e.nodesErr = fmt.Errorf("listing nodes: %w", e.nodesErr)
		}
		e.nodes = l.Items
	}
	return e.nodes, e.nodesErr
}

// pods lists the pods in namespace ("" for every namespace) that have
// labels; a namespace's whole list is read once.
func (e *checkEnv) pods(ctx context.Context, namespace string, labels client.MatchingLabels) ([]corev1.Pod, error) {
	if pods, ok := e.podsIn[namespace]; ok && labels == nil {
		return pods, nil
	}
	l := &corev1.PodList{}
	opts := []client.ListOption{client.InNamespace(namespace)}
	if labels != nil {
		opts = append(opts, labels)
	}
	if err := e.mem.Client.Kube().List(ctx, l, opts...); err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	if labels == nil {
		if e.podsIn == nil {
			e.podsIn = map[string][]corev1.Pod{}
		}
		e.podsIn[namespace] = l.Items
	}
	return l.Items, nil
}

// rendered are the objects of the render, of stage stage ("" for any),
// that match keep (nil for all).
func (e *checkEnv) rendered(ctx context.Context, stage string, keep func(u *unstructured.Unstructured) bool) ([]*unstructured.Unstructured, error) {
	p, err := e.prepared(ctx)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, st := range p.set.Stages {
		if stage != "" && st.Name != stage {
			continue
		}
		for _, u := range st.Objects {
			if keep == nil || keep(u) {
				out = append(out, u)
			}
		}
	}
	return out, nil
}

// live is the live object u renders, nil when the cluster has none.
func (e *checkEnv) live(ctx context.Context, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	p, err := e.prepared(ctx)
	if err != nil {
		return nil, err
	}
	gvk := u.GroupVersionKind()
	if l, ok := p.live.Live(gvk, u.GetNamespace(), u.GetName()); ok {
		return l, nil
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(gvk)
	err = e.mem.Client.Kube().Get(ctx, client.ObjectKeyFromObject(u), got)
	if client.IgnoreNotFound(err) != nil {
		return nil, fmt.Errorf("reading %s: %w", apply.ID(u), err)
	}
	if err != nil {
		return nil, nil
	}
	return got, nil
}

// kindIs keeps the objects of kind.
func kindIs(kinds ...string) func(u *unstructured.Unstructured) bool {
	return func(u *unstructured.Unstructured) bool { return slices.Contains(kinds, u.GetKind()) }
}

// problems runs one on each object of the render (of stage, "" for any)
// that keep picks, with its live copy, nil when the cluster has none, and
// collects what it finds.
func (e *checkEnv) problems(ctx context.Context, stage string, keep func(u *unstructured.Unstructured) bool, one func(u, live *unstructured.Unstructured) []string) ([]string, error) {
	objs, err := e.rendered(ctx, stage, keep)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range objs {
		l, err := e.live(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(out, one(u, l)...)
	}
	return out, nil
}

// missing is a problem of an object the cluster does not have.
func missing(u, live *unstructured.Unstructured) []string {
	if live == nil {
		return []string{apply.ID(u) + " is missing"}
	}
	return nil
}

// exists checks that the objects of the render that keep picks exist: an
// error naming those that do not.
func exists(stage string, keep func(u *unstructured.Unstructured) bool) func(ctx context.Context, e *checkEnv) verdict {
	return func(ctx context.Context, e *checkEnv) verdict {
		gone, err := e.problems(ctx, stage, keep, missing)
		if err != nil {
			return unread(err)
		}
		return found(CheckError, gone, "meshctl apply creates them again (meshctl diff shows what it writes)")
	}
}

var (
	gvkDeployment = kschema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
)
