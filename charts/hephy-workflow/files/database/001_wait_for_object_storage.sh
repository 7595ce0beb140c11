#!/usr/bin/env bash
# Sourced by the image's docker-entrypoint.sh (teamhephy/postgres v2.7.6) on an empty data directory,
# after 001_setup_envdir.sh has written WAL-E's environment and before 002_create_bucket.sh and
# 003_restore_from_backup.sh. 003 chooses between restoring the newest backup and an empty database by
# counting the lines `wal-e backup-list` prints, and a listing that fails prints as many lines as an
# empty bucket. So nothing goes on until object storage answers and lists the bucket, within
# OBJECT_STORAGE_WAIT_SECONDS; past that the container exits, and Kubernetes starts it again with an
# empty data directory (the image's VOLUME belongs to the container, not the pod).
hephy_doks_deadline=$((SECONDS + OBJECT_STORAGE_WAIT_SECONDS))
until BOTO_CONFIG="$GUARD_BOTO_CONFIG" envdir "$WALE_ENVDIR" create_bucket &&
    BOTO_CONFIG="$GUARD_BOTO_CONFIG" envdir "$WALE_ENVDIR" wal-e --terse backup-list > /dev/null; do
    if ((SECONDS >= hephy_doks_deadline)); then
        echo "hephy-doks: object storage did not list the database's bucket within ${OBJECT_STORAGE_WAIT_SECONDS} s; exiting, so that no empty database is initialised over a backup" >&2
        exit 1
    fi
    echo "hephy-doks: waiting for object storage to list the database's bucket" >&2
    sleep 5
done
echo "hephy-doks: object storage lists the database's bucket"
