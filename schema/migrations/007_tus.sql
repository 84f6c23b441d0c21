-- 007_tus: resumable uploads (tus 1.0.0). One row per upload; the bytes received so far are in
-- tmp/tus-<id>. `received` only advances over bytes already fsynced. A finished upload becomes
-- a blob (its sha256 is set) and the row stays until it expires, so the client can read it back.

CREATE TABLE tus_uploads (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    length        INTEGER NOT NULL CHECK (length >= 0),
    received      INTEGER NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= length),
    metadata      TEXT NOT NULL DEFAULT '' CHECK (length(metadata) <= 4096),
    filename      TEXT CHECK (filename IS NULL OR length(CAST(filename AS BLOB)) BETWEEN 1 AND 255),
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    sha256        TEXT CHECK (sha256 IS NULL OR length(sha256) = 64),
    completed_at  TEXT,
    CHECK ((sha256 IS NULL) = (completed_at IS NULL)),
    CHECK (sha256 IS NULL OR received = length)
) STRICT;
CREATE INDEX tus_uploads_by_expiry ON tus_uploads(expires_at);
