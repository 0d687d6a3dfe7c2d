package ctl

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"leadrelay/internal/app"
	"leadrelay/lead"
	"leadrelay/producer"
)

// keyColumn names the column (CSV) or member (JSONL) that holds a lead's
// idempotency key; without it a lead's content is its key, so importing a
// file twice adds nothing.
const keyColumn = "idempotency_key"

// importRow is one lead read from a file, with its line number.
type importRow struct {
	line    int
	key     string
	lead    lead.Lead
	problem string // set when the row is not a lead
}

// importLine is one refused or duplicate line of the summary.
type importLine struct {
	Line  int    `json:"line"`
	ID    string `json:"id,omitempty"`
	Error string `json:"error,omitempty"`
}

// importSummary is what `ctl import` prints.
type importSummary struct {
	File       string       `json:"file"`
	Site       string       `json:"site"`
	Accepted   int          `json:"accepted"`
	Duplicates []importLine `json:"duplicates"`
	Refused    []importLine `json:"refused"`
	// StoppedAt is the line where Redis stopped answering; it and the
	// lines after it were not imported. 0: the whole file was read.
	StoppedAt int `json:"stopped_at_line,omitempty"`
}

// ErrRefused is returned by `ctl import` when some lines were refused; the
// others are imported. ExitCode maps it to 1.
var ErrRefused = errors.New("some leads were refused")

func (c *cli) importLeads(args []string) error {
	fs := c.flags("import")
	site := fs.String("site", "", "the site the leads belong to (required; one of LEADRELAY_SITES when that is set)")
	noBar := fs.Bool("no-progress", false, "no progress bar on stderr")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	if err := c.checkImportSite(*site); err != nil {
		return err
	}
	name := pos[0]
	rows, err := readImportFile(name)
	if err != nil {
		return err
	}
	if err := c.o.ConfigProblems.For("LEADRELAY_DELIVERED_TTL", "LEADRELAY_REDIS_WAIT_REPLICAS", "LEADRELAY_REDIS_WAIT_TIMEOUT",
		"LEADRELAY_ID_KEY", "LEADRELAY_ID_KEY_FILE", "LEADRELAY_KEYLESS_WINDOW"); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	if err := c.redisData(); err != nil {
		return err
	}
	codec, err := app.DataCodec(c.cfg, false, c.o.Log)
	if err != nil {
		return err
	}
	// Keyless rows are named as intake names them, so an import run again,
	// or a lead an intake took, is a duplicate within the keyless window.
	ids, err := app.IDKey(c.cfg, codec, false, c.o.Log)
	if err != nil {
		return err
	}
	pub := producer.New(c.rds.Client, producer.Options{
		Queue: c.cfg.Queue.Name, MaxRetry: c.cfg.Queue.MaxRetry, DedupTTL: c.cfg.Queue.DedupTTL, KeylessWindow: c.cfg.Queue.KeylessWindow,
		WaitReplicas: c.cfg.Redis.WaitReplicas, WaitTimeout: c.cfg.Redis.WaitTimeout, Codec: codec, IDKey: ids,
	}, c.o.Log)
	defer pub.Close()

	sum := importSummary{File: name, Site: *site, Duplicates: []importLine{}, Refused: []importLine{}}
	bar := c.importBar(len(rows), !*noBar && !c.json)
	if err := c.publishRows(pub, rows, &sum, bar); err != nil {
		_ = bar.Exit()
		c.printImport(sum)
		return fmt.Errorf("import stopped at line %d, nothing from it on was imported (run the same import again: what is stored comes back as duplicates): %w", sum.StoppedAt, err)
	}
	_ = bar.Finish()
	c.printImport(sum)
	if len(sum.Refused) > 0 {
		return fmt.Errorf("import: %d of %d leads refused: %w", len(sum.Refused), len(rows), ErrRefused)
	}
	return nil
}

// importBar is the progress bar on stderr. It stays on its last picture,
// the whole file, on a line of its own: cleared at the end, the terminal
// kept the first lead's picture that the throttle had left standing.
func (c *cli) importBar(rows int, visible bool) *progressbar.ProgressBar {
	return progressbar.NewOptions(rows, progressbar.OptionSetWriter(c.errw), progressbar.OptionSetDescription("import"),
		progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetVisibility(visible),
		progressbar.OptionOnCompletion(func() {
			if visible { // Exit calls it on a hidden bar too
				fmt.Fprintln(c.errw)
			}
		}))
}

// checkImportSite refuses a missing site, or one LEADRELAY_SITES does not
// name when it is set.
func (c *cli) checkImportSite(site string) error {
	if site == "" {
		return &UsageError{"ctl import: --site is required"}
	}
	if len(c.cfg.Intake.Sites) > 0 {
		if _, ok := c.cfg.Intake.Sites[site]; !ok {
			return &UsageError{fmt.Sprintf("ctl import: --site %q is not a configured site (LEADRELAY_SITES_FILE or LEADRELAY_SITES)", site)}
		}
	}
	return nil
}

