package rdb

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeysDocumented: every key this package builds is listed, as built,
// in docs/redis-keys.md; a key added here without a line there fails.
func TestKeysDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "redis-keys.md"))
	if err != nil {
		t.Fatal(err)
	}
	// Each key as built with its placeholders, as the doc writes it.
	keys := map[string]string{
		"DeliveredKey":        DeliveredKey("<id>"),
		"LockKey":             LockKey("<id>"),
		"AttemptKey":          AttemptKey("<id>"),
		"TimelineKey":         TimelineKey("<id>"),
		"LeadKey":             LeadKey("<id>"),
		"LegacyDeliveredKey":  LegacyDeliveredKey("<id>"),
		"LegacyOwnerKey":      LegacyOwnerKey("<id>"),
		"WorkersKey":          WorkersKey,
		"SealersKey":          SealersKey,
		"BreakerKey":          BreakerKey,
		"KeylessKey":          KeylessKey("<site>", "keyless:<hmac>"),
		"CRMWorkedKey":        CRMWorkedKey,
		"CRMLeadFailsKey":     CRMLeadFailsKey,
		"JournalItemsKey":     JournalItemsKey,
		"JournalMetaKey":      JournalMetaKey,
		"AuditTurnKey":        AuditTurnKey,
		"EpochKey":            EpochKey,
		"RollbackKey":         RollbackKey,
		"AuditFindsKey":       AuditFindsKey,
		"AuditLastKey":        AuditLastKey,
		"BacklogKey":          BacklogKey("<queue>"),
		"KeptKey":             KeptKey("<queue>", "<site>"),
		"StripCursorKey":      StripCursorKey("<queue>"),
		"WaitSeqKey":          WaitSeqKey,
		"ClaimsKey":           strings.Replace(ClaimsKey(0), "{0}", "{<crm id / 100>}", 1),
		"LegacyClaimKey":      strings.Replace(LegacyClaimKey(0), ":0", ":<crm id>", 1),
		"DeliveredCountKey":   DeliveredCountKey("<YYYY-MM-DD>"),
		"KeylessRepeatsKey":   KeylessRepeatsKey("<YYYY-MM-DD>"),
		"RepeatsKey":          RepeatsKey("<id>"),
		"DeliveredSitesKey":   DeliveredSitesKey("<YYYY-MM-DD>"),
		"LastDeliveredKey":    LastDeliveredKey,
		"CRMRateKey":          CRMRateKey,
		"CRMInflightKey":      CRMInflightKey,
		"CRMPauseKey":         CRMPauseKey,
		"CRMAdaptiveKey":      CRMAdaptiveKey,
		"IntakeGlobalRateKey": IntakeGlobalRateKey,
		"IntakeSiteRateKey":   IntakeSiteRateKey("<site>"),
		"IntakeClientRateKey": IntakeClientRateKey("<address or /64>"),
		"IntakeBudgetKey":     IntakeBudgetKey("<site>"),
		"SignatureKey":        SignatureKey("<site>", "<mac hex>"),
		"DeadRecordKey":       DeadRecordKey("<id>"),
		"DeadIndexKey":        DeadIndexKey,
		"DeadSiteKey":         DeadSiteKey("<site>"),
		"DeadQueueKey":        DeadQueueKey("<queue>"),
		"DeadHistoryKey":      DeadHistoryKey("<id>"),
		"AsynqTaskKey":        "", // asynq's, not LeadRelay's
	}
	for _, name := range exportedKeys(t) {
		form, ok := keys[name]
		switch {
		case !ok:
			t.Errorf("%s is not in this test's table (and maybe not in docs/redis-keys.md)", name)
		case form != "" && !strings.Contains(string(doc), "`"+form+"`"):
			t.Errorf("docs/redis-keys.md does not list %s (`%s`)", name, form)
		}
	}
}

// exportedKeys names the package's exported functions and constants whose
// name ends in Key.
func exportedKeys(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("*.go")
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() && strings.HasSuffix(d.Name.Name, "Key") {
					out = append(out, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, sp := range d.Specs {
					if vs, ok := sp.(*ast.ValueSpec); ok {
						for _, n := range vs.Names {
							if n.IsExported() && strings.HasSuffix(n.Name, "Key") {
								out = append(out, n.Name)
							}
						}
					}
				}
			}
		}
	}
	return out
}
