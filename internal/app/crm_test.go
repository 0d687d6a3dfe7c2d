package app

import "testing"

// TestCRMSanitizeFromConfig: both CRM workarounds are on by default and
// each can be switched off.
func TestCRMSanitizeFromConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		ip   bool
		want string
	}{
		{nil, true, "\uFFFD"},
		{map[string]string{"LEADRELAY_CRM_IP_IN_DESCRIPTION": "false", "LEADRELAY_CRM_REPLACE_EMOJI": "false"}, false, ""},
	}
	for _, tc := range tests {
		cfg := loadConfig(t, tc.env)
		if s := crmSanitize(cfg); s.IPInDescription != tc.ip || s.StandIn != tc.want {
			t.Errorf("%v: %+v", tc.env, s)
		}
	}
}
