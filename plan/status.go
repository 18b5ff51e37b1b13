package plan

import (
	"context"
	"time"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
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
