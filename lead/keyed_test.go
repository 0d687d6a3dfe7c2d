package lead

import (
	"bytes"
	"strings"
	"testing"
)

// TestDigestKeyed (issue 18): the Sum a payload and its delivered marker
// keep is an HMAC under the relay's id key. A one-field lead's v1 digest
// is a SHA-256 anyone can compute from a guess; its v2 digest is neither
// that nor any part of it, and another key gives another one, so nobody
// without the key can test a guess against what Redis keeps.
func TestDigestKeyed(t *testing.T) {
	t.Parallel()
	k, other := idKey(t, 1), idKey(t, 2)
	for _, tc := range digestGolden {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := k.Digest(tc.lead)
			if d.Version() != DigestV2 || !strings.HasPrefix(string(d), "v2:") || len(d) != 3+64 {
				t.Fatalf("keyed digest %q: want v2:<64 hex digits>", d)
			}
			if strings.Contains(string(d), string(tc.sum[:16])) {
				t.Errorf("keyed digest %q holds the plain digest's first 64 bits", d)
			}
			if other.Digest(tc.lead) == d {
				t.Error("two keys give one digest: it is not keyed")
			}
			if k.Digest(tc.lead) != d {
				t.Error("the keyed digest is not stable")
			}
			if (IDKey{}).Digest(tc.lead) != tc.sum {
				t.Error("the zero key must give the plain v1 digest")
			}
		})
	}
}

// TestSameContentAcrossVersions: a delivered marker or task stored before
// digests were keyed (v1, cut to 16 hex digits in a compact marker) still
// tells a repeat from other content under the same key once the lead's
// Sum is keyed; what cannot be told (a keyed record met by a plain
// digest, no lead) counts as the same, as a marker recording no digest
// did, so no second add follows.
func TestSameContentAcrossVersions(t *testing.T) {
	t.Parallel()
	k := idKey(t, 1)
	ann, bob := Lead{Phone: "+7 900 123-45-67"}, Lead{Phone: "+7 900 123-45-68"}
	v1, v2 := string(ann.Digest()), string(k.Digest(ann))
	tests := []struct {
		name     string
		rec, sum string
		l        *Lead
		want     bool
	}{
		{"v1 compact marker, v2 lead, same", v1[:16], v2, &ann, true},
		{"v1 compact marker, v2 lead, other", v1[:16], string(k.Digest(bob)), &bob, false},
		{"v1 task, v2 lead, same", v1, v2, &ann, true},
		{"v1 task, v2 lead, other", v1, string(k.Digest(bob)), &bob, false},
		{"v2 compact marker, v2 lead, same", v2[:16], v2, &ann, true},
		{"v2 compact marker, v2 lead, other", v2[:16], string(k.Digest(bob)), &bob, false},
		{"v2 marker, v1 lead (old intake): cannot tell", v2[:16], string(bob.Digest()), &bob, true},
		{"v1 marker, v2 lead, no lead: cannot tell", v1[:16], string(k.Digest(bob)), nil, true},
		{"marker of the version before sums", "", v2, &ann, true},
		{"v1 both", v1[:16], v1, &ann, true},
		{"v1 both, other", v1[:16], string(bob.Digest()), &bob, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := SameContent(tc.rec, tc.sum, tc.l); got != tc.want {
				t.Errorf("SameContent(%q, %q) = %v, want %v", tc.rec, tc.sum, got, tc.want)
			}
		})
	}
}

// TestSentSumKeyed: the content hash as sent, which a delivered lead's
// envelope keeps for the CRM audit, is keyed; keying it twice changes
// nothing, so the audit can key both sides whatever they hold.
func TestSentSumKeyed(t *testing.T) {
	t.Parallel()
	k, other := idKey(t, 1), idKey(t, 2)
	plain := "0123456789abcdef"
	s := k.SentSum(plain)
	if !strings.HasPrefix(s, SentPrefix) || strings.Contains(s, plain) || s == other.SentSum(plain) {
		t.Fatalf("SentSum(%q) = %q: not keyed", plain, s)
	}
	if k.SentSum(s) != s || k.SentSum("") != "" || (IDKey{}).SentSum(plain) != plain {
		t.Error("SentSum must leave keyed, empty and unkeyable hashes as they are")
	}
}

func idKey(t *testing.T, b byte) IDKey {
	t.Helper()
	k, err := NewIDKey(bytes.Repeat([]byte{b}, IDKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
