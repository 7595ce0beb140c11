#!/usr/bin/env bash
# Sourced after 003_verify_restore.sh. 004_run_backups.sh's loop sleeps BACKUP_FREQUENCY (4 h) before
# its first base backup, so a new database would have none to restore for 4 h, and a restored one
# (PostgreSQL 11 recovers along the base backup's timeline) would lose what it wrote after its restore.
# One base backup now closes both gaps. do_backup skips while recovery still runs; a failure leaves
# the periodic backups as the image has them.
su-exec postgres do_backup || echo "hephy-doks: the first base backup failed; the periodic one follows in ${BACKUP_FREQUENCY:-4h}" >&2
