#!/usr/bin/env bash
# The first step that can see the settings of a workflow run: it stops the run with one line naming the
# first setting it lacks (docs/delivery.md, "Set up once"), instead of a failure deep in the Pulumi CLI
# or the program. Secrets and variables come in through the job's env.
#
#   require-settings.sh            the backend's settings: PULUMI_ACCESS_TOKEN for Pulumi Cloud, or
#                                  PULUMI_BACKEND_URL with its passphrase (and, for s3://, its keys)
#   require-settings.sh STACK      also Pulumi.STACK.yaml, committed with what only you know:
#                                  hephy-doks:domain and hephy-doks:acmeEmail
set -euo pipefail

missing() {
  echo "::error::$1 (docs/delivery.md, \"Set up once\")" >&2
  exit 1
}

if [ -n "${PULUMI_BACKEND_URL:-}" ]; then
  [ -n "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] ||
    missing "set the secret PULUMI_CONFIG_PASSPHRASE: it encrypts the stacks' secrets in the backend PULUMI_BACKEND_URL"
  if [[ $PULUMI_BACKEND_URL == s3://* ]]; then
    [ -n "${AWS_ACCESS_KEY_ID:-}" ] && [ -n "${AWS_SECRET_ACCESS_KEY:-}" ] ||
      missing "set the secrets AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the keys of the backend's bucket"
  fi
else
  [ -n "${PULUMI_ACCESS_TOKEN:-}" ] ||
    missing "set the secret PULUMI_ACCESS_TOKEN for Pulumi Cloud, or the variable PULUMI_BACKEND_URL for a backend of your own"
fi

if [ $# -gt 0 ]; then
  file="Pulumi.$1.yaml"
  [ -f "$file" ] || missing "commit $file, the stack's settings (pulumi stack init $1, then pulumi config set)"
  for key in domain acmeEmail; do
    grep -Eq "^[[:space:]]+hephy-doks:$key:[[:space:]]*[^[:space:]#]" "$file" ||
      missing "commit hephy-doks:$key in $file (pulumi config set --stack $1 hephy-doks:$key <value>)"
  done
fi
echo "settings present"
