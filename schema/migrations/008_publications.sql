-- 008_publications: which versions readers may read. Readers see a version only if it was
-- published and that publication was not withdrawn since — not every version numbered below
-- the published one (a rejected or withdrawn version stays private to the owner's side).
CREATE TABLE publications (
    resource_id   TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    version       INTEGER NOT NULL,
    published_at  TEXT NOT NULL,
    withdrawn_at  TEXT,
    PRIMARY KEY (resource_id, version),
    FOREIGN KEY (resource_id, version) REFERENCES versions(resource_id, number) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

INSERT INTO publications (resource_id, version, published_at)
SELECT id, published_version, coalesce(published_at, updated_at) FROM resources WHERE published_version IS NOT NULL;
