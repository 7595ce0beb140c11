"""
Routes for Workflow's apps under native ingress: the router's annotations, given meaning.

The v2.22.0 controller writes what `deis domains`, `certs`, `tls`, `whitelist`,
`maintenance` and `routing` set as `router.deis.io/*` annotations and the label
`router.deis.io/routable` on each app's Service (rootfs/api/models/app.py,
domain.py, certificate.py, tls.py), for a router that native-ingress mode does
not run. This process reads those Services (labelled `heritage: deis` and
`app: <namespace>`) and keeps, for each routable one, the Ingresses that say
the same to the cluster's HAProxy ingress controller:

- `<service>`: the hosts whose certificate cert-manager issues (the Service's
  platform subdomains and custom domains), annotated with the stack's
  ClusterIssuer, which makes one Certificate per host (cert-manager
  ingress-shim). A wildcard host cannot pass HTTP-01: it is served without a
  certificate of its own and reported; one under the platform domain is refused.
- `<service>.certs`: the hosts with a certificate attached by `deis certs:attach`
  (Secret `<certname>-cert` in the app's namespace), with no issuer, so
  cert-manager leaves those Secrets alone.

It owns every app Ingress: the controller's overlay creates none (files/ingress.py),
and one an earlier overlay made, named after its app, is taken over. Each host
is served once in the cluster: by an Ingress this process does not manage
(Workflow's API), else `<app>.<platform domain>` by that app, else by the oldest
Service that names it. It never reads a Secret: an Ingress names one without
reading it.

It runs from the controller's image (Python 3.6, standard library only here),
level-triggered: a full pass every RESYNC_SECONDS, and watches of Services and
Ingresses in between so a change, or an Ingress someone else edits, applies within seconds. Every pass computes the whole
desired state and writes only what differs, so a restart or a failed request
is repaired by the next pass.
"""
import hashlib
import ipaddress
import os
import re
import sys

# files/lib/kubeclient.py, which the ConfigMap mounts beside this file.
from kubeclient import in_cluster, run_passes

PREFIX = 'router.deis.io/'
ROUTABLE = PREFIX + 'routable'
MANAGED_BY = {'app.kubernetes.io/managed-by': 'hephy-doks-routes'}
# haproxytech/kubernetes-ingress v3.2 documentation/annotations.md: `ssl-redirect`,
# `allow-list` and `backend-config-snippet` apply on Ingresses.
SSL_REDIRECT = 'haproxy.org/ssl-redirect'
ALLOW_LIST = 'haproxy.org/allow-list'
BACKEND_SNIPPET = 'haproxy.org/backend-config-snippet'
MAINTENANCE_SNIPPET = (
    'http-request return status 503 content-type "text/plain" '
    'string "This app is down for maintenance. Please try again later."'
)
CLUSTER_ISSUER = 'cert-manager.io/cluster-issuer'
# cert-manager v1.21 pkg/issuer/acme/http/ingress.go: the label of the Ingress its HTTP-01 solver makes.
SOLVER_LABEL = 'acme.cert-manager.io/http01-solver'
# A DNS name as the controller accepts one (api/serializers.py validate_domain),
# with at most a leading `*.`.
HOST = re.compile(r'^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$')
CERT_NAME = re.compile(r'^[a-z0-9-]+$')


def truthy(value):
    """The controller writes "True"/"False" and "true"/"false" (app.py, tls.py)."""
    return str(value).strip().lower() == 'true'


def comma_list(value):
    return [item.strip() for item in (value or '').split(',') if item.strip()]


def is_app_service(service):
    """A Service of Workflow's: the controller labels it `heritage: deis` and `app: <its namespace>`."""
    meta = service['metadata']
    labels = meta.get('labels') or {}
    return labels.get('heritage') == 'deis' and labels.get('app') == meta['namespace']


def apps_by_name(services):
    """Each app's own Service (the controller's, named after the app in the app's namespace), by app."""
    return dict(
        (s['metadata']['namespace'], s) for s in services if is_app_service(s) and s['metadata']['namespace'] == s['metadata']['name']
    )


