"""
The controller's image client, over the registry HTTP API instead of a Docker daemon.

The controller image quay.io/hephy/controller:v2.22.0 reads images through the
node's Docker socket (rootfs/registry/dockerclient.py, docker-py): `deis pull`
copies the image into the on-cluster registry (Release.publish ->
publish_release), and a Dockerfile or pulled app without PORT gets the port its
image exposes (Release.get_port -> get_port). DOKS nodes run containerd and have
no Docker daemon. The hephy-doks chart mounts this file over
/app/registry/dockerclient.py; registry/__init__.py imports publish_release,
get_port and RegistryException from it, with the same signatures as the image's.

- The stack's registry: the controller names it as the nodes do,
  DEIS_REGISTRY_SERVICE_HOST:DEIS_REGISTRY_SERVICE_PORT (127.0.0.1:5555, each
  node's proxy); inside this pod that address is the pod itself, so those
  requests go to DEIS_REGISTRY_INTERNAL_URL, the registry's Service.
- Other registries over HTTPS, Docker Hub for names without a host
  (docker.io/library/<name> for one-part names), with the anonymous or
  credentialed bearer token their 401 asks for.
- A multi-platform image resolves to its linux/amd64 image: DOKS nodes are amd64.
  Only that image is copied.

Keep this module runnable on the image's Python 3.6: no newer syntax.
"""
import base64
import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request

logger = logging.getLogger(__name__)

MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json'
MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
ACCEPT = ', '.join([MANIFEST_V2, OCI_MANIFEST, MANIFEST_LIST, OCI_INDEX])
PLATFORM = ('linux', 'amd64')
DOCKER_HUB = 'registry-1.docker.io'
TIMEOUT = int(os.environ.get('DOCKER_CLIENT_TIMEOUT', '60'))
# Workflow's own images; the image's client refused these names too (check_blacklist).
RESERVED = ['builder', 'controller', 'database', 'dockerbuilder', 'etcd', 'minio', 'registry',
            'router', 'slugbuilder', 'slugrunner', 'workflow', 'workflow-manager']


class RegistryException(Exception):
    pass


def own_registry():
    return '{}:{}'.format(os.environ.get('DEIS_REGISTRY_SERVICE_HOST', '127.0.0.1'),
                          os.environ.get('DEIS_REGISTRY_SERVICE_PORT', '5555'))


class Reference(object):
    """An image reference: where its registry answers, its repository, and its tag or digest."""

    def __init__(self, image):
        name, self.reference = image, 'latest'
        if '@' in name:
            name, self.reference = name.split('@', 1)
        elif ':' in name.rsplit('/', 1)[-1]:
            name, self.reference = name.rsplit(':', 1)
        first, _, rest = name.partition('/')
        if rest and ('.' in first or ':' in first or first == 'localhost'):
            self.host, self.repository = first, rest
        else:
            self.host, self.repository = 'docker.io', name
            if '/' not in name:
                self.repository = 'library/' + name
        if not re.match(r'^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$',
                        self.repository):
            raise RegistryException('{} is not a valid image name'.format(image))
        if self.host == own_registry():
            self.base = os.environ.get('DEIS_REGISTRY_INTERNAL_URL', 'http://' + self.host).rstrip('/')
        elif self.host == 'docker.io':
            self.base = 'https://' + DOCKER_HUB
        else:
            self.base = 'https://' + self.host

    def __str__(self):
        return '{}/{}{}{}'.format(self.host, self.repository, '@' if ':' in self.reference else ':', self.reference)


