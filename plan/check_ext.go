package plan

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/rollout"
	"github.com/meshctl/meshctl/schema"
)

// checkPinned stands in for upstream's "can determine the latest
// version", which asks versioncheck.linkerd.io: the version to run is the
// one mesh.cue pins, known without a network.
func checkPinned(_ context.Context, e *checkEnv) verdict {
	return pass(fmt.Sprintf("%s, as mesh.cue pins it (linkerd.version); no network needed", e.m.Linkerd.Version))
}

// checkControlPlaneVersion checks the version label of every control-plane
// Deployment against the pinned release.
func checkControlPlaneVersion(ctx context.Context, e *checkEnv) verdict {
	out, err := e.problems(ctx, "control-plane", func(u *unstructured.Unstructured) bool {
		return u.GetKind() == "Deployment" && u.GetNamespace() == linkerdNamespace
	}, func(u, l *unstructured.Unstructured) []string {
		// A missing one, control plane pods are ready names.
		if l != nil && l.GetLabels()["app.kubernetes.io/version"] != e.m.Linkerd.Version {
			return []string{fmt.Sprintf("%s runs %q", apply.ID(u), l.GetLabels()["app.kubernetes.io/version"])}
		}
		return nil
	})
	if err != nil {
		return unread(err)
	}
	if len(out) > 0 {
		return warn(fmt.Sprintf("mesh.cue pins %s, and %s", e.m.Linkerd.Version, listed(out)), "meshctl apply rolls the control plane to the pinned release")
	}
	return pass(e.m.Linkerd.Version)
}

// releases are Linkerd's stable releases, by the edge release each was cut
// from (edge-YY.M.N): an edge version belongs to the last stable release
// cut at or before it. Only the order matters here.
var releases = []struct {
	stable string
	year   int
	month  int
	n      int
}{
	{"2.14", 23, 8, 3}, {"2.15", 24, 2, 4}, {"2.16", 24, 8, 2}, {"2.17", 24, 11, 8}, {"2.18", 25, 4, 4}, {"2.19", 25, 10, 7},
}

var (
	edgeVersion   = regexp.MustCompile(`^edge-(\d+)\.(\d+)\.(\d+)$`)
	stableVersion = regexp.MustCompile(`^(?:stable|version|enterprise)-2\.(\d+)(?:\.\d+)?$`)
)

// releaseIndex places a proxy version among releases: its index, or -1 when
// the version says nothing meshctl can place (a dev build, say).
func releaseIndex(v string) int {
	if m := stableVersion.FindStringSubmatch(v); m != nil {
		for i, r := range releases {
			if r.stable == "2."+m[1] {
				return i
			}
		}
		if minor, _ := strconv.Atoi(m[1]); minor < 14 {
			return -2 - (14 - minor) // older than any release listed
		}
		return -1
	}
	m := edgeVersion.FindStringSubmatch(v)
	if m == nil {
		return -1
	}
	y, _ := strconv.Atoi(m[1])
	mo, _ := strconv.Atoi(m[2])
	n, _ := strconv.Atoi(m[3])
	key := [3]int{y, mo, n}
	idx := -2 // before 2.14
	for i, r := range releases {
		if slices.Compare(key[:], []int{r.year, r.month, r.n}) >= 0 {
			idx = i
		}
	}
	return idx
}

// proxyBehind says how far proxy version v is behind want: 0 current (or
// unknown), 1 one release behind, 2 more.
func proxyBehind(v, want string) int {
	if v == want {
		return 0
	}
	iv, iw := releaseIndex(v), releaseIndex(want)
	if iv == -1 || iw == -1 {
		return 0
	}
	switch d := iw - iv; {
	case d <= 0:
		return 0
	case d == 1:
		return 1
	}
	return 2
}

// meshed reports a pod with a Linkerd proxy, as the proxy-version
// annotation the injector writes marks it.
func meshed(p corev1.Pod) bool {
	_, ok := p.Annotations["linkerd.io/proxy-version"]
	return ok
}

