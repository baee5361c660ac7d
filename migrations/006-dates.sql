-- vault-mirror state, migration 6: each media's own date and shape
-- (issue 21). Append-only like schema.sql: never edit once released.

-- What the Access API (`GET /v2/access/vault/lists/{id}/media`) says of a
-- media, asked once in its life: dates do not change.
--   taken_at     the media's own date (epoch ms): `createdAt` on OnlyFans
--   date_source  where taken_at came from: 'onlyfans' (the Access API's
--                createdAt); NULL when no date was found there (readers
--                fall back to when Vault+ cached it, then first seen)
--   width, height  of the full file, in pixels, where given
--   described_at when the Access API was asked about it, found or not;
--                NULL: not asked yet, so the next run asks
ALTER TABLE media ADD COLUMN taken_at INTEGER;
ALTER TABLE media ADD COLUMN date_source TEXT;
ALTER TABLE media ADD COLUMN width INTEGER;
ALTER TABLE media ADD COLUMN height INTEGER;
ALTER TABLE media ADD COLUMN described_at INTEGER;

-- The date a verified file's modification time was last set to (epoch
-- ms), so a run sets only the times that differ; NULL when never set, and
-- again whenever new bytes are committed.
ALTER TABLE variants ADD COLUMN file_dated_at INTEGER;

-- The XMP sidecars written (`sidecars = "xmp"`), one per verified file:
-- a sidecar is rewritten only when what it says changes (the media's
-- lists, say), listed in SHA256SUMS, and removed with its file.
CREATE TABLE sidecars (
    media_id   TEXT NOT NULL,
    label      TEXT NOT NULL,
    local_path TEXT NOT NULL UNIQUE,   -- media/<dir>/<label>.xmp
    sha256     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    PRIMARY KEY (media_id, label)
) STRICT, WITHOUT ROWID;

-- The views by template (`[[views]]`) as last written: a view dropped from
-- the config file is found here and removed (its links, never bytes).
CREATE TABLE template_views (
    name     TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    links    INTEGER NOT NULL
) STRICT;
