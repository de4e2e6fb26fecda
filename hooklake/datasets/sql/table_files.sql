-- {{view}}: the rows of one version of a Delta table on local disk, read straight from the
-- version's data files (listed in the variable {{variable}} by the Lake; see Lake.refresh).
-- Data files never change once written, so the list pins the version. Every file was written
-- with the table's schema, so columns are taken from the first file (union_by_name would read
-- every footer on every query). `date`, the partition column, comes from the date=YYYY-MM-DD
-- directory names; files do not hold it.
CREATE OR REPLACE TEMP VIEW {{view}} AS
SELECT *
FROM read_parquet(
    getvariable('{{variable}}'),
    hive_partitioning = true,
    hive_types = {'date': DATE}
);
