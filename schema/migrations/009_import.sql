-- 009_import: bulk import is idempotent per row: each manifest row carries an import key, and a
-- row whose key this owner already imported is skipped (a re-run after a crash resumes).
CREATE TABLE import_rows (
    owner_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    import_key   TEXT NOT NULL CHECK (length(import_key) BETWEEN 1 AND 200),
    resource_id  TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    imported_at  TEXT NOT NULL,
    PRIMARY KEY (owner_id, import_key)
) STRICT, WITHOUT ROWID;

-- Imports sent over HTTP (manifest + zip) run in the background; the client polls the job.
CREATE TABLE import_jobs (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'interrupted')),
    created_at   TEXT NOT NULL,
    finished_at  TEXT,
    summary      TEXT CHECK (summary IS NULL OR json_valid(summary)),
    error        TEXT
) STRICT;
