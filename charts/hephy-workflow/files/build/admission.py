"""
The build-pod webhook: the builder's Dockerfile build pod, made a build without a Docker daemon.

The builder (teamhephy/builder v2.13.7 pkg/gitreceive/k8s_util.go dockerBuilderPod) starts
`dockerbuild-<app>-<sha>-<8 hex>` in Workflow's namespace with one container, `deis-dockerbuilder`,
running dockerbuilder's deploy.py against the node's Docker socket (a hostPath), which DOKS nodes do
not have; it gives no hook to change that pod. The API server calls this webhook for that pod only
(the chart's MutatingWebhookConfiguration: the builder's user, that name, that namespace), and it
answers with the pod as a daemonless build:

- an init container, `fetch-source`, from the pod's own image (dockerbuilder's, which has the object
  store's client, /bin/objstorage), downloads the pushed tree to an emptyDir; it alone mounts the
  object store's keys, so the Dockerfile's RUN steps never see them;
- the one container the builder follows, still `deis-dockerbuilder`, runs the chart's
  dockerfile-build.sh from a ConfigMap in the pinned buildah image, rootless (uid 1000, the image's
  `build` user), with the relaxation a rootless buildah needs to make its user namespace: seccomp and
  AppArmor Unconfined, SETUID and SETGID for newuidmap; nothing privileged, no host path, no socket,
  no ServiceAccount token. The admission policy guard-pod-relaxations admits that relaxation for this
  pod, as this webhook makes it, and for no other pod;
- the label `hephy-doks/build: dockerfile`, by which the registry's network policy lets it push.

The builder's buildpack build pod, `slugbuild-<app>-<sha>-<8 hex>` (k8s_util.go slugbuilderPod, one
container `deis-slugbuilder` running slugbuilder v2.8.0 on heroku-18), becomes a Cloud Native Buildpacks
build (`cnb_build`), with nothing relaxed:

- `fetch-source`, from the pod's own image (slugbuilder's, with /usr/bin/objstorage), unpacks the pushed
  tree into the app directory; with `procfile-upload`, a sidecar from the same image that stores the
  build's process types where the builder reads them (PUT_PATH/Procfile), it alone mounts the object
  store's keys, so the app's build scripts never see them;
- `deis-slugbuilder` runs the chart's cnb-build.sh in the pinned heroku/builder image as its build user
  (uid and gid 1000, the image's CNB_USER_ID and CNB_GROUP_ID), with the app's config as the platform's
  env directory (the builder's <app>-build-env Secret), dropping every capability, RuntimeDefault seccomp;
- the label `hephy-doks/build: cnb`, by which the registry's network policy lets it push.

A pod this webhook cannot read as the builder's is refused with the reason, and the push fails with it;
so does every build while the webhook is down (failurePolicy: Fail): never the socket build.

Standard library only, runnable on the controller image's Python 3.6.
"""
import base64
import copy
import json
import os
import re
import socketserver
import ssl
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

BUILD_CONTAINER = 'deis-dockerbuilder'
BUILD_LABEL = ('hephy-doks/build', 'dockerfile')
OBJECT_STORE_VOLUME = 'objectstorage-keyfile'
DOCKER_SOCKET_VOLUME = 'docker-socket'
WORKSPACE = '/workspace'
SCRIPT_DIR = '/opt/hephy-doks/build'
SCRIPT = SCRIPT_DIR + '/dockerfile-build.sh'
# The quay.io/buildah/stable image's user for rootless builds (containers/image_build buildah/Containerfile `useradd build`).
BUILD_USER = 1000
STORAGE = '/home/build/.local/share/containers'
ENV_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
# Downloads the pushed tree as dockerbuilder v2.8.3 rootfs/deploy.py download_file does for minio: the
# bucket `git` from a file BUCKET_FILE names, the key from TAR_PATH.
FETCH = ('mkdir -p /tmp/objectstore && printf git > /tmp/objectstore/builder-bucket && '
         'BUCKET_FILE=/tmp/objectstore/builder-bucket exec /bin/objstorage --storage-type="$BUILDER_STORAGE" '
         'download "$TAR_PATH" ' + WORKSPACE + '/app.tgz')

