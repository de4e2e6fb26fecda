-- {{view}}: the rows of the data files listed in the variable {{variable}} (a snapshot taken by
-- the Lake; see Lake.refresh). Every file in the list has the same schema (layout.file_schema),
-- so columns are taken from the first file. (union_by_name would read every file's footer on
-- every query, which small-file lakes cannot afford.) The `date` column comes from the
-- date=YYYY-MM-DD directory names; files do not hold it.
CREATE OR REPLACE TEMP VIEW {{view}} AS
SELECT *
FROM read_parquet(
    getvariable('{{variable}}'),
    hive_partitioning = true,
    hive_types = {'date': DATE}
);
