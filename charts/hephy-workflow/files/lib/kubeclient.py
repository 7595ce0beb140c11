"""
The one Kubernetes API client of the project's in-cluster Python programs (the route reconciler, the
node DNS reconciler, and any that follow): the standard library only, for the Python 3.6 of Workflow's
controller image, which those programs run from.

- `in_cluster()` reaches the API server the pod's ServiceAccount is for. The kubelet rotates the
  projected token file (about hourly, KEP-1205 bound tokens), so the token is read again at every
  request, never kept.
- `Api.json` answers (status, parsed body); errors are statuses, not exceptions, so a caller decides
  what a 404 or 409 means to it. Transport errors (refused, timed out) do raise.
- `wait_for_change` watches one or more collections from their lists' resourceVersions and returns as
  soon as any of them changes, or after `seconds`: the wait between a level-triggered program's passes,
  which `run_passes` runs.

A program finds this module beside its own file: each one's ConfigMap carries both, mounted in one
directory, and the tests put files/lib on PYTHONPATH.
"""
import json
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount/'


class Api(object):
    """The Kubernetes API at `base`, authenticated with the bearer token in `token_file` (when it exists)."""

    def __init__(self, base, token_file=None, cafile=None, timeout=30):
        self.base = base.rstrip('/')
        self.token_file = token_file
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=cafile) if base.startswith('https') else None

    def token(self):
        if self.token_file and os.path.exists(self.token_file):
            with open(self.token_file) as f:
                return f.read().strip()
        return None

    def call(self, method, path, body=None, params=None, timeout=None):
        """The raw response: (status, a file-like body), for watches that read it line by line."""
        url = self.base + path + ('?' + urllib.parse.urlencode(params) if params else '')
        data = json.dumps(body).encode('utf-8') if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header('Accept', 'application/json')
        if data is not None:
            request.add_header('Content-Type', 'application/json')
        token = self.token()
        if token:
            request.add_header('Authorization', 'Bearer ' + token)
        try:
            response = urllib.request.urlopen(request, timeout=timeout or self.timeout, context=self.context)
            return response.status, response
        except urllib.error.HTTPError as error:
            return error.code, error

    def json(self, method, path, body=None, params=None):
        status, response = self.call(method, path, body, params)
        try:
            text = response.read().decode('utf-8')
        finally:
            response.close()
        try:
            return status, (json.loads(text) if text else {})
        except ValueError:
            # A proxy's HTML error page: the status says what happened, the text says the rest.
            return status, {'message': text[:200]}

    def list(self, path, params=None):
        """A collection's items and its resourceVersion; a status other than 200 raises, naming the path."""
        status, answer = self.json('GET', path, params=params)
        if status != 200:
            raise RuntimeError('listing {} answered {}: {}'.format(path, status, answer.get('message', '')))
        return answer.get('items') or [], (answer.get('metadata') or {}).get('resourceVersion')


def in_cluster(timeout=30):
    """
    The API server of the pod's own cluster. KUBE_API (a URL) and KUBE_SERVICE_ACCOUNT (a directory)
    point it elsewhere, for tests against a stand-in.
    """
    root = os.environ.get('KUBE_SERVICE_ACCOUNT') or SERVICE_ACCOUNT
    base = os.environ.get('KUBE_API') or 'https://{}:{}'.format(os.environ['KUBERNETES_SERVICE_HOST'], os.environ['KUBERNETES_SERVICE_PORT'])
    cafile = os.path.join(root, 'ca.crt') if base.startswith('https') else None
    return Api(base, token_file=os.path.join(root, 'token'), cafile=cafile, timeout=timeout)


def wait_for_change(api, watches, seconds, least=5):
    """
    Watches each (path, resourceVersion) in `watches` until one of them reports an event, or `seconds`
    pass. Without a version the API would replay the whole collection at once, so such a watch is not
    started; a watch that fails (its version too old, the API away) only shortens the wait. However it
    ends, it lasts at least `least` seconds (at most `seconds`), so passes never run back to back.
    """
    started = time.time()
    changed = threading.Event()
    finished = threading.Event()
    responses = []

    def watch(path, version):
        try:
            params = {'watch': 'true', 'resourceVersion': version, 'timeoutSeconds': str(seconds)}
            status, response = api.call('GET', path, params=params, timeout=seconds + 10)
            responses.append(response)
            # A watch that was still connecting when the wait ended hangs up on its own.
            if finished.is_set():
                _hang_up(response)
            elif status == 200:
                response.readline()
        except Exception:  # the next pass lists everything anyway
            pass
        changed.set()

    threads = [threading.Thread(target=watch, args=(path, version), daemon=True) for path, version in watches if version]
    for thread in threads:
        thread.start()
    if threads:
        changed.wait(seconds)
    finished.set()
    for response in list(responses):
        _hang_up(response)
    time.sleep(max(0, min(seconds, least) - (time.time() - started)))


def run_passes(api, one_pass, resync, log, once=False):
    """
    A level-triggered program's life: a pass (`one_pass()` answers the (path, resourceVersion) pairs to
    watch), then a wait until one of them changes or `resync` seconds pass, and again. A pass that fails
    is logged and the next one starts over. With `once`, one pass: the exit status says whether it failed.
    """
    while True:
        watches = []
        try:
            watches = one_pass()
        except Exception as error:  # survives API errors: the next pass starts over
            log('pass failed: {}'.format(error))
            if once:
                return 1
        if once:
            return 0
        wait_for_change(api, watches, resync)


def _hang_up(response):
    """
    Ends a watch another thread may be reading: closing the response does not wake a blocked read, a
    socket shutdown does (CPython's HTTPResponse reads through fp.raw, a socket.SocketIO over `_sock`).
    Without it each pass would leave a watch open on the API server until its timeoutSeconds.
    """
    sock = getattr(getattr(getattr(response, 'fp', None), 'raw', None), '_sock', None)
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        response.close()
    except Exception:  # already closed by the server
        pass
