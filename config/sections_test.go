package config

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestEverySettingDocumented: every setting belongs to a section, and the
// comment of the field that holds it names its variable (the field
// comments are the reference of what each setting means).
func TestEverySettingDocumented(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var docs strings.Builder
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := goparser.ParseFile(token.NewFileSet(), name, nil, goparser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if st, ok := n.(*ast.StructType); ok {
				for _, field := range st.Fields.List {
					docs.WriteString(field.Doc.Text())
				}
			}
			return true
		})
	}
	sections := map[string]bool{SectionRedis: true, SectionQueue: true, SectionCRM: true, SectionWorker: true,
		SectionIntake: true, SectionServer: true, SectionOps: true, SectionNotify: true, SectionLog: true, SectionData: true, SectionTrace: true}
	for _, v := range Vars() {
		if !sections[v.Section] {
			t.Errorf("%s has section %q", v.Name, v.Section)
		}
		if !strings.HasSuffix(v.Name, "_FILE") && !strings.Contains(docs.String(), v.Name) {
			t.Errorf("no field comment names %s", v.Name)
		}
	}
}
