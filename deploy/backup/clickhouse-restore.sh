#!/bin/sh
# Restore of one ClickHouse MergeTree table from clickhouse-backup.sh: parts copied into the table's
# detached/ directory, then attached with `ALTER TABLE ... ATTACH PARTITION ID`, one per partition.
#
#   clickhouse-restore.sh CLICKHOUSE_URL DATABASE TABLE CLICKHOUSE_PATH SRC
#
# The table must exist (the schema is code: sqlaudit/schema/clickhouse.sql). Parts already in the
# table stay: a ReplacingMergeTree keeps one row per key when it merges, so rows written again by the
# Kafka replay do no harm. The backup in SRC is copied, not moved: it can be restored again.
# Prints the table's row count after the attach.
set -eu
url=$1 db=$2 table=$3 chpath=${4%/} src=$5
q() { curl -sS --fail-with-body --max-time 300 "$url" --data-binary "$1"; }
detached="$chpath/data/$db/$table/detached"
[ -d "$detached" ] || { echo "clickhouse-restore: no table $db.$table under $chpath (no $detached)" >&2; exit 2; }
partitions=""
for part in "$src"/*/; do
    [ -d "$part" ] || continue
    name=$(basename "$part")
    cp -a "$part" "$detached/$name"
    partitions="$partitions ${name%%_*}"
done
for id in $(printf '%s\n' $partitions | sort -u); do
    q "ALTER TABLE $db.$table ATTACH PARTITION ID '$id'" >/dev/null
done
q "SELECT count() FROM $db.$table"
