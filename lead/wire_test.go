package lead

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestReadWireAsEncodingJSON: the payload decoder reads what encoding/json
// read, for the payloads earlier versions and hand-made tasks may hold.
func TestReadWireAsEncodingJSON(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, payload string }{
		{"previous version's plaintext", `{"id":"ld_1","site":"shop","idempotency_key":"k","received_at":"2026-03-01T12:00:00Z","lead":{"title":"Ann","email":"ann@example.org"}}`},
		{"sealed", `{"v":2,"id":"ld_1","site":"shop","received_at":"2026-03-01T12:00:00.123456789Z","sum":"s","key":"k1","sealed":"AAECAwQ=","traceparent":"t"}`},
		{"unknown member", `{"id":"ld_1","site":"shop","idempotency_key":"k","received_at":"2026-03-01T12:00:00Z","lead":{"title":"Ann","fax":"1"},"extra":[1,{"a":null}]}`},
		{"names in another case", `{"ID":"ld_1","Site":"shop","Idempotency_Key":"k","received_at":"2026-03-01T12:00:00Z","LEAD":{"Title":"Ann"}}`},
		{"invalid UTF-8", "{\"id\":\"ld_1\",\"site\":\"shop\",\"idempotency_key\":\"k\",\"received_at\":\"2026-03-01T12:00:00Z\",\"lead\":{\"title\":\"A\xffnn\"}}"},
		{"duplicate member", `{"id":"ld_1","site":"shop","site":"other","idempotency_key":"k","received_at":"2026-03-01T12:00:00Z","lead":{"title":"Ann"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var want wire
			if err := json.Unmarshal([]byte(tc.payload), &want); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			got, err := readWire([]byte(tc.payload))
			if err != nil {
				t.Fatalf("readWire: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("readWire = %+v\nencoding/json = %+v", got, want)
			}
		})
	}
}
