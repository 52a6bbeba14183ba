-- Issue 18 (session 12): the copy of each sent message kept for audit (`rendered`: its subject,
-- text and HTML, a few kilobytes) is compressed with LZ4 instead of PostgreSQL's default pglz.
-- pglz was the first of PostgreSQL's own functions in a profile of the dispatch burst (8 % of
-- the server's time), and LZ4 compresses several times faster; `rappel bench --store postgres`
-- dispatch, rotation of four with the server's default set to each: 11,369 / 12,142 messages/s
-- with pglz, 12,348 / 13,665 with lz4.
--
-- Only new values are compressed so (rows written before stay as they are, and read the same).
-- A server older than 14, or built without LZ4, keeps pglz: the migration changes nothing there.
-- SQLite compresses nothing, so it has no counterpart.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000
       AND EXISTS (SELECT 1 FROM pg_settings
                   WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        EXECUTE 'ALTER TABLE notifications ALTER COLUMN rendered SET COMPRESSION lz4';
    END IF;
END
$$;
