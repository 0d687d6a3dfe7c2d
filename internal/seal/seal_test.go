package seal_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"leadrelay/internal/seal"
)

func key(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, seal.KeySize))
}

func TestParse(t *testing.T) {
	t.Parallel()
	raw := bytes.Repeat([]byte{7}, seal.KeySize)
	tests := []struct {
		name, text string
		ids        []string
		err        string
	}{
		{"one key", "k1:" + key(1), []string{"k1"}, ""},
		{"rotation: the first seals", "k2:" + key(2) + ", k1:" + key(1), []string{"k2", "k1"}, ""},
		{"url-safe unpadded", "k1:" + base64.RawURLEncoding.EncodeToString(raw), []string{"k1"}, ""},
		{"no id", ":" + key(1), nil, "entry 1 is not id:base64-key"},
		{"no colon", key(1), nil, "entry 1 is not id:base64-key"},
		{"bad id", "k 1:" + key(1), nil, "key id"},
		{"twice", "k1:" + key(1) + ",k1:" + key(2), nil, `key id "k1" is given twice`},
		{"short key", "k1:" + base64.StdEncoding.EncodeToString(raw[:16]), nil, "16 bytes; want 32"},
		{"not base64", "k1:!!!!", nil, "not base64"},
		{"empty entry", "k1:" + key(1) + ",", nil, "entry 2 is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := seal.Parse(tt.text)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse: %v, want an error with %q", err, tt.err)
				}
				if strings.Contains(err.Error(), key(1)) || strings.Contains(err.Error(), key(2)) {
					t.Fatalf("the error quotes key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(k.IDs(), ","); got != strings.Join(tt.ids, ",") || k.Primary() != tt.ids[0] {
				t.Fatalf("ids %s primary %s, want %v", got, k.Primary(), tt.ids)
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	old, _ := seal.Parse("k1:" + key(1))
	rotated, _ := seal.Parse("k2:" + key(2) + ",k1:" + key(1))
	onlyNew, _ := seal.Parse("k2:" + key(2))
	impostor, _ := seal.Parse("k1:" + key(9)) // same id, other key
	ad, msg := []byte("ld_1"), []byte(`{"email":"ann@example.com"}`)

	kid, box, err := old.Seal(ad, msg)
	if err != nil || kid != "k1" {
		t.Fatalf("Seal: %s %v", kid, err)
	}
	if bytes.Contains(box, msg) || bytes.Contains(box, []byte("ann@example.com")) {
		t.Fatal("the sealed value holds the plaintext")
	}
	if _, box2, _ := old.Seal(ad, msg); bytes.Equal(box, box2) {
		t.Fatal("two seals of one value are equal: the nonce repeats")
	}
	tampered := append([]byte(nil), box...)
	tampered[len(tampered)-1] ^= 1
	// unknownKey is a check of its own per case: the cases run in
	// parallel, and a target shared by errors.As was written by two at once.
	unknownKey := func(id string) func(error) bool {
		return func(err error) bool {
			var unknown *seal.UnknownKeyError
			return errors.As(err, &unknown) && (id == "" || unknown.ID == id)
		}
	}
	tests := []struct {
		name string
		ring *seal.Keyring
		kid  string
		ad   []byte
		box  []byte
		want func(error) bool
	}{
		{"same keyring", old, kid, ad, box, func(err error) bool { return err == nil }},
		{"after rotation, the old key still opens", rotated, kid, ad, box, func(err error) bool { return err == nil }},
		{"the old key dropped", onlyNew, kid, ad, box, unknownKey("k1")},
		{"no keyring", nil, kid, ad, box, unknownKey("")},
		{"another lead's id", old, kid, []byte("ld_2"), box, func(err error) bool { return errors.Is(err, seal.ErrOpen) }},
		{"tampered", old, kid, ad, tampered, func(err error) bool { return errors.Is(err, seal.ErrOpen) }},
		{"truncated", old, kid, ad, box[:10], func(err error) bool { return errors.Is(err, seal.ErrOpen) }},
		{"another key of the same id", impostor, kid, ad, box, func(err error) bool { return errors.Is(err, seal.ErrOpen) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.ring.Open(tt.kid, tt.ad, tt.box)
			if !tt.want(err) {
				t.Fatalf("Open: %v", err)
			}
			if err == nil && !bytes.Equal(got, msg) {
				t.Fatalf("Open = %q", got)
			}
		})
	}
	if kid, _, _ := rotated.Seal(ad, msg); kid != "k2" {
		t.Fatalf("a rotated keyring seals under %s, want k2", kid)
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	a, err := seal.Generate("demo")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := seal.Generate("demo")
	_, box, _ := a.Seal(nil, []byte("x"))
	if _, err := b.Open("demo", nil, box); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("two generated keys are alike: %v", err)
	}
	text, _ := seal.NewKeyText("k3")
	if k, err := seal.Parse(text); err != nil || k.Primary() != "k3" {
		t.Fatalf("NewKeyText %v", err)
	}
}
