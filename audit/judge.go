package audit

import (
	"strconv"

	"leadrelay/crm"
)

// Delivered is one lead the relay recorded as delivered.
type Delivered struct {
	// LeadID and Site name the lead.
	LeadID, Site string
	// CRMID is the CRM lead the relay recorded for it.
	CRMID int64
	// Hash is its content as sent (crm.API.SentHash), keyed
	// (lead.IDKey.SentSum) as the read-back hashes it is compared with.
	Hash string
}

// Find is one thing an audit found: a duplicate (CRMID is the extra CRM
// lead of lead LeadID) or a missing lead (CRMID is the one recorded).
type Find struct {
	// LeadID and Site name the relay's lead.
	LeadID string `json:"lead_id"`
	Site   string `json:"site,omitempty"`
	// CRMID is the CRM lead concerned.
	CRMID int64 `json:"crm_id"`
}

// Kinds of finds as Redis keeps them (rdb.AuditFindsKey).
const (
	kindDuplicate = "d:"
	kindMissing   = "m:"
	kindSuspect   = "s:"
)

// key is the find's field in the finds hash.
func (f Find) key(kind string) string {
	if kind == kindMissing {
		return kind + f.LeadID
	}
	return kind + strconv.FormatInt(f.CRMID, 10)
}

// verdict is what judge found in one read.
type verdict struct {
	duplicates []Find // certain: a second CRM lead stamped with a delivered lead's id
	suspects   []Find // a CRM lead unexplained but with a delivered lead's content
	missing    []Find // delivered, covered by the read, not in the CRM
}

// judge compares the delivered leads with the CRM leads read back. A CRM
// lead the relay recorded for a lead is explained; an unexplained one
// stamped with a delivered lead's id is a duplicate; an unexplained one
// without a stamp whose content a delivered lead has is a suspect (it may
// be another lead of the same content whose delivery is being recorded).
// CRM leads of no delivered lead (made elsewhere, or by leads older than
// the window) are not judged.
func judge(delivered []Delivered, rb crm.ReadBack) verdict {
	byCRM := make(map[int64]bool, len(delivered))
	byLead := make(map[string]Delivered, len(delivered))
	byHash := make(map[string]Delivered, len(delivered))
	for _, d := range delivered {
		byCRM[d.CRMID] = true
		byLead[d.LeadID] = d
		if d.Hash != "" { // a delivered lead's envelope may keep no hash
			byHash[d.Hash] = d
		}
	}
	var v verdict
	listed := make(map[int64]bool, len(rb.Leads))
	for _, s := range rb.Leads {
		listed[s.CRMID] = true
		if byCRM[s.CRMID] {
			continue
		}
		if s.Stamp != "" {
			if d, ok := byLead[s.Stamp]; ok {
				v.duplicates = append(v.duplicates, Find{LeadID: d.LeadID, Site: d.Site, CRMID: s.CRMID})
			}
			continue
		}
		if d, ok := byHash[s.Hash]; ok {
			v.suspects = append(v.suspects, Find{LeadID: d.LeadID, Site: d.Site, CRMID: s.CRMID})
		}
	}
	for _, d := range delivered {
		if rb.Covers(d.CRMID) && !listed[d.CRMID] {
			v.missing = append(v.missing, Find{LeadID: d.LeadID, Site: d.Site, CRMID: d.CRMID})
		}
	}
	return v
}