class Routes(object):
    """
    What one routable Service asks for, read from its annotations. A per-process Service
    (`<app>-<proctype>`, api/models/service.py) carries only its own domain: the app's access rules
    (its Service's whitelist, TLS enforcement and maintenance) apply to it too, or its host would
    bypass them.
    """

    def __init__(self, service, platform_domain, app_service=None):
        meta = service['metadata']
        notes = meta.get('annotations') or {}
        rules = (app_service['metadata'].get('annotations') or {}) if app_service else notes
        self.namespace = meta['namespace']
        self.name = meta['name']
        self.uid = meta['uid']
        self.problems = []
        hosts = []
        for domain in comma_list(notes.get(PREFIX + 'domains')) or [self.name]:
            host = self.host(domain, platform_domain)
            if not HOST.fullmatch(host) or len(host) > 253:
                self.problems.append('domain {!r} is not a host name'.format(domain))
            elif host.startswith('*.') and (host[2:] == platform_domain or host.endswith('.' + platform_domain)):
                self.problems.append('domain {} would catch other apps\' hosts under the platform domain'.format(domain))
            elif host not in hosts:
                hosts.append(host)
        self.hosts = hosts
        self.certificates = {}
        for entry in comma_list(notes.get(PREFIX + 'certificates')):
            domain, _, cert = entry.partition(':')
            host = self.host(domain, platform_domain)
            if not cert or not CERT_NAME.fullmatch(cert):
                self.problems.append('certificate entry {!r} names no certificate'.format(entry))
            elif host not in hosts:
                self.problems.append('certificate {} is attached to {}, which is not a domain of the app'.format(cert, domain))
            else:
                self.certificates[host] = cert + '-cert'
        self.enforce_tls = truthy(rules.get(PREFIX + 'ssl.enforce', 'false'))
        self.maintenance = truthy(rules.get(PREFIX + 'maintenance', 'false'))
        self.allow_list = []
        self.allow_list_valid = True
        for source in comma_list(rules.get(PREFIX + 'whitelist')):
            try:
                # As HAProxy parses it (Go's net.ParseCIDR): no netmask notation, which the controller accepts.
                self.allow_list.append(str(ipaddress.ip_network(source, strict=False)))
            except ValueError:
                self.allow_list_valid = False
                self.problems.append('whitelist entry {!r} is no address or network'.format(source))

    @staticmethod
    def host(domain, platform_domain):
        """A bare name is a subdomain of the platform domain, a dotted one a domain of its own (deis-router's rule)."""
        host = domain.strip().lower().rstrip('.')
        return host if '.' in host else '{}.{}'.format(host, platform_domain)


def ingress(name, hosts, routes, tls, issuer):
    """An Ingress routing `hosts` to port 80 of `service`, with the app's access rules."""
    backend = {'service': {'name': routes.name, 'port': {'number': 80}}}
    annotations = {SSL_REDIRECT: 'true' if routes.enforce_tls else 'false'}
    if routes.allow_list:
        annotations[ALLOW_LIST] = ','.join(routes.allow_list)
    if routes.maintenance:
        annotations[BACKEND_SNIPPET] = MAINTENANCE_SNIPPET
    if issuer:
        annotations[CLUSTER_ISSUER] = issuer
    spec = {
        'rules': [
            {'host': host, 'http': {'paths': [{'path': '/', 'pathType': 'Prefix', 'backend': backend}]}}
            for host in hosts
        ],
    }
    if tls:
        spec['tls'] = tls
    return {
        'apiVersion': 'networking.k8s.io/v1',
        'kind': 'Ingress',
        'metadata': {
            'name': name,
            'namespace': routes.namespace,
            'labels': dict(MANAGED_BY),
            'annotations': annotations,
            'ownerReferences': [{'apiVersion': 'v1', 'kind': 'Service', 'name': routes.name, 'uid': routes.uid}],
        },
        'spec': spec,
    }


def secret_name(host):
    """The Secret cert-manager writes a host's certificate to: a DNS label, stable per host."""
    digest = hashlib.sha256(host.encode('utf-8')).hexdigest()[:10]
    label = re.sub(r'[^a-z0-9-]', '-', host)[:40].strip('-')
    return '{}-{}-tls'.format(label, digest)


