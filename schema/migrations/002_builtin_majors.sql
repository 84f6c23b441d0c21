-- 002_builtin_majors: the majors the first users need, from the 职业教育专业目录(2021年).
-- The full catalog is loaded with `zyk vocab import-majors FILE.csv`.
INSERT INTO vocabulary_versions (id, vocabulary, version, source, digest, imported_at)
VALUES (1, 'majors', '2021-builtin', '职业教育专业目录(2021年), built-in subset', 'builtin', '2021-03-12T00:00:00Z');

INSERT INTO majors (code, education_level, name, item_level, parent_code, catalog, vocabulary_version_id) VALUES
    ('52',     'higherVocational', '医药卫生大类',       'category', NULL,   'MOE_VOCATIONAL_2021', 1),
    ('5202',   'higherVocational', '护理类',             'class',    '52',   'MOE_VOCATIONAL_2021', 1),
    ('520201', 'higherVocational', '护理',               'major',    '5202', 'MOE_VOCATIONAL_2021', 1),
    ('5203',   'higherVocational', '药学类',             'class',    '52',   'MOE_VOCATIONAL_2021', 1),
    ('520301', 'higherVocational', '药学',               'major',    '5203', 'MOE_VOCATIONAL_2021', 1),
    ('5204',   'higherVocational', '中医药类',           'class',    '52',   'MOE_VOCATIONAL_2021', 1),
    ('520410', 'higherVocational', '中药学',             'major',    '5204', 'MOE_VOCATIONAL_2021', 1),
    ('5206',   'higherVocational', '康复治疗类',         'class',    '52',   'MOE_VOCATIONAL_2021', 1),
    ('520601', 'higherVocational', '康复治疗技术',       'major',    '5206', 'MOE_VOCATIONAL_2021', 1),
    ('49',     'higherVocational', '食品药品与粮食大类', 'category', NULL,   'MOE_VOCATIONAL_2021', 1),
    ('4902',   'higherVocational', '药品与医疗器械类',   'class',    '49',   'MOE_VOCATIONAL_2021', 1),
    ('490201', 'higherVocational', '药品生产技术',       'major',    '4902', 'MOE_VOCATIONAL_2021', 1),
    ('77',     'secondary',        '教育与体育大类',     'category', NULL,   'MOE_VOCATIONAL_2021', 1),
    ('7701',   'secondary',        '教育类',             'class',    '77',   'MOE_VOCATIONAL_2021', 1),
    ('770101', 'secondary',        '幼儿保育',           'major',    '7701', 'MOE_VOCATIONAL_2021', 1);
