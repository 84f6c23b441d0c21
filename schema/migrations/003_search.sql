-- 003_search: the Chinese-first full-text index and download counts for "most downloaded".
-- The tokenizer 'zyk' is registered by the server on every connection (SearchText in
-- ZiyuankuCore: bigrams + pinyin + initials, NFKC, case folding, traditional -> simplified).
-- The index holds what readers see: the published version, or the newest one before the first
-- publication; rowid = resources.rowid.

ALTER TABLE resources ADD COLUMN download_count INTEGER NOT NULL DEFAULT 0 CHECK (download_count >= 0);
CREATE INDEX resources_by_downloads ON resources(download_count DESC, updated_at DESC);

CREATE VIRTUAL TABLE resource_search USING fts5(
    title, keywords, knowledge_points, course, authors, description,
    tokenize = 'zyk'
);

INSERT INTO resource_search (rowid, title, keywords, knowledge_points, course, authors, description)
SELECT r.rowid,
       json_extract(v.metadata, '$.title'),
       (SELECT group_concat(value, ' ; ') FROM json_each(v.metadata, '$.keywords')),
       (SELECT group_concat(value, ' ; ') FROM json_each(v.metadata, '$.knowledgePoints')),
       json_extract(v.metadata, '$.course'),
       (SELECT group_concat(json_extract(value, '$.name'), ' ; ') FROM json_each(v.metadata, '$.authors')),
       json_extract(v.metadata, '$.description')
FROM resources r
JOIN versions v ON v.resource_id = r.id AND v.number = coalesce(r.published_version, r.current_version)
WHERE r.deleted_at IS NULL;