// checkProxies checks the proxies of the meshed pods in namespace ("" for
// the data plane: every namespace but the control plane's): that they are
// ready or, with versions, that they run the pinned release. Completed
// pods are skipped (linkerd2#11280).
func checkProxies(namespace string, versions bool) func(ctx context.Context, e *checkEnv) verdict {
	return func(ctx context.Context, e *checkEnv) verdict {
		pods, err := e.pods(ctx, namespace, nil)
		if err != nil {
			return unread(err)
		}
		want := e.m.Linkerd.Version
		var errs, warns []string
		for _, p := range pods {
			if !meshed(p) || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil {
				continue
			}
			if namespace == "" && p.Namespace == linkerdNamespace {
				continue
			}
			id := p.Namespace + "/" + p.Name
			if !versions {
				if !proxyReady(p) {
					errs = append(errs, "pod "+id+": the linkerd-proxy container is not ready")
				}
				continue
			}
			v := p.Annotations["linkerd.io/proxy-version"]
			switch proxyBehind(v, want) {
			case 2:
				errs = append(errs, fmt.Sprintf("pod %s runs proxy %s, more than one release behind %s", id, v, want))
			case 1:
				warns = append(warns, fmt.Sprintf("pod %s runs proxy %s, one release behind %s", id, v, want))
			}
		}
		next := "restart them onto the pinned proxy: kubectl rollout restart of their workloads"
		if !versions {
			next = "kubectl describe pod shows why the proxy is not ready"
		}
		if len(errs) > 0 {
			return fail(listed(append(errs, warns...)), next)
		}
		return found(CheckWarning, warns, next)
	}
}

func proxyReady(p corev1.Pod) bool {
	for _, s := range slices.Concat(p.Status.ContainerStatuses, p.Status.InitContainerStatuses) {
		if s.Name == "linkerd-proxy" {
			return s.Ready
		}
	}
	return podReady(p)
}

// checkTrustRoots names the meshed pods whose trust roots are not the
// current ones: after a trust-anchor rotation's first step, those must
// restart before the issuer is re-signed.
func checkTrustRoots(ctx context.Context, e *checkEnv) verdict {
	b, err := e.liveBundle(ctx)
	if err != nil {
		return unread(err)
	}
	if b == nil || b.TrustAnchorsPEM == "" {
		return fail("no trust roots to compare with", "meshctl apply")
	}
	want := generators.TrustRootHash(b.TrustAnchorsPEM)
	pods, err := e.pods(ctx, "", nil)
	if err != nil {
		return unread(err)
	}
	var out []string
	byNS := map[string]bool{}
	for _, p := range pods {
		h, ok := p.Annotations[generators.AnnotationTrustRoot]
		if !ok || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || h == want {
			continue
		}
		out = append(out, "pod "+p.Namespace+"/"+p.Name+" runs on other trust roots")
		byNS[p.Namespace] = true
	}
	if len(out) == 0 {
		return pass("")
	}
	var restart []string
	for _, ns := range slices.Sorted(maps.Keys(byNS)) {
		restart = append(restart, "kubectl rollout restart deployment,statefulset,daemonset -n "+ns)
	}
	return warn(listed(out), "restart them onto the current roots ("+strings.Join(restart, "; ")+"), before the next step of meshctl rotate trust-anchor")
}

// checkReplicas checks that every control-plane Deployment runs more than
// one replica, as HA asks.
func checkReplicas(ctx context.Context, e *checkEnv) verdict {
	out, err := e.problems(ctx, "control-plane", kindIs("Deployment"), func(u, l *unstructured.Unstructured) []string {
		if l == nil {
			return nil // control plane pods are ready names it
		}
		if avail, _, _ := unstructured.NestedInt64(l.Object, "status", "availableReplicas"); avail < 2 {
			return []string{fmt.Sprintf("%s has %d available", apply.ID(u), avail)}
		}
		return nil
	})
	if err != nil {
		return unread(err)
	}
	return found(CheckWarning, out, "HA needs two or more replicas of each: see the placement check below, and kubectl describe")
}

