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


class Refusal(Exception):
    """A pod this webhook will not turn into a build: the API server refuses it with this message."""


def settings_from(environ):
    """What the chart tells the webhook, by environment."""
    missing = [k for k in ('BUILD_IMAGE', 'REGISTRY', 'BUILD_SCRIPT_CONFIGMAP') if not environ.get(k)]
    if missing:
        raise SystemExit('build-pod webhook: missing environment ' + ', '.join(missing))
    return {
        'image': environ['BUILD_IMAGE'],
        'registry': environ['REGISTRY'],
        'configmap': environ['BUILD_SCRIPT_CONFIGMAP'],
        'storage_limit': environ.get('BUILD_STORAGE_LIMIT', '10Gi'),
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


def mutate(pod, settings):
    """The builder's dockerbuild pod as a daemonless build; raises Refusal for anything else."""
    spec = pod.get('spec', {})
    containers = spec.get('containers', [])
    if len(containers) != 1 or containers[0].get('name') != BUILD_CONTAINER or spec.get('initContainers'):
        raise Refusal('not a Dockerfile build pod as the builder makes it (one container, {})'.format(BUILD_CONTAINER))
    original = containers[0]
    env = original.get('env', [])
    names = set(e.get('name') for e in env)
    for required in ('IMG_NAME', 'TAR_PATH', 'BUILDER_STORAGE'):
        if required not in names:
            raise Refusal('the build pod has no {}: not a Dockerfile build pod as the builder makes it'.format(required))
    arg_names = build_arg_names(env)

    volumes = spec.get('volumes', [])
    # The ServiceAccount token volume the API server added before this webhook ran, and the socket.
    dropped = set(v['name'] for v in volumes if v['name'] == DOCKER_SOCKET_VOLUME or v['name'].startswith('kube-api-access-'))
    kept_mounts = [m for m in original.get('volumeMounts', []) if m['name'] not in dropped]
    object_store = [m for m in kept_mounts if m['name'] == OBJECT_STORE_VOLUME]
    if not object_store:
        raise Refusal('the build pod mounts no object store keys ({})'.format(OBJECT_STORE_VOLUME))

    fetch = {
        'name': 'fetch-source',
        'image': original['image'],
        'imagePullPolicy': original.get('imagePullPolicy', 'IfNotPresent'),
        'command': ['/bin/sh', '-c', FETCH],
        'env': [e for e in env if e.get('name') in ('TAR_PATH', 'BUILDER_STORAGE', 'DEIS_DEBUG')],
        'volumeMounts': object_store + [{'name': 'workspace', 'mountPath': WORKSPACE}],
        'securityContext': {'allowPrivilegeEscalation': False, 'capabilities': {'drop': ['ALL']}},
    }
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
    for key in ('resources', 'terminationMessagePath', 'terminationMessagePolicy'):
        if key in original:
            build[key] = original[key]

    new_spec = copy.deepcopy(spec)
    new_spec['volumes'] = [v for v in volumes if v['name'] not in dropped] + [
        {'name': 'workspace', 'emptyDir': {}},
        {'name': 'build-script', 'configMap': {'name': settings['configmap']}},
        {'name': 'containers-storage', 'emptyDir': {'sizeLimit': settings['storage_limit']}},
    ]
    new_spec['initContainers'] = [fetch]
    new_spec['containers'] = [build]
    new_spec['automountServiceAccountToken'] = False
    labels = dict(pod.get('metadata', {}).get('labels') or {})
    labels[BUILD_LABEL[0]] = BUILD_LABEL[1]
    return labels, new_spec


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
