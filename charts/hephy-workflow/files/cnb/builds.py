"""
Which builds Cloud Native Buildpacks made, and where their image is.

The builder (v2.13.7 pkg/gitreceive/build.go) reports every build without a Dockerfile as a slug,
`image=home/<app>:git-<sha>/push/slug.tgz`, whatever ran in its slugbuilder pod. On this stack that
pod is a CNB build that pushed `<app>:git-<sha>` to the stack's registry instead. When such a build
is saved, its image becomes that registry reference, once, in the database: a build saved before
(a slug in object storage) keeps its object key. Every later deploy, scale, run or rollback reads
which one it is from the build alone, so a rollback to a slug release runs slugrunner as before.
"""
from django.conf import settings

SLUG_OBJECT = '/slug.tgz'   # the end of every slug key the builder reports (slug_builder_info.go)


def is_slug(reference):
    """True for an object-storage key of a slug, false for an image reference."""
    return reference.endswith(SLUG_OBJECT)


def image_reference(registry_url, app, sha):
    """Where the CNB build pushed: the name and tag a Dockerfile build of that commit gets (release.py)."""
    return '{}/{}:git-{}'.format(registry_url, app, sha)


def mark_cnb_build(sender, instance, **kwargs):
    """
    pre_save receiver of api.models.Build: a new build from the builder without a Dockerfile is the
    image the CNB build pod pushed. Builds of `deis pull` (no sha), Dockerfile builds and builds
    already saved are left as they are.
    """
    if not instance._state.adding or instance.dockerfile or not instance.sha:
        return
    if is_slug(instance.image):
        instance.image = image_reference(settings.REGISTRY_URL, instance.app.id, instance.sha)
