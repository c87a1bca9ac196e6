#!/bin/sh
# Point-in-time recovery of PostgreSQL: a base backup laid down as PGDATA, then the archived WAL replayed.
#
#   pg-restore.sh BACKUP_DIR PGDATA ARCHIVE_DIR [TARGET_TIME]
#
# The server must be stopped. PGDATA is emptied (what the disaster left is useless), the base backup
# copied in (the backup itself stays untouched: it can be restored again), and recovery configured:
# restore_command fetches segments from ARCHIVE_DIR; without TARGET_TIME recovery replays every
# archived segment (the latest point the archive knows), with it (e.g. '2026-12-01 10:40:00+00')
# it stops there. recovery_target_action=promote: the server opens for writes when recovery ends.
# Start the server afterwards (systemctl, supervisord, the operator) and wait for
# `SELECT pg_is_in_recovery()` to return false. Run as the server's OS user.
set -eu
backup=$1 pgdata=$2 archive=$3 target=${4:-}
[ -f "$backup/backup_label" ] || { echo "pg-restore: $backup is not a base backup (no backup_label)" >&2; exit 2; }
[ -d "$archive" ] || { echo "pg-restore: no WAL archive at $archive" >&2; exit 2; }
mkdir -p "$pgdata"
find "$pgdata" -mindepth 1 -delete
cp -a "$backup/." "$pgdata/"
rm -f "$pgdata/backup_manifest" "$pgdata/postmaster.pid"
chmod 700 "$pgdata"
{
    echo "# pg-restore.sh $(date -u +%FT%TZ): point-in-time recovery from $archive"
    echo "restore_command = 'cp \"$archive/%f\" \"%p\"'"
    echo "recovery_target_action = 'promote'"
    echo "recovery_target_timeline = 'latest'"
    [ -z "$target" ] || echo "recovery_target_time = '$target'"
} >> "$pgdata/postgresql.auto.conf"
touch "$pgdata/recovery.signal"
