-- vault-mirror state, migration 2: the offline archive (list views, prune,
-- kept versions). Append-only like schema.sql: never edit once released.

-- What the verified bytes were declared as when they were fetched. The
-- `content_type` and `stored_at` columns follow Vault+; these stay with the
-- bytes on disk, so a version kept after a change upstream says what it was.
ALTER TABLE variants ADD COLUMN verified_content_type TEXT;
ALTER TABLE variants ADD COLUMN verified_stored_at INTEGER;
UPDATE variants SET verified_content_type = content_type, verified_stored_at = stored_at
    WHERE local_state = 'verified';

-- When `mirror --prune` last deleted this media's local copies.
ALTER TABLE media ADD COLUMN pruned_at INTEGER;

-- Bytes a change upstream replaced, kept under .versions/<media dir>/.
CREATE TABLE versions (
    version_id   INTEGER PRIMARY KEY,
    media_id     TEXT NOT NULL REFERENCES media(media_id),
    label        TEXT NOT NULL,
    local_path   TEXT NOT NULL UNIQUE,   -- relative to the archive root
    sha256       TEXT NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT,                   -- as declared when fetched, if known
    stored_at    INTEGER,                -- Vault+ storedAt of these bytes, if known
    verified_at  INTEGER,                -- when they were fetched and verified
    kept_at      INTEGER NOT NULL,       -- when newer bytes replaced them
    replaced_by  TEXT NOT NULL,          -- sha256 of the bytes that replaced them
    pruned_at    INTEGER                 -- deleted by `mirror --prune`
) STRICT;

CREATE INDEX versions_by_media ON versions(media_id, label);

-- Every file `mirror --prune` deleted: what it was, and when.
CREATE TABLE pruned_files (
    media_id   TEXT NOT NULL REFERENCES media(media_id),
    local_path TEXT NOT NULL,            -- relative to the archive root
    size       INTEGER NOT NULL,
    sha256     TEXT,                     -- as recorded, when it was a recorded file
    pruned_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX pruned_files_by_media ON pruned_files(media_id);
