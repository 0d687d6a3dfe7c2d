package intake

import (
	"crypto/sha256"
	"crypto/subtle"
	"sort"

	"go.uber.org/zap"
)

// keyring finds the site a key belongs to. It compares SHA-256 digests, so
// every comparison has the same length, and it compares against every site
// with no early exit: the time taken says nothing about which key, or how
// much of one, matched.
type keyring struct {
	names []string
	sums  [][sha256.Size]byte
}

// newKeyring holds every key of every site: one, or two while a key is
// rotated.
func newKeyring(sites map[string][]string, log *zap.Logger) keyring {
	var k keyring
	names := make([]string, 0, len(sites))
	for name := range sites {
		if name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	owner := map[[sha256.Size]byte]string{}
	for _, name := range names {
		for _, key := range sites[name] {
			if key == "" {
				continue
			}
			sum := sha256.Sum256([]byte(key))
			if other, dup := owner[sum]; dup {
				// Never log the key itself.
				log.Error("two sites share a key; the later name wins", zap.String("site", name), zap.String("other_site", other))
			}
			owner[sum] = name
			k.names = append(k.names, name)
			k.sums = append(k.sums, sum)
		}
	}
	return k
}

// site returns the site whose key is key.
func (k keyring) site(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(key))
	match := -1
	for i := range k.sums {
		eq := subtle.ConstantTimeCompare(sum[:], k.sums[i][:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return "", false
	}
	return k.names[match], true
}
