-- vault-mirror state, migration 3: re-runs that write only what changed.
-- Append-only like schema.sql: never edit once released.

-- A variant's row is rewritten when Vault+ describes it differently, not
-- each time it is seen (when a media was last described is
-- media.last_seen_at). A signed URL's expiry lives with the transfer that
-- holds the URL; it was never read from here.
ALTER TABLE variants DROP COLUMN expires_at;
ALTER TABLE variants RENAME COLUMN remote_seen_at TO remote_changed_at;

-- Each list view as last written: a view whose wanted links hash to the
-- same digest, and whose folder is unchanged since (same inode, same
-- modification time), is not read again.
CREATE TABLE view_state (
    view         TEXT PRIMARY KEY,        -- folder name under lists/
    digest       TEXT NOT NULL,           -- sha256 of its wanted links
    folder_inode INTEGER NOT NULL,
    folder_mtime INTEGER NOT NULL,        -- nanoseconds since the epoch
    links        INTEGER NOT NULL         -- links in the folder
) STRICT;
