package app

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"leadrelay/config"
)

func TestBuildVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		info debug.BuildInfo
		want string
	}{
		{"module version", debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{"vcs revision", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}}, "0123456789ab"},
		{"dirty tree", debug.BuildInfo{Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, "0123456789ab-dirty"},
		{"no stamp", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := buildVersion(&tc.info); got != tc.want {
				t.Errorf("buildVersion = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestConsoleLogsColourOnlyOnATerminal: console logs to a file or a pipe
// carry no ANSI escape codes.
func TestConsoleLogsColourOnlyOnATerminal(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(func(string) string { return "" }) // demo: console format
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var buf bytes.Buffer
	for _, w := range []interface{ Write([]byte) (int, error) }{f, &buf} {
		log := NewLogger(cfg, w)
		log.Warn("redirected")
		_ = log.Sync()
	}
	b, _ := os.ReadFile(f.Name())
	for name, out := range map[string]string{"file": string(b), "buffer": buf.String()} {
		if !strings.Contains(out, "WARN") || strings.Contains(out, "\x1b[") {
			t.Errorf("%s log = %q, want WARN without escape codes", name, out)
		}
	}
}

// TestCRMSanitizeFromConfig: both CRM workarounds are on by default and
// each can be switched off.
func TestCRMSanitizeFromConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		ip   bool
		want string
	}{
		{nil, true, "\uFFFD"},
		{map[string]string{"LEADRELAY_CRM_IP_IN_DESCRIPTION": "false", "LEADRELAY_CRM_REPLACE_EMOJI": "false"}, false, ""},
	}
	for _, tc := range tests {
		cfg, err := config.Load(func(k string) string { return tc.env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if s := crmSanitize(cfg); s.IPInDescription != tc.ip || s.StandIn != tc.want {
			t.Errorf("%v: %+v", tc.env, s)
		}
	}
}
