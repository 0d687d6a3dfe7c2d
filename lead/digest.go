package lead

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// DigestVersion numbers the ways a lead's content is digested. A lead's id
// (when its site sends no key) and the Sum in its payload and delivered
// marker come from its digest, so a way, once used, never changes: a new
// one is a new version, and records of every version stay comparable
// (SameContent).
type DigestVersion int

// The digest versions.
const (
	// DigestV1 is SHA-256 over "name\x00value\x00" for each field of the
	// table in order: every field the relay had when digests got versions
	// (the rows with digestV1), empty or not, then each later field that
	// is not empty. Its text is 64 lower-case hex digits with no version
	// mark, as the unversioned digest wrote it, so ids and sums of leads
	// stored before keep matching; later versions write "v<N>:" first.
	DigestV1 DigestVersion = 1
	// DigestV2 is the HMAC-SHA256, under the relay's IDKey, of what v1
	// hashes (IDKey.Digest), written "v2:" and 64 hex digits. It is the
	// Sum a payload and its delivered marker keep in Redis since
	// digests were keyed: without the key nobody can test a guess of a
	// lead's content against it, as they could against v1's plain
	// SHA-256 (issue 18).
	DigestV2 DigestVersion = 2
)

// CurrentDigest is the version Lead.Digest computes: the plain v1, which
// stays the input of keyed names (IDKey.Keyless) and of the legacy
// keyless key; the Sum stored is IDKey.Digest's.
const CurrentDigest = DigestV1

// digestV2Label keeps a v2 digest apart from every other HMAC under the
// same key (IDKey.Keyless, IDKey.SentSum).
const digestV2Label = "leadrelay digest v2"

// Digest returns the keyed digest of l's content (DigestV2): the Sum a
// payload and its delivered marker keep. The zero IDKey keys nothing and
// returns the plain v1 digest (Lead.Digest), for tools and tests that
// build payloads without a relay.
func (k IDKey) Digest(l Lead) Digest {
	if !k.Valid() {
		return l.Digest()
	}
	m := hmac.New(sha256.New, k.k)
	buf := append(make([]byte, 0, digestBufSize), digestV2Label...)
	m.Write(appendDigestInput(append(buf, 0), fields[:], &l))
	return Digest("v2:" + hex.EncodeToString(m.Sum(nil)))
}

// SameContent reports whether rec, a digest recorded of a lead's content
// (whole, or the leading characters a compact delivered marker keeps),
// records the content of lead l, whose digest is sum. Digests of one
// version compare as text. A v1 record (stored before digests were keyed)
// met by a lead digested since is compared with l's plain v1 digest,
// which needs no key: a repeat across the upgrade stays a repeat. What
// cannot be told (no lead, no digest recorded, a keyed record met by a
// digest of another version, which only a process holding the very key
// that wrote it could recompute) counts as the same, as a marker
// recording no digest always did: the callers then stop a second add
// rather than risk one.
func SameContent(rec, sum string, l *Lead) bool {
	if rec == "" || sum == "" {
		return true
	}
	if rv := recordedVersion(rec); rv != Digest(sum).Version() {
		if rv != DigestV1 || l == nil {
			return true
		}
		sum = string(l.Digest())
	}
	if len(rec) < len(sum) {
		return strings.HasPrefix(sum, rec)
	}
	return rec == sum
}

// recordedVersion is the version of a digest as recorded, possibly cut
// short: its "v<N>:" mark, else v1 for hex digits alone, else 0.
func recordedVersion(rec string) DigestVersion {
	if strings.Contains(rec, ":") {
		return Digest(rec).Version()
	}
	if rec != "" && isHex(rec) {
		return DigestV1
	}
	return 0
}

// sentLabel keeps a keyed sent hash apart from every other HMAC under
// the same key.
const sentLabel = "leadrelay sent v2"

// SentPrefix marks a content hash as sent that is keyed (SentSum).
const SentPrefix = "v2:"

// SentSum keys h, the content hash of a lead as the CRM API version sent
// it (crm.API.SentHash), which a delivered lead's envelope keeps for the
// CRM audit: SentPrefix and 16 hex digits of an HMAC-SHA256 of h, so the
// envelope cannot be tested against a guess of the lead without the key,
// while the audit keys what it reads back from the CRM alike and compares.
// A hash keyed already (SentPrefix), an empty one, or the zero IDKey
// leave h as it is.
func (k IDKey) SentSum(h string) string {
	if h == "" || strings.HasPrefix(h, SentPrefix) || !k.Valid() {
		return h
	}
	m := hmac.New(sha256.New, k.k)
	m.Write([]byte(sentLabel))
	m.Write([]byte{0})
	m.Write([]byte(h))
	return SentPrefix + hex.EncodeToString(m.Sum(nil)[:8])
}

// Digest is a lead's content digest in text form; the text carries its
// version (see Version). The zero value is no digest.
type Digest string

// Digest returns the digest of the lead's content in the CurrentDigest
// version. The producer uses it to tell a repeat from a new lead, and as
// the idempotency key when a site sends none.
func (l Lead) Digest() Digest {
	sum := sha256.Sum256(appendDigestInput(make([]byte, 0, digestBufSize), fields[:], &l))
	return Digest(hex.EncodeToString(sum[:]))
}

// digestBufSize holds a typical lead's digest input without growing.
const digestBufSize = 1024

// appendDigestInput appends what digest v1 hashes to buf: the rows digest
// v1 knew always, any other row only when its value is set, so that adding
// a field leaves every lead without it as it was. Each row is its name and
// its value, each ended by a zero byte. Built in one buffer and hashed in
// one call: written field by field into the hash, it cost 69 allocations
// a lead.
func appendDigestInput(buf []byte, rows []Field, l *Lead) []byte {
	for _, f := range rows {
		v := *f.Of(l)
		if v == "" && !f.digestV1 {
			continue
		}
		buf = append(append(buf, f.Name...), 0)
		buf = append(append(buf, v...), 0)
	}
	return buf
}

// Version returns the digest's version, read from its text: "v<N>:" then
// hex digits is version N, 64 hex digits alone are v1. It returns 0 for a
// text that is neither, such as the empty Sum of a payload from before
// sums existed.
func (d Digest) Version() DigestVersion {
	s := string(d)
	if isHex(s) && len(s) == 2*sha256.Size {
		return DigestV1
	}
	mark, sum, ok := strings.Cut(s, ":")
	if !ok || len(mark) < 2 || mark[0] != 'v' || !isHex(sum) || sum == "" {
		return 0
	}
	n, err := strconv.Atoi(mark[1:])
	if err != nil || n <= int(DigestV1) || mark[1] == '0' {
		return 0
	}
	return DigestVersion(n)
}

// Key is the idempotency key a lead without one of its site's is stored
// under: "sha256:" and the digest for v1, as before digests had versions;
// the digest's own text for later versions, whose mark keeps them apart.
func (d Digest) Key() string {
	if d.Version() == DigestV1 {
		return "sha256:" + string(d)
	}
	return string(d)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
