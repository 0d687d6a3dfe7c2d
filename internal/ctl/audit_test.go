package ctl

import (
	"strings"
	"testing"

	"leadrelay/audit"
)

// TestAudit: before any audit ctl audit says none is kept (exit 3); audit
// --now reads the CRM and keeps its report, which ctl audit then shows,
// in JSON too.
func TestAudit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	if _, errs, err := e.run(t, "", "audit"); ExitCode(err) != ExitNotFound || !strings.Contains(errs, "LEADRELAY_AUDIT_INTERVAL") {
		t.Fatalf("no audit kept: exit %d (%v), stderr %q", ExitCode(err), err, errs)
	}
	out, _, err := e.run(t, "", "audit", "--now")
	if err != nil || !strings.Contains(out, "0 delivered leads of the last 1h0m0s checked against 0 CRM leads: 0 duplicates, 0 missing") {
		t.Fatalf("audit --now: %v\n%s", err, out)
	}
	kept, _, err := e.run(t, "", "audit")
	if err != nil || kept != out {
		t.Errorf("ctl audit = %q (%v), want the report --now kept: %q", kept, err, out)
	}
	js, _, err := e.run(t, "", "--json", "audit")
	if rep := decodeJSON[audit.Report](t, js); err != nil || rep.Window != "1h0m0s" || rep.Checked != 0 {
		t.Errorf("--json audit = %+v (%v)", rep, err)
	}
}
