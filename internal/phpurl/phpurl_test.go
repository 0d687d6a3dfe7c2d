package phpurl

import "testing"

func TestDecode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain":                 "plain",
		"a+b":                   "a b",
		"vladislav%40isaler.ru": "vladislav@isaler.ru",
		"%2B7900":               "+7900",
		"100%":                  "100%",
		"%zz%4":                 "%zz%4",
		"%D0%90%d0%b1":          "Аб",
		"%252B":                 "%2B",
	} {
		if got := Decode(in); got != want {
			t.Errorf("Decode(%q) = %q, want %q", in, got, want)
		}
	}
}
