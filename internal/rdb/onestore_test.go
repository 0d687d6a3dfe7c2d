package rdb

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestOneStore: no package but this one builds a key of LeadRelay's or
// asynq's, or runs Lua of its own (tests aside), so every key and script
// stays in one store.
func TestOneStore(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	self, _ := filepath.Abs(".")
	found := map[string][]string{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == self || (p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor" || d.Name() == "node_modules")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if v := storeViolations(t, p); len(v) > 0 {
			found[rel] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range slices.Sorted(maps.Keys(found)) {
		t.Errorf("%s: %s; build keys and scripts in internal/rdb", f, strings.Join(found[f], "; "))
	}
}

// keyLiteral is a string that starts a Redis key of LeadRelay's or
// asynq's ("leadrelay: warning" is a message, not a key).
var keyLiteral = regexp.MustCompile(`^(leadrelay|asynq):[^\s]`)

// luaCalls are the client methods that run Lua.
var luaCalls = map[string]bool{"NewScript": true, "Eval": true, "EvalSha": true, "EvalRO": true,
	"EvalShaRO": true, "ScriptLoad": true, "FCall": true, "FCallRO": true, "FunctionLoad": true}

// storeViolations names what file p does that only this package may.
func storeViolations(t *testing.T, p string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", p, err)
	}
	rdbName := ""
	for _, im := range f.Imports {
		if im.Path.Value == strconv.Quote("leadrelay/internal/rdb") {
			rdbName = "rdb"
			if im.Name != nil {
				rdbName = im.Name.Name
			}
		}
	}
	var out []string
	add := func(what string) {
		if !slices.Contains(out, what) {
			out = append(out, what)
		}
	}
	isPrefix := func(e ast.Expr) bool {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return false
		}
		s, _ := strconv.Unquote(lit.Value)
		return s == "leadrelay:" || s == "asynq:"
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if s, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING && keyLiteral.MatchString(s) {
				add("builds a key (" + strconv.Quote(s) + ")")
			}
		case *ast.BinaryExpr:
			if n.Op == token.ADD && (isPrefix(n.X) || isPrefix(n.Y)) {
				add("builds a key from a prefix")
			}
		case *ast.ValueSpec:
			if slices.ContainsFunc(n.Values, isPrefix) {
				add("names a key prefix")
			}
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && rdbName != "" && x.Name == rdbName && n.Sel.Name == "Prefix" {
				add("builds a key from rdb.Prefix")
			}
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && luaCalls[sel.Sel.Name] {
				add("runs Lua (" + sel.Sel.Name + ")")
			}
		}
		return true
	})
	return out
}
