-- Issue 18 (session 13): only sign-in sessions' routes expire; the routes of appointment links,
-- document links, logins and provider message ids have no `expires_at`. The expiry index held an
-- entry for each of them all the same, written with every link of a dispatch batch and every
-- provider id a hand-off returns, and read by nothing: the purge of expired routes
-- (`DELETE … WHERE expires_at <= $1`) names only rows that have one, which a partial index
-- serves on both backends.
DROP INDEX lookup_routes_expiry;
CREATE INDEX lookup_routes_expiry ON lookup_routes (expires_at) WHERE expires_at IS NOT NULL;
