-- 010_sync: the outbox to the national platform (PRODUCT.md §5, schema/platform-v1.md).
-- One row per selected resource: selecting it, publishing a new version of it, withdrawing or
-- deleting it rewrites the row in the same transaction as the change, so a resource changed
-- twice before a sync sends only its latest state. No foreign key to resources: a deletion must
-- still reach the platform after the resource is purged here.
CREATE TABLE sync_outbox (
    resource_id     TEXT PRIMARY KEY NOT NULL,
    op              TEXT NOT NULL CHECK (op IN ('put', 'delete')),
    version         INTEGER CHECK ((op = 'put') = (version IS NOT NULL)),
    state           TEXT NOT NULL CHECK (state IN ('pending', 'inFlight', 'done', 'failed', 'dead')),
    -- Bumped by every change; a run marks an entry done only if it sent this generation.
    generation      INTEGER NOT NULL DEFAULT 1,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,             -- Unix seconds
    last_error      TEXT,
    last_status     INTEGER,
    remote_id       TEXT,
    -- The version the platform holds after the last successful put (NULL after a delete).
    sent_version    INTEGER,
    selected_at     TEXT NOT NULL,
    selected_by     TEXT,
    enqueued_at     TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    done_at         TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX sync_outbox_due ON sync_outbox(state, next_attempt_at);

-- The record body first sent for a version: every later send of that version (retries, a replay
-- after a crash, a re-selection) sends exactly these bytes under the same idempotency key
-- `{id}:{version}`, even if an organization or a major was renamed meanwhile. Dropped when the
-- platform confirms a newer version or a deletion (after which it forgets the keys).
CREATE TABLE sync_records (
    resource_id  TEXT NOT NULL,
    version      INTEGER NOT NULL,
    body         BLOB NOT NULL,
    PRIMARY KEY (resource_id, version)
) STRICT, WITHOUT ROWID;

-- Every attempt, for admins reading an entry's history.
CREATE TABLE sync_attempts (
    id           INTEGER PRIMARY KEY,
    resource_id  TEXT NOT NULL,
    generation   INTEGER NOT NULL,
    op           TEXT NOT NULL,
    version      INTEGER,
    started_at   TEXT NOT NULL,
    finished_at  TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('done', 'failed', 'dead', 'interrupted', 'cancelled')),
    http_status  INTEGER,
    error        TEXT,
    retry_after  REAL,
    bytes_sent   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX sync_attempts_by_resource ON sync_attempts(resource_id, id);
