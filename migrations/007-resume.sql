-- vault-mirror state, migration 7: big transfers resume after a crash.
-- Append-only like schema.sql: never edit once released.

-- A multipart upload to object storage kept open across runs: the
-- variant it writes, its key and upload id, the size Vault+ declared, the
-- first bytes of the file (for the magic-byte check, which a resumed
-- transfer cannot re-read from the store) and when it began.
CREATE TABLE resumable_uploads (
    media_id      TEXT NOT NULL,
    label         TEXT NOT NULL,
    object_key    TEXT NOT NULL,       -- relative to the archive's prefix
    upload_id     TEXT NOT NULL,
    declared_size INTEGER NOT NULL,
    head          BLOB NOT NULL,
    started_at    INTEGER NOT NULL,
    PRIMARY KEY (media_id, label),
    UNIQUE (object_key, upload_id),
    FOREIGN KEY (media_id, label) REFERENCES variants(media_id, label)
) STRICT;

-- A point a transfer can resume from: every part boundary (8 MiB) the
-- bytes reached, with the sha256 state there (32 bytes: no partial block
-- is pending at a boundary, so state and byte count are the whole of it).
-- On object storage, the part that ends there (its number, size and the
-- store's id of it, ETag and checksum); on the disk, the sha256 of the
-- last bytes before the point, so a `.part` that does not hold what the
-- state claims is found out before the state is used.
CREATE TABLE resume_points (
    media_id     TEXT NOT NULL,
    label        TEXT NOT NULL,
    end_offset   INTEGER NOT NULL,
    part_number  INTEGER NOT NULL,     -- 1-based, as S3 numbers parts
    part_size    INTEGER NOT NULL,
    sha256_state BLOB NOT NULL CHECK (length(sha256_state) = 32),
    part_id      TEXT,                 -- object storage: the store's id of the part
    tail_sha256  BLOB,                 -- disk: sha256 of the bytes just before end_offset
    PRIMARY KEY (media_id, label, end_offset),
    FOREIGN KEY (media_id, label) REFERENCES variants(media_id, label)
) STRICT, WITHOUT ROWID;
