package rdb

import (
	"embed"
	"fmt"
	"path"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Every Lua script LeadRelay runs is one file, scripts/<name>.lua, whose
// header names its KEYS and ARGV. A function that several scripts run (a
// lead's begin, the circuit's peek: the single-primary script runs it
// beside the fleet's keys, the Cluster one alone) is one file,
// scripts/lib/<name>.lua, defining one local function; a script names
// the functions it runs on a "-- uses:" line of its header, and load puts
// them before it. So each rule is written once.
//
//go:embed scripts/*.lua scripts/lib/*.lua
var scriptFiles embed.FS

// loaded lists the scripts load built, for TestScriptFiles.
var loaded = map[string]bool{}

// load builds the script scripts/<name>.lua. A script that is missing or
// names a missing function panics at start: it is a bug of this package,
// which its tests catch.
func load(name string) *redis.Script {
	src, err := scriptSource(name)
	if err != nil {
		panic(err)
	}
	loaded[name] = true
	return redis.NewScript(src)
}

// scriptSource is the text of scripts/<name>.lua, preceded by the
// functions its header's "-- uses:" line names.
func scriptSource(name string) (string, error) {
	body, err := scriptFiles.ReadFile(path.Join("scripts", name+".lua"))
	if err != nil {
		return "", fmt.Errorf("rdb: script %s: %w", name, err)
	}
	var src strings.Builder
	for _, fn := range scriptUses(string(body)) {
		lib, err := scriptFiles.ReadFile(path.Join("scripts", "lib", fn+".lua"))
		if err != nil {
			return "", fmt.Errorf("rdb: script %s uses %s: %w", name, fn, err)
		}
		src.Write(lib)
		src.WriteByte('\n')
	}
	src.Write(body)
	return src.String(), nil
}

// scriptUses reads the "-- uses: a, b" line of a script's header.
func scriptUses(body string) []string {
	for _, line := range scriptHeader(body) {
		if rest, ok := strings.CutPrefix(line, "-- uses:"); ok {
			var out []string
			for _, f := range strings.Split(rest, ",") {
				if f = strings.TrimSpace(f); f != "" {
					out = append(out, f)
				}
			}
			return out
		}
	}
	return nil
}

// scriptHeader is the comment block a script starts with.
func scriptHeader(body string) []string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "--") {
			break
		}
		out = append(out, line)
	}
	return out
}
