// Package ctl is the operator CLI, `leadrelay ctl …`: queue sizes, the dead
// leads of the deadletter store (list, show, requeue, purge), where one lead
// is, the SalesMan CRM's read actions, and a health probe for container
// healthchecks. It talks to Redis and the CRM with the relay's own config.
//
// Output is a human table by default and JSON with --json. Errors carry the
// exit code scripts can trust (ExitCode): 0 ok, 1 operational failure, 2
// usage error (*UsageError), 3 not found (*NotFoundError).
//
//	err := ctl.Run(ctx, []string{"dead", "list", "--site", "shop"}, cfg, os.Stdout, os.Stderr)
//	os.Exit(ctl.ExitCode(err))
package ctl
