#!/usr/bin/env bash
# The first job of every Pulumi operation (pulumi.yml), run before any secret is within reach: it
# refuses a stack outside the allowlist and production from anything but main, and names the GitHub
# environment whose secrets the operation gets. Production's are production's own: a stack name is
# matched whole, so no spelling (a fully qualified <org>/<project>/production, a case change) lands in
# another environment than its own. It runs the triggering ref's copy of itself, which a branch can
# change: what a branch cannot change is the production environment's own rules (deployment branches:
# main; required reviewers), which docs/delivery.md sets up.
#
#   STACK=... REF=... stack-guard.sh    prints environment=<staging|production>, and appends it to
#                                       $GITHUB_OUTPUT when set; exits 1 with the reason otherwise
set -euo pipefail

# The short-lived names are teardown-guard.sh's SHORT_LIVED, so every stack a teardown selects can run.
ALLOWED='^(production|staging(-[a-z0-9][a-z0-9-]*)?|pr-[0-9]+)$'
MAIN=refs/heads/main

refuse() {
  echo "::error::stack \"$STACK\" refused: $1" >&2
  exit 1
}

[[ $STACK =~ $ALLOWED ]] || refuse "stacks are production, staging, staging-<name> or pr-<number>, by their bare name"
if [[ $STACK == production ]]; then
  [[ $REF == "$MAIN" ]] || refuse "production runs only from $MAIN, not $REF"
  environment=production
else
  environment=staging
fi
echo "environment=$environment"
if [[ -n ${GITHUB_OUTPUT:-} ]]; then
  echo "environment=$environment" >> "$GITHUB_OUTPUT"
fi
