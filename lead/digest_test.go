package lead

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

// digestGolden holds digests, implicit keys and lead ids computed by
// Lead.Hash before digests had versions (main at c9450cf). Leads already
// in Redis carry these ids and sums, so v1 must reproduce them exactly.
var digestGolden = []struct {
	name string
	lead Lead
	sum  Digest
	id   string // NewPayload("shop", "", lead, …).ID
}{
	{"empty", Lead{},
		"4aff9627e7fb7348d158f525e247e381777f5126b2b0273c5a47b2486c90d6ab", "ld_f1fb59847dfb2043aa1d734f"},
	{"title", Lead{Title: "Ann"},
		"7483786b7c77d5e3b13784e6463a1c58725c702287cd0e018a132f3fd6a323fe", "ld_5e4af4717719dc05e3b337ad"},
	{"phone", Lead{Phone: "+7 900 123-45-67"},
		"104867b7d8761b93db545f40f978e16e02b63323a0c174ecd9a1275c009f7f59", "ld_273776a17e3db7b3a48b8a93"},
	{"every field", Lead{Title: "Андреев Владислав", Email: "vladislav@god.ry", Phone: "+79001234567", Company: "SalesMan",
		Description: "The best crm practice\nline two\ttab", IP: "127.0.0.1", Country: "Ruusia", City: "Perm", Path: "Test Path",
		Partner: "p.example", User: "u@x", UTMSource: "google", UTMMedium: "cpc", UTMCampaign: "spring", UTMTerm: "crm", UTMContent: "ad1"},
		"fd3edf7b4d1ad9aba17df8f3cbb468d53667d7543f97d6dfab5ad01afe4fc2c2", "ld_bd91c0d90ddf66839ac6c231"},
	{"control byte", Lead{Email: "ann@example.com", Description: "a\x00b"},
		"5457293293d00669eda3c91413c552418419d05ffe73c218857707b694e644ca", "ld_6d950db8fa4fb59dc907f452"},
}

func TestDigestV1Golden(t *testing.T) {
	t.Parallel()
	for _, tc := range digestGolden {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.lead.Digest(); got != tc.sum {
				t.Errorf("Digest() = %s, want %s", got, tc.sum)
			}
			p := NewPayload("shop", "", tc.lead, time.Unix(0, 0))
			if p.ID != tc.id || p.IdempotencyKey != "sha256:"+string(tc.sum) || p.Sum != string(tc.sum) {
				t.Errorf("payload id %s key %s sum %s; want %s sha256:%s %s", p.ID, p.IdempotencyKey, p.Sum, tc.id, tc.sum, tc.sum)
			}
			if v := tc.sum.Version(); v != DigestV1 {
				t.Errorf("Version() = %d, want 1", v)
			}
		})
	}
}

// TestDigestNewFieldEmpty adds a row to a copy of the table, as a new
// field would be added: a lead that leaves it empty keeps its v1 digest,
// one that sets it gets another.
func TestDigestNewFieldEmpty(t *testing.T) {
	t.Parallel()
	var site string
	rows := append(Fields()[:len(Fields()):len(Fields())], Field{Name: "site", MaxLen: 255, CRM: same("site"),
		value: func(*Lead) *string { return &site }})
	sum := func(l Lead) Digest {
		sum := sha256.Sum256(appendDigestInput(nil, rows, &l))
		return Digest(hex.EncodeToString(sum[:]))
	}
	for _, tc := range digestGolden {
		site = ""
		if got := sum(tc.lead); got != tc.sum {
			t.Errorf("%s: with an empty new field the digest is %s, want %s", tc.name, got, tc.sum)
		}
		site = "oldshop"
		if got := sum(tc.lead); got == tc.sum {
			t.Errorf("%s: setting the new field left the digest as it was", tc.name)
		}
	}
}

func TestDigestVersion(t *testing.T) {
	t.Parallel()
	v1 := digestGolden[1].sum
	tests := []struct {
		d    Digest
		want DigestVersion
		key  string
	}{
		{v1, DigestV1, "sha256:" + string(v1)},
		{"v2:" + v1, 2, "v2:" + string(v1)},
		{"v12:ab", 12, "v12:ab"},
		{"", 0, ""},
		{v1[:63], 0, string(v1[:63])},
		{"v1:" + v1, 0, "v1:" + string(v1)}, // v1 never has a mark
		{"v02:ab", 0, "v02:ab"},
		{"v2:", 0, "v2:"},
		{"v2:AB", 0, "v2:AB"},
		{"x2:ab", 0, "x2:ab"},
		{"sha256:" + v1, 0, "sha256:" + string(v1)},
	}
	for _, tc := range tests {
		if got := tc.d.Version(); got != tc.want {
			t.Errorf("Digest(%q).Version() = %d, want %d", tc.d, got, tc.want)
		}
		if got := tc.d.Key(); got != tc.key {
			t.Errorf("Digest(%q).Key() = %q, want %q", tc.d, got, tc.key)
		}
	}
}

// digestV2Golden are the keyed (v2) digests of digestGolden's leads under
// the key "0123456789abcdef0123456789abcdef", as main computed them at
// 400079a: payloads and markers in Redis carry them, so a change to how
// the digest's input is written must keep them.
var digestV2Golden = map[string]Digest{
	"empty":        "v2:683856e529b465fe35603341c30cbb2c8042e4dbe968a37c29327d455fa4f85f",
	"title":        "v2:038315b413b74e78a0fd7c7e0f03be3f912063126e831c27934a3ac8a19850ba",
	"phone":        "v2:e5f63b69d161a8a0bab4bf9c5e1fbd029f93e9cfc810c3b101eb1d5097e8d086",
	"every field":  "v2:12e930a931cdc8cb827c0bc14e9c59818b872a976e0713bc1d35094a49e312ff",
	"control byte": "v2:21d143efed2b4c05a7fde4c5a18f3cc9682ba684b42c1b3b2fa04bc06f4526f7",
}

func TestDigestV2Golden(t *testing.T) {
	t.Parallel()
	k, err := NewIDKey([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range digestGolden {
		if got, want := k.Digest(tc.lead), digestV2Golden[tc.name]; got != want {
			t.Errorf("%s: keyed digest %s, want %s", tc.name, got, want)
		}
	}
}

// BenchmarkDigest is a lead's content digest, plain (v1) and keyed (v2):
// intake computes one for every lead it accepts.
func BenchmarkDigest(b *testing.B) {
	l := digestGolden[3].lead // every field
	k, err := NewIDKey([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("v1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = l.Digest()
		}
	})
	b.Run("keyed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = k.Digest(l)
		}
	})
}
