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
	names  []string
	sums   [][sha256.Size]byte
	public []int // 1: a publishable key (Site.PublishableKeys)
}

// newKeyring holds every key of every site: one, or two while a key is
// rotated, of each kind: the secret keys of sites, and the publishable
// ones of publishable (which only submit leads).
func newKeyring(sites, publishable map[string][]string, log *zap.Logger) keyring {
	var k keyring
	k.add(sites, 0, log)
	k.add(publishable, 1, log)
	return k
}

// add holds the keys of sites, of kind public.
func (k *keyring) add(sites map[string][]string, public int, log *zap.Logger) {
	names := make([]string, 0, len(sites))
	for name := range sites {
		if name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	owner := map[[sha256.Size]byte]string{}
	for i, sum := range k.sums {
		owner[sum] = k.names[i]
	}
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
			k.public = append(k.public, public)
		}
	}
}

// site returns the site whose key, of either kind, is key.
func (k keyring) site(key string) (string, bool) {
	site, _, ok := k.lookup(key)
	return site, ok
}

// lookup returns the site whose key is key, and whether that key is a
// publishable one.
func (k keyring) lookup(key string) (site string, publishable, ok bool) {
	if key == "" {
		return "", false, false
	}
	sum := sha256.Sum256([]byte(key))
	match := -1
	for i := range k.sums {
		eq := subtle.ConstantTimeCompare(sum[:], k.sums[i][:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return "", false, false
	}
	return k.names[match], k.public[match] == 1, true
}
