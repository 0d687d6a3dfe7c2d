package intake

import (
	"fmt"
	"strings"
	"testing"
)

// benchLead is a typical lead of a browser form.
const benchLead = `{"title":"Ann Lee","email":"ann@example.com","phone":"+79001234567","company":"Lee & Daughters",` +
	`"description":"Hello, please call me back about the flat on Green Street. Evenings are best.",` +
	`"utm_source":"google","utm_medium":"cpc","utm_campaign":"spring"}`

// benchBatch is a full batch: a third of its leads in Cyrillic, with an
// escaped newline and quotes.
func benchBatch() []byte {
	var b strings.Builder
	b.WriteString(`{"leads":[`)
	for i := range MaxBatchLeads {
		if i > 0 {
			b.WriteString(",")
		}
		l := benchLead
		if i%3 == 1 {
			l = `{"title":"Иван Петров","phone":"+7 (900) 123-45-67","description":"Перезвоните после 18:00\nспасибо",` +
				`"path":"/contacts","spam_hint":"","utm_source":"yandex","utm_term":"crm \"pro\""}`
		}
		fmt.Fprintf(&b, `{"idempotency_key":"order-%d","lead":%s}`, i, l)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// decodeBatchLeads is what intake does with a batch body before storing:
// the envelope, then each lead.
func decodeBatchLeads(tb testing.TB, body []byte) {
	items, problem := decodeBatch(body)
	if problem != "" {
		tb.Fatal(problem)
	}
	for _, it := range items {
		if _, err := decodeJSON(it.Lead); err != nil {
			tb.Fatal(err)
		}
	}
}

func BenchmarkDecodeLead(b *testing.B) {
	body := []byte(benchLead)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for range b.N {
		if _, err := decodeJSON(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	body := benchBatch()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for range b.N {
		decodeBatchLeads(b, body)
	}
}
