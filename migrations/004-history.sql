-- vault-mirror state, migration 4: run history (`vault-mirror history`).
-- Append-only like schema.sql: never edit once released.

-- What a run did, in columns `history` lists without reading the JSON
-- summary; filled when the run finishes (NULL for runs recorded before
-- this migration, and for figures a command does not have).
ALTER TABLE runs ADD COLUMN downloaded INTEGER;   -- files fetched and verified
ALTER TABLE runs ADD COLUMN bytes INTEGER;        -- bytes received
ALTER TABLE runs ADD COLUMN failed INTEGER;       -- items that failed this run
ALTER TABLE runs ADD COLUMN pending INTEGER;      -- items still pending upstream
ALTER TABLE runs ADD COLUMN error TEXT;           -- why a failed run stopped; a partial run's errors

-- What each run changed, one row an item, written when the run finishes
-- (a killed run has none: its files are still in `variants`).
--   added    a file fetched and verified (new upstream, or fetched again)
--   changed  a file fetched anew because it changed upstream; kept_path
--            holds the previous bytes under .versions/
--   gone     a media that left a list upstream (list_id); files kept
--   pruned   a file `--prune` deleted
--   failed   an item that failed this run (reason)
--   pending  an item not stored upstream yet (reason)
CREATE TABLE run_changes (
    run_id     INTEGER NOT NULL REFERENCES runs(run_id),
    kind       TEXT NOT NULL
        CHECK (kind IN ('added', 'changed', 'gone', 'pruned', 'failed', 'pending')),
    media_id   TEXT NOT NULL,
    label      TEXT,                      -- NULL for a whole media (gone, a media-wide note)
    list_id    TEXT,                      -- gone: the list it left
    local_path TEXT,                      -- relative to the archive root
    size       INTEGER,
    sha256     TEXT,
    kept_path  TEXT,                      -- changed: the previous bytes, relative to the root
    reason     TEXT                       -- failed, pending: why
) STRICT;

CREATE INDEX run_changes_by_run ON run_changes(run_id, kind);
-- What a finishing run reads to find its changes, without a scan of every
-- verified variant or membership (about 80 ms a run at 50,000 media, measured
-- with SQLite from Python, without them; under 1 ms with them).
-- (variants_by_state gains verified_at: the same prefix for the queries by
-- state, and a range for "verified since the run began".)
DROP INDEX variants_by_state;
CREATE INDEX variants_by_state ON variants(local_state, verified_at);
CREATE INDEX membership_by_gone_at ON membership(gone_at) WHERE gone_at IS NOT NULL;
CREATE INDEX runs_by_command_exit ON runs(command, exit_code);
