package intake

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestJSONNotHTMLEscaped: JSON answers say <, > and & as they are; only the
// v1 drop-in, labelled text/html like the CRM's, keeps escaping them.
func TestJSONNotHTMLEscaped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rec := e.do(t, jsonPost(`{"title":"Ann"}`, ""))
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Bearer <site key>") || strings.Contains(rec.Body.String(), `\u003c`) {
		t.Errorf("401 = %d %s, want the text with <site key> unescaped", rec.Code, rec.Body)
	}
	rec = e.do(t, v2Get("login=shop&apikey="+url.QueryEscape(shopKey)+"&action=add&email=a<b>@x"))
	if strings.Contains(rec.Body.String(), `\u003c`) {
		t.Errorf("v2 drop-in (application/json) escapes HTML: %s", rec.Body)
	}
}
