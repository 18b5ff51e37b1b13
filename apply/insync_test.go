package apply_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	meshschema "github.com/meshctl/meshctl/schema"
)

// unknown is a LiveObjects that knows nothing: every object goes through
// the server, as before InSync existed.
type unknown struct{}

func (unknown) Live(schema.GroupVersionKind, string, string) (*unstructured.Unstructured, bool) {
	return nil, false
}

// serverSays dry-runs every object of s on the server and returns each
// one's action.
func (e *env) serverSays(s apply.Set) map[string]apply.Action {
	e.t.Helper()
	d, err := e.c.Diff(e.ctx, s, apply.DiffOptions{Live: unknown{}})
	if err != nil {
		e.t.Fatalf("diff: %v", err)
	}
	if d.DryRuns < s.Count() {
		e.t.Fatalf("the server dry-ran %d of %d objects", d.DryRuns, s.Count())
	}
	return diffActions(d)
}

// deleteAndWait deletes u's live object and waits until it is gone.
func (e *env) deleteAndWait(u *unstructured.Unstructured) {
	e.t.Helper()
	if err := e.kube.Delete(e.ctx, u.DeepCopy()); err != nil && !apierrors.IsNotFound(err) {
		e.t.Fatal(err)
	}
	for {
		_, err := e.get(u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
		if apierrors.IsNotFound(err) {
			return
		}
		select {
		case <-e.ctx.Done():
			e.t.Fatalf("%s is not gone: %v", apply.ID(u), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// settle waits until the server's dry-run of s finds u unchanged.
func (e *env) settle(s apply.Set, u *unstructured.Unstructured) {
	e.t.Helper()
	var last apply.Action
	err := wait.PollUntilContextTimeout(e.ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		last = e.serverSays(s)[apply.ID(u)]
		return last == apply.Unchanged, nil
	})
	if err != nil {
		e.t.Fatalf("%s: the server's dry-run still says %s: %v", apply.ID(u), last, err)
	}
}

// inSync reads u back and returns InSync's verdict on it, and why not.
func (e *env) inSync(u *unstructured.Unstructured) bool {
	e.t.Helper()
	live, err := e.get(u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
	if err != nil {
		e.t.Fatal(err)
	}
	got := apply.InSync(u, live)
	if !got {
		e.t.Logf("%s not in sync: %s", apply.ID(u), apply.NotInSync(u, live))
	}
	return got
}

// platformSubset is examples/platform.cue's render less what would reach
// beyond this test on the shared cluster (admission webhooks and policies,
// an APIService) or needs cert-manager, plus a webhook configuration that
// matches nothing.
func platformSubset(t *testing.T, e *env) apply.Set {
	sm, err := meshschema.Load("../examples/platform.cue")
	if err != nil {
		t.Fatal(err)
	}
	full, err := plan.Offline(sm, "test")
	if err != nil {
		t.Fatal(err)
	}
	drop := map[string]bool{"MutatingWebhookConfiguration": true, "ValidatingWebhookConfiguration": true, "APIService": true,
		"MutatingAdmissionPolicy": true, "MutatingAdmissionPolicyBinding": true, "Certificate": true}
	s := apply.Set{Version: full.Version}
	for _, st := range full.Stages {
		var objs []*unstructured.Unstructured
		for _, u := range st.Objects {
			if !drop[u.GetKind()] {
				objs = append(objs, u)
			}
		}
		s.Stages = append(s.Stages, apply.Stage{Name: st.Name, Objects: objs})
	}
	hook := obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "", e.ns+"-hook", map[string]any{
		"webhooks": []any{map[string]any{
			"name":                    "hook.meshctl.io",
			"admissionReviewVersions": []any{"v1"},
			"sideEffects":             "None",
			"failurePolicy":           "Ignore",
			"clientConfig":            map[string]any{"service": map[string]any{"name": "hook", "namespace": "linkerd", "port": int64(443)}},
			"objectSelector":          map[string]any{"matchLabels": map[string]any{"meshctl.io/never": "true"}},
			"rules": []any{map[string]any{
				"apiGroups": []any{""}, "apiVersions": []any{"v1"}, "operations": []any{"CREATE"}, "resources": []any{"pods"},
			}},
		}},
	})
	last := &s.Stages[len(s.Stages)-1]
	last.Objects = append(last.Objects, hook)
	t.Cleanup(func() { e.kube.Delete(e.ctx, hook) })
	return s
}

// TestRenderIsInSyncAfterApply: every object of a real render (Deployments
// with containers, ports, env and volumes, a DaemonSet, Services,
// ConfigMaps, RBAC, CRDs, custom resources, a webhook configuration) is in
// sync once applied, the server agrees, and a second apply neither
// dry-runs nor writes anything.
func TestRenderIsInSyncAfterApply(t *testing.T) {
	e := newEnv(t)
	s := platformSubset(t, e)
	first := e.apply(s, apply.Options{})
	if first.Writes != s.Count() {
		t.Fatalf("first apply: %v, want %d objects written", first.Summary, s.Count())
	}
	kinds := map[string]bool{}
	for _, st := range s.Stages {
		for _, u := range st.Objects {
			kinds[u.GetKind()] = true
			if !e.inSync(u) {
				t.Errorf("%s: not in sync right after apply", apply.ID(u))
			}
		}
	}
	for _, k := range []string{"Deployment", "DaemonSet", "Service", "ConfigMap", "ClusterRole", "CustomResourceDefinition", "MutatingWebhookConfiguration", "Server"} {
		if !kinds[k] {
			t.Errorf("the render holds no %s", k)
		}
	}
	for id, a := range e.serverSays(s) {
		if a != apply.Unchanged {
			t.Errorf("%s: the server's dry-run says %s", id, a)
		}
	}
	second := e.apply(s, apply.Options{})
	if second.Writes != 0 || second.DryRuns != 0 || second.Summary[apply.Unchanged] != s.Count() {
		t.Errorf("second apply: %d writes, %d dry-runs, %v", second.Writes, second.DryRuns, second.Summary)
	}
	d, err := e.c.Diff(e.ctx, s, apply.DiffOptions{})
	if err != nil || d.Changed() || d.DryRuns != 0 {
		t.Errorf("diff: changed=%v, %d dry-runs, %v", d != nil && d.Changed(), d.DryRuns, err)
	}
}

// inSyncWeb is a Deployment with the list shapes the API server records
// differently: associative containers, ports (keyed by a defaulted
// protocol), env and volumes, atomic args, and an empty emptyDir map.
func (e *env) inSyncWeb() *unstructured.Unstructured {
	d := e.deployment("web", 2)
	spec := d.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	spec["containers"] = []any{
		map[string]any{
			"name": "app", "image": "example.invalid/app:1",
			"args":         []any{"--port=8080", "--verbose"},
			"ports":        []any{map[string]any{"name": "http", "containerPort": int64(8080)}, map[string]any{"name": "admin", "containerPort": int64(9990), "protocol": "TCP"}},
			"env":          []any{map[string]any{"name": "A", "value": "1"}, map[string]any{"name": "B", "value": "2"}},
			"volumeMounts": []any{map[string]any{"name": "tmp", "mountPath": "/tmp"}},
			"resources":    map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "64Mi"}},
		},
		map[string]any{"name": "sidecar", "image": "example.invalid/sidecar:1"},
	}
	spec["volumes"] = []any{map[string]any{"name": "tmp", "emptyDir": map[string]any{}}}
	return d
}

// TestInSyncAgreesWithServerDryRun: after each out-of-band edit, InSync
// and the server's dry-run agree on whether apply would change the object.
func TestInSyncAgreesWithServerDryRun(t *testing.T) {
	e := newEnv(t)
	web := e.inSyncWeb()
	cm := e.configMap("cfg", "declared")
	role := obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", e.ns+"-reader", map[string]any{
		"rules": []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": []any{"get", "list"}}},
	})
	s := set([]*unstructured.Unstructured{e.namespace(), role}, []*unstructured.Unstructured{cm, web})
	t.Cleanup(func() { e.kube.Delete(e.ctx, role) })

	// patch changes u's live object as manager, with the patch type given.
	patch := func(u *unstructured.Unstructured, manager string, pt types.PatchType, body string) func() error {
		return func() error {
			opts := []client.PatchOption{client.FieldOwner(manager)}
			if pt == types.ApplyPatchType {
				opts = append(opts, client.ForceOwnership)
			}
			return e.kube.Patch(e.ctx, u.DeepCopy(), client.RawPatch(pt, []byte(body)), opts...)
		}
	}
	ssaBody := func(u *unstructured.Unstructured, fields string) string {
		return fmt.Sprintf(`{"apiVersion":%q,"kind":%q,"metadata":{"name":%q,"namespace":%q%s}`, u.GetAPIVersion(), u.GetKind(), u.GetName(), u.GetNamespace(), fields)
	}
	for _, tc := range []struct {
		name   string
		target *unstructured.Unstructured
		edit   func() error
		inSync bool
		// takeover: the dry-run cannot see it, but apply's takeover
		// cleanup rewrites the object.
		takeover bool
		// conservative: InSync says "differs" where the server may say
		// unchanged; the object is then only dry-run, never lost.
		conservative bool
	}{
		{name: "another manager sets a field meshctl owns", target: cm,
			edit: patch(cm, "intruder", types.ApplyPatchType, ssaBody(cm, `},"data":{"k":"theirs"}`))},
		{name: "another manager shares a field at the same value", target: cm, inSync: true,
			edit: patch(cm, "intruder", types.ApplyPatchType, ssaBody(cm, `},"data":{"k":"declared"}`))},
		{name: "another manager adds a label of its own", target: cm, inSync: true,
			edit: patch(cm, "team-controller", types.ApplyPatchType, ssaBody(cm, `,"labels":{"team":"payments"}}`))},
		{name: "a label meshctl set is deleted", target: cm,
			edit: patch(cm, "kubectl-label", types.JSONPatchType, `[{"op":"remove","path":"/metadata/labels/app.kubernetes.io~1managed-by"}]`)},
		{name: "kubectl edit changes an image", target: web,
			edit: patch(web, "kubectl-edit", types.StrategicMergePatchType, `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"example.invalid/app:2"}]}}}}`)},
		{name: "an env item meshctl set is removed", target: web,
			edit: patch(web, "kubectl-edit", types.JSONPatchType, `[{"op":"remove","path":"/spec/template/spec/containers/0/env/1"}]`)},
		{name: "a port meshctl set is removed", target: web,
			edit: patch(web, "kubectl-edit", types.JSONPatchType, `[{"op":"remove","path":"/spec/template/spec/containers/0/ports/1"}]`)},
		{name: "an atomic args list is changed", target: web,
			edit: patch(web, "kubectl-edit", types.JSONPatchType, `[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--debug"}]`)},
		{name: "a rule is added to an atomic rules list", target: role,
			edit: patch(role, "kubectl-edit", types.JSONPatchType, `[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["secrets"],"verbs":["get"]}}]`)},
		{name: "kubectl client-side apply leaves its annotation", target: cm, takeover: true,
			edit: patch(cm, "kubectl-client-side-apply", types.MergePatchType, `{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}}}`)},
		{name: "the containers list is reordered", target: web,
			edit: patch(web, "kubectl-edit", types.JSONPatchType, `[{"op":"move","from":"/spec/template/spec/containers/1","path":"/spec/template/spec/containers/0"}]`)},
		// Last: the item stays. Not known here whether the server's merge would reorder the
		// list (its dry-run has said both): InSync asks it.
		{name: "an env item of another manager is added", target: web, conservative: true,
			edit: patch(web, "kubectl-edit", types.StrategicMergePatchType, `{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"C","value":"3"}]}]}}}}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			// Each case starts from a target meshctl alone has written:
			// what earlier cases' managers left in a list would otherwise
			// make the server's dry-run answer either way (see the last
			// case).
			e.deleteAndWait(tc.target)
			if res := e.apply(s, apply.Options{}); res.Summary[apply.Unchanged]+res.Summary[apply.Created] == 0 {
				t.Fatalf("apply: %v", res.Summary)
			}
			if !e.inSync(tc.target) {
				t.Fatalf("%s: not in sync before the edit", apply.ID(tc.target))
			}
			// A Deployment just created is still being written by its
			// controller (a revision annotation): ssa's dry-run, which
			// compares with a GET made a moment before, may catch that
			// as a change. Wait until the object holds still.
			e.settle(s, tc.target)
			if err := tc.edit(); err != nil {
				t.Fatal(err)
			}
			got := e.inSync(tc.target)
			server := e.serverSays(s)[apply.ID(tc.target)]
			if got != tc.inSync {
				t.Errorf("InSync = %v, want %v", got, tc.inSync)
			}
			if !tc.takeover && !tc.conservative && (server == apply.Unchanged) != got {
				t.Errorf("InSync = %v, but the server's dry-run says %s", got, server)
			}
			if tc.conservative {
				// The object is dry-run, and written only if the server
				// says it differs; the other manager's item stays.
				if res := e.apply(s, apply.Options{}); res.DryRuns == 0 || res.Writes > 1 {
					t.Errorf("apply after the edit: %d writes, %d dry-runs: %v", res.Writes, res.DryRuns, res.Entries)
				}
				return
			}
			// Apply restores it, with one dry-run at most per changed object.
			res := e.apply(s, apply.Options{})
			if tc.inSync && (res.Writes != 0 || res.DryRuns != 0) || !tc.inSync && (res.Writes != 1 || res.DryRuns == 0) {
				t.Errorf("apply after the edit: %d writes, %d dry-runs: %v", res.Writes, res.DryRuns, res.Entries)
			}
			if !e.inSync(tc.target) {
				t.Errorf("%s: not in sync after the apply that corrected it", apply.ID(tc.target))
			}
		})
	}
	e.t = t
}

// TestNoopApplyMakesNoWritesNoDryRuns counts, at the wire, what a no-op
// apply asks of the API server: the inventory's GET and one LIST per kind.
func TestNoopApplyMakesNoWritesNoDryRuns(t *testing.T) {
	e := newEnv(t)
	s := platformSubset(t, e)
	e.apply(s, apply.Options{})

	recorder := &testcluster.Recorder{}
	cfg := config(t)
	cfg.Wrap(recorder.Wrap)
	c, err := apply.New(cfg, e.c.Namespace())
	if err != nil {
		t.Fatal(err)
	}
	recorder.Take()
	res, err := c.Apply(e.ctx, s, apply.Options{Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[schema.GroupVersionKind]bool{}
	for _, st := range s.Stages {
		for _, u := range st.Objects {
			kinds[u.GroupVersionKind()] = true
		}
	}
	byVerb := map[string]int{}
	perKind := map[string]int{}
	for _, r := range recorder.Take() {
		byVerb[r.Class]++
		if r.Class == "list" {
			perKind[r.Collection()]++
		}
		if r.Class == "get" && !strings.HasSuffix(r.Path, "/configmaps/"+apply.InventoryName) {
			t.Errorf("GET %s: only the inventory should be read", r.Path)
		}
	}
	if byVerb["write"] != 0 || byVerb["dryrun"] != 0 || byVerb["get"] != 1 || byVerb["list"] > len(kinds) {
		t.Errorf("requests %v, want no write, no dry-run, the inventory's GET and at most %d LISTs", byVerb, len(kinds))
	}
	for collection, n := range perKind {
		if n > 1 {
			t.Errorf("LIST %s made %d times", collection, n)
		}
	}
	if res.Writes != 0 || res.DryRuns != 0 {
		t.Errorf("result: %d writes, %d dry-runs", res.Writes, res.DryRuns)
	}
}