SLUG_POD_PREFIX = 'slugbuild-'
SLUG_CONTAINER = 'deis-slugbuilder'
CNB_LABEL = 'cnb'
# heroku/base-images heroku-24-build/Dockerfile: USER heroku, CNB_USER_ID=1000, CNB_GROUP_ID=1000.
CNB_USER = 1000
CNB_SCRIPT_DIR = '/opt/hephy-doks/cnb'
CNB_SCRIPT = CNB_SCRIPT_DIR + '/cnb-build.sh'
# The lifecycle's default directories (platform/defaults.go), and the upload's handoff.
CNB_DIRS = {'CNB_APP_DIR': '/workspace', 'CNB_LAYERS_DIR': '/layers', 'CNB_PLATFORM_DIR': '/platform', 'HANDOFF': '/handoff'}
# The Platform API the script speaks: 0.13 is the first with insecure registries (cmd/lifecycle/creator.go).
CNB_PLATFORM_API = '0.13'
# The builder mounts the app's config there (k8s_util.go envRoot); CNB buildpacks read it from <platform>/env.
APP_ENV_PATH = '/tmp/env'
SLUG_ENV = ('TAR_PATH', 'PUT_PATH', 'CACHE_PATH', 'SOURCE_VERSION', 'BUILDER_STORAGE', 'BUILDPACK_URL', 'DEIS_DEBUG')
# slugbuilder v2.8.0 rootfs/Dockerfile puts the object store's client on the PATH, /usr/bin/objstorage; the bucket file
# as its normalize_storage writes it for minio, somewhere the image's user may write.
SLUG_OBJSTORAGE = ('mkdir -p "${TMPDIR:-/tmp}/objectstore" && printf git > "${TMPDIR:-/tmp}/objectstore/builder-bucket" && '
                   'export BUCKET_FILE="${TMPDIR:-/tmp}/objectstore/builder-bucket" && ')
CNB_FETCH = (SLUG_OBJSTORAGE + 'objstorage --storage-type="$BUILDER_STORAGE" download "$TAR_PATH" "${TMPDIR:-/tmp}/app.tgz" && '
             'tar -xzf "${TMPDIR:-/tmp}/app.tgz" -C "$CNB_APP_DIR"')
# A native sidecar (restartPolicy Always): it runs beside the build and ends with it. Once the build container
# has ended, the kubelet stops it with SIGTERM and kills it after the pod's grace period (30 s), and the builder
# waits for the pod to end (build.go waitForPodEnd) before git push goes on. A container's PID 1 ignores a signal
# it has no handler for, so the shell traps it, and never execs `sleep infinity`.
PROCFILE_UPLOAD = ('trap "exit 0" TERM; ' + SLUG_OBJSTORAGE + 'until [ -e "$HANDOFF/Procfile" ]; do sleep 1; done; '
                   'if out=$(objstorage --storage-type="$BUILDER_STORAGE" upload "$HANDOFF/Procfile" "$PUT_PATH/Procfile" 2>&1); '
                   'then touch "$HANDOFF/uploaded"; else printf "%s" "$out" > "$HANDOFF/upload-failed"; fi; '
                   'while :; do sleep 1; done')


class Refusal(Exception):
    """A pod this webhook will not turn into a build: the API server refuses it with this message."""


def settings_from(environ):
    """What the chart tells the webhook, by environment."""
    missing = [k for k in ('BUILD_IMAGE', 'REGISTRY', 'BUILD_SCRIPT_CONFIGMAP', 'CNB_BUILD_IMAGE', 'CNB_SCRIPT_CONFIGMAP') if not environ.get(k)]
    if missing:
        raise SystemExit('build-pod webhook: missing environment ' + ', '.join(missing))
    return {
        'image': environ['BUILD_IMAGE'],
        'registry': environ['REGISTRY'],
        'configmap': environ['BUILD_SCRIPT_CONFIGMAP'],
        'storage_limit': environ.get('BUILD_STORAGE_LIMIT', '10Gi'),
        'cnb_image': environ['CNB_BUILD_IMAGE'],
        'cnb_configmap': environ['CNB_SCRIPT_CONFIGMAP'],
        'cnb_storage_limit': environ.get('CNB_STORAGE_LIMIT', '10Gi'),
    }


