package app

import (
	"net/http"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

// uiPath is where the ops UI (asynqmon) is mounted, on the ops listener.
const uiPath = "/ui"

// UIHandler returns asynqmon for the ops listener. It does no checks of
// its own: the ops listener's guard (OpsGuard) admits operators.
func UIHandler(conn asynq.RedisConnOpt, readOnly bool) http.Handler {
	return asynqmon.New(asynqmon.Options{
		RootPath:     uiPath,
		RedisConnOpt: conn,
		ReadOnly:     readOnly,
	})
}
