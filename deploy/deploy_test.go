package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"leadrelay/config"
)

// settingRE matches a LEADRELAY_* name in any text.
var settingRE = regexp.MustCompile(`\bLEADRELAY_[A-Z0-9_]*[A-Z0-9]\b`)

// composeOnly are the variables docker-compose.yml itself reads from the
// operator's shell (which ports to publish where); no LeadRelay process
// sees them.
var composeOnly = []string{"LEADRELAY_BIND", "LEADRELAY_OPS_BIND"}

// knownSettings are the names config reads, from its own table.
// readFile is the content of the file at path; a file that cannot be
// read fails t.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func knownSettings() map[string]bool {
	known := map[string]bool{}
	for _, v := range config.Vars() {
		known[v.Name] = true
	}
	return known
}

// TestDeployFilesNameKnownSettings: every LEADRELAY_* name the deployment
// files set or mention (the systemd units and their environment files, the
// Helm chart, docker-compose.yml, the Dockerfile) is a setting LeadRelay
// reads. A misspelt or removed name would otherwise be ignored with a
// warning at best, in production.
func TestDeployFilesNameKnownSettings(t *testing.T) {
	t.Parallel()
	known := knownSettings()
	var files []string
	for _, pattern := range []string{
		"systemd/*", "helm/leadrelay/*.yaml", "helm/leadrelay/templates/*", "helm/leadrelay/ci/*",
		"../docker-compose.yml", "../Dockerfile",
	} {
		m, err := filepath.Glob(pattern)
		if err != nil || len(m) == 0 {
			t.Fatalf("%s: no files (%v)", pattern, err)
		}
		files = append(files, m...)
	}
	seen := 0
	for _, f := range files {
		b := readFile(t, f)
		for _, name := range settingRE.FindAllString(string(b), -1) {
			seen++
			if f == "../docker-compose.yml" && slices.Contains(composeOnly, name) {
				continue
			}
			if !known[name] {
				t.Errorf("%s names %s, which config does not read", f, name)
			}
		}
	}
	if seen < 50 {
		t.Errorf("only %d LEADRELAY_* names in %d files: did the files move?", seen, len(files))
	}
	for _, name := range composeOnly {
		if known[name] {
			t.Errorf("%s is a setting now: docker-compose.yml must pass it on, not read it itself", name)
		}
	}
}