// readImportFile reads the rows of a .csv or .jsonl file.
func readImportFile(name string) ([]importRow, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var rows []importRow
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		rows, err = readCSV(b)
	case ".jsonl", ".ndjson":
		rows, err = readJSONL(b)
	default:
		return nil, &UsageError{fmt.Sprintf("ctl import: %s: want a .csv or .jsonl file", name)}
	}
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", name, err)
	}
	return rows, nil
}

// publishRows publishes rows in order, counting each in sum. When Redis
// stops answering it sets sum.StoppedAt to that row's line and returns
// the error: that row and the ones after it are not imported.
func (c *cli) publishRows(pub *producer.Publisher, rows []importRow, sum *importSummary, bar *progressbar.ProgressBar) error {
	for _, r := range rows {
		if r.problem != "" {
			sum.Refused = append(sum.Refused, importLine{Line: r.line, Error: r.problem})
			_ = bar.Add(1)
			continue
		}
		rc, err := pub.Publish(c.ctx, sum.Site, r.lead, r.key)
		var ve *lead.ValidationError
		switch {
		case err == nil && rc.Duplicate:
			sum.Duplicates = append(sum.Duplicates, importLine{Line: r.line, ID: rc.ID})
		case err == nil:
			sum.Accepted++
		case errors.As(err, &ve):
			sum.Refused = append(sum.Refused, importLine{Line: r.line, Error: fieldProblems(ve.Fields)})
		case errors.Is(err, producer.ErrKeyReused):
			sum.Refused = append(sum.Refused, importLine{Line: r.line, Error: "idempotency_key " + fmt.Sprintf("%q", r.key) + " already names a different lead"})
		default:
			sum.StoppedAt = r.line
			return err
		}
		_ = bar.Add(1)
	}
	return nil
}

func (c *cli) printImport(s importSummary) {
	if c.json {
		_ = c.emit(s)
		return
	}
	fmt.Fprintf(c.out, "%s: %d accepted, %d duplicate, %d refused (site %s)\n", s.File, s.Accepted, len(s.Duplicates), len(s.Refused), s.Site)
	for _, d := range s.Duplicates {
		fmt.Fprintf(c.out, "  line %d: duplicate of %s\n", d.Line, d.ID)
	}
	for _, r := range s.Refused {
		fmt.Fprintf(c.out, "  line %d: refused: %s\n", r.Line, r.Error)
	}
}

func fieldProblems(fs []lead.FieldError) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Field + ": " + f.Problem
	}
	return strings.Join(parts, "; ")
}

// readCSV reads a CSV file whose header names lead fields (and optionally
// idempotency_key); an unknown column refuses the file.
func readCSV(b []byte) ([]importRow, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("no header line: %w", err)
	}
	var probe lead.Lead
	for i, h := range header {
		header[i] = strings.ToLower(strings.TrimSpace(h))
		if header[i] != keyColumn && probe.Field(header[i]) == nil {
			return nil, fmt.Errorf("line 1: column %q is not a lead field (want %s or %s)", h, fieldNames(), keyColumn)
		}
	}
	var rows []importRow
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("line %d: %v", pe.Line, pe.Err)
			}
			return nil, err
		}
		row := importRow{line: line}
		if len(rec) != len(header) {
			row.problem = fmt.Sprintf("%d values for %d columns", len(rec), len(header))
		}
		for i := 0; i < len(rec) && i < len(header); i++ {
			if header[i] == keyColumn {
				row.key = strings.TrimSpace(rec[i])
			} else {
				*row.lead.Field(header[i]) = rec[i]
			}
		}
		rows = append(rows, row)
	}
}

// fieldNames lists the lead's wire names for a message.
func fieldNames() string {
	var names []string
	for _, f := range lead.Fields() {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}

// readJSONL reads one JSON object per line: the lead's fields and
// optionally idempotency_key, all strings. Blank lines are skipped.
func readJSONL(b []byte) ([]importRow, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), lead.MaxPayloadBytes+1024)
	var rows []importRow
	for n := 1; sc.Scan(); n++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		row := importRow{line: n}
		var obj map[string]any
		if err := json.Unmarshal(text, &obj); err != nil || obj == nil {
			row.problem = "not a JSON object"
			rows = append(rows, row)
			continue
		}
		var bad []string
		for k, v := range obj {
			s, ok := v.(string)
			switch {
			case !ok:
				bad = append(bad, k+": must be a string")
			case k == keyColumn:
				row.key = s
			case row.lead.Field(k) == nil:
				bad = append(bad, k+": not a lead field")
			default:
				*row.lead.Field(k) = s
			}
		}
		if len(bad) > 0 {
			slices.Sort(bad)
			row.problem = strings.Join(bad, "; ")
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("after line %d: %w", len(rows), err)
	}
	return rows, nil
}
