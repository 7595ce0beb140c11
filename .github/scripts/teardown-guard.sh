#!/usr/bin/env bash
# The teardown workflow's guard. Only short-lived stacks may be destroyed: staging, staging-<name> and
# pr-<number>; never production, never another name, and never a stack that protects its resources
# (hephy-doks:protect true in its config, or any resource marked protected in its state). When the
# backend cannot answer, the stack is refused: the guard never fails open.
#
#   teardown-guard.sh STACK     exits 0 if STACK may be destroyed, else prints why and exits 1
#   teardown-guard.sh --select  writes stacks=<JSON list> to $GITHUB_OUTPUT: the stacks this event
#                               tears down (EVENT, INPUT_STACK and PR_NUMBER from the workflow);
#                               nightly, every staging-<name> stack and every pr-<number> stack whose
#                               pull request is no longer open (asked with the gh CLI)
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

# Called in `||` and `!` contexts, where `set -e` does not apply: every failure is checked by hand.
check_unprotected() {
  local config state protect protected
  config=$(pulumi config --json --stack "$1") || { refuse "$1" "cannot read its config"; return 1; }
  # A stack without the key has the default, false.
  protect=$(jq -r '."hephy-doks:protect".value // "false"' <<<"$config") || { refuse "$1" "cannot parse its config"; return 1; }
  if [[ $protect != false ]]; then
    refuse "$1" "its config sets hephy-doks:protect $protect; set it to false and run pulumi up before tearing it down"
    return 1
  fi
  state=$(pulumi stack export --stack "$1") || { refuse "$1" "cannot read its state"; return 1; }
  protected=$(jq -r '[.deployment.resources[]? | select(.protect == true) | .urn] | join(", ")' <<<"$state") || { refuse "$1" "cannot parse its state"; return 1; }
  if [[ -n $protected ]]; then
    refuse "$1" "its state has protected resources: $protected"
  fi
}

existing_stacks() {
  local listing
  listing=$(pulumi stack ls --json) || { echo "::error::cannot list the stacks of the backend" >&2; return 1; }
  jq -r '.[].name | split("/") | last' <<<"$listing"
}

select_stacks() {
  local candidates=() chosen=() existing stack state
  case ${EVENT:-} in
    workflow_dispatch) candidates=("${INPUT_STACK:-}") ;;
    pull_request_target) candidates=("pr-${PR_NUMBER:-}") ;;
    schedule) ;;
    *) echo "::error::teardown-guard.sh --select: unexpected event \"${EVENT:-}\"" >&2; return 1 ;;
  esac
  # A stack named by hand or by a pull request must qualify by name before the backend is asked anything.
  for stack in "${candidates[@]}"; do
    check_name "$stack" || return 1
  done
  existing=$(existing_stacks) || return 1
  if [[ $EVENT == schedule ]]; then
    mapfile -t candidates < <(grep -E '^staging-' <<<"$existing" || true)
    # A pull request whose own teardown failed or never ran leaves its stack behind; sweep those too.
    for stack in $(grep -E '^pr-[0-9]+$' <<<"$existing" || true); do
      if state=$(gh pr view "${stack#pr-}" --json state --jq .state) && [[ $state != OPEN ]]; then
        candidates+=("$stack")
      fi
    done
  fi
  for stack in "${candidates[@]}"; do
    if ! grep -Fqx -- "$stack" <<<"$existing"; then
      echo "no stack \"$stack\" in the backend; nothing to tear down"
    elif [[ $EVENT == schedule ]] && ! { check_name "$stack" && check_unprotected "$stack"; }; then
      echo "the nightly teardown skips \"$stack\" and goes on with the others"
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
