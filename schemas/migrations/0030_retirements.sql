-- 0030_retirements: the history of tables retired by `logpipe retire` (rename, restore, drop),
-- with the usage evidence each step was taken on.
CREATE TABLE IF NOT EXISTS table_retirements
(
    time          DateTime  COMMENT 'When the step was taken (UTC)',
    table_name    String    COMMENT 'The table''s name in use (before retirement)',
    retired_name  String    COMMENT 'Its name while retired: <table>__retired_YYYYMMDD',
    action        String    COMMENT 'rename (retired), restore (renamed back) or drop',
    by            String    COMMENT 'Who ran it (OS user)',
    reason        String    COMMENT 'Why, as given',
    evidence      String    COMMENT 'Usage evidence at the time: last read, readers, reads in the quiet period'
)
ENGINE = MergeTree()
ORDER BY (table_name, time)
