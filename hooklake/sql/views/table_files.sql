-- {{view}}: the rows of one version of a Delta table on local disk, read straight from the
-- version's data files (listed in the variable {{variable}}; see db.register_parquet).
-- Data files never change once written, so the list pins the version. Every file was written
-- with the table's schema, so columns are taken from the first file (union_by_name would read
-- every footer on every query). Partition columns ({{hive_types}}) come from the directory
-- names (date=YYYY-MM-DD/); files do not hold them.
CREATE OR REPLACE TEMP VIEW {{view}} AS
SELECT *
FROM read_parquet(
    getvariable('{{variable}}'),
    hive_partitioning = true,
    hive_types = {{hive_types}}
);
