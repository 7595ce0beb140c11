#!/bin/sh
# A Dockerfile build without a Docker daemon, in the build pod the builder starts (docs/workflow.md,
# "Dockerfile builds"). The builder (teamhephy/builder v2.13.7 pkg/gitreceive/build.go) streams this
# container's log to `git push` and fails the push on a non-zero exit; what dockerbuilder v2.8.3 did
# through the node's Docker (rootfs/deploy.py), buildah does here:
# - the pushed tree, fetched by the pod's init container, is unpacked from $WORKSPACE/app.tgz;
# - every name in $BUILD_ARG_NAMES (the keys of DOCKER_BUILD_ARGS, set by the build-pod webhook) is a
#   build argument with the value of the variable of that name, which the builder put in the environment;
# - the image is pushed as $REGISTRY/$IMG_NAME, <app>:git-<sha>, which the nodes pull as
#   127.0.0.1:5555/<app>:git-<sha>, the name the controller deploys (api/models/release.py `image`).
# Registries: $CONTAINERS_REGISTRIES_CONF (short names are Docker Hub's; the stack's registry is plain HTTP).
set -u

workspace=${WORKSPACE:-/workspace}

# On failure, say why, and wait before exiting so the last lines reach `git push` (the builder follows
# the log until the container ends, as dockerbuilder's own 3-second wait allowed for).
fail() {
    echo "$2" >&2
    sleep "${FAIL_WAIT_SECONDS:-3}"
    exit "$1"
}

for name in REGISTRY IMG_NAME; do
    [ -n "$(printenv "$name")" ] || fail 2 "dockerfile build: $name is not set (was the pod changed by the build-pod webhook?)"
done

mkdir -p "$workspace/app" && tar -xzf "$workspace/app.tgz" -C "$workspace/app" ||
    fail 2 "dockerfile build: could not unpack the pushed source"
[ -f "$workspace/app/Dockerfile" ] || fail 2 "dockerfile build: no Dockerfile at the root of the pushed tree"

set --
for name in ${BUILD_ARG_NAMES:-}; do
    set -- "$@" --build-arg "$name=$(printenv "$name")"
done

target="$REGISTRY/$IMG_NAME"
echo "Building $IMG_NAME from its Dockerfile (buildah $(buildah --version | cut -d' ' -f3))"
buildah bud --isolation chroot --storage-driver vfs --format docker --layers=false \
    --tag "$target" "$@" "$workspace/app"
status=$?
[ "$status" -eq 0 ] || fail "$status" "dockerfile build: the build failed with exit code $status"

echo "Pushing $IMG_NAME to the stack's registry"
buildah push --storage-driver vfs --retry 3 "$target" "docker://$target"
status=$?
[ "$status" -eq 0 ] || fail "$status" "dockerfile build: the push to $REGISTRY failed with exit code $status"
echo "Pushed $IMG_NAME"