class Session(object):
    """Requests to one registry, with the token its 401 challenge asks for."""

    def __init__(self, ref, creds=None):
        self.ref, self.creds, self.authorization = ref, creds, None

    def url(self, path):
        return '{}/v2/{}/{}'.format(self.ref.base, self.ref.repository, path)

    def request(self, method, url, data=None, headers=None, retry=True):
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        if self.authorization:
            # Not sent on to a redirect: blob storage behind a registry refuses a second credential.
            req.add_unredirected_header('Authorization', self.authorization)
        try:
            return urllib.request.urlopen(req, timeout=TIMEOUT)
        except urllib.error.HTTPError as e:
            if e.code == 401 and retry and self.authenticate(e.headers.get('WWW-Authenticate', '')):
                return self.request(method, url, data, headers, retry=False)
            raise

    def authenticate(self, challenge):
        scheme, _, params = challenge.partition(' ')
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        basic = None
        if self.creds and self.creds.get('username') and self.creds.get('password'):
            pair = '{}:{}'.format(self.creds['username'], self.creds['password']).encode()
            basic = 'Basic ' + base64.b64encode(pair).decode()
        if scheme.lower() == 'basic' and basic:
            self.authorization = basic
            return True
        if scheme.lower() != 'bearer' or 'realm' not in fields:
            return False
        query = {'service': fields.get('service', '')}
        query['scope'] = fields.get('scope') or 'repository:{}:pull'.format(self.ref.repository)
        req = urllib.request.Request(fields['realm'] + '?' + urllib.parse.urlencode(query))
        if basic:
            req.add_header('Authorization', basic)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
                answer = json.loads(response.read().decode())
        except urllib.error.HTTPError as e:
            raise RegistryException('{} refused the credentials for {}: {} {}'.format(
                self.ref.host, self.ref.repository, e.code, e.reason))
        self.authorization = 'Bearer ' + (answer.get('token') or answer.get('access_token') or '')
        return True

    def manifest(self, reference=None):
        """The image's manifest (bytes, media type), a multi-platform image resolved to linux/amd64."""
        url = self.url('manifests/' + (reference or self.ref.reference))
        with self.request('GET', url, headers={'Accept': ACCEPT}) as response:
            body = response.read()
            media = response.headers.get('Content-Type', '').split(';')[0]
        document = json.loads(body.decode())
        media = document.get('mediaType') or media
        if media in (MANIFEST_LIST, OCI_INDEX) or 'manifests' in document:
            for entry in document.get('manifests', []):
                platform = entry.get('platform', {})
                if (platform.get('os'), platform.get('architecture')) == PLATFORM:
                    return self.manifest(entry['digest'])
            raise RegistryException('{} has no {}/{} image'.format(self.ref, *PLATFORM))
        return body, media or MANIFEST_V2

    def blob(self, digest):
        return self.request('GET', self.url('blobs/' + digest))

    def has_blob(self, digest):
        try:
            self.request('HEAD', self.url('blobs/' + digest)).close()
            return True
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return False
            raise

    def upload(self, digest, size, source):
        with self.request('POST', self.url('blobs/uploads/'), data=b'') as response:
            location = urllib.parse.urljoin(self.url(''), response.headers['Location'])
        separator = '&' if '?' in location else '?'
        headers = {'Content-Type': 'application/octet-stream', 'Content-Length': str(size)}
        self.request('PUT', location + separator + 'digest=' + urllib.parse.quote(digest), data=source,
                     headers=headers).close()

    def put_manifest(self, tag, body, media):
        self.request('PUT', self.url('manifests/' + tag), data=body, headers={'Content-Type': media}).close()


def check_reserved(ref):
    if any(ref.repository.startswith('deis/' + name) for name in RESERVED):
        raise RegistryException('Repository name {} is not allowed, as it is reserved by Deis'.format(ref.repository))


def fail(action, ref, error):
    if isinstance(error, urllib.error.HTTPError):
        detail = '{} {}'.format(error.code, error.reason)
    elif isinstance(error, urllib.error.URLError):
        detail = str(error.reason)
    else:
        detail = str(error)
    return RegistryException('Could not {} image {}: {}'.format(action, ref, detail))


def image_config(target, creds=None):
    ref = Reference(target)
    session = Session(ref, creds)
    try:
        body, _ = session.manifest()
        digest = json.loads(body.decode())['config']['digest']
        with session.blob(digest) as response:
            return json.loads(response.read().decode())
    except (urllib.error.URLError, ValueError, KeyError) as e:
        raise fail('inspect', ref, e)


def get_port(target, deis_registry=False, creds=None):
    """The first port the image exposes, as the image's client took it, or None."""
    config = image_config(target, None if deis_registry else creds).get('config') or {}
    ports = config.get('ExposedPorts') or {}
    if not ports:
        return None
    return int(list(ports.keys())[0].split('/')[0])


def publish_release(source, target, deis_registry=False, creds=None):
    """Copy the source image into the stack's registry under the target's name and tag."""
    src, dst = Reference(source), Reference(target)
    check_reserved(src)
    check_reserved(dst)
    reader, writer = Session(src, creds), Session(dst)
    logger.info('Copying image {} to {}'.format(src, dst))
    try:
        body, media = reader.manifest()
        manifest = json.loads(body.decode())
        for descriptor in [manifest['config']] + manifest.get('layers', []):
            if writer.has_blob(descriptor['digest']):
                continue
            with reader.blob(descriptor['digest']) as blob:
                writer.upload(descriptor['digest'], descriptor['size'], blob)
        writer.put_manifest(dst.reference, body, media)
    except urllib.error.HTTPError as e:
        raise fail('copy', src if e.url and src.base in e.url else dst, e)
    except (urllib.error.URLError, ValueError, KeyError) as e:
        raise fail('copy', src, e)


def check_access(target, creds=None):
    """Raises unless the image can be read with the given credentials."""
    ref = Reference(target)
    try:
        Session(ref, creds).manifest()
    except urllib.error.URLError as e:
        raise fail('access', ref, e)
