package lead

// ValidSiteName says whether s may name a site: at most 64 bytes of
// letters, digits, '.', '-', '_' and '@'. Config refuses other names, and
// metrics label no other, so a name is safe in a label, a key and a log.
func ValidSiteName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' || r == '@') {
			return false
		}
	}
	return true
}
