package crmsim

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"leadrelay/internal/respstatus"
)

// Content types the CRM labels its answers with.
const (
	ctV1 = "text/html; charset=utf-8"
	ctV2 = "application/json; charset=utf-8"
)

// Error texts of the CRM.
const (
	textBadKey        = "Не верный API key"
	textUnknownUser   = "Неизвестный пользователь"
	textUnknownMethod = "Не известный метод"
	textNotFound      = "Не найдено"
	textAddFailedV1   = "Ошибка добавления лида. "
	textAddFailedV2   = "Ошибка добавления заявки. "
	textRejected      = "Запись отклонена (crmsim reject marker)"
)

// reply is what an action answers: a JSON value, an HTML body (PHP fatal),
// or nothing at all (abort: the connection is dropped).
type reply struct {
	json  any
	html  string
	fatal bool // html is a PHP fatal: Faults.FatalStyle may turn it into an empty 500
	abort bool
}

// phpFatal is the reply of a PHP fatal error with that page.
func phpFatal(page string) reply { return reply{html: page, fatal: true} }

// respWriter records the status for the request log, and whether the
// connection was dropped without an answer.
type respWriter struct {
	respstatus.Recorder
	aborted bool
}

// abort drops the connection without an answer: hijack and close, or, where
// hijacking is impossible (HTTP/2, recorders), panic with
// http.ErrAbortHandler, which net/http turns into a reset.
func (w *respWriter) abort() {
	w.aborted = true
	conn, _, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

func (s *Sim) handleAPI(api string) http.HandlerFunc {
	return func(hw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := &respWriter{Recorder: respstatus.Recorder{ResponseWriter: hw}}
		var rq *request
		defer func() { s.logRequest(r, api, rq, w, start) }()

		f := s.Faults()
		if mode, down := f.OutageActive(time.Now()); down {
			s.countFault("outage")
			if mode == OutageRefuse {
				w.abort() // before reading, as a closed port would
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}

		if f.PHPWorkers > 0 {
			ok, waited := s.pool.acquire(r.Context(), 0)
			if !ok {
				return // the client left while queued for a worker
			}
			defer s.pool.release()
			if waited {
				s.countFault("php_queue")
			}
		}

		if api == APIv1 {
			rq = parseV1(r)
		} else {
			rq = parseV2(r)
		}
		s.countRequest(api, rq.action)
		d := s.draw(f, rq.action == "add")

		if f.Latency > 0 {
			s.countFault("latency")
			if !s.sleepLatency(r.Context(), f) {
				return
			}
		}
		if s.injectFault(w, api, f, d, rq) {
			return
		}

		var rep reply
		if api == APIv1 {
			rep = s.serveV1(rq, f, d)
		} else {
			rep = s.serveV2(rq, f, d)
		}
		if rep.abort {
			w.abort()
			return
		}
		s.write(w, api, f, rep)
	}
}

// injectFault answers with the fault the draws or the faults ask for
// before the action runs, if any, and reports whether it did.
func (s *Sim) injectFault(w http.ResponseWriter, api string, f Faults, d draws, rq *request) bool {
	switch {
	case d.rateLimit:
		s.countFault("rate_limit")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	case d.serverError:
		s.countFault("error")
		w.WriteHeader(f.ErrorStatus)
	case d.fatal:
		s.countFault("fatal")
		s.write(w, api, f, phpFatal(fatalBody))
	case f.AuthFail:
		s.countFault("auth_fail")
		s.write(w, api, f, s.authError(api))
	case rq.action == "add" && carries(rq, f.PoisonMarker):
		s.countFault("poison")
		w.WriteHeader(http.StatusInternalServerError)
	default:
		return false
	}
	return true
}

// work takes d of the CRM's time whatever the client does: PHP goes on
// running a script whose client has gone away.
func work(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}

// sleepLatency sleeps the request's Latency, false if the client left
// first. With CPUs the request counts as at work meanwhile, and its Latency
// is stretched by the share of the CPUs it gets when it starts.
func (s *Sim) sleepLatency(ctx context.Context, f Faults) bool {
	var n int64
	if f.CPUs > 0 {
		n = s.working.Add(1)
		defer s.working.Add(-1)
	}
	return sleepCtx(ctx, f.latencyAt(n))
}

// latencyAt is Latency with n requests at work, itself included.
func (f Faults) latencyAt(n int64) time.Duration {
	d := time.Duration(f.Latency)
	if f.CPUs > 0 && n > int64(f.CPUs) {
		d = d * time.Duration(n) / time.Duration(f.CPUs)
	}
	return d
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// write sends rep with HTTP 200, labelled like the CRM labels that version
// (a PHP fatal keeps the label the script had already set), or a fatal as
// an empty HTTP 500 when f's FatalStyle says display_errors is off.
func (s *Sim) write(w http.ResponseWriter, api string, f Faults, rep reply) {
	if rep.fatal && f.emptyFatal(api) {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	ct := ctV1
	if api == APIv2 {
		ct = ctV2
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if rep.json == nil {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(rep.html))
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rep.json); err != nil {
		s.log.Error("crmsim: encode answer", zap.Error(err))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// apiError is {"result":"Error","error":{"code":...,"text":...}}; code is a
// string in v1, a number in v2.
func apiError(api string, code int, text string) reply {
	var c any = code
	if api == APIv1 {
		c = itoa(code)
	}
	return reply{json: errBody{Result: "Error", Error: errDetail{Code: c, Text: text}}}
}

type errBody struct {
	Result string    `json:"result"`
	Error  errDetail `json:"error"`
}

type errDetail struct {
	Code any    `json:"code"`
	Text string `json:"text"`
}

// authError is the answer to a wrong key: v1 400, v2 401 (the running CRM;
// its source says 400).
func (s *Sim) authError(api string) reply {
	if api == APIv1 {
		return apiError(api, 400, textBadKey)
	}
	return apiError(api, 401, textUnknownUser)
}

// authenticate checks key, login and action in the CRM's order and returns
// the caller's iduser, or the error to answer.
func (s *Sim) authenticate(rq *request) (int, *reply) {
	if rq.apikey == "" || subtle.ConstantTimeCompare([]byte(rq.apikey), []byte(s.apiKey)) != 1 {
		r := s.authError(rq.api)
		return 0, &r
	}
	id := s.userByLogin(rq.login)
	if id == 0 {
		r := apiError(rq.api, 401, textUnknownUser)
		return 0, &r
	}
	switch rq.action {
	case "add", "info", "stat", "list":
	default:
		r := apiError(rq.api, 402, textUnknownMethod)
		return 0, &r
	}
	return id, nil
}

// rejected reports whether an add carries the RejectMarker.
func rejected(f Faults, rq *request) bool { return carries(rq, f.RejectMarker) }

// carries reports whether a request's title, description or email holds
// marker m (never, for an empty m).
func carries(rq *request, m string) bool {
	return m != "" && (strings.Contains(rq.get("title"), m) ||
		strings.Contains(rq.get("description"), m) || strings.Contains(rq.get("email"), m))
}

// input builds the add input common to both versions.
func (rq *request) input() leadInput {
	return leadInput{
		api: rq.api, login: rq.login, id: phpInt(rq.get("id")),
		title: rq.get("title"), email: rq.get("email"), phone: rq.get("phone"), site: rq.get("site"),
		company: rq.get("company"), description: rq.get("description"), ip: rq.get("ip"),
		country: rq.get("country"), city: rq.get("city"), partner: rq.get("partner"),
		utmSource: rq.get("utm_source"), utmMedium: rq.get("utm_medium"), utmCampaign: rq.get("utm_campaign"),
		utmTerm: rq.get("utm_term"), utmContent: rq.get("utm_content"), utmReferrer: rq.get("utm_referrer"),
	}
}

// add stores the lead unless rejected; it returns the id, or 0 when the
// RejectMarker fault refused it, and the store generation for stamp.
func (s *Sim) add(in leadInput, f Faults, rq *request) (int64, uint64) {
	if rejected(f, rq) {
		s.countFault("reject")
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLead(in), s.st.gen
}

// stamp writes the uids an add left for later (leadInput.deferUIDs), unless
// the leads were reset since (gen).
func (s *Sim) stamp(id int64, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.st.get(id)
	if s.st.gen != gen || !ok || len(l.MissingUIDs) == 0 {
		return
	}
	if l.UIDs == nil {
		l.UIDs = make(map[string]string, len(l.MissingUIDs))
	}
	maps.Copy(l.UIDs, l.MissingUIDs)
	l.MissingUIDs = nil
	s.changed()
}

// webhookCall is v2 add's blocking call to the CRM's own webhooks. With a
// PHP pool it needs a free worker and waits up to WebhookStall for one,
// which is what makes the real CRM collapse under too many adds.
func (s *Sim) webhookCall(f Faults) {
	if f.PHPWorkers <= 0 {
		return
	}
	ok, waited := s.pool.acquire(context.Background(), orDefault(f.WebhookStall, defaultWebhookStall))
	if !ok {
		s.countFault("webhook_stall")
		return
	}
	if waited {
		s.countFault("webhook_wait")
	}
	work(orDefault(f.WebhookTime, defaultWebhookTime))
	s.pool.release()
}

// lateCommit makes a drawn add work past the client's timeout before it stores.
func (s *Sim) lateCommit(f Faults, d draws) {
	if d.lateCommit {
		s.countFault("late_commit")
		work(orDefault(f.LateCommitDelay, defaultLateCommitDelay))
	}
}

// listQuery reads list parameters.
func (rq *request) listQuery() listQuery {
	return listQuery{
		offset:    int(phpInt(rq.get("offset"))),
		order:     strings.TrimSpace(rq.get("order")),
		old:       rq.get("first") == "old",
		dateStart: strings.TrimSpace(rq.get("dateStart")),
		dateEnd:   strings.TrimSpace(rq.get("dateEnd")),
	}
}

func (s *Sim) listLeads(q listQuery) ([]StoredLead, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.list(q)
}

func (s *Sim) logRequest(r *http.Request, api string, rq *request, w *respWriter, start time.Time) {
	ce := s.log.Check(zap.DebugLevel, "crmsim request")
	if ce == nil {
		return
	}
	action, login := "", ""
	if rq != nil {
		action, login = rq.action, rq.login
	}
	ce.Write(
		zap.String("method", r.Method),
		zap.String("path", s.redact(r.URL.Path)),
		zap.String("api", api),
		zap.String("action", s.redact(action)),
		zap.String("login", s.redact(login)),
		zap.Int("status", w.Status),
		zap.Bool("aborted", w.aborted),
		zap.Duration("duration", time.Since(start)),
	)
}
