package drift

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/drift/source"
)

// Mode says what the loop does about drift.
type Mode string

const (
	// Correct re-applies what drifted (the default).
	Correct Mode = "correct"
	// Detect reports drift (log, metric, Event, status) and writes nothing.
	Detect Mode = "detect"
)

// Renderer turns a snapshot of the source into the objects to apply. notes
// say what it did on the way (certificates it created, say).
type Renderer func(ctx context.Context, path string) (set apply.Set, notes []string, err error)

// Options configure a Loop. Zero values take the defaults given.
type Options struct {
	Config *rest.Config
	Client *apply.Client
	Source source.Source
	Render Renderer
	Mode   Mode
	// Interval is the full resync: everything that differs is re-applied
	// and what left the render is pruned (default 10m).
	Interval time.Duration
	// Poll is how often the source is read (default 5s); a changed source
	// must then hold still for Debounce (default 1s) before it renders.
	Poll, Debounce time.Duration
	// ApplyTimeout bounds one full apply (default 5m). An apply that has
	// started is finished on shutdown, within this bound.
	ApplyTimeout time.Duration
	// MaxDeletions caps how much one apply may prune, as apply's
	// --max-deletions (zero: 50% of the inventory).
	MaxDeletions apply.Limit
	// LeaderElect makes the replicas share a Lease; only its holder writes.
	LeaderElect bool
	Lease       LeaseOptions
	// Identity names this replica in the Lease and the status (default the
	// host name and the process ID).
	Identity string
	// MetricsAddr and HealthAddr are where /metrics and /healthz, /readyz
	// are served; "" serves nothing.
	MetricsAddr, HealthAddr string
	// Workers re-apply drifted objects (default 2).
	Workers int
	Log     *slog.Logger
	Metrics *Metrics
}

// LeaseOptions tune leader election (defaults: the Lease
// "meshctl-reconciler" in the inventory's namespace, 15s, 10s, 2s).
type LeaseOptions struct {
	Name                                 string
	Duration, RenewDeadline, RetryPeriod time.Duration
}

// Loop keeps the cluster matching the source.
type Loop struct {
	o   Options
	log *slog.Logger
	m   *Metrics
	h   health

	kube     kubernetes.Interface
	dyn      dynamic.Interface
	recorder record.EventRecorder
	events   record.EventBroadcaster

	// MetricsAddr and HealthAddr are the bound addresses, once Run serves.
	MetricsAddr, HealthAddr string
	served                  chan struct{}

	// Per leadership term.
	watch *watcher
	queue workqueue.TypedRateLimitingInterface[Key]

	mu       sync.Mutex
	desired  map[Key]desiredObject
	set      apply.Set
	crds     *apply.CRDSchemas // of set
	revision string
	failed   string // a revision that did not render
	seen     map[Key]time.Time
	drifted  map[Key]bool
	st       Status
	written  string
	// unapplied: the installed render's last full apply failed.
	unapplied atomic.Bool
}

type desiredObject struct {
	obj   *unstructured.Unstructured
	stage string
}

