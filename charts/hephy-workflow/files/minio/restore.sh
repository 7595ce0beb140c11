#!/bin/sh
# minio's init container when the stack restores from a backup (minio.restore_from): fills the new volume
# from the backup bucket before minio, and so the database and the controller that wait for it, start.
# Runs in the rclone image (Alpine's sh) as minio's user. The bucket holds one directory per bucket of the
# store, as the copy job (backup/copy.sh) writes it, and minio 2019's FS mode serves the files of a bucket
# directory as its objects (cmd/fs-v1.go), so the volume's root takes them as they are.
set -eu
data="${DATA_DIR}"
restored="${data}/.hephy-doks-restored"
restoring="${data}/.hephy-doks-restoring"

if [ -f "${restored}" ]; then
    echo "hephy-doks: the object store was restored from ${RESTORE_BUCKET} before; nothing to do"
    exit 0
fi
# restoreFrom fills a new, empty volume only. One that holds buckets but no mark of an unfinished restore
# is a running store: it is left as it is, whatever the configuration says.
if [ ! -f "${restoring}" ] && [ -n "$(ls -A "${data}" | grep -v -x -e 'lost+found' -e '.minio.sys' || true)" ]; then
    echo "hephy-doks: the volume already holds an object store; restoreFrom fills an empty one only, so nothing is restored" >&2
    exit 0
fi
if ! rclone lsf "source:${RESTORE_BUCKET}/${DATABASE_BUCKET}/basebackups_005/" | grep -q '_backup_stop_sentinel\.json$'; then
    echo "hephy-doks: ${RESTORE_BUCKET} holds no finished base backup of the database in ${DATABASE_BUCKET}/; nothing to restore from" >&2
    exit 1
fi
touch "${restoring}"
# A copy that stops part way is taken up again at the next start: copy skips what is already there.
# hephy-doks/ holds what the program keeps beside the copy (the database's credentials, which the
# program reads itself): no bucket of the store.
rclone copy "source:${RESTORE_BUCKET}" "${data}" --exclude "/hephy-doks/**" --stats-one-line --stats 0 -v
mv "${restoring}" "${restored}"
echo "hephy-doks: the object store is restored from ${RESTORE_BUCKET}"
