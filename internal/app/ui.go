package app

import (
	"net/http"

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
func UIHandler(conn asynq.RedisConnOpt, readOnly bool, codec lead.Codec) http.Handler {
	return asynqmon.New(asynqmon.Options{
		RootPath:         uiPath,
		RedisConnOpt:     conn,
		ReadOnly:         readOnly,
		PayloadFormatter: payloadFormatter(codec),
		ResultFormatter:  asynqmon.ResultFormatterFunc(formatResult),
	})
}

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