// New checks o and fills its defaults.
func New(o Options) (*Loop, error) {
	if o.Config == nil || o.Client == nil || o.Source == nil || o.Render == nil {
		return nil, errors.New("drift: Config, Client, Source and Render are required")
	}
	switch o.Mode {
	case "":
		o.Mode = Correct
	case Correct, Detect:
	default:
		return nil, fmt.Errorf("unknown mode %q: want correct or detect", o.Mode)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Interval, 10*time.Minute)
	def(&o.Poll, 5*time.Second)
	def(&o.Debounce, time.Second)
	def(&o.ApplyTimeout, 5*time.Minute)
	def(&o.Lease.Duration, 15*time.Second)
	def(&o.Lease.RenewDeadline, 10*time.Second)
	def(&o.Lease.RetryPeriod, 2*time.Second)
	if o.Lease.Name == "" {
		o.Lease.Name = "meshctl-reconciler"
	}
	if o.Identity == "" {
		host, _ := os.Hostname()
		o.Identity = fmt.Sprintf("%s_%d", host, os.Getpid())
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	cfg := rest.CopyConfig(o.Config)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 200, 400
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	l := &Loop{o: o, log: o.Log, m: o.Metrics, kube: kube, dyn: dyn, served: make(chan struct{})}
	l.h.stale = o.ApplyTimeout + 3*o.Poll
	l.h.alive()
	l.st = Status{Source: o.Source.String(), Mode: o.Mode, State: StateFailing, Leader: o.Identity}
	return l, nil
}

// Served is closed once the metrics and health servers listen.
func (l *Loop) Served() <-chan struct{} { return l.served }

// Run serves metrics and health, and keeps the cluster matching the source
// until ctx ends. With LeaderElect it writes only while it holds the Lease,
// and stands by otherwise.
func (l *Loop) Run(ctx context.Context) error {
	var err error
	if l.MetricsAddr, err = serve(ctx, l.o.MetricsAddr, metricsHandler(l.m)); err != nil {
		return fmt.Errorf("serving metrics on %s: %w", l.o.MetricsAddr, err)
	}
	if l.HealthAddr, err = serve(ctx, l.o.HealthAddr, l.h.handler()); err != nil {
		return fmt.Errorf("serving health on %s: %w", l.o.HealthAddr, err)
	}
	if l.o.LeaderElect {
		l.h.ready.Store(true) // standing by until it leads
	}
	close(l.served)
	l.events = record.NewBroadcaster(record.WithContext(ctx))
	l.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: l.kube.CoreV1().Events("")})
	defer l.events.Shutdown()
	l.recorder = l.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "meshctl-reconciler"})

	l.log.Info("reconciler starting", "source", l.o.Source.String(), "mode", string(l.o.Mode),
		"interval", l.o.Interval.String(), "leaderElect", l.o.LeaderElect, "identity", l.o.Identity)
	if !l.o.LeaderElect {
		return l.lead(ctx)
	}
	return l.elect(ctx)
}

// elect runs for the Lease until ctx ends, leading whenever it holds it.
// A lost Lease stops the writing, and the replica stands again.
func (l *Loop) elect(ctx context.Context) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: l.o.Lease.Name, Namespace: l.o.Client.Namespace()},
		Client:     l.kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: l.o.Identity},
	}
	l.h.ready.Store(true) // a replica standing by is ready to take over
	if err := l.ensureNamespace(ctx); err != nil {
		return err
	}
	for ctx.Err() == nil {
		// The elector's context outlives ctx until a running term has
		// finished its apply, so the Lease is released only then.
		electCtx, cancelElect := context.WithCancel(context.WithoutCancel(ctx))
		termDone := make(chan struct{})
		var started atomic.Bool
		stopWatch := context.AfterFunc(ctx, func() {
			if started.Load() {
				<-termDone
			}
			cancelElect()
		})
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   l.o.Lease.Duration,
			RenewDeadline:   l.o.Lease.RenewDeadline,
			RetryPeriod:     l.o.Lease.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            l.o.Lease.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(term context.Context) {
					started.Store(true)
					defer close(termDone)
					tctx, cancel := context.WithCancel(term)
					defer cancel()
					stop := context.AfterFunc(ctx, cancel)
					defer stop()
					l.log.Info("leading: this replica writes", "lease", l.o.Client.Namespace()+"/"+l.o.Lease.Name)
					if err := l.lead(tctx); err != nil {
						l.log.Error("reconcile loop stopped", "error", err.Error())
					}
				},
				OnStoppedLeading: func() {
					l.log.Info("not leading: standing by", "lease", l.o.Client.Namespace()+"/"+l.o.Lease.Name)
				},
				OnNewLeader: func(id string) {
					if id != l.o.Identity {
						l.log.Info("another replica leads", "leader", id)
					}
				},
			},
		})
		if err != nil {
			cancelElect()
			stopWatch()
			return err
		}
		le.Run(electCtx)
		stopWatch()
		cancelElect()
		if started.Load() {
			<-termDone
		}
		l.h.ready.Store(true)
	}
	return nil
}

// ensureNamespace creates the namespace of the Lease and the inventory
// when it is missing (the first replica of a fresh cluster).
func (l *Loop) ensureNamespace(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: l.o.Client.Namespace()}}
	_, err := l.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) {
		return fmt.Errorf("creating namespace %s for the Lease: %w", ns.Name, err)
	}
	return nil
}

