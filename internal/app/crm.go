package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"

	"go.uber.org/zap"

	"leadrelay/config"
	"leadrelay/crmclient"
	"leadrelay/crmsim"
)

// embeddedCRMLogin is the CRM user the relay logs in as on the in-process
// simulator.
const embeddedCRMLogin = "admin@example.com"

// CRM is the CRM the worker delivers to, and the simulator behind it when
// the CRM is embedded.
type CRM struct {
	// Client speaks to the CRM.
	Client *crmclient.Client
	// Sim is the in-process simulator, or nil for a real CRM.
	Sim *crmsim.Sim
	// URL is the CRM's base URL (never with credentials).
	URL string
	// SimLogin and SimKey are the embedded simulator's login and its random
	// API key, printed in the demo banner so that ctl crm works against
	// serve; empty for a real CRM, whose key is never printed.
	SimLogin, SimKey string
	server           *crmsim.Server
}

// OpenCRM builds the CRM client from the config. With no LEADRELAY_CRM_URL
// and allowEmbedded set it starts the simulator on a loopback port with a
// fresh random key and points the client at it.
func OpenCRM(ctx context.Context, cfg config.Config, allowEmbedded bool, log *zap.Logger) (*CRM, error) {
	c := &CRM{URL: cfg.CRM.URL}
	login, key := cfg.CRM.Login, cfg.CRM.APIKey
	if cfg.EmbeddedCRM() {
		if !allowEmbedded {
			return nil, fmt.Errorf("LEADRELAY_CRM_URL is required for this command (only serve can embed the CRM simulator)")
		}
		login, key = embeddedCRMLogin, randomKey()
		sim, err := crmsim.New(crmsim.Config{APIKey: key, Logger: log.Named("crmsim")})
		if err != nil {
			return nil, fmt.Errorf("embedded CRM simulator: %w", err)
		}
		c.Sim, c.server = sim, crmsim.NewServer(sim)
		if err := c.server.Start(ctx, "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("embedded CRM simulator: %w", err)
		}
		c.URL = c.server.URL()
		c.SimLogin, c.SimKey = login, key
		log.Warn("EMBEDDED CRM: leads go to an in-process SalesMan simulator, not a real CRM; set LEADRELAY_CRM_URL for production",
			zap.String("crm_url", c.URL))
	}
	opts := []crmclient.Option{
		crmclient.WithAPIVersion(crmclient.APIVersion(cfg.CRM.API)),
		crmclient.WithTimeout(cfg.CRM.Timeout),
		crmclient.WithUserAgent("LeadRelay/" + Version),
		// One idle connection per delivery in flight, or each one beyond
		// the pool opens a new connection to the CRM.
		crmclient.WithMaxIdleConns(max(cfg.Worker.Concurrency, crmclient.DefaultMaxIdleConns)),
		crmclient.WithSanitize(crmSanitize(cfg)),
	}
	if cfg.CRM.JSON {
		opts = append(opts, crmclient.WithJSON(true))
	}
	client, err := crmclient.New(c.URL, login, key, opts...)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("CRM client: %w", err)
	}
	c.Client = client
	return c, nil
}

// Close stops an embedded simulator.
func (c *CRM) Close() {
	if c.server != nil {
		_ = c.server.Close()
	}
}

func randomKey() string {
	b := make([]byte, 18)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// crmSanitize is what the client changes before sending, from the config.
func crmSanitize(cfg config.Config) crmclient.Sanitize {
	s := crmclient.Sanitize{IPInDescription: cfg.CRM.IPInDescription}
	if cfg.CRM.ReplaceEmoji {
		s.StandIn = crmclient.DefaultStandIn
	}
	return s
}
