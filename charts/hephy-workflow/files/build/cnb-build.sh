#!/bin/bash
# A buildpack build with Cloud Native Buildpacks, in the slugbuild pod the builder starts (docs/workflow.md,
# "Buildpack builds"). It runs in the pinned heroku/builder image as the image's own build user (the
# lifecycle's CNB_USER_ID), with no privilege, no daemon and no socket; the build-pod webhook set it up:
# - the pushed tree is unpacked in $CNB_APP_DIR by the pod's init container, which alone holds the object
#   store's keys; the app's config is in $CNB_PLATFORM_DIR/env, one file per variable (the builder's
#   <app>-build-env Secret), which buildpacks read as Heroku's did;
# - the lifecycle's creator (buildpacks/lifecycle cmd/lifecycle/creator.go, platform API $CNB_PLATFORM_API)
#   detects, builds and pushes $REGISTRY/<app>:git-<sha>, which nodes pull as 127.0.0.1:5555/<app>:git-<sha>,
#   the name the controller's hephy_doks package gives the build (files/cnb/builds.py); the stack's registry
#   is plain HTTP inside the cluster (CNB_INSECURE_REGISTRIES);
# - the layer cache is the image <app>:cnb-cache in the same registry, and the previous build <app>:cnb-latest,
#   unless the app set DEIS_DISABLE_CACHE (then the builder gives no CACHE_PATH);
# - the process types the build made go to $HANDOFF/Procfile, which the pod's procfile-upload sidecar puts
#   where the builder reads them for an app without a Procfile (PUT_PATH/Procfile, builder build.go).
# The builder streams this container's log to `git push` and fails the push on a non-zero exit.
set -u

fail() {
    echo "$2" >&2
    # The builder follows the log until the container ends; slugbuilder waited 3 s so the last lines arrive.
    sleep "${FAIL_WAIT_SECONDS:-3}"
    exit "$1"
}

if [ -n "${BUILDPACK_URL:-}" ]; then
    fail 2 "BUILDPACK_URL is set ($BUILDPACK_URL), but this platform builds with Cloud Native Buildpacks (heroku/builder:24), which cannot run a classic buildpack fetched by URL. Run 'deis config:unset BUILDPACK_URL' and push again; Python, Node.js, Ruby, Go, Java, PHP, Scala and .NET apps are detected."
fi
for name in REGISTRY PUT_PATH HANDOFF CNB_APP_DIR CNB_LAYERS_DIR CNB_PLATFORM_DIR; do
    [ -n "${!name:-}" ] || fail 2 "buildpack build: $name is not set (was the pod changed by the build-pod webhook?)"
done

# PUT_PATH is home/<app>:git-<sha>/push (builder v2.13.7 pkg/gitreceive/slug_builder_info.go).
image=${PUT_PATH#home/}
image=${image%/push}
app=${image%%:*}
[[ "$image" =~ ^[a-z0-9-]+:git-[0-9a-f]+$ ]] || fail 2 "buildpack build: PUT_PATH ($PUT_PATH) is not home/<app>:git-<sha>/push"

set -- -app="$CNB_APP_DIR" -layers="$CNB_LAYERS_DIR" -platform="$CNB_PLATFORM_DIR" -log-level="$([ -n "${DEIS_DEBUG:-}" ] && echo debug || echo info)"
if [ -n "${CACHE_PATH:-}" ]; then
    set -- "$@" -cache-image="$REGISTRY/$app:cnb-cache" -previous-image="$REGISTRY/$app:cnb-latest"
else
    set -- "$@" -skip-restore
fi

echo "-----> Building $image with Cloud Native Buildpacks"
"${CNB_LIFECYCLE_DIR:-/cnb/lifecycle}/creator" "$@" -tag="$REGISTRY/$app:cnb-latest" "$REGISTRY/$image"
status=$?
# The lifecycle's exit codes (platform/exit.go): 20-29 detect, 30s analyze, 40s restore, 50s build, 60s export.
case $status in
0) ;;
20 | 21) fail "$status" "buildpack build: no buildpack recognised the app (heroku/builder:24 builds Python, Node.js, Ruby, Go, Java, PHP, Scala and .NET; each looks for its own files, such as requirements.txt or package.json, at the root of the repository)" ;;
22) fail "$status" "buildpack build: detecting the app's language failed (the lines above say why)" ;;
32 | 42) fail "$status" "buildpack build: the previous build's layers could not be read from the stack's registry ($REGISTRY); push again, or set DEIS_DISABLE_CACHE to build without them" ;;
51 | 52) fail "$status" "buildpack build: the app failed to build (the buildpack's output above says why)" ;;
62) fail "$status" "buildpack build: the image could not be pushed to the stack's registry ($REGISTRY)" ;;
*) fail "$status" "buildpack build: the lifecycle failed with exit code $status" ;;
esac

# The launch metadata lists every process type the build made (Procfile lines, or a buildpack's defaults).
python3 - "$CNB_LAYERS_DIR/config/metadata.toml" >"$HANDOFF/Procfile.partial" <<'EOF' || fail 1 "buildpack build: the build's process types could not be read"
import json, sys, tomllib
with open(sys.argv[1], 'rb') as f:
    processes = tomllib.load(f).get('processes', [])
def line(process):   # platform API 0.10 and later write the command as a list (launch/launch.go)
    command = process.get('command', [])
    words = ([command] if isinstance(command, str) else command) + process.get('args', [])
    # heroku/procfile runs a Procfile line as `bash -c <line>`: the line is what the app wrote
    return words[2] if len(words) == 3 and words[:2] == ['bash', '-c'] else ' '.join(words)
# The builder reads the Procfile as YAML into a map of type to command; a JSON object is such YAML.
print(json.dumps({p['type']: line(p) for p in processes}, sort_keys=True))
EOF
mv "$HANDOFF/Procfile.partial" "$HANDOFF/Procfile"
for _ in $(seq "${UPLOAD_WAIT_SECONDS:-60}"); do
    [ -e "$HANDOFF/uploaded" ] && { echo "-----> Process types: $(cat "$HANDOFF/Procfile")"; exit 0; }
    [ -e "$HANDOFF/upload-failed" ] && break
    sleep 1
done
fail 1 "buildpack build: the process types could not be stored for the builder ($(cat "$HANDOFF/upload-failed" 2>/dev/null || echo 'no answer from the procfile-upload container'))"
