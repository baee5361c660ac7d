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

-- Which XMP sidecar a media has (its digest), so a sidecar is written
-- only when what it says changed (its lists, say).
ALTER TABLE media ADD COLUMN sidecar_digest TEXT;

-- The views by template (`[[views]]`) as last written: a view dropped from
-- the config file is found here and removed (its links, never bytes).
CREATE TABLE template_views (
    name     TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    links    INTEGER NOT NULL
) STRICT;
