package metrics

import "leadrelay/lead"

// MaxDeliverySites bounds the distinct site labels of
// leadrelay_site_deliveries_total. Sites come from configuration, so the
// bound is only reached by a misconfiguration; later sites count as Other.
const MaxDeliverySites = 256

// deliverySite admits site names (letters, digits, . - _ @, as config
// allows) up to MaxDeliverySites of them. A worker needs no LEADRELAY_SITES,
// so the names are learnt as leads arrive.
func (m *Metrics) deliverySite(site string) string {
	if site == "" {
		return UnknownSite
	}
	if !lead.ValidSiteName(site) {
		return Other
	}
	m.outcomesMu.RLock()
	seen := m.dsites[site]
	m.outcomesMu.RUnlock()
	if seen { // every delivery asks: the common case takes no write lock
		return site
	}
	m.outcomesMu.Lock()
	defer m.outcomesMu.Unlock()
	if !m.dsites[site] {
		if len(m.dsites) >= MaxDeliverySites {
			return Other
		}
		m.dsites[site] = true
	}
	return site
}
