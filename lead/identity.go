package lead

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// KeylessPrefix starts the identity of every lead sent without an
// idempotency key: "keyless:", an IDKey's name of its content, "@" and the
// time its keyless window opened. No site may send a key that starts with
// it (ReservedKey), so a site's own keys and the relay's identities are
// two namespaces, and lead ids derived from them never meet.
const KeylessPrefix = "keyless:"

// LegacyKeylessPrefix started the identity of a keyless lead before ids
// were keyed: "sha256:" and the lead's plain content digest (Digest.Key).
// Anyone could compute it from the lead's content, and so its id; it is
// reserved as well, and the producer still recognises a lead stored under
// it during an upgrade.
const LegacyKeylessPrefix = "sha256:"

// ReservedKey reports whether key lies in the relay's own namespace
// (KeylessPrefix, LegacyKeylessPrefix), which a site may not use.
func ReservedKey(key string) bool {
	return strings.HasPrefix(key, KeylessPrefix) || strings.HasPrefix(key, LegacyKeylessPrefix)
}

// IDKeySize is the size of an IDKey.
const IDKeySize = 32

// IDKey keys the names of keyless leads (LEADRELAY_ID_KEY): with it, the
// identity and id of a lead sent without an idempotency key are an
// HMAC-SHA256 of its content, which nobody without the key can compute
// from the content, so an id reveals nothing and cannot be aimed at. Every
// intake of a relay must hold the same key. The zero value names nothing:
// build one with NewIDKey or GenerateIDKey.
type IDKey struct {
	k []byte
}

// NewIDKey returns the IDKey of raw, which must be IDKeySize bytes.
func NewIDKey(raw []byte) (IDKey, error) {
	if len(raw) != IDKeySize {
		return IDKey{}, fmt.Errorf("lead: an id key is %d bytes, got %d", IDKeySize, len(raw))
	}
	return IDKey{k: append([]byte(nil), raw...)}, nil
}

// GenerateIDKey returns a fresh random IDKey: one process's own, for a
// relay of one intake (the embedded demo) or a test.
func GenerateIDKey() (IDKey, error) {
	raw := make([]byte, IDKeySize)
	if _, err := rand.Read(raw); err != nil {
		return IDKey{}, fmt.Errorf("lead: generate an id key: %w", err)
	}
	return IDKey{k: raw}, nil
}

// Valid reports whether the key can name leads.
func (k IDKey) Valid() bool { return len(k.k) == IDKeySize }

// Keyless is the keyed name of the content d of a lead of site:
// KeylessPrefix and the hex HMAC-SHA256 of the site and the digest. It
// names the lead's keyless window (rdb.KeylessKey) and starts its
// identity.
func (k IDKey) Keyless(site string, d Digest) string {
	m := hmac.New(sha256.New, k.k)
	m.Write([]byte(site))
	m.Write([]byte{0})
	m.Write([]byte(d))
	return KeylessPrefix + hex.EncodeToString(m.Sum(nil))
}
