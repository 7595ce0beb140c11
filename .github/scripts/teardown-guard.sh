#!/usr/bin/env bash
# The teardown workflow's guard. Only short-lived stacks may be destroyed: staging, staging-<name> and
# pr-<number>; never production, never another name, and never a stack that protects its resources
# (hephy-doks:protect true in its config, or any resource marked protected in its state).
#
#   teardown-guard.sh STACK     exits 0 if STACK may be destroyed, else prints why and exits 1
#   teardown-guard.sh --select  writes stacks=<JSON list> to $GITHUB_OUTPUT: the stacks this event
#                               tears down (EVENT, INPUT_STACK and PR_NUMBER from the workflow)
set -euo pipefail

SHORT_LIVED='^(staging(-[a-z0-9][a-z0-9-]*)?|pr-[0-9]+)$'

refuse() {
  echo "::error::teardown refuses stack \"$1\": $2" >&2
  return 1
}

check_name() {
  if [[ $1 == prod* ]]; then
    refuse "$1" "production stacks are never torn down by a workflow"
  elif [[ ! $1 =~ $SHORT_LIVED ]]; then
    refuse "$1" "only staging, staging-<name> and pr-<number> stacks are torn down"
  fi
}

check_unprotected() {
  local protect protected
  # A stack without the key in its config has the default, false.
  protect=$(pulumi config get hephy-doks:protect --stack "$1" 2>/dev/null || echo false)
  if [[ $protect == true ]]; then
    refuse "$1" "its config sets hephy-doks:protect true; set it to false and run pulumi up before tearing it down"
    return 1
  fi
  protected=$(pulumi stack export --stack "$1" | jq -r '[.deployment.resources[]? | select(.protect == true) | .urn] | join(", ")')
  if [[ -n $protected ]]; then
    refuse "$1" "its state has protected resources: $protected"
  fi
}

existing_stacks() {
  pulumi stack ls --json | jq -r '.[].name | split("/") | last'
}

select_stacks() {
  local candidates=() chosen=() existing stack
  existing=$(existing_stacks)
  case ${EVENT:-} in
    workflow_dispatch) candidates=("${INPUT_STACK:-}") ;;
    pull_request) candidates=("pr-${PR_NUMBER:-}") ;;
    schedule) mapfile -t candidates < <(grep -E '^staging-' <<<"$existing" || true) ;;
    *) echo "::error::teardown-guard.sh --select: unexpected event \"${EVENT:-}\"" >&2; return 1 ;;
  esac
  for stack in "${candidates[@]}"; do
    check_name "$stack" || return 1
    if ! grep -qx -- "$stack" <<<"$existing"; then
      echo "no stack \"$stack\" in the backend; nothing to tear down"
    elif [[ $EVENT == schedule ]] && ! check_unprotected "$stack"; then
      echo "the nightly teardown skips \"$stack\""
    else
      chosen+=("$stack")
    fi
  done
  echo "stacks=$(printf '%s\n' "${chosen[@]}" | jq -Rsc 'split("\n") | map(select(. != ""))')" >>"${GITHUB_OUTPUT:-/dev/stdout}"
}

case ${1:-} in
  --select) select_stacks ;;
  "") echo "usage: $0 STACK | --select" >&2; exit 2 ;;
  *)
    check_name "$1" || exit 1
    check_unprotected "$1" || exit 1
    echo "teardown may destroy stack \"$1\""
    ;;
esac
