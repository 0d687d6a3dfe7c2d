// Package realcrm holds an opt-in test of LeadRelay against the real
// SalesMan CRM (see ../shared/realcrm/ for standing one up on loopback). It
// skips unless LEADRELAY_REAL_CRM_URL is set.
//
// The test starts a private redis-server, builds the leadrelay binary and
// runs one intake and two workers as processes against the CRM over API v2,
// once with the shipped settings and once with 16 CRM requests in flight
// (more than the CRM's PHP workers), with the CRM's PHP server running a
// prepend that makes v2 add slow. Each run publishes a burst of 100 leads,
// kills the PHP server with SIGKILL mid-burst (when adds are seen between
// their insert and their uid stamp, or once 40 have arrived) and starts it
// again, waits for the queue to drain, and counts in MariaDB, by a marker
// unique to each lead, how many reached the CRM, how many twice and how
// many not at all, in one line per run:
//
//	realcrm: published=100 in_crm=N duplicated=D missing=M dead=K queued=Q
//
// (queued: leads still in LeadRelay's queue when the drain bound ran out;
// they count as missing). -run 'TestRealCRMKillPHPMidBurst/16' picks one run. A second test sends
// the same requests to the real CRM and to the simulator in its real-CRM
// modes (crmsim.FatalCRM, V1Shipped) and compares the answers' status and
// shape, so the simulator stays true to the CRM; another compares the client
// source and utm_source each v2 add is filed under.
//
// TestRealCRMDropInSites runs intake and a worker in this process and sends
// drop-in forms as old sites do (windows-1251 and KOI8-R, declared or the
// site's default, real forms' field names, an unknown field) and a JSON
// lead, then reads MariaDB: the right Cyrillic text, title, phone, the
// unknown field's line, and each site where its attribution puts it.
//
// Settings (all from the environment; the CRM must be on loopback):
//
//	LEADRELAY_REAL_CRM_URL        the CRM's base URL, e.g. http://127.0.0.1:8711
//	LEADRELAY_REAL_CRM_LOGIN      CRM user (admin@example.com)
//	LEADRELAY_REAL_CRM_APIKEY     its API key
//	LEADRELAY_REAL_CRM_DB         command that runs mysql on the CRM's database,
//	                              e.g. "mysql --socket=/tmp/realcrm/mysql-run/mysql.sock -uroot salesman"
//	LEADRELAY_REAL_CRM_PHP_PIDFILE pid file of the PHP server's process group leader (/tmp/realcrm/php.pid)
//	LEADRELAY_REAL_CRM_PHP_START  script that starts the PHP server (/tmp/realcrm/start-php.sh)
//	LEADRELAY_REAL_CRM_PREPEND    PHP file run before each request (harness/slow_prepend.php)
//	LEADRELAY_REAL_CRM_PREFIX     table prefix (default app_)
//	LEADRELAY_REAL_CRM_DRAIN      bound of the wait for the queue to drain (default 20m)
//	LEADRELAY_REAL_CRM_LOGS       directory to keep the intake and worker logs in (default: none)
//
// With the CRM from ../shared/realcrm/setup.sh:
//
//	source /tmp/realcrm/env.sh
//	LEADRELAY_REAL_CRM_URL=$CRM_URL LEADRELAY_REAL_CRM_LOGIN=$CRM_LOGIN LEADRELAY_REAL_CRM_APIKEY=$CRM_APIKEY \
//	LEADRELAY_REAL_CRM_DB="$CRM_DB" LEADRELAY_REAL_CRM_PHP_PIDFILE=/tmp/realcrm/php.pid \
//	LEADRELAY_REAL_CRM_PHP_START=/tmp/realcrm/start-php.sh \
//	LEADRELAY_REAL_CRM_PREPEND=../shared/realcrm/harness/slow_prepend.php \
//	go test -count=1 -v -timeout 60m ./internal/realcrm/
//
// At the end the PHP server is started again without the prepend.
package realcrm
