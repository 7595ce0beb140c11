"""
Runs the released controller's own code with the chart's CNB extension (files/cnb), offline.

    python3 cnb_harness.py CONTROLLER_ARCHIVE CHART_FILES_DIR [--without-extension]

CONTROLLER_ARCHIVE is teamhephy/controller v2.22.0's api/models/{app,build,release}.py, api/utils.py,
api/exceptions.py and scheduler/ (offline/controller/). These run as they are: App.deploy, scale,
run, Build.create, Release.new, rollback and the whole scheduler package, which builds the
Deployments and pods it sends. Stubbed around them, as small as they can be: Django (a model saves
into lists and fires pre_save), Django REST framework's exception classes, the registry's Docker
client (never reached by these builds), the models the scenarios only read (config, settings), and
App.create (namespace, Service and quota setup, unchanged by the extension). The Kubernetes API is an
in-memory store that answers as the scheduler expects: Deployments become ready at once, their
ReplicaSets appear, a run pod has succeeded and prints its command.

The chart mounts files/ingress.py over scheduler/resources/ingress.py, and so does this harness.
With --without-extension the controller runs with the image's own settings and scheduler, to show
what the extension changes. Prints {"scenarios": [...]} as JSON: per deis command, the Kubernetes
writes it made, and what it returned.
"""
import copy
import datetime
import importlib
import importlib.util
import json
import os
import shutil
import sys
import tarfile
import tempfile
import threading
import time
import types
import uuid
import warnings
from urllib.parse import urlparse

sys.dont_write_bytecode = True
# v2.22.0's scheduler/resources/pod.py compares a string with `is not`; Python 3.8+ says so as it compiles
warnings.filterwarnings('ignore', category=SyntaxWarning)
time.sleep = lambda seconds: None   # the scheduler polls; the store answers at once


def stub(name, **attrs):
    module = types.ModuleType(name)
    module.__path__ = []
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def load(name, path, package_dir=None):
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[package_dir] if package_dir else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition('.')
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


# ---------------------------------------------------------------- the Kubernetes API, in memory

class Response(object):
    def __init__(self, status_code, body=None, text=''):
        self.status_code = status_code
        self.reason = {200: 'OK', 201: 'Created', 404: 'Not Found'}.get(status_code, 'Error')
        self._body = body if body is not None else {}
        self.text = text
        self.encoding = None

    def json(self):
        return self._body


