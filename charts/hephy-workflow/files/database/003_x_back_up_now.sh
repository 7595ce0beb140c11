#!/usr/bin/env bash
# Sourced after 003_verify_restore.sh. 004_run_backups.sh's loop sleeps BACKUP_FREQUENCY (4 h) before
# its first base backup, so a new database would have none to restore for 4 h, and a restored one
# (PostgreSQL 11 recovers along the base backup's timeline) would lose what it wrote after its restore.
# So one base backup as soon as the server is the real one: recovery over (no recovery.conf, which
# do_backup refuses to back up) and listening on TCP, which the first-start server never does. In the
# background, as 004's loop: the entrypoint goes on, and a slow object store holds nothing up.
(
    until [[ ! -f "$PGDATA/recovery.conf" ]] && pg_isready -q -h 127.0.0.1; do
        sleep 10
    done
    su-exec postgres do_backup || echo "hephy-doks: the first base backup failed; the periodic one follows in ${BACKUP_FREQUENCY:-4h}" >&2
    # Once the entrypoint execs postgres, the postmaster is this process's parent, and it takes a child
    # that ends with a status other than 0 or 1 for a crashed backend: like 004's loop, never end.
    while :; do sleep 3600; done
) &
