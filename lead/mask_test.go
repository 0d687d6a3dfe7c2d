package lead

import (
	"strings"
	"testing"
	"time"

	"leadrelay/internal/seal"
)

func TestMask(t *testing.T) {
	t.Parallel()
	email, phone, name := MaskEmail, MaskPhone, MaskName
	tests := []struct {
		mask     func(string) string
		in, want string
	}{
		{email, "", ""},
		{email, "ann@example.org", "a***@example.org"},
		{email, "a@example.org", "a***@example.org"},
		{email, "ёлка@пример.рф", "ё***@пример.рф"},
		{email, "odd@name@example.org", "o***@example.org"},
		{email, "no-at-sign", "***"},
		{email, "@example.org", "***"},
		{email, "ann@", "***"},
		{phone, "", ""},
		{phone, "+7 900 123-45-67", "***567"},
		{phone, "89001234567", "***567"},
		{phone, "(555) 0100 ext. 12", "***012"},
		{phone, "12345", "***"},
		{phone, "call me", "***"},
		{name, "", ""},
		{name, "Order", "O***"},
		{name, " Андреев Владислав", "А***"},
	}
	for _, tt := range tests {
		if got := tt.mask(tt.in); got != tt.want {
			t.Errorf("mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDescribe: operators see a lead's site and id, its title and contact masked,
// sealed or plaintext, and a payload that does not open says why; never
// the full e-mail, phone or any other field.
func TestDescribe(t *testing.T) {
	t.Parallel()
	k1, err1 := seal.Generate("k1")
	k2, err2 := seal.Generate("k2")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	l := Lead{Title: "Order", Email: "ann@example.org", Phone: "+7 900 123-45-67", Description: "call after six", Company: "Acme"}
	p := NewPayload("shop", "key-1", l, time.Now())
	sealed, err := NewCodec(k2).Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Codec{}.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	full := "site=shop lead=" + p.ID + ` title=O*** email=a***@example.org phone=***567`
	tests := []struct {
		name  string
		codec Codec
		in    []byte
		want  string
	}{
		{"sealed, key held", NewCodec(k2), sealed, full},
		{"plaintext", NewCodec(k1), plain, full},
		{"sealed under a key not held", NewCodec(k1), sealed, "site=shop lead=" + p.ID + " sealed under unknown key k2"},
		{"not a payload", NewCodec(k1), []byte("junk"), "unreadable lead payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.codec.Describe(tt.in)
			if got != tt.want {
				t.Errorf("Describe = %q, want %q", got, tt.want)
			}
			for _, secret := range []string{l.Email, l.Phone, "1234567", l.Description, l.Company, p.IdempotencyKey} {
				if strings.Contains(got, secret) {
					t.Errorf("Describe shows %q: %q", secret, got)
				}
			}
		})
	}
}