// lead is one term of writing: watch, render, apply, correct, resync.
func (l *Loop) lead(ctx context.Context) error {
	l.h.alive()
	l.h.leading.Store(true)
	l.m.leader.Set(1)
	l.h.ready.Store(false)
	defer func() {
		l.h.leading.Store(false)
		l.m.leader.Set(0)
	}()
	l.mu.Lock()
	l.revision, l.failed, l.desired, l.seen, l.drifted = "", "", nil, map[Key]time.Time{}, map[Key]bool{}
	l.mu.Unlock()
	l.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedMaxOfRateLimiter(
			workqueue.NewTypedItemExponentialFailureRateLimiter[Key](50*time.Millisecond, time.Minute),
			// The queue holds an object once however often it changes,
			// so a storm of edits is no storm of writes; failed
			// corrections back off per object and, together, retry at
			// most 50 times a second.
			&workqueue.TypedBucketRateLimiter[Key]{Limiter: rate.NewLimiter(rate.Limit(50), 100)},
		),
		workqueue.TypedRateLimitingQueueConfig[Key]{Name: "meshctl-drift"})
	l.watch = newWatcher(l.dyn, l.o.Client.Kube().RESTMapper(), l.observe)
	defer l.watch.stop()
	defer l.queue.ShutDown()

	for !l.refresh(ctx, true) {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.o.Poll):
		}
		l.h.alive()
	}
	l.h.ready.Store(true)
	var wg sync.WaitGroup
	for range l.o.Workers {
		wg.Go(func() {
			for l.next(ctx) {
			}
		})
	}
	defer wg.Wait()
	defer l.queue.ShutDown()
	poll := time.NewTicker(l.o.Poll)
	defer poll.Stop()
	resync := time.NewTicker(l.o.Interval)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			l.log.Info("stopping: the last apply is finished")
			return nil
		case <-poll.C:
			l.h.alive()
			l.refresh(ctx, false)
		case <-resync.C:
			l.h.alive()
			l.reconcile(ctx, "resync")
		}
	}
}

// refresh reads the source and, when it holds a new revision, renders and
// applies it. It reports whether a render is applied.
func (l *Loop) refresh(ctx context.Context, first bool) bool {
	snap, err := l.o.Source.Fetch(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		l.m.errors.WithLabelValues("source").Inc()
		l.fail(ctx, "SourceFailed", "reading "+l.o.Source.String(), err, "")
		return !first && l.revision != ""
	}
	l.mu.Lock()
	applied, failedAgain := snap.Revision == l.revision, snap.Revision == l.failed
	st := l.st
	l.mu.Unlock()
	if failedAgain {
		return l.revision != ""
	}
	if applied && l.unapplied.Load() {
		// The render is in, but its apply failed: try again.
		return l.reconcile(ctx, "retry")
	}
	if applied {
		// Back to the applied revision (a broken commit reverted), or a
		// source that answers again: the failure is over.
		if st.LastError != "" || st.FailedRevision != "" {
			l.mu.Lock()
			l.failed = ""
			l.mu.Unlock()
			st.LastError, st.LastErrorTime, st.FailedRevision = "", nil, ""
			l.log.Info("source back at the applied revision", "revision", snap.Revision)
			l.record(ctx, st)
		}
		return true
	}
	if !first {
		// A source being written settles before it renders.
		for range 5 {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(l.o.Debounce):
			}
			again, err := l.o.Source.Fetch(ctx)
			if err != nil || again.Revision == snap.Revision {
				break
			}
			snap = again
		}
	}
	began := time.Now()
	set, notes, err := l.render(ctx, snap.Path)
	if err != nil {
		why := reason(err, "RenderFailed")
		if snap.Root != "" && snap.Origin != "" {
			// Positions name the file the user edits, not the snapshot's copy.
			err = errors.New(strings.ReplaceAll(err.Error(), snap.Root, snap.Origin))
		}
		l.m.errors.WithLabelValues("render").Inc()
		l.m.reconciles.WithLabelValues("render", "error").Inc()
		l.mu.Lock()
		l.failed = snap.Revision
		l.mu.Unlock()
		keep := "nothing is applied until it is fixed"
		if l.revision != "" {
			keep = "revision " + l.revision + " stays applied; nothing is pruned"
		}
		l.fail(ctx, why, fmt.Sprintf("revision %s does not render (%s)", snap.Revision, keep), err, snap.Revision)
		return l.revision != ""
	}
	for _, n := range notes {
		l.log.Info(n)
	}
	l.log.Info("rendered", "revision", snap.Revision, "objects", set.Count(), "took", time.Since(began).Round(time.Millisecond).String())
	if err := l.install(set, snap.Revision); err != nil {
		l.m.errors.WithLabelValues("render").Inc()
		l.fail(ctx, "RenderFailed", "revision "+snap.Revision, err, snap.Revision)
		return l.revision != ""
	}
	// A render's garbage (the CUE evaluation) is large beside what the
	// loop keeps; hand it back before the caches grow.
	debug.FreeOSMemory()
	return l.reconcile(ctx, "render")
}

