-- 004_settings: small key/value facts about the catalog that code checks on open.
-- 'search.tokenizer' is the version of the 'zyk' tokenizer that built resource_search. The
-- tokenizer is code (SearchText in ZiyuankuCore); when its version differs from this value,
-- Catalog.open rebuilds the index (the index built by 003 used version 1).

CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL CHECK (length(key) BETWEEN 1 AND 100),
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO settings (key, value) VALUES ('search.tokenizer', '1');

