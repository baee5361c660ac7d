-- vault-mirror state, migration 5: rolling verification (`verify --budget`,
-- `verify --max-bytes`). Append-only like schema.sql: never edit once released.

-- Each variant's last check by `verify` (its bytes re-read and hashed
-- against `sha256`): when, and what it found. NULL until verify first
-- re-reads it, and again whenever new bytes are committed (mark_verified):
-- a check speaks only of the bytes it read.
ALTER TABLE variants ADD COLUMN checked_at INTEGER;
ALTER TABLE variants ADD COLUMN check_outcome TEXT
    CHECK (check_outcome IN ('intact', 'missing', 'damaged'));

-- The rolling check's order: never checked first, then checked longest ago.
CREATE INDEX variants_by_check ON variants(local_state, checked_at);
