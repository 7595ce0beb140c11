#!/usr/bin/env bash
# The controller container's command: start.sh APP_DIR DATABASE_WAIT_SECONDS, then the image's own boot.
#
# Under REGISTRATION_MODE=admin_only, registration is open to anyone while no superuser exists, and the
# first to register becomes one (teamhephy/controller v2.22.0 rootfs/api/permissions.py
# `HasRegistrationAuth`, api/serializers.py `UserSerializer.create`). The image's boot migrates the
# database and starts serving at once (rootfs/bin/boot), so an empty database, new or restored from
# nothing, would be open to the first comer. Here every start of the container migrates and makes
# sure the stack's admin exists before boot serves a single request; boot's own migration then finds
# nothing to do. A database that does not answer within the bound fails the container loudly, and
# Kubernetes starts it again.
set -euo pipefail
app=$1
wait_seconds=$2
deadline=$((SECONDS + wait_seconds))
until python "$app/manage.py" healthchecks; do
    if ((SECONDS >= deadline)); then
        echo "hephy-doks: the database did not answer within ${wait_seconds} s; the controller does not start without it" >&2
        exit 1
    fi
    sleep 5
done
sudo -E -u deis python "$app/manage.py" migrate --noinput
sudo -E -u deis python "$app/manage.py" shell -c "$(cat "$(dirname "$0")/ensure_admin.py")"
exec "$app/bin/boot"
