-- vault-mirror state, migration 1. Later migrations are appended in
-- src/store/mod.rs (MIGRATIONS) and never edit this one: a database's
-- `PRAGMA user_version` says how many have been applied.
--
-- Times are integer milliseconds since the Unix epoch (the API's unit).
-- Signed URLs are never stored: they are secrets with a lifetime.

-- The connection's vault lists, as last seen.
CREATE TABLE lists (
    list_id        TEXT PRIMARY KEY,
    name           TEXT NOT NULL DEFAULT '',
    list_type      TEXT,
    first_seen_at  INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    gone_at        INTEGER,            -- missing from the connection's lists since
    last_synced_at INTEGER,
    last_sync      TEXT                -- JSON counters of the last PUT sync
) STRICT;

-- Every media id ever seen. `dir_name` is its sanitised folder under media/.
CREATE TABLE media (
    media_id      TEXT PRIMARY KEY,
    media_type    TEXT,
    duration      REAL,
    dir_name      TEXT NOT NULL UNIQUE,
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL      -- last time the API described it
) STRICT;

-- Which media a list holds; rows stay when media leaves a list (gone_at).
CREATE TABLE membership (
    list_id       TEXT NOT NULL REFERENCES lists(list_id),
    media_id      TEXT NOT NULL REFERENCES media(media_id),
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    gone_at       INTEGER,             -- gone from the list upstream since
    PRIMARY KEY (list_id, media_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX membership_by_media ON membership(media_id);

-- One row per (media, label): what Vault+ says, and what we hold.
-- local_state: missing -> downloading -> verified, or failed / quarantined.
CREATE TABLE variants (
    media_id       TEXT NOT NULL REFERENCES media(media_id),
    label          TEXT NOT NULL,
    remote_status  TEXT NOT NULL,
    size_bytes     INTEGER,
    content_type   TEXT,
    remote_created_at INTEGER,
    stored_at      INTEGER,
    expires_at     INTEGER,
    remote_seen_at INTEGER NOT NULL,
    local_state    TEXT NOT NULL DEFAULT 'missing'
        CHECK (local_state IN ('missing', 'downloading', 'verified', 'failed', 'quarantined')),
    local_path     TEXT,               -- relative to the archive root
    sha256         TEXT,               -- of the verified file
    verified_size  INTEGER,
    verified_at    INTEGER,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    part_validator TEXT,               -- ETag or Last-Modified of the bytes in .part
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (media_id, label)
) STRICT, WITHOUT ROWID;

CREATE INDEX variants_by_state ON variants(local_state);

-- One row per command run, with its outcome and counters.
CREATE TABLE runs (
    run_id      INTEGER PRIMARY KEY,
    command     TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT,                  -- complete | partial | failed | interrupted
    exit_code   INTEGER,
    summary     TEXT                   -- the JSON summary
) STRICT;