// install makes set the desired state that events are checked against.
func (l *Loop) install(set apply.Set, revision string) error {
	// Computed once here, not at every resync.
	digest, err := apply.Digest(set)
	if err != nil {
		return err
	}
	set.Digest = digest
	desired := make(map[Key]desiredObject, set.Count())
	var all []*unstructured.Unstructured
	for _, st := range set.Stages {
		for _, u := range st.Objects {
			desired[keyOf(u)] = desiredObject{obj: u, stage: st.Name}
		}
		all = append(all, st.Objects...)
	}
	crds := apply.SchemasOf(all)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.desired, l.set, l.crds, l.revision, l.failed = desired, set, crds, revision, ""
	l.unapplied.Store(true)
	for k := range l.drifted {
		if _, ok := desired[k]; !ok {
			delete(l.drifted, k)
		}
	}
	l.m.setRevision(revision)
	l.m.managed.Set(float64(len(desired)))
	return nil
}

// reconcile applies the whole render: what differs is re-applied, what left
// it is pruned. In detect mode it is a server dry-run of what differs.
func (l *Loop) reconcile(ctx context.Context, trigger string) bool {
	l.mu.Lock()
	set, crds, revision := l.set, l.crds, l.revision
	l.mu.Unlock()
	began := time.Now()
	var all []*unstructured.Unstructured
	for _, st := range set.Stages {
		all = append(all, st.Objects...)
	}
	if _, err := l.watch.ensure(ctx, all); err != nil {
		if ctx.Err() != nil {
			return false
		}
		l.m.errors.WithLabelValues("apply").Inc()
		l.fail(ctx, "WatchFailed", "watching the managed kinds", err, "")
		return false
	}
	// An apply that has begun is finished even when ctx ends: the
	// inventory then says what it did, for the next leader.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.o.ApplyTimeout)
	res, err := l.apply(actx, set, crds)
	cancel()
	took := time.Since(began)
	l.m.duration.WithLabelValues(trigger).Observe(took.Seconds())
	if err != nil {
		l.m.errors.WithLabelValues("apply").Inc()
		l.m.reconciles.WithLabelValues(trigger, "error").Inc()
		l.fail(ctx, reason(err, "ApplyFailed"), "applying revision "+revision, err, "")
		return false
	}
	l.m.reconciles.WithLabelValues(trigger, "success").Inc()
	l.unapplied.Store(false)
	// Ready before the status says so: whoever reads "in sync" there finds
	// /readyz answering.
	l.h.ready.Store(true)
	// Kinds whose CRDs this apply created are watched from now on.
	if _, err := l.watch.ensure(ctx, all); err != nil && ctx.Err() == nil {
		l.log.Warn("watching the managed kinds", "error", err.Error())
	}
	var changed []string
	l.mu.Lock()
	for _, e := range res.Entries {
		k := Key{groupOf(e.APIVersion), e.Kind, e.Namespace, e.Name}
		if e.Action == apply.Unchanged || e.Action == apply.Skipped {
			delete(l.drifted, k)
			continue
		}
		changed = append(changed, e.String())
		if l.o.Mode == Detect {
			l.drifted[k] = true
		} else if trigger == "resync" {
			l.m.corrections.WithLabelValues(e.Kind).Inc()
		}
	}
	st := l.st
	if res.Writes > 0 || st.Revision != revision {
		now := metav1.Now()
		st.LastApplyTime = &now
		l.m.lastApply.SetToCurrentTime()
	}
	st.Revision, st.LastError, st.LastErrorTime, st.FailedRevision = revision, "", nil, ""
	st.Objects = set.Count()
	l.mu.Unlock()
	sort.Strings(changed)
	verb := "applied"
	if l.o.Mode == Detect {
		verb = "checked"
	}
	l.log.Info(verb, "trigger", trigger, "revision", revision, "summary", res.SummaryLine(),
		"writes", res.Writes, "dryRuns", res.DryRuns, "took", took.Round(time.Millisecond).String())
	for _, c := range changed {
		if l.o.Mode == Detect {
			l.log.Warn("drift detected", "object", c)
		} else if trigger == "resync" {
			l.log.Info("drift corrected at resync", "object", c)
		}
	}
	if l.o.Mode == Detect && len(changed) > 0 {
		l.event(corev1.EventTypeWarning, "Drifted", "%d objects differ from revision %s: %s", len(changed), revision, abbreviate(changed))
	} else if trigger == "render" && res.Writes > 0 {
		l.event(corev1.EventTypeNormal, "Applied", "revision %s applied: %s", revision, res.SummaryLine())
	}
	l.record(ctx, st)
	// A full apply of a large mesh leaves garbage several times the size
	// of what the loop keeps (copies, request bodies); hand it back now
	// rather than hold it until the next one.
	debug.FreeOSMemory()
	return true
}

