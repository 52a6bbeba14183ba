-- Issue 18 (session 16): the audit copy of each sent message (`rendered`) is packed by Rappel,
-- as on SQLite: its JSON text compressed with LZ4 against a fixed dictionary of the default
-- texts and email frame (`codec::pack_json`), about 215 bytes for an email's copy of 2 kB
-- where PostgreSQL's own LZ4 made about 1,100. Each record of an outcome then writes a row a
-- third as long (heap and WAL), and the server no longer compresses anything in its
-- backends (`LZ4_compress_fast_extState` in a profile of the dispatch burst).
--
-- Copies written before become the bytes of their JSON text, which the reader tells from a
-- packed copy by its first byte (`{`, where a packed copy starts with 1 or 2). The column
-- stores what it is given (EXTERNAL: a packed copy is not compressed again).
--
-- The change of type rewrites the table once, holding it for the duration: on a large database,
-- run the upgrade (`rappel migrate`) while the workers are stopped. Retention keeps the table at
-- 13 months of messages by default.
ALTER TABLE notifications
    ALTER COLUMN rendered TYPE BYTEA USING convert_to(rendered, 'UTF8');
ALTER TABLE notifications ALTER COLUMN rendered SET STORAGE EXTERNAL;
