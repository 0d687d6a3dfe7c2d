//go:build unix

package intake

import (
	"syscall"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"leadrelay/lead"
)

// libraryLead is the JSON API's lead as github.com/go-json-experiment/json
// reads it: unknown members refused, repeated names and invalid UTF-8
// refused by the library's defaults.
type libraryLead struct {
	lead.Lead `json:",inline"`
	SpamHint  string `json:"spam_hint"`
}

var libraryOptions = json.RejectUnknownMembers(true)

// decodeJSONLibrary is the library's best case for decodeJSON: one
// Unmarshal into a struct for a good lead. A refused lead would need a
// second, member-by-member reading to name every problem as decodeJSON
// does; here decodeJSON stands in for it, as the benchmark sends none.
func decodeJSONLibrary(body []byte) (lead.Lead, error) {
	var s libraryLead
	if err := json.Unmarshal(body, &s, libraryOptions); err != nil {
		return decodeJSON(body)
	}
	l := s.Lead
	l.Normalize()
	hint := cleanHint(s.SpamHint)
	l.Description = withSpamHint(l.Description, hint)
	if len(hint) > MaxSpamHint || l.Validate() != nil {
		return decodeJSON(body)
	}
	return l, nil
}

// BenchmarkDecodeLibraryRatio keeps the hand-written decoder honest: it
// calls decodeJSON and decodeJSONLibrary in turn, in rounds (50 leads, or
// one batch), the order swapped every round, and reports the library's
// CPU time over decodeJSON's. CPU time of the process, not wall time, so
// that a busy shared host does not decide, and the collector's work
// counts. Run with -cpu 1; a ratio below 1 means the library is faster.
func BenchmarkDecodeLibraryRatio(b *testing.B) {
	batch := benchBatch()
	decoders := []func([]byte) (lead.Lead, error){decodeJSON, decodeJSONLibrary}
	for _, c := range []struct {
		name string
		run  func(decode func([]byte) (lead.Lead, error))
	}{
		{"lead", func(decode func([]byte) (lead.Lead, error)) {
			body := []byte(benchLead)
			for range 50 {
				if _, err := decode(body); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"batch", func(decode func([]byte) (lead.Lead, error)) {
			items, _ := decodeBatch(batch)
			for _, it := range items {
				if _, err := decode(it.Lead); err != nil {
					b.Fatal(err)
				}
			}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			spent := make([]time.Duration, len(decoders))
			for i := range b.N {
				for k := range decoders {
					k = (k + i) % len(decoders)
					t0 := cpuTime(b)
					c.run(decoders[k])
					spent[k] += cpuTime(b) - t0
				}
			}
			b.ReportMetric(float64(spent[1])/float64(spent[0]), "library/hand")
		})
	}
}

// TestDecodeJSONLibraryAgrees: the benchmark compares like with like.
func TestDecodeJSONLibraryAgrees(t *testing.T) {
	t.Parallel()
	for _, body := range append([]string{benchLead}, decodeCases...) {
		l1, err1 := decodeJSONLibrary([]byte(body))
		l2, err2 := decodeJSON([]byte(body))
		if d := sameDecoding(l1, err1, l2, err2); d != "" {
			t.Errorf("%q: %s", body, d)
		}
	}
}

// cpuTime is the CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
