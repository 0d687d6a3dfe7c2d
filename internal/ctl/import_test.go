package ctl

import (
	"errors"
	"strings"
	"testing"
)

// TestImport: a file's leads are queued; the summary names duplicate and
// refused leads by line; importing it again adds nothing.
func TestImport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, text string
		accepted         int
		want             []string // lines of the summary
	}{
		{"csv", "leads.csv", "Title,email,phone,idempotency_key\n" +
			"Ann,ann@example.com,+79001234567,order-1\n" +
			"Ann,ann@example.com,+79001234567,order-1\n" +
			"Bob,not-mail,,order-2\n" +
			"\"Cy, Jr.\",cy@example.com,,\n" +
			"Dee,dee@example.com\n",
			2, []string{"2 accepted, 1 duplicate, 2 refused", "line 3: duplicate of ld_", "line 4: refused: email: not an e-mail address", "line 6: refused: 2 values for 4 columns"}},
		{"jsonl", "leads.jsonl", `{"title":"Ann","email":"ann@example.com"}` + "\n\n" +
			`{"title":"Bob","color":"red"}` + "\n" +
			`{"title":5}` + "\n" +
			`not json` + "\n" +
			`{"phone":"call me"}` + "\n",
			1, []string{"1 accepted, 0 duplicate, 4 refused", "line 3: refused: color: not a lead field", "line 4: refused: title: must be a string", "line 5: refused: not a JSON object", "line 6: refused: phone:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			path := writeFile(t, tc.file, tc.text)
			out, stderr, err := e.run(t, "", "import", "--site", "shop", path)
			if !errors.Is(err, ErrRefused) || ExitCode(err) != ExitFailure {
				t.Fatalf("err = %v (exit %d), want ErrRefused, exit 1\n%s", err, ExitCode(err), stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("summary lacks %q:\n%s", w, out)
				}
			}
			if got := e.queueLen(t); got != tc.accepted {
				t.Errorf("queue holds %d, want %d", got, tc.accepted)
			}
			// Again: every lead is a duplicate now.
			out, _, _ = e.run(t, "", "--json", "import", "--site", "shop", path)
			s := decodeJSON[importSummary](t, out)
			if s.Accepted != 0 || len(s.Duplicates) < tc.accepted || e.queueLen(t) != tc.accepted {
				t.Errorf("second import: %+v, queue %d", s, e.queueLen(t))
			}
		})
	}
}

func TestImportUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"LEADRELAY_SITES": "shop=0123456789abcdef0123"})
	csvFile := writeFile(t, "a.csv", "title,colour\nAnn,red\n")
	tests := []struct {
		name  string
		args  []string
		code  int
		inErr string
	}{
		{"no site", []string{"import", csvFile}, ExitUsage, "--site is required"},
		{"unknown site", []string{"import", "--site", "blog", csvFile}, ExitUsage, "not a configured site"},
		{"no file", []string{"import", "--site", "shop"}, ExitUsage, "want 1 argument"},
		{"other extension", []string{"import", "--site", "shop", writeFile(t, "a.txt", "x")}, ExitUsage, ".csv or .jsonl"},
		{"unknown column", []string{"import", "--site", "shop", csvFile}, ExitFailure, `column "colour" is not a lead field`},
		{"missing file", []string{"import", "--site", "shop", "/nonexistent/a.csv"}, ExitFailure, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := e.run(t, "", tc.args...)
			if ExitCode(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.inErr) {
				t.Errorf("ctl %v: %v (exit %d), want exit %d with %q", tc.args, err, ExitCode(err), tc.code, tc.inErr)
			}
		})
	}
}

// queueLen is the number of lead tasks waiting on the queue.
func (e *env) queueLen(t *testing.T) int {
	t.Helper()
	qi, err := e.insp.GetQueueInfo(e.cfg.Queue.Name)
	if err != nil {
		return 0 // no queue yet
	}
	return qi.Size
}

// TestImportProgressEnds: the progress bar's last picture is the whole
// file, 100% (4/4), on a line of its own (issue 19.5: it ended at
// 25% (1/4): the bar drew its first lead, skipped the next ones within
// its throttle and cleared itself at the end).
func TestImportProgressEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	path := writeFile(t, "four.csv", "title,email\nAnn,ann@example.com\nBob,bob@example.com\nCy,cy@example.com\nDee,dee@example.com\n")
	_, stderr, err := e.run(t, "", "import", "--site", "shop", path)
	if err != nil {
		t.Fatal(err)
	}
	last := ""
	for _, s := range strings.FieldsFunc(stderr, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if strings.TrimSpace(s) != "" {
			last = s
		}
	}
	if !strings.Contains(last, "100%") || !strings.Contains(last, "(4/4") || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("the bar ends at %q, want 100%% (4/4) and a new line; stderr %q", last, stderr)
	}
}