def matches(labels, selector):
    for term in filter(None, (selector or '').split(',')):
        if ' notin(' in term:
            key, values = term.split(' notin(')
            if labels.get(key) in values.rstrip(')').split(','):
                return False
        elif ' in(' in term:
            key, values = term.split(' in(')
            if labels.get(key) not in values.rstrip(')').split(','):
                return False
        elif '=' in term:
            key, value = term.split('=', 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


class KubernetesApi(object):
    """Collections by path; what the v2.22.0 scheduler reads back is filled in as a cluster would."""

    def __init__(self):
        self.lock = threading.Lock()
        self.store = {}       # collection path -> {name: object}
        self.writes = []      # (method, path, body) of every write

    def seed(self, collection, obj):
        self.store.setdefault(collection, {})[obj['metadata']['name']] = obj

    @staticmethod
    def split(path):
        """(collection, name, subresource) of an API path."""
        parts = path.strip('/').split('/')
        start = 2 if parts[0] == 'api' else 3
        rest = parts[start:]
        if rest[0] == 'namespaces' and len(rest) >= 3:
            collection = '/'.join(parts[:start] + rest[:3])
            return collection, (rest[3] if len(rest) > 3 else None), (rest[4] if len(rest) > 4 else None)
        collection = '/'.join(parts[:start] + rest[:1])
        return collection, (rest[1] if len(rest) > 1 else None), None

    def request(self, method, url, params=None, json=None, data=None, **kwargs):
        path = urlparse(url).path
        if path == '/version':
            return Response(200, {'major': '1', 'minor': '35'})
        with self.lock:
            return self.answer(method, path, params or {}, json if json is not None else data)

    def answer(self, method, path, params, body):
        collection, name, sub = self.split(path)
        items = self.store.setdefault(collection, {})
        if method != 'GET':
            self.writes.append({'method': method, 'path': path, 'body': copy.deepcopy(body)})
        if method == 'GET' and name is None:
            found = [o for o in items.values() if matches(o['metadata'].get('labels', {}), params.get('labelSelector'))]
            return Response(200, {'kind': 'List', 'items': copy.deepcopy(found)})
        if method == 'POST':
            obj = copy.deepcopy(body)
            obj['metadata'].setdefault('uid', str(uuid.uuid4()))
            obj['metadata']['creationTimestamp'] = '2026-12-07T12:00:00Z'
            items[obj['metadata']['name']] = obj
            self.settle(collection, obj)
            return Response(201, obj)
        if name not in items:
            return Response(404, {'kind': 'Status', 'message': '{} "{}" not found'.format(collection, name)})
        obj = items[name]
        if method == 'GET' and sub == 'log':
            container = obj['spec']['containers'][0]
            return Response(200, text='ran {} {}\n'.format(container.get('command'), container.get('args')))
        if method == 'GET':
            return Response(200, copy.deepcopy(obj))
        if method == 'DELETE':
            del items[name]
            return Response(200, {})
        if method == 'PUT' and sub == 'scale':
            obj['spec']['replicas'] = body['spec']['replicas']
        elif method == 'PUT':
            body = copy.deepcopy(body)
            body['metadata'].setdefault('uid', obj['metadata'].get('uid'))
            body['metadata']['generation'] = obj['metadata'].get('generation', 1) + 1
            body['metadata']['creationTimestamp'] = obj['metadata'].get('creationTimestamp')
            items[name] = obj = body
        self.settle(collection, obj)
        return Response(200, copy.deepcopy(obj))

    def settle(self, collection, obj):
        """What the cluster's controllers do before the scheduler looks again."""
        kind = collection.rsplit('/', 1)[1]
        if kind == 'deployments':
            replicas = obj['spec'].get('replicas', 0)
            obj['metadata'].setdefault('generation', 1)
            obj['status'] = {'observedGeneration': obj['metadata']['generation'], 'replicas': replicas,
                             'updatedReplicas': replicas, 'availableReplicas': replicas}
            labels = obj['spec']['template']['metadata']['labels']
            replicaset = {'metadata': {'name': '{}-{}'.format(obj['metadata']['name'], labels['version']),
                                       'labels': dict(labels), 'uid': str(uuid.uuid4()),
                                       'creationTimestamp': '2026-12-07T12:00:00Z'}}
            self.seed(collection.replace('deployments', 'replicasets'), replicaset)
        elif kind == 'pods':
            obj['status'] = {'phase': 'Succeeded', 'containerStatuses': [
                {'name': obj['spec']['containers'][0]['name'], 'ready': False,
                 'state': {'terminated': {'exitCode': 0}}}]}


class Session(object):
    def __init__(self, api):
        self.api = api

    def get(self, url, params=None, **kwargs):
        return self.api.request('GET', url, params=params)

    def post(self, url, data=None, json=None, **kwargs):
        return self.api.request('POST', url, json=json, data=data)

    def put(self, url, data=None, **kwargs):
        return self.api.request('PUT', url, data=kwargs.get('json', data))

    def delete(self, url, **kwargs):
        return self.api.request('DELETE', url)

    def head(self, url, **kwargs):
        return self.api.request('GET', url)


# ---------------------------------------------------------------- Django, as far as these models reach

class Signal(object):
    def __init__(self):
        self.receivers = []

    def connect(self, receiver, sender=None, dispatch_uid=None, **kwargs):
        if all(uid != dispatch_uid for _, _, uid in self.receivers):
            self.receivers.append((receiver, sender, dispatch_uid))

    def send(self, sender, **kwargs):
        for receiver, wanted, _ in self.receivers:
            if wanted is None or wanted is sender:
                receiver(sender=sender, **kwargs)


pre_save = Signal()


class DoesNotExist(Exception):
    pass


class Manager(object):
    """A model's rows, newest last: what the models call of Django's QuerySet."""

    def __init__(self, rows=None):
        self.rows = rows if rows is not None else []

    def filter(self, **conditions):
        return Manager([r for r in self.rows if all(getattr(r, k) == v for k, v in conditions.items())])

    def exclude(self, pk=None):
        return Manager([r for r in self.rows if r.pk != pk])

    def latest(self):
        if not self.rows:
            raise DoesNotExist()
        return self.rows[-1]

    def get(self, **conditions):
        found = self.filter(**conditions).rows
        if not found:
            raise DoesNotExist()
        return found[0]

    def all(self):
        return list(self.rows)


class ObjectsDescriptor(object):
    def __get__(self, instance, owner):
        return Creator(owner)


class Creator(object):
    def __init__(self, model):
        self.model = model

    def create(self, **fields):
        obj = self.model(**fields)
        obj.save()
        return obj


class Model(object):
    objects = ObjectsDescriptor()
    DoesNotExist = DoesNotExist
    counter = [0]

    def __init__(self, **fields):
        self._state = types.SimpleNamespace(adding=True)
        self.pk = None
        self.created = None
        for key, value in fields.items():
            setattr(self, key, value)

    def save(self, *args, **kwargs):
        pre_save.send(sender=type(self), instance=self)
        if self._state.adding:
            self.counter[0] += 1
            self.pk = self.counter[0]
            self.created = datetime.datetime(2026, 12, 7, 12, 0, self.pk % 60)
            self.uuid = uuid.UUID(int=self.pk)
            self._state.adding = False
            rows = getattr(getattr(self, 'app', None), type(self).__name__.lower() + '_set', None)
            if rows is not None:
                rows.rows.append(self)

    def delete(self):
        pass


def field(*args, **kwargs):
    """A model field: the class attribute is its default, until an instance sets it."""
    return kwargs.get('default')


models_stub = types.SimpleNamespace(
    Model=Model, ForeignKey=field, TextField=field, CharField=field, PositiveIntegerField=field,
    BooleanField=field, SlugField=field, DateTimeField=field, UUIDField=field, PROTECT=None, CASCADE=None)


class AppConfig(object):
    def __init__(self, app_name, app_module):
        self.name, self.module = app_name, app_module


class APIException(Exception):
    status_code = 500

    def __init__(self, detail=None):
        Exception.__init__(self, detail)
        self.detail = detail


def install_django_stubs(settings_module):
    stub('django', VERSION=(2, 2))
    stub('django.conf', settings=settings_module)
    stub('django.apps', AppConfig=AppConfig)
    stub('django.db', models=models_stub)
    stub('django.db.models', **vars(models_stub))
    stub('django.db.models.signals', pre_save=pre_save)
    stub('django.http', Http404=type('Http404', (Exception,), {}))
    stub('jsonfield', JSONField=field)
    status = stub('rest_framework.status', HTTP_400_BAD_REQUEST=400)
    stub('rest_framework', status=status)
    exceptions = stub('rest_framework.exceptions', APIException=APIException, status=status)
    for name, code in (('ValidationError', 400), ('NotFound', 404), ('PermissionDenied', 403)):
        setattr(exceptions, name, type(name, (APIException,), {'status_code': code}))
    stub('rest_framework.response', Response=object)
    stub('rest_framework.views', set_rollback=lambda: None, exception_handler=lambda *a: None)
    stub('backoff', on_exception=lambda *a, **k: (lambda f: f), expo=None)
    stub('docker')
    stub('docker.auth', auth=types.SimpleNamespace(INDEX_NAME='docker.io', split_repo_name=lambda image: image.split('/', 1)))
    stub('requests_toolbelt', user_agent=lambda name, version: '{}/{}'.format(name, version))

    def unreachable(*args, **kwargs):
        raise AssertionError('the registry\'s Docker client is not reached by these builds')
    stub('registry', publish_release=unreachable, get_port=unreachable, RegistryException=type('RegistryException', (Exception,), {}))


# ---------------------------------------------------------------- the controller

PRODUCTION = dict(   # api/settings/production.py v2.22.0, with the chart's environment
    INSTALLED_APPS=('django.contrib.auth', 'rest_framework', 'api'), AUTH_USER_MODEL='auth.User',
    SCHEDULER_MODULE='scheduler', SCHEDULER_URL='https://10.245.0.1:443', K8S_API_VERIFY_TLS=True,
    SLUGRUNNER_IMAGE='docker.io/hephy/slugrunner:v2.7.0', IMAGE_PULL_POLICY='IfNotPresent',
    REGISTRY_HOST='127.0.0.1', REGISTRY_PORT='5555', REGISTRY_URL='127.0.0.1:5555',
    REGISTRY_LOCATION='on-cluster', REGISTRY_SECRET_PREFIX='private-registry',
    MINIO_HOST='10.245.1.9', MINIO_PORT='9000', APP_STORAGE='minio', WORKFLOW_NAMESPACE='deis',
    DEIS_DEPLOY_BATCHES=0, DEIS_DEPLOY_TIMEOUT=120, KUBERNETES_DEPLOYMENTS_REVISION_HISTORY_LIMIT=None,
    KUBERNETES_POD_TERMINATION_GRACE_PERIOD_SECONDS=30, DEIS_EXPOSE_POD_IP=False,
    DEIS_DEPLOY_PROCFILE_MISSING_REMOVE=True, DEIS_DEPLOY_REJECT_IF_PROCFILE_MISSING=False,
    DEIS_DATETIME_FORMAT='%Y-%m-%dT%H:%M:%SZ', ROUTER_HOST='127.0.0.1', ROUTER_PORT=80,
    LOGGER_HOST='deis-logger.deis', LOGGER_PORT=80, LOG_LINES=100)


class AuditedModel(Model):
    @property
    def _scheduler(self):
        # api/models/__init__.py v2.22.0 AuditedModel._scheduler, the seam the extension plugs into
        from django.conf import settings
        mod = importlib.import_module(settings.SCHEDULER_MODULE)
        return mod.SchedulerClient(settings.SCHEDULER_URL, settings.K8S_API_VERIFY_TLS)

    def _fetch_service_config(self, app, svc_name=None):
        # the same module's helper, less its error wrapping: the app's Service as the API returns it
        return self._scheduler.svc.get(app, svc_name or app).json()


class Config(Model):
    """api/models/config.py, as far as deploys read it."""

    def __init__(self, **fields):
        Model.__init__(self, values={}, memory={}, cpu={}, tags={}, registry={}, healthcheck={},
                       lifecycle_post_start={}, lifecycle_pre_stop={}, termination_grace_period={})
        self.__dict__.update(fields)

    def get_healthcheck(self):
        return self.healthcheck


class AppSettings(Model):
    def __init__(self, **fields):
        Model.__init__(self, routable=True, whitelist=[], maintenance=False, autoscale={}, label={})
        self.__dict__.update(fields)


def load_controller(root, chart_files, with_extension):
    production = stub('api.settings.production', **PRODUCTION)
    stub('api.settings', production=production)
    install_django_stubs(production)
    sys.path.insert(0, root)
    load('api', os.path.join(root, 'api', '__init__.py'), os.path.join(root, 'api'))
    exceptions = load('api.exceptions', os.path.join(root, 'api', 'exceptions.py'))
    load('api.utils', os.path.join(root, 'api', 'utils.py'))
    router = types.SimpleNamespace(get=lambda url, **kwargs: Response(200))   # App.verify_application_health
    package = stub('api.models', UuidAuditedModel=AuditedModel, get_session=lambda: router,
                   **{n: getattr(exceptions, n) for n in ('DeisException', 'AlreadyExists', 'ServiceUnavailable', 'UnprocessableEntity')})
    for name, model in (('config', Config), ('appsettings', AppSettings)):
        stub('api.models.' + name, **{model.__name__: model})
    stub('api.models.domain', Domain=Model)
    stub('api.models.tls', TLS=Model)
    scheduler = importlib.import_module('scheduler')
    scheduler.session = Session(KUBE)   # scheduler.get_session() returns the module's session once set
    release = load('api.models.release', os.path.join(root, 'api', 'models', 'release.py'))
    build = load('api.models.build', os.path.join(root, 'api', 'models', 'build.py'))
    app = load('api.models.app', os.path.join(root, 'api', 'models', 'app.py'))
    package.App, package.Build, package.Release = app.App, build.Build, release.Release
    app.App.create = lambda self, *args, **kwargs: None
    settings = production
    if with_extension:
        load('hephy_doks', os.path.join(chart_files, 'cnb', '__init__.py'), os.path.join(chart_files, 'cnb'))
        settings = importlib.import_module('hephy_doks.settings')
        sys.modules['django.conf'].settings = settings
        for entry in settings.INSTALLED_APPS:   # what django.setup() does with each AppConfig entry
            if entry.startswith('hephy_doks.'):
                module, _, cls = entry.rpartition('.')
                getattr(importlib.import_module(module), cls)('hephy_doks', sys.modules['hephy_doks']).ready()
    return app.App, build.Build, release.Release, settings


# ---------------------------------------------------------------- deis commands

KUBE = KubernetesApi()
USER = types.SimpleNamespace(username='alice', email='alice@example.com')


def extract(archive):
    work = tempfile.mkdtemp(prefix='hephy-doks-controller-')
    with tarfile.open(archive) as tar:
        tar.extractall(work)
    return work, os.path.join(work, 'controller-v2.22.0', 'rootfs')


def main(archive, chart_files, with_extension):
    work, root = extract(archive)
    try:
        shutil.copyfile(os.path.join(chart_files, 'ingress.py'), os.path.join(root, 'scheduler', 'resources', 'ingress.py'))
        return scenarios(*load_controller(root, chart_files, with_extension))
    finally:
        shutil.rmtree(work)


def scenarios(App, Build, Release, settings):
    KUBE.seed('api/v1/namespaces/deis/secrets', {'metadata': {'name': 'objectstorage-keyfile'}, 'data': {'accesskey': 'YQ==', 'secretkey': 'Yg=='}})
    KUBE.seed('api/v1/nodes', {'metadata': {'name': 'node-1', 'labels': {}}})
    KUBE.seed('api/v1/namespaces/myapp/services', {'metadata': {'name': 'myapp', 'labels': {}, 'annotations': {}},
                                                   'spec': {'selector': {}, 'ports': [{'port': 80, 'targetPort': 5000}]}})
    out = []

    app = App(id='myapp', owner=USER, structure={}, procfile_structure={})
    for rows in ('release_set', 'build_set', 'appsettings_set'):
        setattr(app, rows, Manager())
    AppSettings(app=app).save()
    Release.objects.create(owner=USER, app=app, version=1, config=Config(owner=USER), build=None)

    def step(command, action):
        start = len(KUBE.writes)
        try:
            result = action()
            error = None
        except Exception as e:   # what the API would answer the CLI
            result, error = None, "{}: {}".format(type(e).__name__, e)
        out.append({'command': command, 'result': result, 'error': error, 'writes': KUBE.writes[start:]})

    def push(sha, procfile, dockerfile=''):
        """What BuildHookViewSet does with the builder's POST /v2/hooks/build/ (api/views.py)."""
        image = 'home/myapp:git-{}/push/slug.tgz'.format(sha) if not dockerfile else 'myapp'
        build = Build(owner=USER, app=app, image=image, sha=sha, procfile=procfile, dockerfile=dockerfile)
        build.save()
        return {'image': build.image, 'type': build.type, 'version': build.create(USER).version}

    def config_set(values, healthcheck=None):
        """What ConfigViewSet does for `deis config:set` and `healthchecks:set` (api/views.py, models/__init__.py)."""
        latest = app.release_set.filter(failed=False).latest()
        config = Config(owner=USER, values=dict(latest.config.values, **values),
                        healthcheck=healthcheck if healthcheck is not None else latest.config.healthcheck)
        release = latest.new(USER, config=config, build=latest.build)
        app.deploy(release)
        return {'version': release.version}

    slug_procfile = {'web': 'gunicorn app:app'}
    procfile = {'web': 'gunicorn app:app', 'worker': 'python worker.py'}

    # a slug release made before the upgrade, from the builder's hook, deployed again by the controller
    # that now runs (load_db_state_to_k8s at its start deploys each app's latest release)
    signal_receivers, pre_save.receivers = pre_save.receivers, []
    step('git push (slug, before the upgrade)', lambda: push('0a1b2c3d', slug_procfile))
    pre_save.receivers = signal_receivers
    step('controller start after the upgrade', lambda: app.deploy(app.release_set.filter(failed=False).latest(), force_deploy=True) or {})
    step('git push (buildpack app)', lambda: push('1f2e3d4c', procfile))
    step('deis scale web=2 worker=1', lambda: app.scale(USER, {'web': 2, 'worker': 1}))
    step('deis config:set GREETING=hello', lambda: config_set({'GREETING': 'hello'}))
    liveness = {'web/cmd': {'livenessProbe': {'httpGet': {'path': '/healthz'}, 'initialDelaySeconds': 5}}}
    step('deis healthchecks:set liveness httpGet /healthz', lambda: config_set({}, liveness))
    step("deis run 'python manage.py migrate'", lambda: list(app.run(USER, 'python manage.py migrate')))
    step('deis releases:rollback v4', lambda: {'version': app.release_set.latest().rollback(USER, 4).version})
    step('deis releases:rollback v2', lambda: {'version': app.release_set.latest().rollback(USER, 2).version})
    step("deis run 'ls' (slug release)", lambda: list(app.run(USER, 'ls')))
    step('deis config:set PORT=8080', lambda: config_set({'PORT': '8080'}))
    step('git push (Dockerfile app)', lambda: push('5e6f7a8b', {}, dockerfile='FROM scratch'))
    return out


if __name__ == '__main__':
    if len(sys.argv) not in (3, 4):
        sys.exit('usage: python3 cnb_harness.py CONTROLLER_ARCHIVE CHART_FILES_DIR [--without-extension]')
    result = main(sys.argv[1], sys.argv[2], '--without-extension' not in sys.argv[3:])
    print(json.dumps({'scenarios': result}, indent=1, default=str))
