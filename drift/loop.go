package drift

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
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
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// Mode says what the loop does about drift.
type Mode string

const (
	// Correct re-applies what drifted (the default).
	Correct Mode = "correct"
	// Detect reports drift (log, metric, Event, status) and writes nothing.
	Detect Mode = "detect"
)

// Options configure a Loop. Zero values take the defaults given.
type Options struct {
	Config *rest.Config
	Client *apply.Client
	// ClientSource says where Config came from, for an unreachable
	// cluster's message (default: "the reconciler's configuration").
	ClientSource string
	// Cluster, for a mesh that declares clusters, is the one this loop
	// keeps: the cluster it runs in (Config). It reaches the fleet's other
	// clusters through the Secrets meshctl apply stores for it
	// (plan.PeerConnector), to read its links' targets and, when Cluster
	// keeps the fleet anchor's key, to re-sign the others' issuers. ""
	// keeps a mesh without clusters.
	Cluster string
	Source  source.Source
	// Load reads a snapshot of the source into a mesh (default: a
	// plan.Loader, which validates it and checks that it renders). A
	// revision it refuses is recorded, and nothing of it is applied.
	Load func(path string) (*schema.Mesh, error)
	// Version is meshctl's, recorded in the inventory.
	Version string
	Mode    Mode
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
	// PrometheusURL is where rollouts that name no Prometheus of their
	// own read their numbers (default: viz.prometheus.externalURL, or
	// viz's own Prometheus).
	PrometheusURL string
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

	// local is the loop's cluster; own is the fleet that reaches it alone,
	// made once (rollouts run on it at every poll).
	local *plan.Member
	own   *plan.Fleet

	mu       sync.Mutex
	mesh     *schema.Mesh // the revision loaded last
	desired  map[Key]desiredObject
	crds     *apply.CRDSchemas // of desired
	revision string
	failed   string // a revision that did not render
	// failure is what the status said when failed did not render: said
	// again when an apply of the kept revision succeeds meanwhile.
	failure     string
	failureTime *metav1.Time
	seen        map[Key]time.Time
	drifted     map[Key]bool
	st          Status
	written     string
	// What the last apply reported, to say again only what changed; and
	// when a certificate falls due next.
	notes, warnings []string
	evict           string
	nextRotation    time.Time
	// rolloutNext is when a rollout's next analysis falls due.
	rolloutNext time.Time
	// hadRollouts: the last rollout run had rollouts to run.
	hadRollouts atomic.Bool
	// unapplied: the installed render's last full apply failed.
	unapplied atomic.Bool
	// good is the last revision that loaded, kept across terms and read
	// while standing by (fallback.go).
	good goodRevision
}

type desiredObject struct {
	obj   *unstructured.Unstructured
	stage string
}

// fleet is the loop's cluster as the apply verb takes it: a fleet of one,
// or the loop's cluster of a mesh with clusters, which reaches the others
// through the Secrets meshctl apply stores. Those are read afresh for each
// apply, so that a token or an address apply changed is used from the next
// one on.
func (l *Loop) fleet() *plan.Fleet {
	if l.o.Cluster == "" {
		return l.own
	}
	return plan.NewFleet(plan.PeerConnector(l.o.Cluster, l.o.Client, l.local)).In(l.o.Cluster)
}

// New checks o and fills its defaults.
func New(o Options) (*Loop, error) {
	if o.Config == nil || o.Client == nil || o.Source == nil {
		return nil, errors.New("drift: Config, Client and Source are required")
	}
	if o.Load == nil {
		loader := &plan.Loader{}
		o.Load = loader.Load
	}
	if o.ClientSource == "" {
		o.ClientSource = "the reconciler's configuration"
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
	local := &plan.Member{Client: o.Client, APIServer: cfg.Host, CAData: cfg.CAData, Source: o.ClientSource}
	l := &Loop{o: o, log: o.Log, m: o.Metrics, kube: kube, dyn: dyn, served: make(chan struct{}), local: local}
	if o.Cluster == "" {
		l.own = plan.Single(local)
	} else {
		l.own = plan.NewFleet(plan.PeerConnector(o.Cluster, o.Client, local)).In(o.Cluster)
	}
	l.h.stale = o.ApplyTimeout + 3*o.Poll
	l.h.alive()
	l.st = Status{Source: o.Source.String(), Mode: string(o.Mode), State: StateFailing, Leader: o.Identity}
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
		// Where the status is recorded, even when the first revision does
		// not render. A cluster that does not answer is reported by the
		// first apply, in its own words.
		_ = l.ensureNamespace(ctx)
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
	go l.standBy(ctx)
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

// ensureNamespace creates the namespace of the Lease, the inventory and
// the status when it is missing (the first replica of a fresh cluster).
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
	l.mesh, l.notes, l.warnings, l.evict, l.nextRotation, l.rolloutNext = nil, nil, nil, "", time.Time{}, time.Time{}
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
		if l.installed() {
			// The render is installed and watched, but its apply failed
			// (an object the server refuses, say): the objects it holds
			// are kept one by one from now on, and the apply is tried
			// again at each poll. Ready waits for an apply to succeed.
			l.log.Info("correcting drift object by object until the apply succeeds")
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.o.Poll):
		}
		l.h.alive()
	}
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
	// The rotation policy is evaluated on a timer of its own: a
	// certificate that falls due is rotated then, however long the source
	// stays unchanged. The timer is armed for the due time the last apply
	// reported, once per due time: a rotation that cannot happen (the
	// anchor itself expires) is not tried again and again.
	rotation := time.NewTimer(time.Hour)
	rotation.Stop()
	defer rotation.Stop()
	var armedFor time.Time
	// Rollouts have a timer of their own, armed for the next analysis:
	// a decision falls at the end of its window, not at the next poll.
	analysis := time.NewTimer(time.Hour)
	analysis.Stop()
	defer analysis.Stop()
	var analysisFor time.Time
	for {
		if next := l.rolloutDue(); !next.Equal(analysisFor) {
			analysisFor = next
			analysis.Stop()
			if !next.IsZero() {
				analysis.Reset(max(time.Until(next), 0))
			}
		}
		if next := l.dueAt(); !next.Equal(armedFor) {
			armedFor = next
			rotation.Stop()
			if !next.IsZero() {
				// The policy says "due" at next: be a moment past it.
				rotation.Reset(max(time.Until(next)+time.Second, 0))
			}
		}
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
		case <-analysis.C:
			l.h.alive()
			analysisFor = time.Time{}
			l.rollouts(ctx)
		case <-rotation.C:
			l.h.alive()
			l.log.Info("a certificate falls due: rendering again to rotate it")
			l.reconcile(ctx, "rotation")
		}
	}
}

// installed reports whether this term has a render to correct drift
// towards, whether or not its apply succeeded.
func (l *Loop) installed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.desired != nil
}

// dueAt is when a certificate meshctl rotates falls due, by what the last
// apply reported; zero when none does.
func (l *Loop) dueAt() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextRotation
}