// observe is the informers' handler: a managed object was added, changed
// or deleted. Only objects of the render are queued.
func (l *Loop) observe(k Key) {
	l.mu.Lock()
	_, ok := l.desired[k]
	if ok {
		if _, pending := l.seen[k]; !pending {
			l.seen[k] = time.Now()
		}
	}
	l.mu.Unlock()
	if ok {
		l.queue.Add(k)
	}
}

// next handles one queued object; false when the queue shut down.
func (l *Loop) next(ctx context.Context) bool {
	k, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(k)
	if err := l.checkSafely(ctx, k); err != nil {
		if ctx.Err() != nil {
			return true
		}
		l.m.errors.WithLabelValues("correct").Inc()
		l.log.Error("correcting drift failed; retrying", "object", k.ID(), "error", err.Error())
		l.event(corev1.EventTypeWarning, reason(err, "CorrectionFailed"), "%s: %v", k.ID(), err)
		if st, fresh := l.markDrifted(k); fresh {
			l.record(ctx, st)
		}
		l.queue.AddRateLimited(k)
		return true
	}
	l.queue.Forget(k)
	return true
}

// render renders a snapshot; a panic is an error.
func (l *Loop) render(ctx context.Context, path string) (set apply.Set, notes []string, err error) {
	defer l.recovered("render", &err)
	return l.o.Render(ctx, path)
}

// apply applies the whole render; a panic is an error.
func (l *Loop) apply(ctx context.Context, set apply.Set, crds *apply.CRDSchemas) (res *apply.Result, err error) {
	defer l.recovered("apply", &err)
	return l.o.Client.Apply(ctx, set, apply.Options{Prune: true, MaxDeletions: l.o.MaxDeletions, DryRun: l.o.Mode == Detect, Live: l.watch, CRDs: crds, Timeout: l.o.ApplyTimeout})
}

// checkSafely is check, with a panic an error: the object is retried like
// one whose correction failed, and the other objects go on being kept.
func (l *Loop) checkSafely(ctx context.Context, k Key) (err error) {
	defer l.recovered("correct", &err)
	return l.check(ctx, k)
}

// check compares one object with the render, from the cache, and
// re-applies it when it drifted.
func (l *Loop) check(ctx context.Context, k Key) error {
	l.mu.Lock()
	d, ok := l.desired[k]
	seen := l.seen[k]
	crds := l.crds
	l.mu.Unlock()
	if !ok {
		return nil
	}
	gvk := d.obj.GroupVersionKind()
	live, known := l.watch.Live(gvk, k.Namespace, k.Name)
	if !known && !l.watch.watches(gvk.GroupKind()) {
		return nil // the resync covers kinds not watched yet
	}
	if known && crds.InSync(d.obj, live) {
		l.settled(ctx, k)
		return nil
	}
	what := "changed"
	if !known {
		what = "deleted"
	}
	// The cache says it differs; the server decides (a dry-run in detect
	// mode), so that nothing is reported that would not change.
	entries, err := l.o.Client.ApplyObjects(ctx, d.stage, []*unstructured.Unstructured{d.obj}, apply.Options{Live: l.watch, CRDs: crds, DryRun: l.o.Mode == Detect})
	if err != nil {
		return err
	}
	latency := time.Since(seen)
	l.mu.Lock()
	delete(l.seen, k)
	l.mu.Unlock()
	if len(entries) == 1 && entries[0].Action == apply.Unchanged {
		l.log.Debug("in sync, as the server says", "object", k.ID())
		l.settled(ctx, k)
		return nil
	}
	l.m.detected.WithLabelValues(k.Kind).Inc()
	if l.o.Mode == Detect {
		if st, fresh := l.markDrifted(k); fresh {
			l.log.Warn("drift detected", "object", k.ID(), "what", what)
			l.event(corev1.EventTypeWarning, "Drifted", "%s was %s outside meshctl (detect mode: not corrected)", k.ID(), what)
			l.record(ctx, st)
		}
		return nil
	}
	l.m.corrections.WithLabelValues(k.Kind).Inc()
	if seen.IsZero() {
		// A retry, or an object queued by more than one event: when it
		// drifted is not known, so no latency is claimed.
		l.log.Info("drift corrected", "object", k.ID(), "what", what)
		l.event(corev1.EventTypeNormal, "Corrected", "%s was %s outside meshctl; re-applied", k.ID(), what)
		l.settled(ctx, k)
		return nil
	}
	l.m.latency.Observe(latency.Seconds())
	l.log.Info("drift corrected", "object", k.ID(), "what", what, "latency", latency.Round(time.Millisecond).String())
	l.event(corev1.EventTypeNormal, "Corrected", "%s was %s outside meshctl; re-applied in %s", k.ID(), what, latency.Round(time.Millisecond))
	l.settled(ctx, k)
	return nil
}

