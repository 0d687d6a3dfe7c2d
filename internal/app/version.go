package app

import "runtime/debug"

// Version is LeadRelay's version: set at build time with
// -ldflags "-X leadrelay/internal/app.Version=…", or else read from the
// build's VCS stamp (the commit, "-dirty" for uncommitted changes), or
// "dev" when the build has none (go test, go run outside a checkout).
var Version = "dev"

func init() {
	if Version == "dev" {
		if info, ok := debug.ReadBuildInfo(); ok {
			Version = buildVersion(info)
		}
	}
}

// buildVersion is the module version of a build, or its VCS revision.
func buildVersion(info *debug.BuildInfo) string {
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return rev
}
