package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/plan"
)

// TestWriteStatus: a row per certificate, the expiring ones marked, the
// inventory's line, and no PEM at all.
func TestWriteStatus(t *testing.T) {
	made := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, err := certs.Generate(certs.Options{ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local", WebhookServices: []string{"linkerd-proxy-injector"}, Now: made})
	if err != nil {
		t.Fatal(err)
	}
	now := made.Add(320 * 24 * time.Hour)
	b.Anchor = nil // adopted: meshctl cannot re-sign the issuer
	st := &plan.Status{CheckedAt: now, Certificates: b.Status(now), Inventory: &plan.InventorySummary{Objects: 93, Version: "v0.3.0", Pending: 2}}
	var out bytes.Buffer
	writeStatus(&out, st)
	got := out.String()
	for _, want := range []string{
		"CERTIFICATE", "MESHCTL ROTATES",
		"\ntrust-anchor                    root.linkerd.cluster.local          2035-12-30T00:00:00Z  3330d      no (no signing key)\n",
		"\nissuer                          identity.linkerd.cluster.local      2027-01-01T00:00:00Z  45d        no (no signing key)  ‼ expires within 60d\n",
		"\nwebhook/linkerd-proxy-injector  linkerd-proxy-injector.linkerd.svc  2027-01-01T00:00:00Z  45d        yes                  ‼ expires within 60d\n",
		"2 certificate(s) expire within 60d",
		"inventory: 93 objects, written by meshctl v0.3.0; 2 pending",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("status lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "BEGIN") || strings.Contains(got, "KEY") {
		t.Errorf("status prints PEM:\n%s", got)
	}
	out.Reset()
	writeStatus(&out, &plan.Status{})
	if got := out.String(); got != "certificates: none (meshctl has not applied to this cluster)\ninventory: none (meshctl has not applied to this cluster)\n" {
		t.Errorf("empty status:\n%s", got)
	}
}
