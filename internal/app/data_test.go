package app

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"leadrelay/config"
)

// TestDataCodec: a process that writes leads seals them under the
// configured keys, refuses to start without keys (naming the variable)
// unless opted out, and the embedded demo makes a key of its own.
func TestDataCodec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		embedded bool
		sealing  bool
		err      error
	}{
		{"keys", map[string]string{"LEADRELAY_DATA_KEYS": testDataKeys}, false, true, nil},
		{"no keys: refused", nil, false, false, ErrNoDataKeys},
		{"opted out", map[string]string{"LEADRELAY_DATA_UNENCRYPTED": "true"}, false, false, nil},
		{"the embedded demo", nil, true, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			c, err := DataCodec(cfg, tt.embedded, zap.NewNop())
			if !errors.Is(err, tt.err) || c.Sealing() != tt.sealing {
				t.Fatalf("DataCodec: sealing %v, %v; want %v, %v", c.Sealing(), err, tt.sealing, tt.err)
			}
			if err != nil && !strings.Contains(err.Error(), "LEADRELAY_DATA_KEYS") {
				t.Errorf("the refusal does not name the variable: %v", err)
			}
		})
	}
}
