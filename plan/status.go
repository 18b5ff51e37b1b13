package plan

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/rollout"
	"github.com/meshctl/meshctl/schema"
)

// Status is what `meshctl status` reports: the certificates meshctl
// manages and its inventory. It is also where a reconcile loop will report.
type Status struct {
	// CheckedAt is the time the certificates' time left is counted from.
	CheckedAt time.Time `json:"checkedAt"`
	// Certificates are the trust anchors, the issuer and the webhook
	// serving pairs, in that order; empty before the first apply.
	Certificates []certs.Status `json:"certificates"`
	// Inventory is nil before the first apply.
	Inventory *InventorySummary `json:"inventory,omitempty"`
	// AnchorRotation counts the meshed pods a trust-anchor rotation waits
	// for (anchor.go); nil when none waits.
	AnchorRotation *PodTrust `json:"anchorRotation,omitempty"`
	// Rollouts are the rollouts' states as stored (rollout.go).
	Rollouts []rollout.State `json:"rollouts,omitempty"`
}

// InventorySummary sums up meshctl's inventory.
type InventorySummary struct {
	Objects int `json:"objects"`
	// Version is the meshctl version of the last run that wrote it.
	Version string `json:"meshctlVersion"`
	// Pending counts objects a run that did not finish was applying.
	Pending int `json:"pending"`
}

// ReadStatus reads the certificates the mesh runs on (see liveBundle) and
// the inventory, at now. It fails only when the cluster cannot be read.
func ReadStatus(ctx context.Context, c *apply.Client, now time.Time) (*Status, error) {
	st := &Status{CheckedAt: now, Certificates: []certs.Status{}}
	b, err := liveBundle(ctx, c)
	if err != nil {
		return nil, err
	}
	if b != nil {
		st.Certificates = b.Status(now)
	}
	if st.AnchorRotation, err = AnchorWaiting(ctx, c); err != nil {
		return nil, err
	}
	ro, err := readRollouts(ctx, c)
	if err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(ro.states)) {
		st.Rollouts = append(st.Rollouts, ro.states[k])
	}
	inv, err := c.ReadInventory(ctx)
	if err != nil {
		return nil, err
	}
	if inv != nil {
		st.Inventory = &InventorySummary{Objects: len(inv.Objects), Version: inv.Version, Pending: len(inv.Pending)}
	}
	return st, nil
}

// Expiring counts the certificates within certs.WarnBefore of expiry.
func (s *Status) Expiring() int {
	n := 0
	for _, c := range s.Certificates {
		if c.Expiring {
			n++
		}
	}
	return n
}

// ClusterStatus is one cluster's status.
type ClusterStatus struct {
	// Cluster is the mesh's cluster, "" for a mesh without clusters.
	Cluster string `json:"cluster,omitempty"`
	*Status
	// Member is where it was read, for what is kept beside meshctl's own
	// state (the reconcile loop's record).
	Member *Member `json:"-"`
}

// StatusOf reads the status of the fleet's clusters (only, when it names
// one of m's), at now. m may be nil for a fleet of one.
func StatusOf(ctx context.Context, m *schema.Mesh, f *Fleet, only string, now time.Time) ([]*ClusterStatus, error) {
	names := []string{""}
	if !f.single {
		var err error
		if names, err = f.targets(m, only); err != nil {
			return nil, err
		}
	}
	var out []*ClusterStatus
	for _, name := range names {
		mem, err := f.Member(ctx, name)
		if err != nil {
			return out, inCluster(name, err)
		}
		st, err := ReadStatus(ctx, mem.Client, now)
		if err != nil {
			return out, inCluster(name, err)
		}
		if m != nil {
			st.Certificates = fleetStatus(m, name, st.Certificates)
		}
		out = append(out, &ClusterStatus{Cluster: name, Status: st, Member: mem})
	}
	return out, nil
}

// ExpiryWarning is how long before expiry a certificate is marked as
// expiring, as `linkerd check` marks it.
const ExpiryWarning = certs.WarnBefore

// FormatLeft prints the time a certificate has left, as status shows it.
func FormatLeft(d time.Duration) string { return certs.FormatLeft(d) }

// CertificateID names a certificate in logs, Events and metrics:
// "issuer", "webhook/linkerd-proxy-injector", or an anchor by its subject
// ("trust-anchor/root.linkerd.cluster.local").
func CertificateID(kind certs.Kind, name, subject string) string {
	switch {
	case kind == certs.KindIssuer:
		return string(kind)
	case name != "":
		return string(kind) + "/" + name
	case subject != "":
		return string(kind) + "/" + subject
	}
	return string(kind)
}
