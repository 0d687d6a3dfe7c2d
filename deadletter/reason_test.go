package deadletter

import "testing"

func TestShortReason(t *testing.T) {
	t.Parallel()
	tests := []struct{ raw, want string }{
		{"dead: crmclient: add: CRM error 1: Ошибка добавления лида. Запись отклонена : skip retry for the task",
			"the CRM rejected the lead (code 1: Ошибка добавления лида. Запись отклонена)"},
		{"retries exhausted: CRM unreachable: dial tcp 10.0.0.5:80: connection refused",
			"retries exhausted: CRM unreachable: dial tcp 10.0.0.5:80: connection refused"},
		{"the CRM rejected the lead (code 1: x)", "the CRM rejected the lead (code 1: x)"},
		{"  ", ""},
	}
	for _, tc := range tests {
		if got := ShortReason(tc.raw); got != tc.want {
			t.Errorf("ShortReason(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
