package intake

import "testing"

// TestRouteOf: a span names intake's route, never a path a client chose.
func TestRouteOf(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/v1/leads": "/v1/leads", "/v1/leads/batch": "/v1/leads/batch", "/v1/leads/ld_0123": "/v1/leads/{id}",
		"/developer/v1/leads": "/developer/v1/leads", "/": "/", "/v1/leads/a/b": "other",
		"/ann@example.com": "other", "/v1/leads/": "other",
	} {
		if got := routeOf(path); got != want {
			t.Errorf("routeOf(%q) = %q, want %q", path, got, want)
		}
	}
}