def certs_ingress_name(service_name):
    """The Ingress of a Service's attached certificates: with a dot, which no Service name has, so no Service's own Ingress can take it."""
    return service_name + '.certs'


def desired(services, foreign_hosts, platform_domain, issuer):
    """
    Every Ingress the routable Services ask for, keyed by (namespace, name), the Services whose Ingresses
    stay as they are, and what was refused, as log lines. A host an unmanaged Ingress serves is never
    taken; each app keeps `<app>.<platform domain>`; other hosts go to the oldest Service that names them.
    """
    wanted = {}
    kept = set()
    problems = []
    claimed = dict((host, 'Ingress ' + owner) for host, owner in foreign_hosts.items())
    apps = apps_by_name(services)
    reserved = dict(('{}.{}'.format(app, platform_domain), app) for app in apps)
    def routable_label(service):
        return (service['metadata'].get('labels') or {}).get(ROUTABLE) == 'true'

    def app_routable(service):
        # `deis routing:disable` flips the label on the app's own Service only (App.routable() in
        # rootfs/api/models/app.py), while per-process Services keep the "true" of their creation: the
        # app's own label decides for all its Services, or routing:disable would leave hosts served.
        own = apps.get(service['metadata']['namespace'])
        return own is None or own is service or routable_label(own)

    routable = [s for s in services if is_app_service(s) and routable_label(s) and app_routable(s)]
    routable.sort(key=lambda s: (s['metadata'].get('creationTimestamp', ''), s['metadata']['namespace'], s['metadata']['name']))
    for service in routable:
        where = '{}/{}'.format(service['metadata']['namespace'], service['metadata']['name'])
        try:
            app_service = apps.get(service['metadata']['namespace']) if service['metadata']['name'] != service['metadata']['namespace'] else None
            routes = Routes(service, platform_domain, app_service)
            problems.extend('{}: {}'.format(where, p) for p in routes.problems)
            if not routes.allow_list_valid:
                # An allow-list with a bad entry is not applied in part, which would open the app wider
                # than asked: its Ingresses stay as they are until the entry is fixed.
                problems.append('{}: left as it is until its whitelist is fixed'.format(where))
                kept.add((routes.namespace, routes.name))
                continue
            own = []
            for host in routes.hosts:
                owner = reserved.get(host)
                if host in claimed:
                    problems.append('{}: host {} is already served by {}'.format(where, host, claimed[host]))
                elif owner is not None and owner != routes.namespace:
                    problems.append('{}: host {} is app {}\'s own'.format(where, host, owner))
                else:
                    claimed[host] = 'Service ' + where
                    own.append(host)
            issued = [h for h in own if h not in routes.certificates]
            attached = [h for h in own if h in routes.certificates]
            wildcards = [h for h in issued if h.startswith('*.')]
            for host in wildcards:
                problems.append('{}: {} is a wildcard, which HTTP-01 cannot certify; attach a certificate (deis certs:attach)'.format(where, host))
            # Without an issuer (the chart's controller.tls.cluster_issuer empty) no one would fill the Secrets.
            tls = [{'hosts': [h], 'secretName': secret_name(h)} for h in issued if h not in wildcards] if issuer else []
            if issued:
                wanted[(routes.namespace, routes.name)] = ingress(routes.name, issued, routes, tls, issuer)
            if attached:
                tls = [{'hosts': [h], 'secretName': routes.certificates[h]} for h in attached]
                name = certs_ingress_name(routes.name)
                wanted[(routes.namespace, name)] = ingress(name, attached, routes, tls, None)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            # One odd Service stops no other app's routes, and its own stay as they are.
            problems.append('{}: left as it is, its Service cannot be read: {!r}'.format(where, error))
            kept.add((service['metadata']['namespace'], service['metadata']['name']))
    return wanted, kept, problems


SERVICES = '/api/v1/services'
INGRESSES = '/apis/networking.k8s.io/v1/ingresses'


