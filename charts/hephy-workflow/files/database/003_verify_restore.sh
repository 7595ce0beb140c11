#!/usr/bin/env bash
# Sourced after 003_restore_from_backup.sh. A restore leaves the base backup it fetched in
# $PGDATA_RECOVERY. If none was fetched although the bucket holds a backup, 003's own listing failed
# (object storage went away since 001_wait_for_object_storage.sh) and it went on with an empty
# database, whose base backups (004_run_backups.sh) would become the newest: exit before any of them,
# or any WAL segment of the empty database, leaves the container, and start again.
if [[ ! -s "$PGDATA_RECOVERY/PG_VERSION" ]]; then
    if ! hephy_doks_listing=$(BOTO_CONFIG="$GUARD_BOTO_CONFIG" envdir "$WALE_ENVDIR" wal-e --terse backup-list); then
        echo "hephy-doks: no backup was restored, and object storage cannot list the bucket to confirm that it holds none; exiting" >&2
        exit 1
    fi
    # The first line is a heading.
    hephy_doks_backups=$(($(printf '%s\n' "$hephy_doks_listing" | wc -l) - 1))
    if ((hephy_doks_backups > 0)); then
        echo "hephy-doks: the bucket holds ${hephy_doks_backups} backup(s), but none was restored; exiting, so that the empty database is never backed up over them" >&2
        exit 1
    fi
    echo "hephy-doks: the bucket holds no backup: this is a new database"
else
    echo "hephy-doks: the newest backup was restored"
fi
