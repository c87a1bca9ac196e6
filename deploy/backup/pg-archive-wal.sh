#!/bin/sh
# PostgreSQL archive_command: copy one finished WAL segment into the archive directory.
#
#   archive_mode = on
#   archive_command = '/path/to/pg-archive-wal.sh /backups/wal-archive %p %f'
#
# Archiving is on only while the archive directory exists: a server with archive_mode=on and no
# backup taken yet recycles its WAL as usual (exit 0 without copying), so the archive never grows
# on a stack nobody backs up. The first base backup (pg-base-backup.sh) creates the directory.
# A segment already archived with the same content is success (a restored server re-archives);
# with other content it is an error, so PostgreSQL keeps the segment and retries.
set -eu
archive=$1 path=$2 name=$3
[ -d "$archive" ] || exit 0
if [ -f "$archive/$name" ]; then
    cmp -s "$path" "$archive/$name" && exit 0
    echo "pg-archive-wal: $archive/$name exists with other content" >&2
    exit 1
fi
cp "$path" "$archive/.$name.tmp"
sync "$archive/.$name.tmp" 2>/dev/null || true
mv "$archive/.$name.tmp" "$archive/$name"
