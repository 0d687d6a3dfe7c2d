package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"leadrelay/delivery"
	"leadrelay/lead"
	"leadrelay/producer"
)

// Batch limits.
const (
	// MaxBatchLeads is the most leads one POST /v1/leads/batch may carry.
	MaxBatchLeads = 100
	// MaxBatchBytes caps a batch body. One lead may still be at most
	// lead.MaxPayloadBytes.
	MaxBatchBytes = 1 << 20
)

// LeadBudget limits how many leads a site may hand in through batches: a
// batch counts once against the request limits (Limiter) and n times
// against this. RedisLeadBudget implements it.
type LeadBudget interface {
	// AllowN admits n leads of site, or refuses them all. An error means
	// the budget could not decide; intake then admits the batch.
	AllowN(ctx context.Context, site string, n int) (Decision, error)
}

// batchRequest is the body of POST /v1/leads/batch.
type batchRequest struct {
	Leads []batchItem `json:"leads"`
}

// batchItem is one lead of a batch with its own idempotency key.
type batchItem struct {
	IdempotencyKey string          `json:"idempotency_key"`
	Lead           json.RawMessage `json:"lead"`
}

// batchResult is one lead's outcome, in the batch's order. HTTPStatus is
// the status the lead would have got alone: 202 accepted, 200 duplicate,
// 400 invalid, 422 key reused with another lead, 503 not stored (send it
// again). State is the lead's status, named as in POST /v1/leads.
type batchResult struct {
	Index          int               `json:"index"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
	Status         int               `json:"http_status"`
	ID             string            `json:"id,omitempty"`
	State          string            `json:"status,omitempty"`
	Duplicate      bool              `json:"duplicate,omitempty"`
	Error          string            `json:"error,omitempty"`
	Fields         []lead.FieldError `json:"fields,omitempty"`
	// mayBeStored: the publish failed in a way that may have stored the
	// lead (not producer.NothingStored).
	mayBeStored bool
}

// batchAnswer is the answer to a batch that was read: every lead's result
// and the counts.
type batchAnswer struct {
	// Error is set when the batch as a whole failed (503: nothing stored).
	Error      string        `json:"error,omitempty"`
	Results    []batchResult `json:"results"`
	Accepted   int           `json:"accepted"`
	Duplicates int           `json:"duplicates"`
	Refused    int           `json:"refused"`
}

// leadsBatch serves POST /v1/leads/batch: up to MaxBatchLeads leads, each
// with its own idempotency key and its own result. Each lead is stored on
// its own (a Redis failure midway leaves the earlier ones stored and says
// so per lead); the batch counts as one request against the rate limits
// and as its number of leads against the LeadBudget. The answer is 200 with
// the results whenever the batch could be read, 503 when no lead could be
// stored.
func (h *handler) leadsBatch(w http.ResponseWriter, r *http.Request) {
	site, publishable, ok := h.postFromSite(w, r)
	if !ok || secretOnly(w, r, publishable, "a batch (whose answer tells duplicates apart)") {
		return
	}
	body, ok := h.readBatch(w, r)
	if !ok || !h.signed(w, r, site, body, answerJSON) {
		return
	}
	items, problem := decodeBatch(body)
	if problem != "" {
		note(r, "", "", "invalid")
		writeJSON(w, http.StatusBadRequest, errorBody{Error: problem})
		return
	}
	if !h.withinBudget(w, r, site, len(items)) || !h.roomFor(w, r, site, len(items), answerJSON) {
		return
	}
	forget, ok := h.firstUse(w, r, site, answerJSON)
	if !ok {
		return
	}
	ans, unavailable, mayBeStored := h.publishAll(r.Context(), site, items)
	if unavailable != nil {
		h.unavailable(w, r, unavailable)
		if ans.Accepted+ans.Duplicates == 0 {
			if !mayBeStored {
				forget()
			}
			ans.Error = "lead store unavailable, no lead of this batch was accepted; send the batch again"
			writeJSON(w, http.StatusServiceUnavailable, ans)
			return
		}
	}
	note(r, "", "", "batch")
	writeJSON(w, http.StatusOK, ans)
}

// readBatch reads a JSON body of at most MaxBatchBytes, or answers why not.
func (h *handler) readBatch(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if !jsonContent(w, r) {
		return nil, false
	}
	if r.ContentLength > MaxBatchBytes {
		h.batchTooLarge(w, r)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBatchBytes))
	if err != nil {
		if isTooLarge(err) {
			h.batchTooLarge(w, r)
			return nil, false
		}
		h.bodyError(w, r, err)
		return nil, false
	}
	return body, true
}

// withinBudget spends n leads of the site's lead budget, or answers 429.
// A budget that cannot be read admits the batch.
func (h *handler) withinBudget(w http.ResponseWriter, r *http.Request, site string, n int) bool {
	if h.budget == nil {
		return true
	}
	d, err := h.budget.AllowN(r.Context(), site, n)
	switch {
	case err != nil:
		h.log.Warn("intake lead budget failed; batch admitted", zap.Error(err))
	case !d.Allowed:
		note(r, "", "", "rate_limited")
		secs := max(int64((d.RetryAfter.Seconds())+0.999), 1)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		writeJSON(w, http.StatusTooManyRequests, errorBody{Error: fmt.Sprintf(
			"too many leads (%d in this batch over the site's lead budget); retry after %ds", n, secs)})
		return false
	}
	return true
}

// publishAll publishes each item and counts the results. unavailable is
// the first store failure; mayBeStored says whether any lead may have been
// stored despite one.
func (h *handler) publishAll(ctx context.Context, site string, items []batchItem) (ans batchAnswer, unavailable error, mayBeStored bool) {
	ans = batchAnswer{Results: make([]batchResult, len(items))}
	for i, it := range items {
		res := h.publishOne(ctx, site, i, it)
		ans.Results[i] = res
		mayBeStored = mayBeStored || res.mayBeStored
		switch {
		case res.Status == http.StatusAccepted:
			ans.Accepted++
		case res.Duplicate:
			ans.Duplicates++
		default:
			ans.Refused++
		}
		if res.Status == http.StatusServiceUnavailable && unavailable == nil {
			unavailable = errors.New(res.Error)
		}
	}
	return ans, unavailable, mayBeStored
}

func (h *handler) batchTooLarge(w http.ResponseWriter, r *http.Request) {
	note(r, "", "", "too_large")
	writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("batch body is larger than %d KiB; send at most %d leads per batch", MaxBatchBytes>>10, MaxBatchLeads)})
}

// decodeBatch reads the envelope; a problem with it refuses the whole
// batch, problems of single leads do not.
func decodeBatch(body []byte) ([]batchItem, string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req batchRequest
	if err := dec.Decode(&req); err != nil {
		return nil, `body must be {"leads":[{"idempotency_key":"…","lead":{…}}, …]}: ` + err.Error()
	}
	if dec.More() {
		return nil, "body holds something after the batch object"
	}
	switch {
	case len(req.Leads) == 0:
		return nil, `"leads" is empty or missing: send 1 to 100 leads`
	case len(req.Leads) > MaxBatchLeads:
		return nil, fmt.Sprintf(`"leads" holds %d leads; send at most %d per batch`, len(req.Leads), MaxBatchLeads)
	}
	return req.Leads, ""
}

// publishOne stores one lead of a batch and says what became of it.
func (h *handler) publishOne(ctx context.Context, site string, i int, it batchItem) batchResult {
	res := batchResult{Index: i, IdempotencyKey: it.IdempotencyKey}
	if problem := checkKey(it.IdempotencyKey); problem != "" {
		res.Status, res.Error = http.StatusBadRequest, problem
		return res
	}
	if len(it.Lead) > lead.MaxPayloadBytes {
		res.Status, res.Error = http.StatusRequestEntityTooLarge, "lead is larger than 64 KiB"
		return res
	}
	l, err := decodeJSON(it.Lead)
	if err == nil {
		var rc producer.Receipt
		if rc, err = h.pub.Publish(ctx, site, l, it.IdempotencyKey); err != nil {
			res.mayBeStored = !producer.NothingStored(err)
		} else {
			res.ID = rc.ID
			if !rc.Duplicate || it.IdempotencyKey == "" { // a keyless repeat reads as new (see leads)
				res.Status, res.State = http.StatusAccepted, string(delivery.Queued)
				return res
			}
			res.Status, res.Duplicate, res.State = http.StatusOK, true, string(delivery.Queued)
			if st, err := h.pub.Status(ctx, site, rc.ID); err == nil {
				res.State = string(st.State)
			}
			return res
		}
	}
	var de *DecodeError
	var ve *lead.ValidationError
	var bf *producer.BacklogFullError
	switch {
	case errors.As(err, &de):
		res.Status, res.Error, res.Fields = http.StatusBadRequest, de.Problem, de.Fields
	case errors.As(err, &ve):
		res.Status, res.Error, res.Fields = http.StatusBadRequest, "invalid lead", capFields(ve.Fields)
	case errors.As(err, &bf):
		res.Status, res.Error = http.StatusTooManyRequests, "the site's backlog is full, this lead was not stored; send it again later"
		if bf.Global {
			res.Status, res.Error = http.StatusServiceUnavailable, "the relay's backlog is full, this lead was not stored; send it again later"
		}
		if bf.Bytes {
			res.Error = shareFullText(bf)
		}
	case errors.Is(err, producer.ErrKeyReused):
		res.Status, res.Error = http.StatusUnprocessableEntity, "idempotency key already used for a different lead; use a new key for a new lead"
	case errors.Is(err, producer.ErrUnavailable):
		res.Status, res.Error = http.StatusServiceUnavailable, "lead store unavailable, this lead was not accepted; send it again"
	default:
		h.log.Error("intake batch: publish failed", zap.Error(err))
		res.Status, res.Error = http.StatusInternalServerError, "internal error"
	}
	return res
}

// checkKey checks a batch lead's idempotency key like the header's.
func checkKey(k string) string {
	if k == "" {
		return ""
	}
	h := http.Header{}
	h.Set("Idempotency-Key", k)
	_, problem := idempotencyKey(h)
	return problem
}
