-- 001_core: organizations, users, tokens, majors vocabulary, blobs, resources and their
-- immutable versions. Append-only: never edit a migration once shipped; add 002_… instead.
-- Integrity lives here: NOT NULL, foreign keys, CHECK constraints for every enum, unique indexes.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    kind        TEXT NOT NULL CHECK (kind IN ('secondaryVocational', 'higherVocational', 'university',
                                              'enterprise', 'research', 'government', 'platform')),
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id               TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE RESTRICT,
    name             TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role             TEXT NOT NULL CHECK (role IN ('teacher', 'reviewer', 'reader', 'admin')),
    disabled         INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at       TEXT NOT NULL
) STRICT;
CREATE INDEX users_by_organization ON users(organization_id);

-- Only the SHA-256 digest of a token is stored; the token itself is shown once at creation.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    digest      BLOB NOT NULL UNIQUE CHECK (length(digest) = 32),
    label       TEXT NOT NULL DEFAULT '' CHECK (length(label) <= 100),
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
) STRICT;
CREATE INDEX tokens_by_user ON tokens(user_id);

-- Vocabulary versions (e.g. the 2021 major catalog) and the majors they define.
CREATE TABLE vocabulary_versions (
    id           INTEGER PRIMARY KEY,
    vocabulary   TEXT NOT NULL CHECK (vocabulary IN ('majors')),
    version      TEXT NOT NULL,
    source       TEXT NOT NULL,
    digest       TEXT NOT NULL,
    imported_at  TEXT NOT NULL,
    UNIQUE (vocabulary, version, digest)
) STRICT;

-- 专业大类 (2 digits), 专业类 (4 digits) and 专业 (6 digits, optional K suffix for nationally
-- controlled majors). Codes are unique across education levels in the 2021 catalog.
CREATE TABLE majors (
    code             TEXT PRIMARY KEY NOT NULL
                     CHECK (code GLOB '[0-9][0-9]' OR code GLOB '[0-9][0-9][0-9][0-9]'
                            OR code GLOB '[0-9][0-9][0-9][0-9][0-9][0-9]'
                            OR code GLOB '[0-9][0-9][0-9][0-9][0-9][0-9]K'),
    education_level  TEXT NOT NULL CHECK (education_level IN ('secondary', 'higherVocational', 'vocationalBachelor')),
    name             TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    item_level       TEXT NOT NULL CHECK (item_level IN ('category', 'class', 'major')),
    parent_code      TEXT REFERENCES majors(code) DEFERRABLE INITIALLY DEFERRED,
    catalog          TEXT NOT NULL,
    vocabulary_version_id INTEGER REFERENCES vocabulary_versions(id),
    CHECK ((item_level = 'category') = (length(code) = 2)),
    CHECK ((item_level = 'class') = (length(code) = 4)),
    CHECK ((item_level = 'category') = (parent_code IS NULL))
) STRICT;
CREATE INDEX majors_by_parent ON majors(parent_code);

-- Content-addressed bytes. The file lives at blobs/ab/cd/<sha256>; a row exists once the file
-- is complete, fsynced and renamed into place.
CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    size        INTEGER NOT NULL CHECK (size >= 0),
    created_at  TEXT NOT NULL
) STRICT;

-- Who uploaded which blob: a blob may be attached to a resource only by someone who sent its bytes.
CREATE TABLE blob_uploads (
    sha256      TEXT NOT NULL REFERENCES blobs(sha256) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    uploaded_at TEXT NOT NULL,
    PRIMARY KEY (sha256, user_id)
) STRICT;

CREATE TABLE resources (
    id                 TEXT PRIMARY KEY NOT NULL,
    owner_id           TEXT NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    organization_id    TEXT NOT NULL REFERENCES organizations(id) ON DELETE RESTRICT,
    status             TEXT NOT NULL CHECK (status IN ('draft', 'inReview', 'published', 'rejected', 'withdrawn')),
    current_version    INTEGER NOT NULL CHECK (current_version >= 1),
    published_version  INTEGER CHECK (published_version IS NULL OR published_version BETWEEN 1 AND current_version),
    -- denormalised from the current version, for filters and listing
    title              TEXT NOT NULL,
    resource_type      TEXT NOT NULL,
    education_level    TEXT NOT NULL,
    visibility         TEXT NOT NULL CHECK (visibility IN ('public', 'organization', 'private')),
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    published_at       TEXT,
    deleted_at         TEXT,
    CHECK (status <> 'published' OR published_version IS NOT NULL),
    FOREIGN KEY (id, current_version) REFERENCES versions(resource_id, number) DEFERRABLE INITIALLY DEFERRED
) STRICT;
CREATE INDEX resources_by_updated ON resources(updated_at DESC, id DESC);
CREATE INDEX resources_by_org ON resources(organization_id, status);
CREATE INDEX resources_by_owner ON resources(owner_id);

-- Immutable snapshots: a row is never updated or deleted once written (triggers below).
CREATE TABLE versions (
    resource_id  TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    number       INTEGER NOT NULL CHECK (number >= 1),
    metadata     TEXT NOT NULL CHECK (json_valid(metadata)),
    author_id    TEXT NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    change_note  TEXT NOT NULL DEFAULT '' CHECK (length(change_note) <= 1000),
    created_at   TEXT NOT NULL,
    PRIMARY KEY (resource_id, number)
) STRICT;

CREATE TABLE version_files (
    resource_id  TEXT NOT NULL,
    version      INTEGER NOT NULL,
    name         TEXT NOT NULL CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 255),
    sha256       TEXT NOT NULL REFERENCES blobs(sha256) ON DELETE RESTRICT,
    size         INTEGER NOT NULL CHECK (size >= 0),
    media_type   TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('primary', 'subtitle', 'attachment', 'cover')),
    position     INTEGER NOT NULL CHECK (position >= 0),
    PRIMARY KEY (resource_id, version, name),
    FOREIGN KEY (resource_id, version) REFERENCES versions(resource_id, number) ON DELETE CASCADE
) STRICT;
CREATE INDEX version_files_by_blob ON version_files(sha256);

-- Many-to-many for filtering by major code or its 类/大类 prefix.
CREATE TABLE resource_majors (
    resource_id  TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    major_code   TEXT NOT NULL REFERENCES majors(code) ON DELETE RESTRICT,
    PRIMARY KEY (resource_id, major_code)
) STRICT;
CREATE INDEX resource_majors_by_code ON resource_majors(major_code);

CREATE TRIGGER versions_are_immutable_update BEFORE UPDATE ON versions
BEGIN SELECT RAISE(ABORT, 'versions are immutable'); END;
CREATE TRIGGER version_files_are_immutable_update BEFORE UPDATE ON version_files
BEGIN SELECT RAISE(ABORT, 'version files are immutable'); END;
