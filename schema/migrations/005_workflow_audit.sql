-- 005_workflow_audit: the review workflow, soft deletion, daily download counts and the
-- tamper-evident audit log (PRODUCT.md §3, §4, §8).
--
-- Workflow. `status` is the state of the newest version: draft → inReview (submit; the owner
-- may recall) → published (approve) or rejected (with a reason); a new version of a published
-- resource is a draft again. `published_version` is what readers see: it stays while a newer
-- version is drafted, reviewed or rejected, and is cleared when the resource is withdrawn.

ALTER TABLE resources ADD COLUMN submitted_at TEXT;
ALTER TABLE resources ADD COLUMN submitted_by TEXT;
ALTER TABLE resources ADD COLUMN reviewed_at TEXT;
ALTER TABLE resources ADD COLUMN reviewed_by TEXT;
ALTER TABLE resources ADD COLUMN review_reason TEXT CHECK (review_reason IS NULL OR length(review_reason) BETWEEN 1 AND 1000);

-- Before this migration a published resource with a newer version kept status 'published'.
UPDATE resources SET status = 'draft' WHERE status = 'published' AND published_version < current_version;

CREATE INDEX resources_review_queue ON resources(organization_id, status, submitted_at) WHERE deleted_at IS NULL;
CREATE INDEX resources_deleted ON resources(deleted_at) WHERE deleted_at IS NOT NULL;

-- Downloads per resource per day (China Standard Time, UTC+8). A repeated download of the same
-- file by the same client within 30 seconds is counted once (DownloadCounter).
CREATE TABLE download_days (
    resource_id  TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    day          TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    count        INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (resource_id, day)
) STRICT, WITHOUT ROWID;

-- Append-only and hash-chained: every row carries the SHA-256 of the previous row's hash and its
-- own fields (see Catalog+Audit.swift for the exact bytes hashed). `seq` has no gaps. The newest
-- seq and hash are also kept in settings('audit.head'), so that deleting the last rows is found
-- too. Resource and user ids are not foreign keys: the log outlives what it describes.
CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY CHECK (seq >= 1),
    at           TEXT NOT NULL,
    actor_id     TEXT,
    action       TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    resource_id  TEXT,
    version      INTEGER,
    details      TEXT NOT NULL CHECK (json_valid(details)),
    prev_hash    TEXT NOT NULL CHECK (length(prev_hash) = 64),
    hash         TEXT NOT NULL CHECK (length(hash) = 64)
) STRICT;
CREATE INDEX audit_by_resource ON audit_log(resource_id, seq) WHERE resource_id IS NOT NULL;
CREATE INDEX audit_by_actor ON audit_log(actor_id, seq) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_by_action ON audit_log(action, seq);
CREATE INDEX audit_by_time ON audit_log(at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
