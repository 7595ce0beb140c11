"""
Test harness for the controller's ingress.py overlay, with no pip packages.

    python3 harness.py path/to/ingress.py

Stubs the parts of the v2.22.0 controller that ingress.py uses
(rootfs/scheduler/exceptions.py, scheduler/__init__.py KubeHTTPClient,
scheduler/resources/__resource.py), loads the overlay, calls it the way
api/models/app.py does, and prints {"requests": [...], "errors": [...]}.
"""
import importlib.util
import json
import sys
import types

# Loading the overlay must not leave __pycache__/ in the chart's files/ directory.
sys.dont_write_bytecode = True

REQUESTS = []   # every HTTP call the overlay makes
REPLIES = []    # (status, reason, body) for the next calls; default 201/200


class FakeResponse(object):
    def __init__(self, status_code, reason, body):
        self.status_code, self.reason, self.json = status_code, reason, lambda: body


def fake_http(method, path, params=None, body=None):
    REQUESTS.append({'method': method, 'path': path, 'params': params or None, 'json': body})
    default = (201, 'Created', {}) if method == 'POST' else (200, 'OK', {})
    status, reason, data = REPLIES.pop(0) if REPLIES else default
    return FakeResponse(status, reason, data)


class KubeException(Exception):   # scheduler/exceptions.py, as in v2.22.0
    def __init__(self, *args, **kwargs):
        Exception.__init__(self, *args, **kwargs)


class KubeHTTPException(KubeException):
    def __init__(self, response, errmsg, *args, **kwargs):
        self.response = response
        data = response.json()
        message = data['message'] if 'message' in data else ''
        msg = 'failed to {}: {} {} {}'.format(
            errmsg.format(*args), response.status_code, response.reason, message)
        KubeException.__init__(self, msg, *args, **kwargs)


class KubeHTTPClient(object):
    """The helper methods of scheduler.KubeHTTPClient, with the same signatures."""
    def __init__(self, url, k8s_api_verify_tls=True):
        self.url = url

    @staticmethod
    def unhealthy(status_code):
        return not 200 <= status_code <= 299

    @staticmethod
    def query_params(labels=None, fields=None, resource_version=None, pretty=False):
        # simplified: only equality label selectors
        labels = ['{}={}'.format(k, v) for k, v in (labels or {}).items()]
        return {'labelSelector': ','.join(labels)} if labels else {}

    # the five HTTP helpers, with v2.22.0's signatures
    def http_head(self, path, **kwargs): return fake_http('HEAD', path)
    def http_get(self, path, params=None, **kwargs): return fake_http('GET', path, params)
    def http_put(self, path, data=None, **kwargs): return fake_http('PUT', path, body=data)
    def http_delete(self, path, **kwargs): return fake_http('DELETE', path)

    def http_post(self, path, data=None, json=None, **kwargs):
        return fake_http('POST', path, body=json if json is not None else data)


class ResourceRegistry(type):
    """As in scheduler/resources/__resource.py: every subclass is registered."""
    def __init__(cls, name, bases, nmspc):
        super().__init__(name, bases, nmspc)
        if not hasattr(cls, 'registry'):
            cls.registry = set()
        cls.registry.add(cls)
        cls.registry -= set(bases)


class Resource(KubeHTTPClient, metaclass=ResourceRegistry):
    api_version = 'v1'
    api_prefix = 'api'
    short_name = None

    def api(self, tmpl, *args):
        return "/{}/{}".format(self.api_prefix, self.api_version) + tmpl.format(*args)


def stub_module(name, **attrs):
    module = types.ModuleType(name)
    module.__path__ = []   # a package, so submodules can be imported
    module.__dict__.update(attrs)
    sys.modules[name] = module


exc_classes = dict(KubeException=KubeException, KubeHTTPException=KubeHTTPException)
stub_module('scheduler', KubeHTTPClient=KubeHTTPClient, **exc_classes)
stub_module('scheduler.exceptions', **exc_classes)
stub_module('scheduler.resources', Resource=Resource)


def main(path):
    spec = importlib.util.spec_from_file_location('scheduler.resources.ingress', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)   # an import error propagates: exit 1
    registered = {r.short_name: r for r in Resource.registry}
    assert registered.get('ingress') is module.Ingress, 'Ingress not registered'
    ingress = module.Ingress('https://kubernetes.default.svc')

    # what api/models/app.py does (get, then create when get fails), then a list and a delete
    ingress.get('myapp')
    created = ingress.create(ingress='myapp', namespace='myapp', hostname='paas.example.com')
    assert created is None, 'create returns nothing'
    ingress.get(labels={'heritage': 'deis'})
    ingress.delete('myapp', 'myapp')

    # error replies; distinct names show which argument goes where
    errors, failed = [], False
    for status, reason, call in [
            (404, 'Not Found', lambda: ingress.get('nosuchapp')),
            (500, 'Internal Server Error', lambda: ingress.delete('team', 'web'))]:
        REPLIES.append((status, reason, {'kind': 'Status', 'message': 'simulated ' + reason}))
        try:
            call()
            errors.append({'status': status, 'raised': None})
            failed = True
        except KubeHTTPException as e:
            errors.append({'status': status, 'raised': type(e).__name__,
                           'str': str(e), 'args': list(e.args),
                           'response_kept': e.response.status_code == status})
    print(json.dumps({'requests': REQUESTS, 'errors': errors}, indent=2))
    return 1 if failed else 0


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: python3 harness.py path/to/ingress.py')
    sys.exit(main(sys.argv[1]))
