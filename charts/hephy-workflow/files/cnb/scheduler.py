"""
The controller's scheduler client, running the image a CNB build made where v2.22.0 runs slugrunner.

api/models/app.py hands every deploy, scale and run of a buildpack release to the scheduler with
slugrunner's image, `/runner/init start <type>` and SLUG_URL set to the build's image
(`_build_env_vars`, `_get_entrypoint`, `_get_command`). For a build hephy_doks/builds.py marked, that
image is the CNB image: the release then runs it as an image release, with the CNB launcher:

- a process type `<type>` runs `/cnb/process/<type>`, the launcher's link for that type of the
  Procfile (buildpacks lifecycle launch/launcher.go, cmd/launcher/cli/launcher.go);
- `deis run <command>` runs `/cnb/lifecycle/launcher <command>`: one argument that names no
  process is run as a bash script with the buildpacks' environment (launch/process.go, bash.go);
- no slug download: SLUG_URL and the object store's address leave the environment, and the pod
  mounts no object store credentials (scheduler/resources/pod.py mounts them for "buildpack");
- readiness is a TCP check of PORT (5000 unless the app sets it, release.py get_port), as for
  other image releases, where slugrunner's pods had a fixed 30-second delay.

Anything else, slug releases from before the upgrade included, goes to the image's client unchanged.
"""
from scheduler import KubeHTTPClient
from hephy_doks.builds import is_slug

PROCESS_DIR = '/cnb/process/'
LAUNCHER = '/cnb/lifecycle/launcher'
SLUG_ONLY_ENV = ('SLUG_URL', 'BUILDER_STORAGE', 'DEIS_MINIO_SERVICE_HOST', 'DEIS_MINIO_SERVICE_PORT')


def cnb_image(kwargs):
    """The image of a release a CNB build made, or None for any other release."""
    if kwargs.get('build_type') != 'buildpack':
        return None
    reference = (kwargs.get('envs') or {}).get('SLUG_URL', '')
    return None if not reference or is_slug(reference) else reference


def as_image_release(kwargs):
    """The scheduler's arguments of an image release: no slug environment, build type "image"."""
    settings = dict(kwargs)
    settings['envs'] = {k: v for k, v in kwargs['envs'].items() if k not in SLUG_ONLY_ENV}
    settings['build_type'] = 'image'
    return settings


class SchedulerClient(KubeHTTPClient):
    def deploy(self, namespace, name, image, entrypoint, command, **kwargs):
        return self._process(super().deploy, namespace, name, image, entrypoint, command, kwargs)

    def scale(self, namespace, name, image, entrypoint, command, **kwargs):
        return self._process(super().scale, namespace, name, image, entrypoint, command, kwargs)

    def run(self, namespace, name, image, entrypoint, command, **kwargs):
        cnb = cnb_image(kwargs)
        if cnb is None:
            return super().run(namespace, name, image, entrypoint, command, **kwargs)
        return super().run(namespace, name, cnb, [LAUNCHER], command, **as_image_release(kwargs))

    @staticmethod
    def _process(parent, namespace, name, image, entrypoint, command, kwargs):
        """A Deployment of process type kwargs['app_type'], through `parent` (deploy or scale)."""
        cnb = cnb_image(kwargs)
        if cnb is None:
            return parent(namespace, name, image, entrypoint, command, **kwargs)
        return parent(namespace, name, cnb, [PROCESS_DIR + kwargs['app_type']], [], **as_image_release(kwargs))
