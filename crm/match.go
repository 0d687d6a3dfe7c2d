package crm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"time"

	"leadrelay/crmclient"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// A lead is matched by content when the CRM holds no stamp of it: its
// email, phone, company and text, as the CRM stores them. The CRM does not
// de-duplicate, so a content match is claimed for one lead (Claim).

var tagRe = regexp.MustCompile(`<[^>]*>`)

// formQuotes drops v2 form mode's ” and &acute;. Built once: a Replacer
// builds its lookup on first use, which per call was most of a v2
// delivery's fingerprint.
var formQuotes = strings.NewReplacer("&acute;", "", "”", "")

// crmText applies what the CRM does to stored text (tags and the
// characters of crmclient.DropUntagChars removed; v2 form mode's ” and
// &acute;), so what was sent compares equal to what the CRM lists.
func crmText(s string) string {
	if strings.IndexByte(s, '<') >= 0 { // the regexp scans even text with no tag
		s = tagRe.ReplaceAllString(s, "")
	}
	s = formQuotes.Replace(s)
	s = crmclient.DropUntagChars(s)
	return strings.Join(strings.Fields(s), " ")
}

// Fingerprint identifies a CRM lead's content as the CRM lists it.
func Fingerprint(it crmclient.ListItem) string {
	return fingerprint(it.Email, it.Phone, it.Company, it.Content)
}

// SentFingerprint is the fingerprint of l as the CRM received it: the
// client may change a lead on the way (emoji stand-ins, v2's ip line), and
// the CRM lists what it received.
func SentFingerprint(c Client, l crmclient.Lead) string {
	s := c.Sent(l)
	return fingerprint(s.Email, s.Phone, s.Company, s.Description)
}

func fingerprint(email, phone, company, content string) string {
	return strings.ToLower(crmText(email)) + "\x00" + crmText(phone) + "\x00" + crmText(company) + "\x00" + crmText(content)
}

// FingerprintHash is the short digest of a fingerprint that a journal
// keeps.
func FingerprintHash(fp string) string {
	sum := sha256.Sum256([]byte(fp))
	return hex.EncodeToString(sum[:8])
}

// Claim claims a CRM id matched by content for lead id: true when it is
// free, or this lead's already (an earlier look-up whose delivery was not
// recorded).
func Claim(ctx context.Context, s *rdb.Store, crmID int64, id string) (bool, error) {
	ok, err := s.Claim(ctx, crmID, id, ClaimRetention)
	if err != nil {
		return false, StoreErr("claim CRM id", err)
	}
	return ok, nil
}

// Since is when a look-up's lead was first sent: its attempt record's
// first attempt, or else when intake received it.
func Since(p lead.Payload, a rdb.Attempt) time.Time {
	if a.FirstAt.IsZero() {
		return p.ReceivedAt
	}
	return a.FirstAt
}
