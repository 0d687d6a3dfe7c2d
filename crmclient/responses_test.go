package crmclient

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"leadrelay/delivery"
	"leadrelay/lead"
)

// call runs action against c and returns its result.
func call(ctx context.Context, c *Client, action string) (any, error) {
	switch action {
	case actionAdd:
		return c.Add(ctx, Lead{Lead: lead.Lead{Title: "Ann", Email: "ann@example.com"}})
	case actionStat:
		return c.Stat(ctx)
	case actionInfo:
		return c.Info(ctx, 5)
	case actionList:
		return c.List(ctx, ListOptions{})
	}
	panic("unknown action " + action)
}

func TestResponses(t *testing.T) {
	t.Parallel()
	fixedNow := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		version APIVersion
		action  string
		status  int               // default 200
		header  map[string]string // response headers
		file    string            // body from testdata
		body    string            // or this body
		maxBody int64

		check     func(t *testing.T, got any) // on success
		wantClass Class
		wantErr   func(t *testing.T, err error)
		wantCode  delivery.Code // Diagnose's reason, for ClassConfig
		wantHint  string        // substring of the operators' text
	}{
		{name: "v1 add ok", version: V1, action: "add", file: "v1_add_ok.json", wantClass: ClassNone,
			check: func(t *testing.T, got any) { wantEqual(t, got.(int64), int64(940)) }},
		{name: "v1 add ok string id mailresult", version: V1, action: "add", file: "v1_add_ok_mailresult.json", wantClass: ClassNone,
			check: func(t *testing.T, got any) { wantEqual(t, got.(int64), int64(941)) }},
		{name: "v2 add ok", version: V2, action: "add", file: "v2_add_ok.json", wantClass: ClassNone,
			check: func(t *testing.T, got any) { wantEqual(t, got.(int64), int64(940)) }},
		{name: "v2 add string id", version: V2, action: "add", body: `{"result":"Success","id":"77"}`, wantClass: ClassNone,
			check: func(t *testing.T, got any) { wantEqual(t, got.(int64), int64(77)) }},
		{name: "v1 add failed code 1", version: V1, action: "add", file: "v1_add_fail.json", wantClass: ClassPermanent,
			wantErr: wantAPIError(1, "Ошибка добавления лида")},
		{name: "v2 add failed", version: V2, action: "add", file: "v2_add_fail.json", wantClass: ClassPermanent,
			wantErr: wantAPIError(401, "Ошибка добавления заявки")},
		{name: "v1 400", version: V1, action: "add", file: "v1_err_400.json", wantClass: ClassConfig,
			wantErr: wantAPIError(400, "Не верный API key"), wantCode: delivery.ConfigAPIKey},
		{name: "v1 401", version: V1, action: "stat", file: "v1_err_401.json", wantClass: ClassConfig,
			wantErr: wantAPIError(401, "Неизвестный пользователь"), wantCode: delivery.ConfigLogin},
		{name: "v1 402", version: V1, action: "list", file: "v1_err_402.json", wantClass: ClassConfig,
			wantErr: wantAPIError(402, "Не известный метод"), wantCode: delivery.ConfigMethod},
		{name: "v2 400", version: V2, action: "info", file: "v2_err_400.json", wantClass: ClassConfig,
			wantErr: wantAPIError(400, "Не верный API key"), wantCode: delivery.ConfigAPIKey},
		{name: "v2 401", version: V2, action: "add", file: "v2_err_401.json", wantClass: ClassConfig,
			wantErr: wantAPIError(401, "Неизвестный пользователь"), wantCode: delivery.ConfigLogin},
		{name: "v2 402", version: V2, action: "add", file: "v2_err_402.json", wantClass: ClassConfig,
			wantErr: wantAPIError(402, "Не известный метод"), wantCode: delivery.ConfigMethod},
		{name: "404 on non-list is permanent", version: V2, action: "info", body: `{"error":{"code":404,"text":"Не понимаю"}}`, wantClass: ClassPermanent,
			wantErr: wantAPIError(404, "Не понимаю")},
		{name: "v1 list empty", version: V1, action: "list", file: "v1_list_empty.json", wantClass: ClassNone,
			check: func(t *testing.T, got any) { wantEqual(t, len(got.([]ListItem)), 0) }},
		{name: "v2 list empty", version: V2, action: "list", file: "v2_list_empty.json", wantClass: ClassNone,
			check: func(t *testing.T, got any) {
				if got.([]ListItem) != nil {
					t.Errorf("want nil slice, got %#v", got)
				}
			}},
		{name: "v1 list", version: V1, action: "list", file: "v1_list.json", wantClass: ClassNone, check: checkV1List},
		{name: "v2 list", version: V2, action: "list", file: "v2_list.json", wantClass: ClassNone, check: checkV2List},
		{name: "v1 stat", version: V1, action: "stat", file: "v1_stat.json", wantClass: ClassNone,
			check: func(t *testing.T, got any) {
				wantStats(t, got.([]UserStat), []UserStat{{"vladislav@isaler.ru", 2, 1}, {"viktor@isaler.ru", 0, 0}})
			}},
		{name: "v2 stat", version: V2, action: "stat", file: "v2_stat.json", wantClass: ClassNone,
			check: func(t *testing.T, got any) {
				wantStats(t, got.([]UserStat), []UserStat{{"vladislav@isaler.ru", 2, 1}, {"viktor@isaler.ru", 0, 0}})
			}},
		{name: "stat no users", version: V2, action: "stat", body: `[]`, wantClass: ClassNone,
			check: func(t *testing.T, got any) { wantEqual(t, len(got.([]UserStat)), 0) }},
		{name: "v1 info", version: V1, action: "info", file: "v1_info.json", wantClass: ClassNone, check: checkV1Info},
		{name: "v1 info vendor shape", version: V1, action: "info", file: "v1_info_vendor.json", wantClass: ClassNone,
			check: func(t *testing.T, got any) {
				li := got.(LeadInfo)
				wantEqual(t, li.ID, int64(5))
				wantEqual(t, li.Datum.Time, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC))
				wantEqual(t, li.Title, "Андреев Владислав")
			}},
		{name: "v2 info", version: V2, action: "info", file: "v2_info.json", wantClass: ClassNone, check: checkV2Info},
		{name: "v2 info stub for unknown id", version: V2, action: "info", file: "v2_info_stub.json", wantClass: ClassPermanent,
			wantErr: func(t *testing.T, err error) {
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("want ErrNotFound, got %v", err)
				}
			}},
		{name: "v1 info empty data", version: V1, action: "info", body: `{"result":{"data":[],"id":"5"}}`, wantClass: ClassPermanent,
			wantErr: func(t *testing.T, err error) {
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("want ErrNotFound, got %v", err)
				}
			}},
		{name: "html fatal on add", version: V1, action: "add", file: "php_fatal.html",
			header: map[string]string{"Content-Type": "text/html; charset=utf-8"}, wantClass: ClassAnswered,
			wantErr: wantDecodeError("Fatal error", "text/html; charset=utf-8")},
		{name: "html fatal on list", version: V1, action: "list", file: "php_fatal.html", wantClass: ClassTransient,
			wantErr: wantDecodeError("Fatal error", "")},
		{name: "missing include on add", version: V1, action: "add", file: "php_fatal_include.html", wantClass: ClassConfig,
			wantErr: wantDecodeError("Failed opening required", ""), wantCode: delivery.ConfigV1Broken},
		{name: "missing include on info", version: V1, action: "info", file: "php_fatal_include.html", wantClass: ClassConfig,
			wantErr: wantDecodeError("Fatal error", ""), wantCode: delivery.ConfigV1Broken},
		{name: "truncated json on add", version: V1, action: "add", file: "truncated.json", wantClass: ClassAnswered,
			wantErr: wantDecodeError(`{"data":[{"id":"7"`, "")},
		{name: "truncated json on list", version: V1, action: "list", file: "truncated.json", wantClass: ClassTransient,
			wantErr: wantDecodeError(`{"data"`, "")},
		{name: "empty 200 body on add", version: V2, action: "add", body: "", wantClass: ClassAnswered,
			wantErr: wantDecodeError("", "")},
		{name: "success without id", version: V2, action: "add", body: `{"result":"Success"}`, wantClass: ClassAnswered,
			wantErr: wantDecodeError("Success", "")},
		{name: "json with trailing php error", version: V2, action: "add", body: `{"result":"Success","id":5}<br /><b>Warning</b>`, wantClass: ClassAnswered,
			wantErr: wantDecodeError("Warning", "")},
		{name: "body too large", version: V2, action: "list", file: "v2_list.json", maxBody: 100, wantClass: ClassTransient,
			wantErr: func(t *testing.T, err error) {
				if !errors.Is(err, ErrBodyTooLarge) {
					t.Errorf("want ErrBodyTooLarge, got %v", err)
				}
			}},
		{name: "http 500 empty body", version: V1, action: "add", status: 500, wantClass: ClassAnswered,
			wantErr: wantStatus(500, 0)},
		{name: "http 503 retry-after seconds", version: V2, action: "add", status: 503, body: "busy",
			header: map[string]string{"Retry-After": "120"}, wantClass: ClassTransient, wantErr: wantStatus(503, 2*time.Minute)},
		{name: "http 503 retry-after date", version: V2, action: "list", status: 503,
			header:    map[string]string{"Retry-After": fixedNow.Add(90 * time.Second).Format(http.TimeFormat)},
			wantClass: ClassTransient, wantErr: wantStatus(503, 90*time.Second)},
		{name: "http 429", version: V2, action: "add", status: 429, wantClass: ClassRateLimited, wantErr: wantStatus(429, 0)},
		{name: "http 408", version: V2, action: "add", status: 408, wantClass: ClassTransient, wantErr: wantStatus(408, 0)},
		{name: "http 404 wrong url", version: V2, action: "add", status: 404, body: "<h1>Not Found</h1>", wantClass: ClassConfig,
			wantErr: wantStatus(404, 0), wantCode: delivery.ConfigNotFound},
		{name: "http 403", version: V1, action: "stat", status: 403, wantClass: ClassConfig, wantErr: wantStatus(403, 0), wantCode: delivery.ConfigAccess},
		{name: "http 405", version: V1, action: "add", status: 405, wantClass: ClassConfig, wantErr: wantStatus(405, 0), wantCode: delivery.ConfigPost},
		{name: "redirect not followed", version: V1, action: "add", status: 301,
			header: map[string]string{"Location": "https://crm.example.com/developer/v1/leads"}, wantClass: ClassConfig,
			wantErr: wantStatus(301, 0), wantCode: delivery.ConfigRedirect,
			wantHint: "https://crm.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := []byte(tt.body)
			if tt.file != "" {
				body = golden(t, tt.file)
			}
			status := tt.status
			if status == 0 {
				status = http.StatusOK
			}
			srv := newStub(t, answerWith(status, tt.header, body))
			c := newTestClient(t, srv.URL, WithAPIVersion(tt.version))
			c.now = func() time.Time { return fixedNow }
			if tt.maxBody > 0 {
				c.maxBody = tt.maxBody
			}

			got, err := call(t.Context(), c, tt.action)

			if cl := Classify(err); cl != tt.wantClass {
				t.Errorf("Classify = %v, want %v (err %v)", cl, tt.wantClass, err)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
			} else {
				if err == nil {
					t.Fatalf("want error, got %#v", got)
				}
				tt.wantErr(t, err)
			}
			if tt.check != nil && err == nil {
				tt.check(t, got)
			}
			d := Diagnose(err)
			if tt.wantClass == ClassConfig && d.Reason.Code != tt.wantCode {
				t.Errorf("reason %s, want %s", d.Reason.Code, tt.wantCode)
			}
			if op := d.Reason.Text(delivery.Operators); !strings.Contains(op, tt.wantHint) {
				t.Errorf("operators' text %q, want it to mention %q", op, tt.wantHint)
			}
			if err != nil && strings.Contains(err.Error(), testKey) {
				t.Errorf("error text holds the API key: %v", err)
			}
			if n := len(srv.requests()); n != 1 {
				t.Errorf("server saw %d requests, want 1 (no retries)", n)
			}
		})
	}
}

