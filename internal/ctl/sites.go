package ctl

import (
	"fmt"
	"strconv"
	"strings"
)

// siteFileRow is one site of a checked sites file, as `sites check` prints
// it: never a key or a secret, only how many and whether.
type siteFileRow struct {
	Site        string   `json:"site"`
	Keys        int      `json:"keys"`
	Publishable int      `json:"publishable_keys"`
	Origins     []string `json:"origins"`
	Signed      bool     `json:"signed"`
	Charset     string   `json:"charset"`
	Fields      int      `json:"fields"`
	Attribution string   `json:"attribution"`
	RateLimit   float64  `json:"rate_limit"`
}

// sitesCheck checks a sites file as intake loads and reloads it, without
// starting anything: every problem (exit 1), or the sites it holds.
func (c *cli) sitesCheck(args []string) error {
	pos, err := parseArgs(c.flags("sites check"), args, 1)
	if err != nil {
		return err
	}
	sites, warnings, err := c.cfg.LoadSitesFile(pos[0])
	for _, w := range warnings {
		fmt.Fprintln(c.errw, "warning:", w)
	}
	if err != nil {
		return fmt.Errorf("%s is refused (a running intake would keep its sites):\n%w", pos[0], err)
	}
	rows := make([]siteFileRow, 0, len(sites))
	for _, name := range sites.Names() {
		s := sites[name]
		rows = append(rows, siteFileRow{Site: name, Keys: len(s.Keys), Publishable: len(s.PublishableKeys), Origins: append([]string{}, s.Origins...), Signed: s.Secret != "",
			Charset: s.Charset, Fields: len(s.Fields), Attribution: string(s.Attribution), RateLimit: s.RateLimit})
	}
	if c.json {
		return c.emit(map[string]any{"file": pos[0], "sites": rows})
	}
	tw := c.table()
	fmt.Fprintln(tw, "SITE\tKEYS\tORIGINS\tSIGNED\tCHARSET\tFIELDS\tATTRIBUTION\tRATE")
	for _, r := range rows {
		charset := r.Charset
		if charset == "" {
			charset = "utf-8"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%v\t%s\t%d\t%s\t%s\n", r.Site, r.Keys, strings.Join(r.Origins, " "), r.Signed, charset,
			r.Fields, r.Attribution, strconv.FormatFloat(r.RateLimit, 'g', -1, 64))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "ok: %s holds %d sites\n", pos[0], len(rows))
	return nil
}