// checkPlacement gives HA's placement warnings (nodes.go).
func checkPlacement(ctx context.Context, e *checkEnv) verdict {
	return found(CheckWarning, Warnings(ctx, e.m, e.mem.Client), "add nodes (in more zones), or lower controlPlane.replicas in mesh.cue")
}

// checkTapAPI checks that the aggregator serves viz's tap API.
func checkTapAPI(ctx context.Context, e *checkEnv) verdict {
	svc := &unstructured.Unstructured{}
	svc.SetGroupVersionKind(gvkAPIService)
	if err := e.mem.Client.Kube().Get(ctx, client.ObjectKey{Name: "v1alpha1.tap.linkerd.io"}, svc); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return warn("APIService/v1alpha1.tap.linkerd.io is missing", "meshctl apply")
		}
		return unread(err)
	}
	conds, _, _ := unstructured.NestedSlice(svc.Object, "status", "conditions")
	for _, c := range conds {
		cm, _ := c.(map[string]any)
		if cm["type"] == "Available" {
			if cm["status"] == "True" {
				return pass("")
			}
			return warn(fmt.Sprintf("APIService/v1alpha1.tap.linkerd.io is not available: %v: %v", cm["reason"], cm["message"]), "kubectl -n linkerd-viz describe deployment tap; the API server must reach the tap Service's pods")
		}
	}
	return warn("APIService/v1alpha1.tap.linkerd.io has no Available condition yet", "wait for the aggregator, or kubectl describe apiservice v1alpha1.tap.linkerd.io")
}

// proxyMetricsQuery counts the series of the proxies' inbound responses:
// a Prometheus that holds none scrapes no proxy.
const proxyMetricsQuery = `count(response_total)`

// checkPrometheus checks that viz's Prometheus answers a query and holds
// proxy metrics: through the API server's service proxy (no port-forward),
// or at viz.prometheus.externalURL, or at --prometheus-url.
func checkPrometheus(ctx context.Context, e *checkEnv) verdict {
	p := &rollout.Prometheus{}
	switch {
	case e.o.PrometheusURL != "":
		p.URL = e.o.PrometheusURL
	case e.m.Viz.Prometheus.ExternalURL != "":
		p.URL = e.m.Viz.Prometheus.ExternalURL
	default:
		host := e.mem.Client.Host()
		if !strings.Contains(host, "://") {
			host = "https://" + host
		}
		p.URL = strings.TrimSuffix(host, "/") + "/api/v1/namespaces/" + vizNamespace + "/services/http:prometheus:9090/proxy"
		p.Client = e.mem.Client.HTTP()
	}
	n, ok, err := p.Sum(ctx, proxyMetricsQuery)
	switch {
	case err != nil:
		return warn(err.Error(), "kubectl -n linkerd-viz describe deployment prometheus; or give --prometheus-url")
	case !ok || n == 0:
		return warn(fmt.Sprintf("Prometheus at %s answers, but holds no proxy metrics (%s is empty)", p.URL, proxyMetricsQuery), "check its scrape configuration and that meshed pods run")
	}
	return pass(fmt.Sprintf("%.0f proxy series", n))
}