def build_arg_names(env):
    """The names of DOCKER_BUILD_ARGS (the JSON of the app's config), each a variable of the pod's environment."""
    raw = next((e.get('value', '') for e in env if e.get('name') == 'DOCKER_BUILD_ARGS'), '')
    if not raw:
        return []
    try:
        names = sorted(json.loads(raw))
    except (ValueError, TypeError):
        raise Refusal('DOCKER_BUILD_ARGS is not a JSON object of build arguments')
    bad = [n for n in names if not ENV_NAME.match(n)]
    if bad:
        raise Refusal('build arguments must be environment variable names, not {}'.format(', '.join(bad)))
    return names


def builder_pod(pod, container, required, what):
    """
    The builder's pod, read: its spec, its one container, that container's env, the volumes to keep
    (less the ServiceAccount token the API server added before this webhook ran, and the Docker socket)
    and the object store's mount. Refusal for a pod that is not `what` as the builder makes it.
    """
    spec = pod.get('spec', {})
    containers = spec.get('containers', [])
    if len(containers) != 1 or containers[0].get('name') != container or spec.get('initContainers'):
        raise Refusal('not a {} pod as the builder makes it (one container, {})'.format(what, container))
    original = containers[0]
    env = original.get('env', [])
    names = set(e.get('name') for e in env)
    for name in required:
        if name not in names:
            raise Refusal('the build pod has no {}: not a {} pod as the builder makes it'.format(name, what))
    volumes = spec.get('volumes', [])
    dropped = set(v['name'] for v in volumes if v['name'] == DOCKER_SOCKET_VOLUME or v['name'].startswith('kube-api-access-'))
    object_store = [m for m in original.get('volumeMounts', []) if m['name'] == OBJECT_STORE_VOLUME]
    if not object_store:
        raise Refusal('the build pod mounts no object store keys ({})'.format(OBJECT_STORE_VOLUME))
    return spec, original, env, [v for v in volumes if v['name'] not in dropped], object_store


def fetch_source(original, env, object_store, command, directory, security_context, extra_env=()):
    """
    The init container that downloads and unpacks the pushed source into `directory`, from the builder's
    own image: the only container of a build pod that holds the object store's keys.
    """
    return {
        'name': 'fetch-source',
        'image': original['image'],
        'imagePullPolicy': original.get('imagePullPolicy', 'IfNotPresent'),
        'command': ['/bin/sh', '-c', command],
        'env': [e for e in env if e.get('name') in ('TAR_PATH', 'BUILDER_STORAGE', 'DEIS_DEBUG')] + list(extra_env),
        'volumeMounts': object_store + [{'name': 'workspace', 'mountPath': directory}],
        'securityContext': security_context,
    }


def labelled(pod, value):
    """The pod's labels and the build label, by which the registry's network policy lets the build push."""
    labels = dict(pod.get('metadata', {}).get('labels') or {})
    labels[BUILD_LABEL[0]] = value
    return labels


def build_spec(spec, original, volumes, init_containers, build):
    """The pod's new spec: its volumes, init containers and one build container, which keeps the original's
    resources and termination message settings; no ServiceAccount token."""
    for key in ('resources', 'terminationMessagePath', 'terminationMessagePolicy'):
        if key in original:
            build[key] = original[key]
    new_spec = copy.deepcopy(spec)
    new_spec['volumes'] = volumes
    new_spec['initContainers'] = init_containers
    new_spec['containers'] = [build]
    new_spec['automountServiceAccountToken'] = False
    return new_spec


