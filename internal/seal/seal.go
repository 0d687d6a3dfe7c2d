// Package seal keeps a lead's personal data encrypted at rest. A Keyring
// holds AES-256-GCM keys, each with an id: the first one seals, every one
// opens, so a new key goes first, the old ones stay until nothing sealed
// under them is left (`leadrelay ctl rekey`), and nothing stops meanwhile.
//
// A sealed value is a random 12-byte nonce followed by the ciphertext and
// its 16-byte tag; the key id travels beside it, in clear, and the
// caller's associated data (the lead id) is bound to it, so a sealed value
// moved under another lead does not open.
//
//	keys, err := seal.Parse("k2:BASE64…,k1:BASE64…") // LEADRELAY_DATA_KEYS
//	kid, box, err := keys.Seal([]byte(leadID), fields)
//	fields, err = keys.Open(kid, []byte(leadID), box)
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a data key: AES-256.
const KeySize = 32

// ErrOpen is wrapped by Open's error for a value that does not open under
// its key: altered, truncated, sealed for other associated data, or under
// another key of the same id.
var ErrOpen = errors.New("seal: value does not open: altered, or sealed under another key or for another lead")

// UnknownKeyError is Open's error for a value sealed under a key id the
// Keyring does not hold (a nil Keyring holds none).
type UnknownKeyError struct {
	// ID is the key id the value names.
	ID string
}

// Error names the missing key id, never key material.
func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("seal: sealed under key %q, which is not among the configured data keys", e.ID)
}

// Keyring is an ordered set of data keys. It is safe for concurrent use
// and never changes once built. A nil *Keyring holds no key: Seal fails,
// Open reports an UnknownKeyError.
type Keyring struct {
	ids    []string
	aead   map[string]cipher.AEAD
	oldest []byte // the last key's material, for Derive
}

// Parse reads a keyring from its text: comma-separated "id:key" entries,
// key being 32 bytes in standard or URL-safe base64 (padded or not), id
// 1-32 letters, digits, '.', '-' or '_'. The first entry seals. Errors
// name the entry and its id, never the key.
func Parse(text string) (*Keyring, error) {
	k := &Keyring{aead: map[string]cipher.AEAD{}}
	entries := strings.Split(text, ",")
	for i, e := range entries {
		e = strings.TrimSpace(e)
		id, b64, ok := strings.Cut(e, ":")
		id = strings.TrimSpace(id)
		switch {
		case e == "" && len(entries) > 1:
			return nil, fmt.Errorf("entry %d is empty", i+1)
		case !ok || id == "":
			return nil, fmt.Errorf("entry %d is not id:base64-key", i+1)
		case !validID(id):
			return nil, fmt.Errorf("entry %d: key id %q may hold only 1 to 32 letters, digits, '.', '-' and '_'", i+1, id)
		case k.aead[id] != nil:
			return nil, fmt.Errorf("entry %d: key id %q is given twice", i+1, id)
		}
		raw, err := decodeKey(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("entry %d (key %q): %w", i+1, id, err)
		}
		if err := k.add(id, raw); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Generate returns a keyring of one fresh random key named id: the
// embedded demo's, which dies with its in-memory Redis.
func Generate(id string) (*Keyring, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("seal: generate a key: %w", err)
	}
	k := &Keyring{aead: map[string]cipher.AEAD{}}
	if !validID(id) {
		return nil, fmt.Errorf("seal: key id %q is not valid", id)
	}
	return k, k.add(id, raw)
}

// NewKeyText returns a fresh random key as LEADRELAY_DATA_KEYS takes it:
// "id:" and 32 random bytes in base64.
func NewKeyText(id string) (string, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("seal: generate a key: %w", err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(raw), nil
}

func (k *Keyring) add(id string, raw []byte) error {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return fmt.Errorf("seal: key %q: %w", id, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("seal: key %q: %w", id, err)
	}
	k.ids = append(k.ids, id)
	k.aead[id] = aead
	k.oldest = raw
	return nil
}

// Derive returns a 32-byte key for label, derived (HMAC-SHA256) from the
// keyring's last key: the oldest, which a rotation drops last, so the
// derived key changes only when that key is dropped. Nil for a nil
// Keyring.
func (k *Keyring) Derive(label string) []byte {
	if k == nil {
		return nil
	}
	m := hmac.New(sha256.New, k.oldest)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// ParseKey reads one key of KeySize bytes in standard or URL-safe base64
// (padded or not), as Parse reads each entry's; its errors never quote it.
func ParseKey(s string) ([]byte, error) { return decodeKey(strings.TrimSpace(s)) }

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil {
			if len(raw) != KeySize {
				return nil, fmt.Errorf("the key is %d bytes; want %d (head -c 32 /dev/urandom | base64)", len(raw), KeySize)
			}
			return raw, nil
		}
	}
	return nil, errors.New("the key is not base64")
}

func validID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Primary is the id of the key that seals; "" for a nil Keyring.
func (k *Keyring) Primary() string {
	if k == nil {
		return ""
	}
	return k.ids[0]
}

// IDs are the key ids, the sealing one first.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	return append([]string(nil), k.ids...)
}

// Has reports whether the keyring holds key id.
func (k *Keyring) Has(id string) bool { return k != nil && k.aead[id] != nil }

// Seal encrypts plaintext under the primary key, bound to ad, and returns
// the key's id and the sealed value (nonce, ciphertext, tag).
func (k *Keyring) Seal(ad, plaintext []byte) (string, []byte, error) {
	if k == nil {
		return "", nil, errors.New("seal: no data key to seal with")
	}
	id := k.ids[0]
	aead := k.aead[id]
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return "", nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return id, aead.Seal(out, out, plaintext, ad), nil
}

// Open decrypts a value Seal returned under key id for the same ad. It
// returns an *UnknownKeyError for a key it does not hold and an error
// wrapping ErrOpen for anything else that does not open.
func (k *Keyring) Open(id string, ad, sealed []byte) ([]byte, error) {
	if !k.Has(id) {
		return nil, &UnknownKeyError{ID: id}
	}
	aead := k.aead[id]
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w (%d bytes is too short)", ErrOpen, len(sealed))
	}
	n := aead.NonceSize()
	out, err := aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