func wantEqual[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func wantStats(t *testing.T, got, want []UserStat) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func wantAPIError(code int, text string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ae *APIError
		if !errors.As(err, &ae) {
			t.Fatalf("want *APIError, got %T %v", err, err)
		}
		if ae.Code != code || !strings.Contains(ae.Text, text) {
			t.Errorf("got code %d text %q, want %d %q", ae.Code, ae.Text, code, text)
		}
		if ae.Action == "" {
			t.Error("APIError without action")
		}
	}
}

func wantDecodeError(snippet, contentType string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("want *DecodeError, got %T %v", err, err)
		}
		if !strings.Contains(de.Snippet, snippet) {
			t.Errorf("snippet %q does not contain %q", de.Snippet, snippet)
		}
		if len(de.Snippet) > snippetLen {
			t.Errorf("snippet is %d bytes, want at most %d", len(de.Snippet), snippetLen)
		}
		if contentType != "" && de.ContentType != contentType {
			t.Errorf("content type %q, want %q", de.ContentType, contentType)
		}
		if de.Err == nil || de.StatusCode != 200 {
			t.Errorf("DecodeError %+v: want Err and status 200", de)
		}
	}
}

func wantStatus(code int, retryAfter time.Duration) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var se *StatusError
		if !errors.As(err, &se) {
			t.Fatalf("want *StatusError, got %T %v", err, err)
		}
		if se.StatusCode != code {
			t.Errorf("status %d, want %d", se.StatusCode, code)
		}
		if se.RetryAfter != retryAfter {
			t.Errorf("RetryAfter %v, want %v", se.RetryAfter, retryAfter)
		}
		d, ok := RetryAfter(err)
		if ok != (retryAfter > 0) || d != retryAfter {
			t.Errorf("RetryAfter(err) = %v, %v; want %v", d, ok, retryAfter)
		}
	}
}

