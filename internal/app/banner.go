package app

import (
	"fmt"
	"io"
)

// printExports prints, in demo mode, the shell lines that point ctl (or a
// second worker) at this process's embedded Redis and simulator. A real
// CRM's key is never printed; the simulator's is random and dies with it.
func printExports(w io.Writer, rds *Redis, crm *CRM) {
	if rds.mini == nil {
		return
	}
	fmt.Fprintln(w, "ctl against this process (in another terminal):")
	fmt.Fprintf(w, "  export LEADRELAY_REDIS_URL=redis://%s/0\n", rds.mini.Addr())
	if crm != nil && crm.Sim != nil {
		fmt.Fprintf(w, "  export LEADRELAY_CRM_URL=%s LEADRELAY_CRM_LOGIN=%s LEADRELAY_CRM_APIKEY=%s\n", crm.URL, crm.SimLogin, crm.SimKey)
	}
	fmt.Fprintln(w, "  go run ./cmd/leadrelay ctl queues")
}
