#!/bin/sh
# Backup of one ClickHouse MergeTree table with the server's own FREEZE (ClickHouse 18.16 and later).
#
#   clickhouse-backup.sh CLICKHOUSE_URL DATABASE TABLE CLICKHOUSE_PATH DEST
#
# CLICKHOUSE_URL: the HTTP interface (http://host:8123/); CLICKHOUSE_PATH: the server's <path> (its
# data directory, e.g. /var/lib/clickhouse), so run this on the server's host (or in its pod) as the
# user that owns it. `ALTER TABLE ... FREEZE` hard-links every active part of the table into
# shadow/<n>/; the parts are copied into DEST (one directory per part, with their checksums) and
# the shadow increment is removed, leaving the server as it was. Prints the number of parts copied.
# Restore with clickhouse-restore.sh (detached/ + ATTACH PARTITION).
set -eu
url=$1 db=$2 table=$3 chpath=${4%/} dest=$5
q() { curl -sS --fail-with-body --max-time 300 "$url" --data-binary "$1"; }
[ ! -e "$dest" ] || { echo "clickhouse-backup: $dest exists" >&2; exit 2; }
q "ALTER TABLE $db.$table FREEZE" >/dev/null
n=$(cat "$chpath/shadow/increment.txt")
src="$chpath/shadow/$n/data/$db/$table"
mkdir -p "$dest"
if [ -d "$src" ]; then
    cp -a "$src/." "$dest/"
fi
rm -rf "${chpath:?}/shadow/$n"
find "$dest" -mindepth 1 -maxdepth 1 -type d | wc -l