// twoItems is the two list items a golden list answer holds.
func twoItems(t *testing.T, got any) (ListItem, ListItem) {
	t.Helper()
	items := got.([]ListItem)
	if len(items) != 2 {
		t.Fatalf("got %d items, want 2", len(items))
	}
	return items[0], items[1]
}

func checkV1List(t *testing.T, got any) {
	a, b := twoItems(t, got)
	wantEqual(t, a.ID, int64(7))
	wantEqual(t, a.Datum.Raw, "2025-03-02 10:00:00")
	wantEqual(t, a.Datum.Time, time.Date(2025, 3, 2, 10, 0, 0, 0, time.UTC))
	wantEqual(t, a.DatumDo.Time, time.Date(2025, 3, 3, 11, 30, 0, 0, time.UTC))
	wantEqual(t, a.Email, "a@example.com")
	wantEqual(t, a.Content, "Need a quote")
	wantEqual(t, a.CLID, int64(12))
	wantEqual(t, a.Client, "ACME LLC")
	wantEqual(t, a.PID, int64(4))
	wantEqual(t, a.Person, "Ann")
	wantEqual(t, a.User, "Владислав Андреев")
	wantEqual(t, a.UserName, "Не определен")
	wantEqual(t, a.Status, StatusProcessed)
	wantEqual(t, a.Rezult, RezultOther)
	wantEqual(t, a.RezultName, "Другое")
	wantEqual(t, a.ClientPath, int64(2))
	wantEqual(t, a.ClientPathName, "Test Path")
	wantEqual(t, b.DatumDo.Raw, "")
	wantEqual(t, b.DatumDo.Time.IsZero(), true)
	wantEqual(t, b.Status, StatusOpen)
	wantEqual(t, b.Rezult, RezultNone)
	wantEqual(t, b.ClientPath, int64(0))
	if a.UIDs != nil || b.UIDs != nil {
		t.Errorf("v1 items have uids: %v %v", a.UIDs, b.UIDs)
	}
}