// markDrifted records k as drifted; fresh says it was not already, and st
// is the status to record then.
func (l *Loop) markDrifted(k Key) (st Status, fresh bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fresh = !l.drifted[k]
	l.drifted[k] = true
	return l.st, fresh
}

// settled clears an object's drift once it matches again.
func (l *Loop) settled(ctx context.Context, k Key) {
	l.mu.Lock()
	delete(l.seen, k)
	was := l.drifted[k]
	delete(l.drifted, k)
	st := l.st
	l.mu.Unlock()
	if was {
		l.record(ctx, st)
	}
}

// fail reports a failure: log, metric, Event, status. revision is a
// revision that did not render, "" for other failures.
func (l *Loop) fail(ctx context.Context, reason, doing string, err error, revision string) {
	msg := err.Error()
	l.log.Error(doing, "error", msg)
	l.event(corev1.EventTypeWarning, reason, "%s: %s", doing, firstLines(msg, 5))
	l.mu.Lock()
	st := l.st
	now := metav1.Now()
	st.LastError, st.LastErrorTime = doing+": "+msg, &now
	if revision != "" {
		st.FailedRevision = revision
	}
	l.mu.Unlock()
	l.record(ctx, st)
}

// record writes the status when it changed. st is a copy of l.st with the
// caller's changes; State and Drifted are derived here.
func (l *Loop) record(ctx context.Context, st Status) {
	l.mu.Lock()
	st.Drifted = st.Drifted[:0:0]
	for k := range l.drifted {
		st.Drifted = append(st.Drifted, k.ID())
	}
	sort.Strings(st.Drifted)
	st.DriftedTotal = len(st.Drifted)
	if len(st.Drifted) > maxListed {
		st.Drifted = st.Drifted[:maxListed]
	}
	switch {
	case st.LastError != "":
		st.State = StateFailing
	case st.DriftedTotal > 0:
		st.State = StateDrifted
	default:
		st.State = StateInSync
	}
	l.st = st
	l.mu.Unlock()
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	if err := writeStatus(ctx, l.o.Client.Kube(), l.o.Client.Namespace(), &st, &l.written); err != nil {
		l.m.errors.WithLabelValues("status").Inc()
		l.log.Warn("recording status", "error", err.Error())
	}
}

// event records a Kubernetes Event on the inventory ConfigMap.
func (l *Loop) event(typ, reason, format string, args ...any) {
	if l.recorder == nil {
		return
	}
	ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: l.o.Client.Namespace(), Name: apply.InventoryName}
	l.recorder.Eventf(ref, typ, reason, format, args...)
}

func groupOf(apiVersion string) string {
	g, _, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return ""
	}
	return g
}

// abbreviate lists up to five items.
func abbreviate(items []string) string {
	if len(items) <= 5 {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:5], ", ") + fmt.Sprintf(" and %d more", len(items)-5)
}

// firstLines keeps an Event short: a render error may list many problems.
func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "; ")
	}
	return strings.Join(lines[:n], "; ") + fmt.Sprintf("; and %d more", len(lines)-n)
}