// checkSplitEndpoints checks that every backend a split sends traffic to
// has ready endpoints: traffic to one without fails. A rollout's weights
// are its stored state's, as the render carries them.
func checkSplitEndpoints(ctx context.Context, e *checkEnv) verdict {
	p, err := e.prepared(ctx)
	if err != nil {
		return unread(err)
	}
	states := map[string]rollout.State{}
	for _, s := range p.report.Rollouts {
		states[s.Service] = s
	}
	m := withRolloutWeights(e.m, states)
	var out []string
	for _, key := range slices.Sorted(maps.Keys(m.Services)) {
		svc := m.Services[key]
		ns, _, _ := strings.Cut(key, "/")
		for _, backend := range slices.Sorted(maps.Keys(svc.Split)) {
			if svc.Split[backend] == 0 {
				continue
			}
			ready, err := readyEndpoints(ctx, e.mem.Client.Kube(), ns, backend)
			if err != nil {
				return unread(err)
			}
			if ready == 0 {
				out = append(out, fmt.Sprintf("service %s sends %d%% to %s/%s, which has no ready endpoints", key, svc.Split[backend], ns, backend))
			}
		}
	}
	return found(CheckError, out, "start the backend's pods, or move its weight away in mesh.cue")
}

func readyEndpoints(ctx context.Context, kube client.Client, ns, svc string) (int, error) {
	l := &discoveryv1.EndpointSliceList{}
	if err := kube.List(ctx, l, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: svc}); err != nil {
		return 0, fmt.Errorf("listing the endpoints of %s/%s: %w", ns, svc, err)
	}
	n := 0
	for _, s := range l.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				n++
			}
		}
	}
	return n, nil
}

// checkGatewayAPI checks the Gateway API route CRDs Linkerd 2.19's policy
// controller watches: present, serving the versions it reads, and whose
// they are.
func checkGatewayAPI(ctx context.Context, e *checkEnv) verdict {
	var errs, mine, theirs []string
	for _, name := range generators.GatewayAPICRDs {
		crd := &unstructured.Unstructured{}
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		if err := e.mem.Client.Kube().Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			if client.IgnoreNotFound(err) == nil {
				errs = append(errs, "CustomResourceDefinition/"+name+" is missing; Linkerd's policy controller ignores those routes until it restarts")
				continue
			}
			return unread(err)
		}
		g := gatewayCRD{name: name, live: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Labels: crd.GetLabels(), Annotations: crd.GetAnnotations(), ManagedFields: crd.GetManagedFields()}}}
		if need := gatewayVersionNeeded[strings.TrimSuffix(name, "."+generators.GatewayAPIGroup)]; need != "" && !serves(crd, need) {
			errs = append(errs, fmt.Sprintf("%s does not serve %s, which Linkerd 2.19 reads", g.describe(), need))
			continue
		}
		if g.ours() {
			mine = append(mine, strings.TrimSuffix(name, "."+generators.GatewayAPIGroup))
		} else {
			theirs = append(theirs, g.describe())
		}
	}
	if len(errs) > 0 {
		return fail(strings.Join(errs, "; "), "meshctl apply installs the CRDs when none are there; one someone else installed must be upgraded by them")
	}
	msg := ""
	if len(mine) > 0 {
		msg = fmt.Sprintf("meshctl's: %s (Gateway API %s, %s channel)", strings.Join(mine, ", "), generators.GatewayAPIBundleVersion, generators.GatewayAPIChannel)
	}
	if len(theirs) > 0 {
		msg = strings.TrimPrefix(msg+"; someone else's: "+strings.Join(theirs, "; "), "; ")
	}
	return pass(msg)
}

// gatewayVersionNeeded is the version of each route kind that Linkerd
// 2.19's policy controller reads.
var gatewayVersionNeeded = map[string]string{"httproutes": "v1", "grpcroutes": "v1", "tlsroutes": "v1alpha2", "tcproutes": "v1alpha2"}

func serves(crd *unstructured.Unstructured, version string) bool {
	vs, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range vs {
		vm, _ := v.(map[string]any)
		if vm["name"] == version && vm["served"] == true {
			return true
		}
	}
	return false
}