def ingress_path(namespace, name=None):
    path = '/apis/networking.k8s.io/v1/namespaces/{}/ingresses'.format(namespace)
    return path + ('/' + name if name else '')


def managed(obj):
    labels = obj['metadata'].get('labels') or {}
    return all(labels.get(k) == v for k, v in MANAGED_BY.items())


def same(current, wanted):
    """Whether an existing Ingress already says what the wanted one does."""
    meta, want = current['metadata'], wanted['metadata']
    return (
        current.get('spec') == wanted['spec']
        and all((meta.get('labels') or {}).get(k) == v for k, v in want['labels'].items())
        and (meta.get('annotations') or {}) == want['annotations']
        and meta.get('ownerReferences') == want['ownerReferences']
    )


def reconcile(api, platform_domain, issuer, log):
    """
    One full pass: read every Service and Ingress, write what differs. Returns the number of writes, and
    the Services' and Ingresses' lists with their resourceVersions, from which watches report only later
    changes: an Ingress someone else changed is repaired within seconds too, not at the next full pass.
    """
    items, services_version = api.list(SERVICES)
    ingresses, ingresses_version = api.list(INGRESSES)
    existing = dict(((i['metadata']['namespace'], i['metadata']['name']), i) for i in ingresses)
    # The Ingress an earlier controller overlay made at `deis create`, named after the app in the app's
    # namespace: this process takes it over, and it is no claim on the app's hosts.
    app_ingresses = set((app, app) for app in apps_by_name(items))
    foreign = {}
    for key, item in sorted(existing.items()):
        labels = item['metadata'].get('labels') or {}
        # cert-manager's HTTP-01 solver serves the host it certifies for a minute: no claim on it.
        if managed(item) or key in app_ingresses or SOLVER_LABEL in labels:
            continue
        for rule in (item.get('spec') or {}).get('rules') or []:
            if rule.get('host'):
                foreign.setdefault(rule['host'], '{}/{}'.format(*key))
    wanted, kept_services, problems = desired(items, foreign, platform_domain, issuer)
    for problem in problems:
        log(problem)
    kept = set()
    for namespace, name in kept_services:
        kept.update([(namespace, name), (namespace, certs_ingress_name(name))])
    writes = 0
    for key, body in sorted(wanted.items()):
        current = existing.get(key)
        if current is not None and 'ingressClassName' in (current.get('spec') or {}):
            # The API server gave the Ingress the cluster's default class when it was made (admission
            # plugin DefaultIngressClass, on create only): an update without it would drop it.
            body = dict(body, spec=dict(body['spec'], ingressClassName=current['spec']['ingressClassName']))
        if current is not None and same(current, body):
            continue
        if current is None:
            status, answer = api.json('POST', ingress_path(key[0]), body)
        else:
            body = dict(body, metadata=dict(body['metadata'], resourceVersion=current['metadata']['resourceVersion']))
            status, answer = api.json('PUT', ingress_path(*key), body)
        writes += 1
        if status not in (200, 201):
            log('{}/{}: writing the Ingress answered {}: {}'.format(key[0], key[1], status, answer.get('message', '')))
    for key, current in sorted(existing.items()):
        if key in wanted or key in kept or not (managed(current) or key in app_ingresses):
            continue
        status, answer = api.json('DELETE', ingress_path(*key))
        writes += 1
        if status not in (200, 202, 404):
            log('{}/{}: deleting the Ingress answered {}: {}'.format(key[0], key[1], status, answer.get('message', '')))
    return writes, [(SERVICES, services_version), (INGRESSES, ingresses_version)]


def main(argv):
    platform_domain = os.environ['PLATFORM_DOMAIN']
    issuer = os.environ.get('CLUSTER_ISSUER', '')
    resync = int(os.environ.get('RESYNC_SECONDS', '300'))

    def log(line):
        sys.stdout.write('hephy-doks routes: {}\n'.format(line))
        sys.stdout.flush()

    api = in_cluster()

    def one_pass():
        writes, watches = reconcile(api, platform_domain, issuer, log)
        if writes:
            log('{} Ingress write(s)'.format(writes))
        return watches

    return run_passes(api, one_pass, resync, log, once='--once' in argv)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