def mutate(pod, settings):
    """The builder's build pod as a build without a daemon (cnb_build for a buildpack build); Refusal for anything else."""
    if pod.get('metadata', {}).get('name', '').startswith(SLUG_POD_PREFIX):
        return cnb_build(pod, settings)
    spec, original, env, kept_volumes, object_store = builder_pod(
        pod, BUILD_CONTAINER, ('IMG_NAME', 'TAR_PATH', 'BUILDER_STORAGE'), 'Dockerfile build')
    arg_names = build_arg_names(env)

    fetch = fetch_source(original, env, object_store, FETCH, WORKSPACE, {'allowPrivilegeEscalation': False, 'capabilities': {'drop': ['ALL']}})
    build_env = [e for e in env if e.get('name') not in ('REGISTRY', 'WORKSPACE', 'BUILD_ARG_NAMES')] + [
        {'name': 'REGISTRY', 'value': settings['registry']},
        {'name': 'WORKSPACE', 'value': WORKSPACE},
        {'name': 'BUILD_ARG_NAMES', 'value': ' '.join(arg_names)},
        {'name': 'HOME', 'value': '/home/build'},
        {'name': 'STORAGE_DRIVER', 'value': 'vfs'},
        {'name': 'BUILDAH_ISOLATION', 'value': 'chroot'},
        {'name': 'CONTAINERS_REGISTRIES_CONF', 'value': SCRIPT_DIR + '/registries.conf'},
    ]
    build = {
        'name': BUILD_CONTAINER,
        'image': settings['image'],
        'imagePullPolicy': 'IfNotPresent',
        'command': ['/bin/sh', SCRIPT],
        'env': build_env,
        'volumeMounts': [
            {'name': 'workspace', 'mountPath': WORKSPACE},
            {'name': 'build-script', 'mountPath': SCRIPT_DIR, 'readOnly': True},
            {'name': 'containers-storage', 'mountPath': STORAGE},
        ],
        'securityContext': {
            'runAsUser': BUILD_USER,
            'runAsGroup': BUILD_USER,
            'runAsNonRoot': True,
            # newuidmap and newgidmap map the build's user namespace through their file capabilities.
            'allowPrivilegeEscalation': True,
            'capabilities': {'drop': ['ALL'], 'add': ['SETGID', 'SETUID']},
            'seccompProfile': {'type': 'Unconfined'},
            'appArmorProfile': {'type': 'Unconfined'},
        },
    }
    volumes = kept_volumes + [
        {'name': 'workspace', 'emptyDir': {}},
        {'name': 'build-script', 'configMap': {'name': settings['configmap']}},
        {'name': 'containers-storage', 'emptyDir': {'sizeLimit': settings['storage_limit']}},
    ]
    return labelled(pod, BUILD_LABEL[1]), build_spec(spec, original, volumes, [fetch], build)


def cnb_build(pod, settings):
    """The builder's slugbuild pod as a Cloud Native Buildpacks build (the module's docstring says how)."""
    spec, original, env, kept_volumes, object_store = builder_pod(
        pod, SLUG_CONTAINER, ('TAR_PATH', 'PUT_PATH', 'BUILDER_STORAGE'), 'buildpack build')
    app_env = [m for m in original.get('volumeMounts', []) if m.get('mountPath') == APP_ENV_PATH]
    if len(app_env) != 1:
        raise Refusal('the build pod mounts no app config at {}: not a buildpack build pod as the builder makes it'.format(APP_ENV_PATH))
    unprivileged = {'runAsUser': CNB_USER, 'runAsGroup': CNB_USER, 'runAsNonRoot': True,
                    'allowPrivilegeEscalation': False, 'capabilities': {'drop': ['ALL']}}

    def env_of(*names):
        return [e for e in env if e.get('name') in names]

    def directory(name):
        return {'name': name, 'value': CNB_DIRS[name]}

    fetch = fetch_source(original, env, object_store, CNB_FETCH, CNB_DIRS['CNB_APP_DIR'], unprivileged, [directory('CNB_APP_DIR')])
    upload = dict(name='procfile-upload', image=original['image'], imagePullPolicy=original.get('imagePullPolicy', 'IfNotPresent'),
                  securityContext=unprivileged, restartPolicy='Always', command=['/bin/sh', '-c', PROCFILE_UPLOAD],
                  env=env_of('PUT_PATH', 'BUILDER_STORAGE') + [directory('HANDOFF')],
                  volumeMounts=object_store + [{'name': 'handoff', 'mountPath': CNB_DIRS['HANDOFF']}])
    build = {
        'name': SLUG_CONTAINER,
        'image': settings['cnb_image'],
        'imagePullPolicy': 'IfNotPresent',
        'command': ['/bin/bash', CNB_SCRIPT],
        'env': env_of(*SLUG_ENV) + [directory(name) for name in sorted(CNB_DIRS)] + [
            {'name': 'REGISTRY', 'value': settings['registry']},
            {'name': 'CNB_INSECURE_REGISTRIES', 'value': settings['registry']},
            {'name': 'CNB_PLATFORM_API', 'value': CNB_PLATFORM_API},
        ],
        'volumeMounts': [
            {'name': 'workspace', 'mountPath': CNB_DIRS['CNB_APP_DIR']},
            {'name': 'layers', 'mountPath': CNB_DIRS['CNB_LAYERS_DIR']},
            {'name': app_env[0]['name'], 'mountPath': CNB_DIRS['CNB_PLATFORM_DIR'] + '/env', 'readOnly': True},
            {'name': 'handoff', 'mountPath': CNB_DIRS['HANDOFF']},
            {'name': 'cnb-script', 'mountPath': CNB_SCRIPT_DIR, 'readOnly': True},
        ],
        'securityContext': dict(unprivileged, seccompProfile={'type': 'RuntimeDefault'}),
    }
    volumes = kept_volumes + [
        {'name': 'workspace', 'emptyDir': {}},
        {'name': 'layers', 'emptyDir': {'sizeLimit': settings['cnb_storage_limit']}},
        {'name': 'handoff', 'emptyDir': {}},
        {'name': 'cnb-script', 'configMap': {'name': settings['cnb_configmap']}},
    ]
    new_spec = build_spec(spec, original, volumes, [fetch, upload], build)
    # The emptyDirs' group, so the build user writes what fetch-source unpacked.
    new_spec['securityContext'] = {'runAsNonRoot': True, 'fsGroup': CNB_USER, 'seccompProfile': {'type': 'RuntimeDefault'}}
    return labelled(pod, CNB_LABEL), new_spec


