package plan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/schema"
)

// Member is one cluster a verb acts on: a cluster of a multicluster mesh,
// reached through its kube context, or the one cluster of a mesh without
// clusters (Name "").
type Member struct {
	Name    string
	Context string
	Client  *apply.Client
	// APIServer and CAData are how the context reaches the cluster's API
	// server; a link to the cluster carries them in its credentials.
	APIServer string
	CAData    []byte
	// Source says where the client's configuration came from, as kubectl
	// would name it ("--kubeconfig ./kc", "KUBECONFIG=/x", "in-cluster"):
	// an unreachable cluster is reported with it.
	Source string
}

// Fleet is the clusters a verb acts on, each reached once. A mesh without
// clusters is a fleet of one (Single).
type Fleet struct {
	connect func(name string) (*Member, error)
	members map[string]*Member
	reached map[string]bool
	single  bool
	// local is the cluster this process runs in (a reconcile loop), ""
	// for the CLI, which reaches every cluster from outside.
	local string
}

// NewFleet returns the Fleet of a mesh that declares clusters: connect
// reaches a cluster the first time it is needed.
func NewFleet(connect func(name string) (*Member, error)) *Fleet {
	return &Fleet{connect: connect, members: map[string]*Member{}, reached: map[string]bool{}}
}

// In says that this process runs in cluster name (a reconcile loop, whose
// connection to name is in-cluster): the fleet's signing step then signs
// for every member when name keeps the fleet anchor's key, and for none
// otherwise.
func (f *Fleet) In(name string) *Fleet {
	f.local = name
	return f
}

// Single returns the fleet of one of a mesh without clusters.
func Single(m *Member) *Fleet {
	m.Name = ""
	return &Fleet{members: map[string]*Member{"": m}, reached: map[string]bool{}, single: true}
}

// Member returns cluster name's connection. Every verb meets a cluster
// first here: the first time, it checks that the API server answers, so
// that a cluster that cannot be reached is one line naming the server and
// where its address came from (UnreachableError).
func (f *Fleet) Member(ctx context.Context, name string) (*Member, error) {
	m, ok := f.members[name]
	switch {
	case !ok && f.single:
		return nil, fmt.Errorf("no cluster %q: the mesh declares no clusters", name)
	case !ok:
		var err error
		if m, err = f.connect(name); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", name, err)
		}
		m.Name = name
		f.members[name] = m
	}
	if !f.reached[name] {
		if err := m.reach(ctx); err != nil {
			return nil, err
		}
		f.reached[name] = true
	}
	return m, nil
}

// targets are the clusters a verb acts on, in order: the fleet of one, or
// the mesh's clusters (only one, when only names it), targets of links
// before their sources.
func (f *Fleet) targets(m *schema.Mesh, only string) ([]string, error) {
	if f.single {
		if only != "" {
			return nil, noClusters(only)
		}
		if len(m.Clusters) > 0 {
			return nil, errors.New("mesh.cue declares clusters, and this is one cluster: reach each through its context (a fleet)")
		}
		return []string{""}, nil
	}
	if len(m.Clusters) == 0 {
		return nil, errors.New("mesh.cue declares no clusters: act on it with a fleet of one")
	}
	return ClusterOrder(m, only)
}

// ErrNoSuchCluster is matched (errors.Is) by the error of a --cluster that
// mesh.cue does not declare: a usage error.
var ErrNoSuchCluster = errors.New("no such cluster")

// noSuchCluster says which cluster is not there, and what is.
type noSuchCluster string

func (e noSuchCluster) Error() string        { return string(e) }
func (e noSuchCluster) Is(target error) bool { return target == ErrNoSuchCluster }

// noClusters is the error of a --cluster given for a mesh without clusters.
func noClusters(only string) error {
	return noSuchCluster(fmt.Sprintf("--cluster %s picks one of mesh.cue's clusters, and it declares none", only))
}

// UnreachableError is a cluster whose API server did not answer: the
// first thing every verb asks of a cluster.
type UnreachableError struct {
	Cluster string // "" for a mesh without clusters
	// Server is the API server's address, and Source where it came from.
	Server, Source string
	Err            error
}

func (e *UnreachableError) Error() string {
	where := ""
	if e.Source != "" {
		where = " (" + e.Source + ")"
	}
	if e.Cluster != "" {
		where = " of cluster " + e.Cluster + where
	}
	return fmt.Sprintf("cannot reach the Kubernetes API server at %s%s: %s; is the cluster running, and is that the right server and context?", e.Server, where, cause(e.Err))
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// cause is the innermost useful part of a transport error: "connection
// refused" rather than the request that met it.
func cause(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return strings.TrimPrefix(op.Err.Error(), "connect: ")
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

// reach checks that the member's API server answers, before anything else
// is asked of it, so that a cluster that cannot be reached is one line that
// names it.
func (mem *Member) reach(ctx context.Context) error {
	if err := mem.Client.Ping(ctx); err != nil {
		return &UnreachableError{Cluster: mem.Name, Server: mem.Client.Host(), Source: mem.Source, Err: err}
	}
	return nil
}
