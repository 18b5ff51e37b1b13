package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/internal/testcluster"
	meshschema "github.com/meshctl/meshctl/schema"
)

func TestPrefixWriter(t *testing.T) {
	var b bytes.Buffer
	w := prefixed(&b, "east")
	for _, s := range []string{"one\ntw", "o\n", "", "\nthree"} {
		if _, err := io.WriteString(w, s); err != nil {
			t.Fatal(err)
		}
	}
	if want := "[east] one\n[east] two\n[east] \n[east] three"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// twoClusters starts west and east, and writes one kubeconfig with a
// context for each.
func twoClusters(t *testing.T) (west, east *testcluster.Cluster, kubeconfig string) {
	t.Helper()
	cs := testcluster.StartManyForTest(t, 2, testcluster.Options{Full: true, Nodes: 1})
	merged := clientcmdapi.NewConfig()
	for i, name := range []string{"west", "east"} {
		cfg, err := clientcmd.LoadFromFile(cs[i].Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		kctx := cfg.Contexts[cfg.CurrentContext]
		merged.Clusters[name] = cfg.Clusters[kctx.Cluster]
		merged.AuthInfos[name] = cfg.AuthInfos[kctx.AuthInfo]
		merged.Contexts["ctx-"+name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	}
	merged.CurrentContext = "ctx-west"
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*merged, kubeconfig); err != nil {
		t.Fatal(err)
	}
	return cs[0], cs[1], kubeconfig
}

const twoClusterMesh = `clusters: {
	west: context: "ctx-west"
	east: context: "ctx-east"
}
namespaces: booksapp: inject: "enabled"
services: "booksapp/books": export: "gateway"
`

var (
	gvrLink = schema.GroupVersionResource{Group: "multicluster.linkerd.io", Version: "v1alpha3", Resource: "links"}
	gvrNS   = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// TestMulticlusterOnTwoClusters applies one mesh.cue to two real API
// servers through two contexts of one kubeconfig: trust is checked before
// anything is written, the Link and its credentials land in the source
// only, with what the target said, the export labels the target's own
// Service, and removing the link prunes exactly its objects.
func TestMulticlusterOnTwoClusters(t *testing.T) {
	west, east, kubeconfig := twoClusters(t)
	ctx := context.Background()
	kc := "--kubeconfig=" + kubeconfig
	dir := t.TempDir()

	// Each cluster holding a different anchor in the Secret mesh.cue
	// names: refused before any write.
	for _, c := range []*testcluster.Cluster{west, east} {
		other, err := certs.Generate(certs.Options{ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pki"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "anchor", Namespace: "pki"}, Data: map[string][]byte{"ca.crt": []byte(other.TrustAnchorsPEM)}}
		if _, err := c.Client.CoreV1().Secrets("pki").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	differ := writeMesh(t, dir, twoClusterMesh+`controlPlane: identity: {trustAnchor: {source: "secret", secretRef: {namespace: "pki", name: "anchor", key: "ca.crt"}}, issuer: source: "secret"}
links: [{from: "west", to: "east"}]
`)
	code, out, errOut := runCLI("apply", kc, differ)
	if code != exitRefused || !strings.Contains(errOut, "do not share a trust anchor") || !strings.Contains(errOut, `source "pem"`) {
		t.Fatalf("apply with anchors that differ: exit %d, want %d\n%s%s", code, exitRefused, out, errOut)
	}
	for _, c := range []*testcluster.Cluster{west, east} {
		for _, ns := range []string{"meshctl", "linkerd", "linkerd-multicluster"} {
			if _, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the refused apply wrote namespace %s in %s (%v)", ns, c.Kubeconfig, err)
			}
		}
	}

	// One shared anchor, from mesh.cue.
	b, err := certs.Generate(certs.Options{ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local"})
	if err != nil {
		t.Fatal(err)
	}
	shared := fmt.Sprintf("controlPlane: identity: {trustAnchor: {source: \"pem\", pem: %q}, issuer: source: \"secret\"}\n", b.TrustAnchorsPEM)
	if err := os.Mkdir(filepath.Join(dir, "unlinked"), 0o755); err != nil {
		t.Fatal(err)
	}
	unlinked := writeMesh(t, filepath.Join(dir, "unlinked"), twoClusterMesh+shared)
	linked := writeMesh(t, dir, twoClusterMesh+shared+"links: [{from: \"west\", to: \"east\"}]\n")

	// The app team's Service, in east.
	if _, err := east.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "booksapp"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	books := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "books", Namespace: "booksapp", Labels: map[string]string{"app": "books"}},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "books"}, Ports: []corev1.ServicePort{{Name: "http", Port: 7002}}},
	}
	if _, err := east.Client.CoreV1().Services("booksapp").Create(ctx, books, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// west alone, before east is set up: one line that says what to do.
	code, out, errOut = runCLI("apply", kc, "--cluster", "west", linked)
	if code != exitError || !strings.Contains(errOut, "[west] meshctl apply: ") || !strings.Contains(errOut, "apply east first") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("apply --cluster west before east: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = runCLI("apply", kc, "--cluster", "east", linked); code != exitOK {
		t.Fatalf("apply --cluster east: exit %d\n%s%s", code, out, errOut)
	}
	checkPrefixed(t, out, "east")
	// The cloud's part: the gateway's load balancer gets an address.
	gw, err := east.Client.CoreV1().Services("linkerd-multicluster").Get(ctx, "linkerd-gateway", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gw.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.7"}, {Hostname: "gw.east.example"}}
	if _, err := east.Client.CoreV1().Services("linkerd-multicluster").UpdateStatus(ctx, gw, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	code, out, errOut = runCLI("apply", kc, linked)
	if code != exitOK {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	checkPrefixed(t, out, "east", "west")
	token := tokenOf(t, east)
	if strings.Contains(out+errOut, token) {
		t.Fatal("apply printed the link's token")
	}

	// The Link and its credentials: in west only, with east's answers.
	link, err := dynamic.NewForConfigOrDie(west.Config).Resource(gvrLink).Namespace("linkerd-multicluster").Get(ctx, "east", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("west has no Link east: %v", err)
	}
	spec := link.Object["spec"].(map[string]any)
	if spec["gatewayAddress"] != "203.0.113.7,gw.east.example" || spec["gatewayPort"] != "4143" {
		t.Errorf("Link east: gatewayAddress %v, gatewayPort %v", spec["gatewayAddress"], spec["gatewayPort"])
	}
	if strings.Contains(fmt.Sprint(link.Object), token) {
		t.Error("the Link holds the token")
	}
	eastServer := east.Config.Host
	for _, key := range []types.NamespacedName{{Namespace: "linkerd-multicluster", Name: "cluster-credentials-east"}, {Namespace: "linkerd", Name: "cluster-credentials-east"}} {
		s, err := west.Client.CoreV1().Secrets(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("west has no Secret %s: %v", key, err)
		}
		kcfg := string(s.Data["kubeconfig"])
		if !strings.Contains(kcfg, token) || !strings.Contains(kcfg, eastServer) {
			t.Errorf("Secret %s does not reach east with its token:\n%s", key, kcfg)
		}
		if _, err := east.Client.CoreV1().Secrets(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("east holds Secret %s too (%v)", key, err)
		}
	}
	if _, err := dynamic.NewForConfigOrDie(east.Config).Resource(gvrLink).Namespace("linkerd-multicluster").Get(ctx, "east", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("east holds a Link (%v)", err)
	}

	// The export: east's own Service carries the label, and keeps the rest.
	svc, err := east.Client.CoreV1().Services("booksapp").Get(ctx, "books", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Labels["mirror.linkerd.io/exported"] != "true" || svc.Labels["app"] != "books" || len(svc.Spec.Ports) != 1 || svc.Labels["app.kubernetes.io/managed-by"] != "" {
		t.Errorf("east's books Service: labels %v, ports %v", svc.Labels, svc.Spec.Ports)
	}

	// Again: nothing written; diff sees no drift in the credentials.
	code, out, errOut = runCLI("apply", kc, linked)
	if code != exitOK || strings.Count(out, " 0 created, 0 configured,") != 2 {
		t.Fatalf("second apply: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI("diff", kc, linked)
	if code != diffSame || strings.Contains(out+errOut, token) {
		t.Fatalf("diff after apply: exit %d\n%s%s", code, out, errOut)
	}
	checkPrefixed(t, out, "east", "west")

	// Removing the link prunes exactly what it rendered in west, and
	// releases the export's label in east.
	want := linkObjects(t, linked, unlinked, "west")
	code, out, errOut = runCLI("apply", kc, unlinked)
	if code != exitOK {
		t.Fatalf("apply without the link: exit %d\n%s%s", code, out, errOut)
	}
	if d := cmp.Diff(want, linesWith(out, "[west] ", " deleted")); d != "" {
		t.Errorf("west pruned (-want +got):\n%s\n%s", d, out)
	}
	if got := linesWith(out, "[east] ", " deleted"); len(got) != 0 {
		t.Errorf("east pruned %v", got)
	}
	if !strings.Contains(out, "[east] Service/booksapp/books configured (not meshctl's") {
		t.Errorf("east's export was not released:\n%s", out)
	}
	svc, err = east.Client.CoreV1().Services("booksapp").Get(ctx, "books", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the exported Service is gone: %v", err)
	}
	if _, ok := svc.Labels["mirror.linkerd.io/exported"]; ok || svc.Labels["app"] != "books" || len(svc.Spec.Ports) != 1 {
		t.Errorf("east's books Service after the export went: labels %v, ports %v", svc.Labels, svc.Spec.Ports)
	}
}

// TestExportNeverCreatesTheService: an export of a Service that does not
// exist fails apply in one line, and writes nothing in that cluster.
func TestExportNeverCreatesTheService(t *testing.T) {
	// One cluster is enough: a link target with no links of its own.
	c := testcluster.StartForTest(t, testcluster.Options{Full: true, Nodes: 1})
	ctx := context.Background()
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc := "--kubeconfig=" + c.Kubeconfig
	b, err := certs.Generate(certs.Options{ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local"})
	if err != nil {
		t.Fatal(err)
	}
	mesh := writeMesh(t, t.TempDir(), fmt.Sprintf(`clusters: {
	west: context: "nowhere"
	east: context: %q
}
controlPlane: identity: {trustAnchor: {source: "pem", pem: %q}, issuer: source: "secret"}
links: [{from: "west", to: "east"}]
services: "booksapp/books": export: "gateway"
`, cfg.CurrentContext, b.TrustAnchorsPEM))
	code, out, errOut := runCLI("apply", kc, "--cluster", "east", mesh)
	if code != exitError || !strings.Contains(errOut, "[east] meshctl apply: Service/booksapp/books does not exist") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := c.Client.CoreV1().Services("booksapp").Get(ctx, "books", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("apply created the exported Service (%v)", err)
	}
	for _, ns := range []string{"meshctl", "linkerd"} {
		if _, err := dynamic.NewForConfigOrDie(c.Config).Resource(gvrNS).Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the failed apply wrote namespace %s (%v)", ns, err)
		}
	}
	// diff says so as a warning, and shows the rest.
	code, out, errOut = runCLI("diff", kc, "--cluster", "east", mesh)
	if code != diffChanged || !strings.Contains(out, "[east] # warning: Service/booksapp/books does not exist") {
		t.Fatalf("diff: exit %d\n%s%s", code, out, errOut)
	}
}

func tokenOf(t *testing.T, c *testcluster.Cluster) string {
	t.Helper()
	s, err := c.Client.CoreV1().Secrets("linkerd-multicluster").Get(context.Background(), "linkerd-service-mirror-remote-access-default-token", metav1.GetOptions{})
	if err != nil || len(s.Data["token"]) == 0 {
		t.Fatalf("east's token Secret: %v", err)
	}
	return string(s.Data["token"])
}

// checkPrefixed: every line says which cluster it is about, and each of
// clusters has lines.
func checkPrefixed(t *testing.T, out string, clusters ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		ok := false
		for _, c := range clusters {
			if strings.HasPrefix(l, "["+c+"] ") {
				ok, seen[c] = true, true
			}
		}
		if !ok {
			t.Errorf("line names no cluster: %q", l)
		}
	}
	for _, c := range clusters {
		if !seen[c] {
			t.Errorf("no line about %s:\n%s", c, out)
		}
	}
}

// linesWith returns the IDs of the lines that start with prefix and end
// with suffix, sorted.
func linesWith(out, prefix, suffix string) []string {
	var ids []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) && strings.HasSuffix(l, suffix) {
			ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(l, prefix), suffix))
		}
	}
	sort.Strings(ids)
	return ids
}

// linkObjects returns the IDs that cluster's render of with holds and
// without's does not: the link's objects.
func linkObjects(t *testing.T, with, without, cluster string) []string {
	t.Helper()
	ids := func(path string) map[string]bool {
		m, err := meshschema.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := generators.Render(m, generators.Inputs{Cluster: cluster})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, o := range objs {
			out[o.ID()] = true
		}
		return out
	}
	have, lose := ids(with), ids(without)
	var out []string
	for id := range have {
		if !lose[id] {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	if len(out) < 3 {
		t.Fatalf("the link renders only %v", out)
	}
	return out
}

// TestFleetAnchor: a two-cluster mesh with the default identity applies
// with no Secret made by hand. The cluster keyCluster names keeps the one
// anchor's key; the other holds the public anchor and its own issuer; both
// trust the same anchor, and each issuer chains to the anchor the other
// cluster trusts. A cluster that made its own anchor first is refused,
// with nothing written anywhere.
func TestFleetAnchor(t *testing.T) {
	west, east, kubeconfig := twoClusters(t)
	ctx := context.Background()
	kc := "--kubeconfig=" + kubeconfig
	mesh := writeMesh(t, t.TempDir(), twoClusterMesh+`controlPlane: identity: trustAnchor: keyCluster: "east"
links: [{from: "west", to: "east"}]
`)
	exportedBooks(t, east)

	// west made its own anchor before it joined the fleet: refused, and
	// nothing written in either cluster.
	own, err := certs.Generate(certs.Options{ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := west.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshctl"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	foreign, err := west.Client.CoreV1().Secrets("meshctl").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "meshctl-certificates"}, Data: own.Data()}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("apply", kc, mesh)
	if code != exitRefused || !strings.Contains(errOut, "do not share a trust anchor") || !strings.Contains(errOut, "cluster west trusts") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("apply with west's own anchor: exit %d, want %d\n%s%s", code, exitRefused, out, errOut)
	}
	if s, err := west.Client.CoreV1().Secrets("meshctl").Get(ctx, "meshctl-certificates", metav1.GetOptions{}); err != nil || s.ResourceVersion != foreign.ResourceVersion {
		t.Errorf("the refused apply changed west's store (%v)", err)
	}
	for _, c := range []*testcluster.Cluster{west, east} {
		for _, ns := range []string{"linkerd", "linkerd-multicluster"} {
			if _, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the refused apply wrote namespace %s in %s (%v)", ns, c.Kubeconfig, err)
			}
		}
	}
	if _, err := east.Client.CoreV1().Secrets("meshctl").Get(ctx, "meshctl-certificates", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused apply made east's store (%v)", err)
	}
	if err := west.Client.CoreV1().Secrets("meshctl").Delete(ctx, "meshctl-certificates", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// diff before anything exists: the fleet's certificates in memory
	// only, one anchor for both clusters, nothing written.
	code, out, errOut = runCLI("diff", kc, mesh)
	if code != diffChanged || strings.Contains(errOut, "meshctl diff:") {
		t.Fatalf("diff of the new fleet: exit %d, want %d\n%s%s", code, diffChanged, out, errOut)
	}
	checkPrefixed(t, out, "west", "east")
	for _, c := range []*testcluster.Cluster{west, east} {
		if _, err := c.Client.CoreV1().Secrets("meshctl").Get(ctx, "meshctl-certificates", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("diff made a store in %s (%v)", c.Kubeconfig, err)
		}
	}

	// The fleet: east first (its gateway gets an address), then both.
	out = applyFleet(t, east, kc, mesh)
	if !strings.Contains(out, "[west] signed an issuer for cluster west with the fleet's trust anchor (kept in cluster east)") {
		t.Errorf("apply does not say it signed west's issuer:\n%s", out)
	}
	if strings.Contains(out+errOut, "PRIVATE KEY") {
		t.Fatal("apply printed a private key")
	}

	// Where the key lives: east's store only.
	stores := map[string]*corev1.Secret{}
	for name, c := range map[string]*testcluster.Cluster{"west": west, "east": east} {
		s, err := c.Client.CoreV1().Secrets("meshctl").Get(ctx, "meshctl-certificates", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s has no store: %v", name, err)
		}
		stores[name] = s
	}
	if len(stores["east"].Data["trust-anchor.key"]) == 0 {
		t.Errorf("east, the keyCluster, holds no anchor key: %v", keysOf(stores["east"].Data))
	}
	if _, ok := stores["west"].Data["trust-anchor.key"]; ok {
		t.Errorf("west holds the anchor's key: %v", keysOf(stores["west"].Data))
	}

	// One anchor, two issuers, each chaining to the anchor the other
	// cluster trusts.
	roots, issuers := map[string]string{}, map[string]*x509.Certificate{}
	for name, c := range map[string]*testcluster.Cluster{"west": west, "east": east} {
		cm, err := c.Client.CoreV1().ConfigMaps("linkerd").Get(ctx, "linkerd-identity-trust-roots", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		roots[name] = cm.Data["ca-bundle.crt"]
		s, err := c.Client.CoreV1().Secrets("linkerd").Get(ctx, "linkerd-identity-issuer", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(s.Data["crt.pem"])
		if block == nil {
			t.Fatalf("%s's issuer holds no certificate", name)
		}
		if issuers[name], err = x509.ParseCertificate(block.Bytes); err != nil {
			t.Fatal(err)
		}
	}
	if roots["west"] == "" || roots["west"] != roots["east"] {
		t.Fatalf("the clusters trust different anchors:\nwest %s\neast %s", roots["west"], roots["east"])
	}
	if issuers["west"].Equal(issuers["east"]) {
		t.Error("both clusters run the same issuer")
	}
	for name, other := range map[string]string{"west": "east", "east": "west"} {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(roots[other]))
		if _, err := issuers[name].Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s's issuer does not chain to the anchor %s trusts: %v", name, other, err)
		}
	}

	// Again: nothing signed or written, and diff sees nothing.
	code, out, errOut = runCLI("apply", kc, mesh)
	if code != exitOK || strings.Count(out, " 0 created, 0 configured,") != 2 || strings.Contains(out, "signed") {
		t.Fatalf("second apply: exit %d\n%s%s", code, out, errOut)
	}
	for name, c := range map[string]*testcluster.Cluster{"west": west, "east": east} {
		s, err := c.Client.CoreV1().Secrets("meshctl").Get(ctx, "meshctl-certificates", metav1.GetOptions{})
		if err != nil || s.ResourceVersion != stores[name].ResourceVersion {
			t.Errorf("the second apply rewrote %s's store (%v)", name, err)
		}
	}
	if code, out, errOut = runCLI("diff", kc, mesh); code != diffSame {
		t.Fatalf("diff after apply: exit %d\n%s%s", code, out, errOut)
	}

	// status: each cluster, prefixed, and where the key lives.
	code, out, errOut = runCLI("status", kc, mesh)
	if code != exitOK {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	checkPrefixed(t, out, "west", "east")
	for _, want := range []string{"[east] trust-anchor", "[west] issuer", "signed by east", "key in east"} {
		if !strings.Contains(out, want) {
			t.Errorf("status says nothing of %q:\n%s", want, out)
		}
	}
	code, out, errOut = runCLI("status", kc, "-o", "json", "--cluster", "west", mesh)
	type certRow struct {
		Kind       string `json:"kind"`
		KeyCluster string `json:"keyCluster"`
		CanRotate  bool   `json:"canRotate"`
	}
	var sts []struct {
		Cluster      string    `json:"cluster"`
		Certificates []certRow `json:"certificates"`
	}
	if err := json.Unmarshal([]byte(out), &sts); code != exitOK || err != nil {
		t.Fatalf("status -o json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if len(sts) != 1 || sts[0].Cluster != "west" || !slices.ContainsFunc(sts[0].Certificates, func(c certRow) bool {
		return c.Kind == "issuer" && c.KeyCluster == "east" && c.CanRotate
	}) {
		t.Errorf("status -o json --cluster west: %s", out)
	}
}

// exportedBooks creates the Service twoClusterMesh exports from c (the
// app's own manifests would): meshctl only labels it.
func exportedBooks(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "booksapp"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	books := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "books", Namespace: "booksapp"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 7002}}},
	}
	if _, err := c.Client.CoreV1().Services("booksapp").Create(ctx, books, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// applyFleet applies mesh's link target east first, gives its gateway a
// load-balancer address (the cloud's part), then applies the fleet, and
// returns that apply's output.
func applyFleet(t *testing.T, east *testcluster.Cluster, kc, mesh string) string {
	t.Helper()
	if code, out, errOut := runCLI("apply", kc, "--cluster", "east", mesh); code != exitOK {
		t.Fatalf("apply --cluster east: exit %d\n%s%s", code, out, errOut)
	}
	svcs := east.Client.CoreV1().Services("linkerd-multicluster")
	gw, err := svcs.Get(context.Background(), "linkerd-gateway", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gw.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.7"}}
	if _, err := svcs.UpdateStatus(context.Background(), gw, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("apply", kc, mesh)
	if code != exitOK {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	return out
}

func keysOf(d map[string][]byte) []string {
	out := make([]string, 0, len(d))
	for k := range d {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestFleetAnchorRotatesInLockstep: `meshctl rotate trust-anchor` on a
// fleet with one generated anchor takes each step in every cluster at once.
// After each step, on the servers: every cluster's roots hold an anchor
// that signs every cluster's issuer, so cross-cluster mTLS never breaks;
// the re-sign waits for the meshed pods of every cluster.
func TestFleetAnchorRotatesInLockstep(t *testing.T) {
	west, east, kubeconfig := twoClusters(t)
	ctx := context.Background()
	kc := "--kubeconfig=" + kubeconfig
	mesh := writeMesh(t, t.TempDir(), twoClusterMesh+`controlPlane: identity: {trustAnchor: keyCluster: "east", issuanceLifetime: "1s"}
links: [{from: "west", to: "east"}]
`)
	if _, err := east.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "booksapp"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	books := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "books", Namespace: "booksapp"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 7002}}}}
	if _, err := east.Client.CoreV1().Services("booksapp").Create(ctx, books, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	applyFleet(t, east, kc, mesh)
	clusters := map[string]*testcluster.Cluster{"west": west, "east": east}

	// trust reads, in each cluster, the trust roots and the issuer.
	type trust struct {
		roots  []*x509.Certificate
		pem    string
		issuer *x509.Certificate
		rv     string
	}
	read := func() map[string]trust {
		t.Helper()
		out := map[string]trust{}
		for name, c := range clusters {
			cm, err := c.Client.CoreV1().ConfigMaps("linkerd").Get(ctx, "linkerd-identity-trust-roots", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := c.Client.CoreV1().Secrets("linkerd").Get(ctx, "linkerd-identity-issuer", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var tr trust
			tr.pem, tr.rv = cm.Data["ca-bundle.crt"], s.ResourceVersion
			for rest := []byte(tr.pem); ; {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
				c, err := x509.ParseCertificate(b.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				tr.roots = append(tr.roots, c)
			}
			b, _ := pem.Decode(s.Data["crt.pem"])
			if b == nil {
				t.Fatalf("%s's issuer holds no certificate", name)
			}
			if tr.issuer, err = x509.ParseCertificate(b.Bytes); err != nil {
				t.Fatal(err)
			}
			out[name] = tr
		}
		return out
	}
	// crossTrust: every cluster's roots sign every cluster's issuer.
	crossTrust := func(step string, tr map[string]trust, anchors int) {
		t.Helper()
		for name, a := range tr {
			if len(a.roots) != anchors {
				t.Errorf("after %s, %s's roots hold %d anchors, want %d", step, name, len(a.roots), anchors)
			}
			for other, b := range tr {
				if !slices.ContainsFunc(a.roots, func(r *x509.Certificate) bool { return b.issuer.CheckSignatureFrom(r) == nil }) {
					t.Errorf("after %s, %s's roots do not sign %s's issuer: mTLS from %s to %s breaks", step, name, other, other, name)
				}
			}
		}
		if tr["west"].pem != tr["east"].pem {
			t.Errorf("after %s, the clusters' roots differ", step)
		}
	}
	start := read()
	crossTrust("the apply", start, 1)

	// A meshed pod in west, on the old roots.
	if _, err := west.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := func(roots string) {
		t.Helper()
		_ = west.Client.CoreV1().Pods("shop").Delete(ctx, "cart", metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cart", Annotations: map[string]string{generators.AnnotationTrustRoot: generators.TrustRootHash(roots)}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			_, err := west.Client.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{})
			return err == nil, nil
		}); err != nil {
			t.Fatalf("creating the pod: %v", err)
		}
	}
	pod(start["west"].pem)

	// One cluster alone cannot rotate the fleet's anchor.
	code, out, errOut := runCLI("rotate", "trust-anchor", kc, "--cluster", "west", mesh)
	if code != exitUsage || !strings.Contains(errOut, "rotated in every cluster at once, in lockstep: run without --cluster") {
		t.Fatalf("rotate --cluster west: exit %d, want %d\n%s%s", code, exitUsage, out, errOut)
	}

	// 1. bundle: both clusters' roots hold the old and the new anchor;
	// the issuers are unchanged.
	code, out, errOut = runCLI("rotate", "trust-anchor", kc, mesh)
	if code != exitOK || !strings.Contains(out, "step bundle") {
		t.Fatalf("step 1: exit %d\n%s%s", code, out, errOut)
	}
	checkPrefixed(t, strings.Join(slices.DeleteFunc(strings.Split(strings.TrimRight(out, "\n"), "\n"), func(l string) bool {
		return strings.HasPrefix(l, "rotate trust-anchor: ") || strings.HasPrefix(l, "next: ")
	}), "\n"), "west", "east")
	bundled := read()
	crossTrust("step 1", bundled, 2)
	for name, tr := range bundled {
		if !tr.issuer.Equal(start[name].issuer) {
			t.Errorf("step 1 changed %s's issuer", name)
		}
	}

	// 2. wait: west's pod trusts only the old anchor, so the re-sign is
	// refused in every cluster, naming it.
	code, out, errOut = runCLI("rotate", "trust-anchor", kc, mesh)
	if code != exitRefused || !strings.Contains(errOut, "in cluster west: kubectl rollout restart deployment,statefulset,daemonset -n shop") {
		t.Fatalf("step 3 with west's pod behind: exit %d, want %d\n%s%s", code, exitRefused, out, errOut)
	}
	for name, tr := range read() {
		if tr.rv != bundled[name].rv {
			t.Errorf("the refused step rewrote %s's issuer", name)
		}
	}

	// 3. re-sign, once the pod has restarted onto the bundle: every
	// issuer is signed by the new anchor; the roots still hold both.
	pod(bundled["west"].pem)
	code, out, errOut = runCLI("rotate", "trust-anchor", kc, mesh)
	if code != exitOK || !strings.Contains(out, "step re-sign") {
		t.Fatalf("step 3: exit %d\n%s%s", code, out, errOut)
	}
	resigned := read()
	crossTrust("step 3", resigned, 2)
	newAnchor := bundled["east"].roots[1]
	for name, tr := range resigned {
		if tr.issuer.CheckSignatureFrom(newAnchor) != nil {
			t.Errorf("after step 3, %s's issuer is not signed by the new anchor", name)
		}
	}

	// 4. drop, once the issuance lifetime has passed: every cluster's
	// roots hold the new anchor alone.
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		code, out, errOut = runCLI("rotate", "trust-anchor", kc, mesh)
		return code != exitRefused, nil
	}); err != nil || code != exitOK || !strings.Contains(out, "step drop") {
		t.Fatalf("step 4: %v, exit %d\n%s%s", err, code, out, errOut)
	}
	dropped := read()
	crossTrust("step 4", dropped, 1)
	if !dropped["west"].roots[0].Equal(newAnchor) {
		t.Error("after step 4, the roots do not hold the new anchor")
	}
	if code, out, errOut = runCLI("diff", kc, mesh); code != diffSame {
		t.Fatalf("diff after the rotation: exit %d\n%s%s", code, out, errOut)
	}
}

// TestCheckFleet: meshctl check on a two-cluster mesh with a gateway link
// passes in both clusters, each line prefixed with its cluster; a link
// whose token the target revoked is found in the link's source under
// l5d-smc-target-clusters-access, exit 1, in text and in JSON; and meshctl
// apply, which reads the target's new token, repairs it.
func TestCheckFleet(t *testing.T) {
	west, east, kubeconfig := twoClusters(t)
	ctx := context.Background()
	kc := "--kubeconfig=" + kubeconfig
	mesh := writeMesh(t, t.TempDir(), twoClusterMesh+`controlPlane: identity: trustAnchor: keyCluster: "east"
links: [{from: "west", to: "east"}]
`)
	exportedBooks(t, east)
	applyFleet(t, east, kc, mesh)
	code, out, errOut := runCLI("check", kc, mesh)
	if code != checkPassed {
		t.Fatalf("check of the healthy fleet: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"[west] √ remote cluster access credentials are valid",
		"[west] √ clusters share trust anchors",
		"[east] √ multicluster gateway has an address",
		"[east] √ issuer cert is valid for at least 60 days",
		// west's issuer is signed by east's anchor, and re-signed by policy.
		"[west] √ issuer cert is valid for at least 60 days\n[west]     issuer expires 2",
		"; the rotation policy replaces it from 2",
		"[west] √ trust anchors are valid for at least 60 days\n[west]     trust-anchor/root.linkerd.cluster.local expires 2",
		" (meshctl rotate trust-anchor rotates it in every cluster)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check does not say %q:\n%s", want, out)
		}
	}

	// The target revokes the token: its Secret goes. And the link's
	// service mirror is scaled to 0.
	if err := east.Client.CoreV1().Secrets("linkerd-multicluster").Delete(ctx, "linkerd-service-mirror-remote-access-default-token", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "controller-east", Namespace: "linkerd-multicluster"}, Spec: autoscalingv1.ScaleSpec{Replicas: 0}}
	if _, err := west.Client.AppsV1().Deployments("linkerd-multicluster").UpdateScale(ctx, "controller-east", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Success bool `json:"success"`
		Results []struct {
			Cluster, ID, Status, Message, Hint string
		} `json:"results"`
	}
	found, mirror := false, false
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		code, out, errOut = runCLI("check", kc, "-o", "json", mesh)
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			return false, fmt.Errorf("check -o json: %v\n%s%s", err, out, errOut)
		}
		for _, r := range got.Results {
			switch {
			case r.Cluster == "west" && r.ID == "l5d-smc-target-clusters-access" && r.Status == "error":
				found = strings.Contains(r.Message, "link to east: its credentials do not authenticate at https://127.0.0.1:") &&
					r.Hint == "https://linkerd.io/2/checks/#l5d-smc-target-clusters-access"
			case r.Cluster == "west" && r.ID == "l5d-multicluster-service-mirror-running" && r.Status == "error":
				mirror = strings.Contains(r.Message, "Deployment/linkerd-multicluster/controller-east: 0 of 1 replicas available")
			}
		}
		return found && mirror, nil
	})
	if err != nil || code != checkFailed || got.Success {
		t.Fatalf("a revoked link token (found %v) and a stopped service mirror (found %v): exit %d, %v\n%s%s", found, mirror, code, err, out, errOut)
	}
	if code, out, errOut := runCLI("apply", kc, mesh); code != exitOK {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI("check", kc, mesh); code != checkPassed {
		t.Fatalf("check after the repair: exit %d\n%s%s", code, out, errOut)
	}
}
