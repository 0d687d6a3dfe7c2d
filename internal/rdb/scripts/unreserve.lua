-- unreserve: takes one lead out of a site's backlog count.
-- KEYS: 1 backlog
-- ARGV: 1 site
-- uses: unreserve
-- Answers: the count before.
return unreserve(KEYS[1], ARGV[1])
