#!/bin/sh
# The off-cluster copy of Workflow's object store, run by the CronJob hephy-doks-backup in the rclone
# image (Alpine's sh). The remotes `minio` (deis-minio) and `spaces` (the stack's bucket) come from
# RCLONE_CONFIG_* variables (rclone docs/content/docs.md, "Config file": remotes from the environment).
#
# Every bucket of the store (the database's base backups and WAL in dbwal, the builder's slugs in git,
# the registry's) lands under its own name in the backup bucket. `sync` makes the bucket's current
# objects the store's; what it overwrites or deletes stays there as a noncurrent version, which the
# bucket's lifecycle expires. WAL-E writes each file once and lists only base backups that have their
# stop sentinel, so a copy made while a backup runs restores the previous one.
set -eu

# A store without a single finished base backup is a new or lost one (an emptied volume, a fresh minio):
# mirroring it would mark every object of the copy deleted. Refuse, loudly, and leave the copy as it is.
if ! rclone lsf "minio:${DATABASE_BUCKET}/basebackups_005/" | grep -q '_backup_stop_sentinel\.json$'; then
    echo "hephy-doks: the object store holds no finished base backup in ${DATABASE_BUCKET}; the copy in ${BACKUP_BUCKET} is left as it is" >&2
    exit 1
fi
# hephy-doks/ holds what the program keeps beside the copy (the database's credentials): no bucket of
# minio's, and left alone by the sync.
rclone sync minio: "spaces:${BACKUP_BUCKET}" --exclude "/hephy-doks/**" --fast-list --stats-one-line --stats 0 -v
echo "hephy-doks: the object store is copied to ${BACKUP_BUCKET}"
