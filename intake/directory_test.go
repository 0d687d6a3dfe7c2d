package intake

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestDirectoryReplace: a Directory's sites change while intake serves: a
// site added works, a site may hold two keys during a rotation and both
// work, a key or site removed stops working, and a site's settings
// (origins, secret, charset) follow its latest set.
func TestDirectoryReplace(t *testing.T) {
	t.Parallel()
	const (
		oldKey  = "old-key-0123456789abcdef"
		newKey  = "new-key-0123456789abcdef"
		blogKey = "blog-key-0123456789abcdef"
	)
	dir := NewDirectory(map[string]Site{"shop": {Keys: []string{oldKey}}}, nil)
	e := newEnvWith(t, nil, func(_ *env, o *Options) { o.Directory = dir })
	n := 0 // every lead new, never a duplicate
	lead := func(key string) int {
		t.Helper()
		n++
		return e.do(t, jsonPost(fmt.Sprintf(`{"title":"Ann %d","email":"ann@example.com"}`, n), key)).Code
	}
	dropIn := func(key string) string {
		t.Helper()
		n++
		q := url.Values{"login": {"shop"}, "apikey": {key}, "action": {"add"}, "title": {fmt.Sprint("Ann ", n)}, "email": {"ann@example.com"}}
		return e.do(t, httptest.NewRequest(http.MethodGet, "/developer/v1/leads?"+q.Encode(), nil)).Body.String()
	}
	steps := []struct {
		name  string
		sites map[string]Site
		want  map[string]int // key: status of POST /v1/leads
	}{
		{"start", nil, map[string]int{oldKey: 202, newKey: 401, blogKey: 401}},
		{"add a site", map[string]Site{"shop": {Keys: []string{oldKey}}, "blog": {Keys: []string{blogKey}}},
			map[string]int{oldKey: 202, blogKey: 202, newKey: 401}},
		{"rotation: both keys", map[string]Site{"shop": {Keys: []string{oldKey, newKey}}, "blog": {Keys: []string{blogKey}}},
			map[string]int{oldKey: 202, newKey: 202, blogKey: 202}},
		{"old key retired, site removed", map[string]Site{"shop": {Keys: []string{newKey}}},
			map[string]int{oldKey: 401, newKey: 202, blogKey: 401}},
	}
	for _, st := range steps {
		if st.sites != nil {
			dir.Replace(st.sites)
		}
		for key, want := range st.want {
			if got := lead(key); got != want {
				t.Errorf("%s: POST with %s… = %d, want %d", st.name, key[:4], got, want)
			}
		}
	}
	// The drop-in reads the same set: during a rotation both keys work.
	dir.Replace(map[string]Site{"shop": {Keys: []string{oldKey, newKey}}})
	for _, key := range []string{oldKey, newKey} {
		if got := dropIn(key); !strings.Contains(got, "Success") {
			t.Errorf("drop-in with %s… during the rotation: %s", key[:4], got)
		}
	}

	// The site's settings come with the set: a secret makes it sign.
	dir.Replace(map[string]Site{"shop": {Keys: []string{newKey}, Secret: strings.Repeat("s", 32)}})
	if got := lead(newKey); got != http.StatusUnauthorized {
		t.Errorf("unsigned lead of a site that now signs = %d, want 401", got)
	}
	if rate, ok := dir.SiteRate("shop"); ok {
		t.Errorf("SiteRate without a limit = %v", rate)
	}
	limit := 3.0
	dir.Replace(map[string]Site{"shop": {Keys: []string{newKey}, RateLimit: &limit}})
	if rate, ok := dir.SiteRate("shop"); !ok || rate != 3 {
		t.Errorf("SiteRate = %v, %v; want 3", rate, ok)
	}
}
