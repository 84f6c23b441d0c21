-- 006_upkeep: runs of the upkeep jobs and what fixity last found per blob (PRODUCT.md §8).

-- One row per run of a job, written when it starts ('running') and updated when it ends. A
-- run left 'running' by a killed process is marked 'interrupted' the next time jobs start.
CREATE TABLE job_runs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('fixity', 'gc', 'verify', 'optimize', 'reindex', 'backup', 'restore', 'report')),
    trigger     TEXT NOT NULL CHECK (trigger IN ('cli', 'schedule', 'api')),
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('running', 'ok', 'problems', 'failed', 'interrupted')),
    counts      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(counts)),
    details     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
    CHECK ((outcome = 'running') = (ended_at IS NULL))
) STRICT;
CREATE INDEX job_runs_by_kind ON job_runs(kind, id DESC);

-- Fixity: when each blob was last re-hashed and what that found. Slices check the least
-- recently verified first (never-verified blobs before all others).
ALTER TABLE blobs ADD COLUMN verified_at TEXT;
ALTER TABLE blobs ADD COLUMN fixity TEXT CHECK (fixity IS NULL OR fixity IN ('ok', 'mismatch', 'missing'));
CREATE INDEX blobs_by_verified ON blobs(coalesce(verified_at, ''), sha256);
