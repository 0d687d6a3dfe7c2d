package ctl

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"leadrelay/config"
)

// TestSitesCheck: `ctl sites check FILE` checks a sites file without
// starting anything: its sites and exit 0, or every problem and exit 1;
// never a key or a secret in what it prints.
func TestSitesCheck(t *testing.T) {
	t.Parallel()
	const key, next, secret = "shop-key-0123456789abcdef", "shop-next-0123456789abcdef", "shop-secret-0123456789abcdef0123456789"
	good := writeFile(t, "good.yaml", "sites:\n  shop:\n    keys: ["+key+", "+next+"]\n    secret: "+secret+"\n    charset: koi8-r\n  blog: {keys: [blog-key-0123456789abcdef]}\n")
	bad := writeFile(t, "bad.yaml", "sites:\n  shop:\n    keys: ["+key+"]\n    secret: "+key+"\n    attribution: phone\n")
	cfg, _ := config.LoadLenient(func(string) string { return "" })
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"good", []string{"sites", "check", good}, ExitOK, []string{"shop  2", "blog  1", "koi8-r", "ok: " + good + " holds 2 sites"}},
		{"good, json", []string{"--json", "sites", "check", good}, ExitOK, []string{`"site": "shop"`, `"keys": 2`, `"signed": true`}},
		{"bad", []string{"sites", "check", bad}, ExitFailure, []string{`secret of site "shop" equals the key of site "shop"`,
			`attribution "phone" is none of`, "is refused"}},
		{"missing", []string{"sites", "check", filepath.Join(t.TempDir(), "none.yaml")}, ExitFailure, []string{"cannot be read"}},
		{"no file", []string{"sites", "check"}, ExitUsage, nil},
		{"unknown subcommand", []string{"sites", "list"}, ExitUsage, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errw bytes.Buffer
			err := Run(t.Context(), tc.args, cfg, &out, &errw)
			if got := ExitCode(err); got != tc.code {
				t.Fatalf("exit %d, want %d (%v)", got, tc.code, err)
			}
			all := out.String() + errw.String()
			if err != nil {
				all += err.Error()
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("output does not say %q:\n%s", w, all)
				}
			}
			for _, s := range []string{key, next, secret} {
				if strings.Contains(all, s) {
					t.Errorf("output holds a key or secret:\n%s", all)
				}
			}
		})
	}
}