def review(request_body, settings):
    """The AdmissionReview answer to an AdmissionReview request."""
    if isinstance(request_body, bytes):
        request_body = request_body.decode('utf-8')
    request = json.loads(request_body)['request']
    response = {'uid': request['uid'], 'allowed': True}
    try:
        labels, spec = mutate(request['object'], settings)
        patch = [{'op': 'replace', 'path': '/spec', 'value': spec},
                 {'op': 'add', 'path': '/metadata/labels', 'value': labels}]
        response['patchType'] = 'JSONPatch'
        response['patch'] = base64.b64encode(json.dumps(patch).encode('utf-8')).decode('ascii')
    except Refusal as e:
        response['allowed'] = False
        response['status'] = {'code': 403, 'reason': 'Forbidden', 'message': 'hephy-doks build-pod webhook: {}'.format(e)}
    return {'apiVersion': 'admission.k8s.io/v1', 'kind': 'AdmissionReview', 'response': response}


class Handler(BaseHTTPRequestHandler):
    settings = None

    def do_GET(self):
        self.answer(200 if self.path == '/healthz' else 404, b'ok\n' if self.path == '/healthz' else b'', 'text/plain')

    def do_POST(self):
        if self.path != '/mutate':
            return self.answer(404, b'', 'text/plain')
        try:
            body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
            answer = json.dumps(review(body, self.settings)).encode('utf-8')
        except (ValueError, KeyError, TypeError) as e:
            return self.answer(400, 'not an AdmissionReview: {}\n'.format(e).encode('utf-8'), 'text/plain')
        self.answer(200, answer, 'application/json')

    def answer(self, status, body, content_type):
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        sys.stderr.write('%s %s\n' % (self.address_string(), format % args))


class TLSServer(socketserver.ThreadingMixIn, HTTPServer):
    """HTTPS with the certificate cert-manager keeps in the mounted Secret, reread when it is renewed."""
    daemon_threads = True

    def __init__(self, address, cert_dir):
        HTTPServer.__init__(self, address, Handler)
        self.cert_dir, self.loaded, self.context = cert_dir, None, None

    def current_context(self):
        files = [os.path.join(self.cert_dir, name) for name in ('tls.crt', 'tls.key')]
        stamp = tuple(os.stat(f).st_mtime for f in files)
        if stamp != self.loaded:
            # TLS 1.2 at least: PROTOCOL_TLS_SERVER and minimum_version are Python 3.7's, the image's is 3.6.
            if hasattr(ssl, 'TLSVersion'):
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
            else:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS)
                context.options |= ssl.OP_NO_SSLv3 | ssl.OP_NO_TLSv1 | ssl.OP_NO_TLSv1_1
            context.load_cert_chain(*files)
            self.context, self.loaded = context, stamp
        return self.context

    def get_request(self):
        sock, address = HTTPServer.get_request(self)
        # The handshake happens in the request's thread, at its first read.
        return self.current_context().wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address


def main():
    Handler.settings = settings_from(os.environ)
    port = int(os.environ.get('PORT', '8443'))
    server = TLSServer(('', port), os.environ.get('TLS_DIR', '/var/run/secrets/hephy-doks/tls'))
    sys.stderr.write('build-pod webhook listening on {}\n'.format(port))
    server.serve_forever()


if __name__ == '__main__':
    main()
