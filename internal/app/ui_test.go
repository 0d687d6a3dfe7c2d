package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestUIShowsLeadsMasked: asynqmon on the ops listener shows a queued
// lead's site, id, title and masked contact, opened with the process's
// keyring, and none of its personal data in full (issues 18, 21).
func TestUIShowsLeadsMasked(t *testing.T) {
	t.Parallel()
	site, ops := runIntake(t, map[string]string{"LEADRELAY_UI_USER": opsUser, "LEADRELAY_UI_PASSWORD": opsPass})
	body := `{"title":"Order","email":"ann@example.org","phone":"+7 900 123-45-67","description":"call after six"}`
	if code, _ := postLead(t, site, siteKey, body); code != http.StatusAccepted {
		t.Fatalf("POST lead = %d, want 202", code)
	}
	req, _ := http.NewRequest(http.MethodGet, ops+"/ui/api/queues/leads/pending_tasks", nil)
	req.SetBasicAuth(opsUser, opsPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var got struct {
		Tasks []struct {
			Type    string `json:"type"`
			Payload string `json:"payload"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(raw, &got); err != nil || resp.StatusCode != http.StatusOK || len(got.Tasks) != 1 {
		t.Fatalf("pending tasks = %d %s (%v), want one task", resp.StatusCode, raw, err)
	}
	shown := got.Tasks[0].Payload
	for _, want := range []string{"site=shop", "lead=ld_", "title=O***", "email=a***@example.org", "phone=***567"} {
		if !strings.Contains(shown, want) {
			t.Errorf("payload shown %q lacks %q", shown, want)
		}
	}
	for _, secret := range []string{"Order", "ann@example.org", "900 123", "1234567", "call after six", "sealed\""} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("asynqmon shows %q: %s", secret, raw)
		}
	}
}

func TestFormatResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, taskType, result, want string
	}{
		{"a lead's CRM id", "lead:deliver", "4217", "crm_id=4217"},
		{"no result", "lead:deliver", "", ""},
		{"other text as asynqmon shows it", "lead:deliver", "ok", "ok"},
		{"another task type", "other", "42", "42"},
	}
	for _, tt := range tests {
		if got := formatResult(tt.taskType, []byte(tt.result)); got != tt.want {
			t.Errorf("%s: formatResult = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestAsynqmonLocal: asynqmon's index page links no outside fonts and the
// ops listener's policy allows none; a lead task's retry budget reads as
// LEADRELAY_MAX_RETRY, not asynq's MaxRetry with the spare run (issue 21:
// "Retry: 0/81" where README says 80).
func TestAsynqmonLocal(t *testing.T) {
	t.Parallel()
	site, ops := runIntakeWithOps(t, map[string]string{"LEADRELAY_MAX_RETRY": "7"})
	resp := opsGet(t, ops+"/ui/")
	body := readBody(t, resp)
	if !strings.Contains(body, `<div id="root">`) || strings.Contains(body, "googleapis") || strings.Contains(resp.Header.Get("Content-Security-Policy"), "google") {
		t.Errorf("asynqmon's index: CSP %q, body:\n%s", resp.Header.Get("Content-Security-Policy"), body)
	}
	if code, _ := postLead(t, site, siteKey, `{"email":"ann@example.org"}`); code != http.StatusAccepted {
		t.Fatalf("POST lead = %d, want 202", code)
	}
	var got struct {
		Tasks []struct {
			MaxRetry int `json:"max_retry"`
		} `json:"tasks"`
	}
	raw := readBody(t, opsGet(t, ops+"/ui/api/queues/leads/pending_tasks"))
	if err := json.Unmarshal([]byte(raw), &got); err != nil || len(got.Tasks) != 1 || got.Tasks[0].MaxRetry != 7 {
		t.Errorf("asynqmon's pending tasks = %s (%v); want one with max_retry 7", raw, err)
	}
}
