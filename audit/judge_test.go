package audit

import (
	"reflect"
	"testing"

	"leadrelay/crm"
)

// TestJudge: what a read-back says of the delivered leads, case by case.
func TestJudge(t *testing.T) {
	t.Parallel()
	a := Delivered{LeadID: "ld_a", Site: "shop", CRMID: 10, Hash: "ha"}
	b := Delivered{LeadID: "ld_b", Site: "shop", CRMID: 12, Hash: "hb"}
	full := func(leads ...crm.Seen) crm.ReadBack { return crm.ReadBack{Leads: leads, From: 10, To: 20} }
	for _, tc := range []struct {
		name string
		rb   crm.ReadBack
		want verdict
	}{
		{"each once", full(crm.Seen{CRMID: 10, Hash: "ha"}, crm.Seen{CRMID: 12, Stamp: "ld_b", Hash: "hb"}), verdict{}},
		{"a second lead stamped with a delivered lead's id",
			full(crm.Seen{CRMID: 10, Hash: "ha"}, crm.Seen{CRMID: 12, Hash: "hb"}, crm.Seen{CRMID: 13, Stamp: "ld_b", Hash: "hb"}),
			verdict{duplicates: []Find{{LeadID: "ld_b", Site: "shop", CRMID: 13}}}},
		{"a second lead of the same content, no stamp: a suspect",
			full(crm.Seen{CRMID: 10, Hash: "ha"}, crm.Seen{CRMID: 11, Hash: "ha"}, crm.Seen{CRMID: 12, Hash: "hb"}),
			verdict{suspects: []Find{{LeadID: "ld_a", Site: "shop", CRMID: 11}}}},
		{"other leads of the CRM, and a stamp of a lead not in the window",
			full(crm.Seen{CRMID: 10, Hash: "ha"}, crm.Seen{CRMID: 11, Hash: "hx"}, crm.Seen{CRMID: 12, Hash: "hb"}, crm.Seen{CRMID: 14, Stamp: "ld_old", Hash: "ha"}),
			verdict{}},
		{"a delivered lead the CRM does not list",
			full(crm.Seen{CRMID: 12, Hash: "hb"}),
			verdict{missing: []Find{{LeadID: "ld_a", Site: "shop", CRMID: 10}}}},
		{"a delivered lead outside what the read covers is not judged",
			crm.ReadBack{Leads: []crm.Seen{{CRMID: 12, Hash: "hb"}}, From: 11, To: 20},
			verdict{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := judge([]Delivered{a, b}, tc.rb); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("judge = %+v, want %+v", got, tc.want)
			}
		})
	}
}
