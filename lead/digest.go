package lead

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
)

// DigestVersion numbers the ways a lead's content is digested. A lead's id
// (when its site sends no key) and the Sum in its payload and delivered
// marker come from its digest, so a way, once used, never changes: a new
// one is a new version.
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
)

// CurrentDigest is the version Lead.Digest computes.
const CurrentDigest = DigestV1

// Digest is a lead's content digest in text form; the text carries its
// version (see Version). The zero value is no digest.
type Digest string

// Digest returns the digest of the lead's content in the CurrentDigest
// version. The producer uses it to tell a repeat from a new lead, and as
// the idempotency key when a site sends none.
func (l Lead) Digest() Digest {
	h := sha256.New()
	writeDigestInput(h, fields[:], &l)
	return Digest(hex.EncodeToString(h.Sum(nil)))
}

// writeDigestInput writes what digest v1 hashes: the rows digest v1 knew
// always, any other row only when its value is set, so that adding a field
// leaves every lead without it as it was.
func writeDigestInput(h hash.Hash, rows []Field, l *Lead) {
	for _, f := range rows {
		v := *f.Of(l)
		if v == "" && !f.digestV1 {
			continue
		}
		h.Write([]byte(f.Name))
		h.Write([]byte{0})
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
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
