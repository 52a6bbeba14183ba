-- Issue 18 (session 18): every text column compares its bytes (collation "C"), as SQLite does.
--
-- A column without a collation takes the database's, which a server set up in French is
-- fr_FR.UTF-8 (en_US.UTF-8, C.UTF-8 elsewhere). PostgreSQL then compares two texts through
-- the C library's strcoll after copying both: every step down a b-tree of identifiers — a
-- notification's key, a practice's or a patient's id, a token's hash — on every insert,
-- update and lookup. Those values are identifiers, whose order means nothing, and the only
-- texts sorted by SQL are identifiers too (`ORDER BY id`, `ORDER BY due_at, key`, keyset
-- cursors): byte order is the order SQLite already gives them, so both stores now page
-- through the same sequence. No name or free text is sorted in SQL; a list ordered by an id or
-- a login (practitioners, users) now comes in byte order on every database, capitals first,
-- as it always did on SQLite.
--
-- Each column keeps its type; only its collation changes, which rebuilds the indexes that
-- name it (not the tables), under a lock that holds the table meanwhile: on a large database,
-- stop the workers during `rappel migrate`. On a database of a million notifications (923 MB
-- with their indexes, in fr_FR.utf8) it ran in 4.9 s on a 2-core machine. All the text
-- columns of a table change in one statement, the tables one after the other; the foreign
-- keys between text columns (a patient's practice, a document's patient…) compare columns
-- that are all "C" once this has run.
DO $$
DECLARE
    t record;
    alters text;
BEGIN
    FOR t IN
        SELECT c.table_name
        FROM information_schema.columns c
        JOIN information_schema.tables tb
          ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name
        WHERE c.table_schema = current_schema()
          AND tb.table_type = 'BASE TABLE'
          AND c.data_type = 'text'
          AND c.table_name NOT LIKE '\_sqlx%'
        GROUP BY c.table_name
        ORDER BY c.table_name
    LOOP
        SELECT string_agg(format('ALTER COLUMN %I TYPE text COLLATE "C"', column_name), ', '
                          ORDER BY ordinal_position)
        INTO alters
        FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = t.table_name
          AND data_type = 'text';
        EXECUTE format('ALTER TABLE %I %s', t.table_name, alters);
    END LOOP;
END
$$;
