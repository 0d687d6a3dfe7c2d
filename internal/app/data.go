package app

import (
	"errors"

	"go.uber.org/zap"

	"leadrelay/config"
	"leadrelay/internal/seal"
	"leadrelay/lead"
)

// ErrNoDataKeys is DataCodec's refusal to keep real leads in Redis in
// plaintext by default.
var ErrNoDataKeys = errors.New("LEADRELAY_DATA_KEYS (or LEADRELAY_DATA_KEYS_FILE) is required: the data keys that seal every lead's personal data in Redis, \"id:base64-of-32-bytes\" (create one with: echo k1:$(head -c 32 /dev/urandom | base64)); set LEADRELAY_DATA_UNENCRYPTED=true to keep leads in plaintext on purpose")

// DataCodec is the lead.Codec of a process that writes leads: it seals
// under the configured data keys. Without keys it refuses, unless the
// operator opted out (LEADRELAY_DATA_UNENCRYPTED, warned about) or the
// process runs on the embedded in-memory Redis (the demo), which gets a
// fresh key that dies with it.
func DataCodec(cfg config.Config, embedded bool, log *zap.Logger) (lead.Codec, error) {
	switch {
	case cfg.Data.Keys != nil:
		return lead.NewCodec(cfg.Data.Keys), nil
	case cfg.Data.Unencrypted:
		log.Warn("LEADRELAY_DATA_UNENCRYPTED: leads' personal data is kept in Redis (and its RDB, AOF and backups) in plaintext")
		return lead.Codec{}, nil
	case embedded:
		keys, err := seal.Generate("demo")
		if err != nil {
			return lead.Codec{}, err
		}
		return lead.NewCodec(keys), nil
	}
	return lead.Codec{}, ErrNoDataKeys
}

// idKeyLabel is what the id key is derived for from the data keys.
const idKeyLabel = "leadrelay id key v1"

// IDKey is the key that names keyless leads and keys the content digests
// kept in Redis (lead.IDKey): LEADRELAY_ID_KEY, else one derived from the
// oldest data key (every process of the relay derives the same), else,
// without data keys, none, warned about outside the embedded demo: each
// intake then names keyless leads under a random key of its own (a double
// submit that reaches two intakes is two leads), and digests stay plain,
// as a key of one process would make a site's retry through another
// intake a reused key.
func IDKey(cfg config.Config, codec lead.Codec, embedded bool, log *zap.Logger) (lead.IDKey, error) {
	raw := cfg.Data.IDKey
	if raw == nil {
		raw = codec.DeriveKey(idKeyLabel)
	}
	if raw != nil {
		return lead.NewIDKey(raw)
	}
	if !embedded {
		log.Warn("no LEADRELAY_ID_KEY and no data keys: keyless leads are named under a key of this process's own, so a double submit that reaches two intakes is two leads, and content digests in Redis are not keyed; set LEADRELAY_ID_KEY")
	}
	return lead.IDKey{}, nil
}
