#!/bin/sh
# Full physical backup of a PostgreSQL server with pg_basebackup, and WAL archiving switched on.
#
#   pg-base-backup.sh DEST ARCHIVE_DIR
#
# Connection: the usual libpq variables (PGHOST, PGPORT, PGUSER; a role with REPLICATION).
# PG_BINDIR: where pg_basebackup is (default: on PATH). Run it as the user that owns the server's
# files when DEST is on the database host. DEST must not exist. ARCHIVE_DIR is created (owned by the
# caller) so that pg-archive-wal.sh archives every segment from now on: base backup + archive = PITR.
# The backup carries the WAL it needs to be consistent (-X stream); it is checked with pg_verifybackup.
set -eu
dest=$1 archive=$2
bindir=${PG_BINDIR:+$PG_BINDIR/}
[ ! -e "$dest" ] || { echo "pg-base-backup: $dest exists" >&2; exit 2; }
mkdir -p "$archive"
"${bindir}pg_basebackup" -D "$dest" -F plain -X stream -c fast --label "sql-audit backup $(date -u +%FT%TZ)" \
    --manifest-checksums=CRC32C
"${bindir}pg_verifybackup" -q "$dest"
# Which WAL file the backup starts from: older archived segments are not needed by this backup.
sed -n 's/^START WAL LOCATION: .* (file \([0-9A-F]*\))$/\1/p' "$dest/backup_label"
