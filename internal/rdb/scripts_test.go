package rdb

import (
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing"

	"leadrelay/internal/redistest"
)

// TestScriptFiles: every script file is loaded, starts with a header that
// names its KEYS and ARGV, and compiles; every function file is used.
func TestScriptFiles(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	scripts, err := fs.Glob(scriptFiles, "scripts/*.lua")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	rc := redistest.Start(t).Client()
	used := map[string]bool{}
	for _, file := range scripts {
		name := strings.TrimSuffix(path.Base(file), ".lua")
		t.Run(name, func(t *testing.T) {
			if !loaded[name] {
				t.Errorf("%s is never loaded", file)
			}
			body, _ := scriptFiles.ReadFile(file)
			head := strings.Join(scriptHeader(string(body)), "\n")
			for _, want := range []string{"-- " + name + ": ", "\n-- KEYS: ", "\n-- ARGV: "} {
				if !strings.Contains("\n"+head, "\n"+strings.TrimPrefix(want, "\n")) {
					t.Errorf("%s: header lacks %q", file, strings.TrimSpace(want))
				}
			}
			for _, fn := range scriptUses(string(body)) {
				used[fn] = true
			}
			src, err := scriptSource(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := rc.ScriptLoad(ctx, src).Err(); err != nil {
				t.Errorf("%s does not compile: %v", file, err)
			}
		})
	}
	libs, _ := fs.Glob(scriptFiles, "scripts/lib/*.lua")
	def := regexp.MustCompile(`(?m)^local function (\w+)\(`)
	for _, file := range libs {
		name := strings.TrimSuffix(path.Base(file), ".lua")
		body, _ := scriptFiles.ReadFile(file)
		if !used[name] {
			t.Errorf("%s is used by no script", file)
		}
		fns := def.FindAllSubmatch(body, -1)
		if len(fns) != 1 || string(fns[0][1]) != name || !strings.HasPrefix(string(body), "-- "+name+"(") {
			t.Errorf("%s: want a comment header and one local function %s", file, name)
		}
	}
}