func checkV2List(t *testing.T, got any) {
	a, b := twoItems(t, got)
	wantEqual(t, a.ID, int64(9))
	wantEqual(t, a.User, "0")
	wantEqual(t, a.DatumDo.Raw, "0000-00-00 00:00:00")
	wantEqual(t, a.DatumDo.Time.IsZero(), true)
	wantEqual(t, a.ClientPath, int64(2))
	wantEqual(t, a.UIDs["leadrelay"], "lr-9")
	wantEqual(t, b.Status, StatusInWork)
	wantEqual(t, len(b.UIDs), 0)
}

func checkV1Info(t *testing.T, got any) {
	li := got.(LeadInfo)
	wantEqual(t, li.ID, int64(5))
	wantEqual(t, li.Datum.Time, time.Date(2025, 3, 1, 14, 5, 0, 0, time.UTC))
	wantEqual(t, li.DatumDo.Time.IsZero(), true)
	wantEqual(t, li.Status, StatusInWork)
	wantEqual(t, li.StatusName, "В работе")
	wantEqual(t, li.Title, "Андреев Владислав")
	wantEqual(t, li.Phone, "+79001234567")
	wantEqual(t, li.IDUser, int64(3))
	wantEqual(t, li.ClientPath, int64(2))
	wantEqual(t, li.ClientPathName, "Test Path")
	wantEqual(t, li.UserName, "Владислав")
	wantEqual(t, li.Partner, "0")
	wantEqual(t, li.Client, "")
}

func checkV2Info(t *testing.T, got any) {
	li := got.(LeadInfo)
	wantEqual(t, li.ID, int64(4))
	wantEqual(t, li.Title, "Ann")
	wantEqual(t, li.Description, "its quoted")
	wantEqual(t, li.IP, "10.0.0.1")
	wantEqual(t, li.UTMSource, "google")
	wantEqual(t, li.UTMMedium, "cpc")
	wantEqual(t, li.UTMCampaign, "spring")
	wantEqual(t, li.UTMTerm, "crm")
	wantEqual(t, li.UTMContent, "ad1")
	wantEqual(t, li.UTMReferrer, "https://example.com/")
	wantEqual(t, li.UIDs["leadrelay"], "lr-123")
	wantEqual(t, len(li.UIDs), 1)
	wantEqual(t, li.Status, StatusOpen)
	wantEqual(t, li.Rezult, RezultNone)
	wantEqual(t, li.RezultName, "")
}
