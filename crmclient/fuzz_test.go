package crmclient

import (
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecodeResponse feeds any body to every response decoder: none may
// panic, and none may report success without what success promises.
func FuzzDecodeResponse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"", "[]", "null", `{"result":"Success"}`, `{"result":{"id":"1"}}`, `{"data":{"id":"x"}}`,
		`{"data":[{"uids":[{"name":1,"value":null}]}]}`, `{"error":"text"}`, `{"error":{"code":"1e3"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if id, ae, err := decodeAdd(body); ae == nil && err == nil && id <= 0 {
			t.Errorf("add success with id %d", id)
		}
		_, _, _ = decodeStat(body)
		if info, found, ae, err := decodeInfo(body, time.UTC); found && (ae != nil || err != nil || info.ID <= 0) {
			t.Errorf("info found with id %d, %v, %v", info.ID, ae, err)
		}
		_, _, _ = decodeList(body, time.UTC)
		if s := snippet(body); len(s) > snippetLen || !utf8.ValidString(s) {
			t.Errorf("snippet of %d bytes", len(s))
		}
		_ = looksLikeMissingInclude(string(body))
	})
}
