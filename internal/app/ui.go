package app

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path"
	"regexp"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"

	"leadrelay/lead"
)

// uiPath is where the ops UI (asynqmon) is mounted, on the ops listener.
const uiPath = "/ui"

// UIHandler returns asynqmon for the ops listener. It does no checks of
// its own: the ops listener's guard (OpsGuard) admits operators. A lead
// task's payload is shown through codec (the workers' keyring) as its
// site, id, title and masked contact (lead.Codec.Describe): asynqmon's own
// view shows every field in clear, or ciphertext once leads are sealed.
//
// Two things asynqmon has no option for are done to its answers
// (asynqUI): its index page loses its links to Google's fonts, so the
// UI loads nothing from outside (it falls back to the browser's fonts),
// and a lead task's max_retry is shown as LeadRelay counts its retry
// budget (LEADRELAY_MAX_RETRY), without the spare run (lead.SpareRuns).
func UIHandler(conn asynq.RedisConnOpt, readOnly bool, codec lead.Codec) http.Handler {
	return asynqUI{asynqmon.New(asynqmon.Options{
		RootPath:         uiPath,
		RedisConnOpt:     conn,
		ReadOnly:         readOnly,
		PayloadFormatter: payloadFormatter(codec),
		ResultFormatter:  asynqmon.ResultFormatterFunc(formatResult),
	})}
}

// asynqUI is asynqmon with its index page and its task answers edited.
type asynqUI struct{ next http.Handler }

func (u asynqUI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	api := strings.HasPrefix(r.URL.Path, uiPath+"/api/queues/")
	index := !strings.HasPrefix(r.URL.Path, uiPath+"/api/") && path.Ext(r.URL.Path) == ""
	if r.Method != http.MethodGet || !api && !index {
		u.next.ServeHTTP(w, r)
		return
	}
	b := &bufferedResponse{header: http.Header{}, code: http.StatusOK}
	u.next.ServeHTTP(b, r)
	body := b.body.Bytes()
	switch {
	case b.code != http.StatusOK:
	case index:
		body = outsideFonts.ReplaceAll(body, nil)
	case api:
		body = leadRetryBudget(body)
	}
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(b.code)
	_, _ = w.Write(body)
}

// outsideFonts matches asynqmon's index page's stylesheet links to
// Google's fonts.
var outsideFonts = regexp.MustCompile(`<link rel="stylesheet" href="https://fonts\.googleapis\.com/[^"]*"/?>`)

// leadRetryBudget rewrites asynqmon's JSON answer about tasks (one, or a
// list under "tasks") so that a lead task's max_retry is its retry
// budget; any other answer comes back as it was.
func leadRetryBudget(body []byte) []byte {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v map[string]any
	if d.Decode(&v) != nil {
		return body
	}
	tasks := []any{v}
	if list, ok := v["tasks"].([]any); ok {
		tasks = list
	}
	changed := false
	for _, t := range tasks {
		task, ok := t.(map[string]any)
		if !ok || task["type"] != lead.TaskType {
			continue
		}
		num, ok := task["max_retry"].(json.Number)
		if n, err := num.Int64(); ok && err == nil && n >= lead.SpareRuns {
			task["max_retry"], changed = n-lead.SpareRuns, true
		}
	}
	if !changed {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// bufferedResponse keeps a response to edit it before it is sent.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) WriteHeader(code int)        { b.code = code }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }

// payloadFormatter shows lead tasks through codec.Describe and hides any
// other task's payload, which LeadRelay does not write.
func payloadFormatter(codec lead.Codec) asynqmon.PayloadFormatter {
	return asynqmon.PayloadFormatterFunc(func(taskType string, b []byte) string {
		if taskType != lead.TaskType {
			return "(not a lead task)"
		}
		return codec.Describe(b)
	})
}

// formatResult shows a lead task's result, the CRM id the worker writes
// at delivery, as "crm_id=N", no result as nothing (asynqmon says
// "non-printable bytes"), anything else as asynqmon would.
func formatResult(taskType string, b []byte) string {
	switch {
	case len(b) == 0:
		return ""
	case taskType == lead.TaskType && digits(b):
		return "crm_id=" + string(b)
	}
	return asynqmon.DefaultResultFormatter.FormatResult(taskType, b)
}

// digits reports whether b is a non-empty run of decimal digits.
func digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
