package lead_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/seal"
	"leadrelay/lead"
)

func keyring(t testing.TB, text string) *seal.Keyring {
	t.Helper()
	k, err := seal.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyText(id string, b byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, seal.KeySize))
}

// namedCodec is a codec and the name of its subtest.
type namedCodec struct {
	name  string
	codec lead.Codec
}

// bothCodecs is the plaintext codec and one that seals with key k1.
func bothCodecs(t testing.TB) []namedCodec {
	return []namedCodec{{"plain", lead.Codec{}}, {"sealed", lead.NewCodec(keyring(t, keyText("k1", 1)))}}
}

var person = lead.Lead{Title: "Ann Lee", Email: "ann.lee@example.org", Phone: "+7 900 123-45-67",
	Company: "Lee & Sons", Description: "Call me <after> 6 pm", IP: "203.0.113.9"}

// TestCodecSeals: a sealed payload holds none of the lead's fields nor
// the site's key in clear, carries id, site, digest, time and key id, and
// decodes to the payload it was made from.
func TestCodecSeals(t *testing.T) {
	t.Parallel()
	c := lead.NewCodec(keyring(t, keyText("k1", 1)))
	p := lead.NewPayload("shop", "order-secret-42", person, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	b, err := c.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{person.Title, person.Email, person.Phone, person.Company, "after", person.IP, "order-secret-42"} {
		if bytes.Contains(b, []byte(v)) {
			t.Errorf("sealed payload holds %q in clear: %s", v, b)
		}
	}
	env, err := lead.ReadEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	want := lead.Envelope{ID: p.ID, Site: "shop", Sum: p.Sum, ReceivedAt: p.ReceivedAt, Key: "k1"}
	if env != want {
		t.Errorf("envelope %+v, want %+v", env, want)
	}
	got, err := c.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != p {
		t.Errorf("Decode = %+v, want %+v", got, p)
	}
}

// TestCodecReads: what each codec reads, the previous version's plaintext
// payloads among them, and what it refuses.
func TestCodecReads(t *testing.T) {
	t.Parallel()
	k1 := lead.NewCodec(keyring(t, keyText("k1", 1)))
	rotated := lead.NewCodec(keyring(t, keyText("k2", 2)+","+keyText("k1", 1)))
	k2only := lead.NewCodec(keyring(t, keyText("k2", 2)))
	p := lead.NewPayload("shop", "", person, time.Now())
	sealed, _ := k1.Encode(p)
	plain, _ := lead.Codec{}.Encode(p)
	q := lead.NewPayload("shop", "other", person, time.Now())
	other, _ := k1.Encode(q)
	// A sealed value moved into another lead's envelope.
	swapped := bytes.Replace(other, []byte(q.ID), []byte(p.ID), 1)

	tests := []struct {
		name  string
		codec lead.Codec
		b     []byte
		check func(error) bool
	}{
		{"sealed, same key", k1, sealed, nil},
		{"sealed under k1, read after rotation to k2,k1", rotated, sealed, nil},
		{"previous version's plaintext, by a sealing codec", rotated, plain, nil},
		{"plaintext by the zero codec", lead.Codec{}, plain, nil},
		{"sealed, k1 dropped", k2only, sealed, func(err error) bool { var u *seal.UnknownKeyError; return errors.As(err, &u) && u.ID == "k1" }},
		{"sealed, by the zero codec", lead.Codec{}, sealed, func(err error) bool { var u *seal.UnknownKeyError; return errors.As(err, &u) }},
		{"sealed fields of another lead", k1, swapped, func(err error) bool { return errors.Is(err, seal.ErrOpen) }},
		{"not JSON", k1, []byte(`{"id":`), func(err error) bool { return err != nil }},
		{"a newer version", k1, []byte(`{"v":3,"id":"ld_1","site":"shop"}`), func(err error) bool { return err != nil }},
		{"clear fields beside sealed ones", k1, bytes.Replace(sealed, []byte(`"v":2,`), []byte(`"v":2,"lead":{"title":"x"},`), 1),
			func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.codec.Decode(tt.b)
			if tt.check != nil {
				if !tt.check(err) {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Lead != p.Lead || got.ID != p.ID || got.IdempotencyKey != p.IdempotencyKey || got.Sum != p.Sum {
				t.Fatalf("Decode = %+v", got)
			}
		})
	}
}

// TestReseal: rekey's step seals plaintext and older keys' payloads under
// the first key and leaves those already under it untouched.
func TestReseal(t *testing.T) {
	t.Parallel()
	k1 := lead.NewCodec(keyring(t, keyText("k1", 1)))
	rotated := lead.NewCodec(keyring(t, keyText("k2", 2)+","+keyText("k1", 1)))
	p := lead.NewPayload("shop", "k", person, time.Now())
	underK1, _ := k1.Encode(p)
	underK2, _ := rotated.Encode(p)
	plain, _ := lead.Codec{}.Encode(p)
	for name, b := range map[string][]byte{"under k1": underK1, "plaintext": plain, "under k2": underK2} {
		out, changed, err := rotated.Reseal(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if changed != (name != "under k2") {
			t.Errorf("%s: changed %v", name, changed)
		}
		env, _ := lead.ReadEnvelope(out)
		got, err := lead.NewCodec(keyring(t, keyText("k2", 2))).Decode(out)
		if env.Key != "k2" || err != nil || got.Lead != p.Lead {
			t.Errorf("%s: resealed under %q: %v", name, env.Key, err)
		}
	}
	if _, _, err := (lead.Codec{}).Reseal(underK1); err == nil || !strings.Contains(err.Error(), "data key") {
		t.Errorf("Reseal without a key: %v", err)
	}
}

// BenchmarkCodec is encoding a lead into a task and decoding it back,
// plaintext against sealed: sealing's cost per lead (README, privacy).
func BenchmarkCodec(b *testing.B) {
	l := person
	l.Description = strings.Repeat("I would like a quote for 40 chairs. ", 10)
	p := lead.NewPayload("shop", "order-42", l, time.Now())
	for _, c := range bothCodecs(b) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				t, err := c.codec.NewTask(p)
				if err != nil {
					b.Fatal(err)
				}
				n = len(t.Payload())
				if _, err := c.codec.Decode(t.Payload()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "payload-B")
		})
	}
}

// TestCodecTraceparent: a task's traceparent travels in clear beside the
// id, sealed or not, and a payload without one (tracing off, or an
// earlier version's task) decodes as before.
func TestCodecTraceparent(t *testing.T) {
	t.Parallel()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	p := lead.NewPayload("shop", "order-7", person, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	old := []byte(`{"id":"` + p.ID + `","site":"shop","idempotency_key":"order-7","received_at":"2026-03-01T12:00:00Z","lead":{"title":"Ann"}}`)
	for _, tc := range bothCodecs(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			traced := p
			traced.Trace = tp
			b, err := tc.codec.Encode(traced)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(`"traceparent":"`+tp+`"`)) {
				t.Errorf("payload lacks its traceparent: %s", b)
			}
			if got, err := tc.codec.Decode(b); err != nil || got != traced {
				t.Errorf("Decode = %+v, %v; want %+v", got, err, traced)
			}
			b, err = tc.codec.Encode(p)
			if err != nil || bytes.Contains(b, []byte("traceparent")) {
				t.Errorf("untraced payload names a traceparent (%v): %s", err, b)
			}
			if got, err := tc.codec.Decode(old); err != nil || got.Trace != "" || got.Lead.Title != "Ann" {
				t.Errorf("an earlier version's task: %+v, %v", got, err)
			}
		})
	}
}
