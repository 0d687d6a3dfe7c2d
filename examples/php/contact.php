<?php
// A contact form handler that hands its lead to LeadRelay's SalesMan drop-in endpoint, as a site
// integrated with SalesMan does: only the URL changes, login is the site's name in LeadRelay
// (the demo site is "demo") and apikey is its relay key, never the CRM's key.
//
//   LEADRELAY_URL=http://127.0.0.1:8080 LEADRELAY_SITE_KEY=… php -S 127.0.0.1:8000 contact.php
//
// LeadRelay answers every drop-in request with HTTP 200 and the CRM's body, like the CRM. A
// failure LeadRelay can say more about (rate limit, Redis down) carries the status it means in
// X-LeadRelay-Status and, for 429 and 503, Retry-After: this handler retries those once.
//
// With LEADRELAY_SITE_SECRET set (the site's entry in LEADRELAY_SITE_SECRETS) every request is
// signed, each attempt afresh: X-LeadRelay-Signature is "sha256=" and the hex HMAC-SHA256, keyed
// with the secret, of the canonical string
//
//   METHOD . "\n" . path . "\n" . Idempotency-Key (here none: "") . "\n" . timestamp . "\n" . body
//
// e.g. "POST\n/developer/v1/leads\n\n1767225600\nlogin=demo&apikey=…&action=add&title=…".

// leadrelay_signature returns the signature headers of one request, or none without a secret.
function leadrelay_signature(string $method, string $url, string $key, string $body): array {
    $secret = getenv('LEADRELAY_SITE_SECRET');
    if ($secret === false || $secret === '') {
        return [];
    }
    $ts = (string)time();
    $canonical = $method . "\n" . (parse_url($url, PHP_URL_PATH) ?: '/') . "\n" . $key . "\n" . $ts . "\n" . $body;
    return [
        'X-LeadRelay-Timestamp: ' . $ts,
        'X-LeadRelay-Signature: sha256=' . hash_hmac('sha256', $canonical, $secret),
    ];
}

function leadrelay_add(array $fields): array {
    $params = array_merge([
        'login' => 'demo', 'apikey' => getenv('LEADRELAY_SITE_KEY'), 'action' => 'add',
    ], $fields);
    $url = rtrim(getenv('LEADRELAY_URL') ?: 'http://127.0.0.1:8080', '/') . '/developer/v1/leads';
    $form = http_build_query($params);
    for ($attempt = 1; $attempt <= 2; $attempt++) {
        $headers = [];
        $ch = curl_init($url);
        curl_setopt_array($ch, [
            CURLOPT_POST => true, // POST keeps the key out of access logs
            CURLOPT_POSTFIELDS => $form,
            CURLOPT_HTTPHEADER => leadrelay_signature('POST', $url, '', $form),
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT => 10,
            CURLOPT_HEADERFUNCTION => function ($ch, $line) use (&$headers) {
                $parts = explode(':', $line, 2);
                if (count($parts) === 2) { $headers[strtolower(trim($parts[0]))] = trim($parts[1]); }
                return strlen($line);
            },
        ]);
        $body = curl_exec($ch);
        curl_close($ch);
        $answer = json_decode((string)$body, true) ?: [];
        if (isset($answer['result']['text']) && $answer['result']['text'] === 'Success') {
            return ['ok' => true, 'id' => $answer['result']['id']];
        }
        $status = $headers['x-leadrelay-status'] ?? '';
        if (($status === '429' || $status === '503') && $attempt === 1) {
            sleep(min((int)($headers['retry-after'] ?? 1), 10));
            continue;
        }
        return ['ok' => false, 'error' => $answer['error']['text'] ?? ($answer['Error'] ?? 'no answer')];
    }
    return ['ok' => false, 'error' => 'no answer'];
}

if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    $r = leadrelay_add([
        'title' => $_POST['name'] ?? '', 'email' => $_POST['email'] ?? '',
        'phone' => $_POST['phone'] ?? '', 'description' => $_POST['message'] ?? '',
        'ip' => $_SERVER['REMOTE_ADDR'] ?? '',
    ]);
    header('Content-Type: text/plain; charset=utf-8');
    echo $r['ok'] ? "Thank you, request {$r['id']} is on its way.\n" : "Not sent: {$r['error']}\n";
    exit;
}
?>
<!doctype html>
<meta charset="utf-8"><title>Contact us</title>
<form method="post">
  <label>Name <input name="name"></label>
  <label>E-mail <input name="email" type="email"></label>
  <label>Phone <input name="phone" type="tel"></label>
  <label>Message <textarea name="message"></textarea></label>
  <button>Send</button>
</form>