func multiclusterChecks(applies func(e *checkEnv) bool) []checkDef {
	mc := func(id, name string, run func(ctx context.Context, e *checkEnv) verdict) checkDef {
		return checkDef{category: "linkerd-multicluster", id: id, name: name, upstream: true, applies: applies, run: run}
	}
	return []checkDef{
		mc("l5d-multicluster-link-crd-exists", "Link CRD exists", exists("", func(u *unstructured.Unstructured) bool {
			return u.GetKind() == "CustomResourceDefinition" && u.GetName() == "links.multicluster.linkerd.io"
		})),
		mc("l5d-multicluster-links-are-valid", "Link resources are valid", exists("", func(u *unstructured.Unstructured) bool {
			return u.GetKind() == "Link"
		})),
		mc("l5d-smc-target-clusters-access", "remote cluster access credentials are valid", checkLinkCredentials),
		mc("l5d-multicluster-clusters-share-anchors", "clusters share trust anchors", func(_ context.Context, e *checkEnv) verdict {
			if e.trustErr != nil {
				return fail(e.trustErr.Error(), "meshctl apply makes every cluster trust the fleet's anchor (trustAnchor.keyCluster); meshctl diff shows it")
			}
			return pass("")
		}),
		mc("l5d-multicluster-service-mirror-running", "service mirror controllers are running", checkWorkloadsReady("extensions", multiclusterNamespace, "controller-")),
		mc("meshctl-multicluster-gateway-address", "multicluster gateway has an address", checkGatewayAddress),
	}
}

// checkLinkCredentials authenticates with each of the cluster's links'
// credentials against the link's target, and asks there whether they may
// watch Services, as the service mirror does.
func checkLinkCredentials(ctx context.Context, e *checkEnv) verdict {
	var out []string
	for _, l := range linksFrom(e.m, e.name) {
		sec := &corev1.Secret{}
		name := generators.CredentialsSecret(l.To)
		if err := e.mem.Client.Kube().Get(ctx, client.ObjectKey{Namespace: multiclusterNamespace, Name: name}, sec); err != nil {
			if client.IgnoreNotFound(err) == nil {
				out = append(out, fmt.Sprintf("link to %s: secret %s/%s is missing", l.To, multiclusterNamespace, name))
				continue
			}
			return unread(err)
		}
		cfg, err := clientcmd.RESTConfigFromKubeConfig(sec.Data["kubeconfig"])
		if err != nil {
			out = append(out, fmt.Sprintf("link to %s: secret %s/%s holds no kubeconfig: %v", l.To, multiclusterNamespace, name, err))
			continue
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			out = append(out, fmt.Sprintf("link to %s: %v", l.To, err))
			continue
		}
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "watch", Resource: "services"}}}
		res, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("link to %s: its credentials do not authenticate at %s: %v", l.To, cfg.Host, cause(err)))
		case !res.Status.Allowed:
			out = append(out, fmt.Sprintf("link to %s: its credentials may not watch Services at %s", l.To, cfg.Host))
		}
	}
	return found(CheckError, out, "meshctl apply reads the target's token afresh and rewrites the link's credentials")
}

// checkGatewayAddress checks that a cluster that other clusters link to
// through its gateway has a gateway address to give them.
func checkGatewayAddress(ctx context.Context, e *checkEnv) verdict {
	target := slices.ContainsFunc(e.m.Links, func(l schema.Link) bool { return l.To == e.name && l.Gateway })
	if !target {
		return pass("no link reaches this cluster through a gateway")
	}
	svc := &corev1.Service{}
	if err := e.mem.Client.Kube().Get(ctx, client.ObjectKey{Namespace: multiclusterNamespace, Name: "linkerd-gateway"}, svc); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return fail("Service linkerd-multicluster/linkerd-gateway is missing", "meshctl apply")
		}
		return unread(err)
	}
	nodes, err := e.nodeList(ctx)
	if err != nil {
		return unread(err)
	}
	if addr := gatewayAddresses(svc, nodes); addr != "" {
		return pass(addr)
	}
	return fail("the gateway Service linkerd-multicluster/linkerd-gateway has no address yet", "a LoadBalancer Service needs the cloud's load balancer; kubectl describe service shows why")
}
