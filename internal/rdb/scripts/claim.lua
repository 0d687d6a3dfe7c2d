-- claim: claims a CRM id for a lead. On a single primary it reads the
-- previous version's claim too (on a Cluster that key is in another slot;
-- a claim it made lives 7 days).
-- KEYS: 1 claims bucket, [2 legacy claim]
-- ARGV: 1 CRM id, 2 lead id, 3 ttl ms
-- uses: claim
-- Answers: the lead that holds the id.
return claim(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
