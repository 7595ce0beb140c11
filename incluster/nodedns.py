"""
The platform's wildcard records follow the nodes: `*.<platform>` answers with the public address of every
node that can serve it, between `pulumi up`s, as DigitalOcean replaces nodes (upgrades, auto-repair).

A node serves when it is Ready, schedulable (not cordoned, as a drain before an upgrade leaves it) and runs
a ready pod of the ingress controller, which listens on the node's own 80 and 443. Its public IPv4 (and
IPv6 when PUBLISH_IPV6 is true) is its ExternalIP (DOKS sets the droplet's public addresses there).

Which records are its own: the A (and AAAA) records of RECORD_NAME in DOMAIN whose TTL is TTL_SECONDS,
its mark (DigitalOcean records carry no owner). Any other record of that name and type, such as the ones
`pulumi up` wrote before the stack had a DNS token, is moved aside, renamed `hephy-doks-retired-<id>.<name>`, once
a record of its own serves the same address, and `pulumi up` deletes it by id; no other name is touched.

It never empties the set: with no node serving it keeps what is published and says so; it adds before it
takes away, and takes away only while another record remains. A pass lists the nodes, the ingress pods
and the records, then writes what differs (level-triggered, idempotent); between passes it watches
nodes and pods, so a change lands within seconds of the API server seeing it (a dead node turns NotReady
after the controller manager's grace period, 40 s by default). On SIGTERM it deletes its records only
when its Deployment is gone (the stack's teardown, or its token removed), never at a restart.

Standard library only, for the Python 3.6 of Workflow's controller image.
"""
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# charts/hephy-workflow/files/lib/kubeclient.py, which the ConfigMap mounts beside this file.
from kubeclient import in_cluster, run_passes

NODES = '/api/v1/nodes'
RETIRED_PREFIX = 'hephy-doks-retired-'


def log(line):
    sys.stdout.write('hephy-doks node-dns: {}\n'.format(line))
    sys.stdout.flush()


def condition(obj, kind):
    for c in (obj.get('status') or {}).get('conditions') or []:
        if c.get('type') == kind:
            return c.get('status') == 'True'
    return False


def serving_nodes(nodes, pods):
    """The nodes that can serve the platform now, by name: Ready, schedulable, running a ready ingress pod."""
    ingress_on = set(
        (p.get('spec') or {}).get('nodeName')
        for p in pods
        if condition(p, 'Ready') and not p['metadata'].get('deletionTimestamp') and (p.get('status') or {}).get('phase') == 'Running'
    )
    serving = []
    for node in nodes:
        name = node['metadata']['name']
        if node['metadata'].get('deletionTimestamp') or (node.get('spec') or {}).get('unschedulable'):
            continue
        if condition(node, 'Ready') and name in ingress_on:
            serving.append(node)
    return serving


def addresses(nodes, ipv6):
    """The public addresses of `nodes`, by record type: their ExternalIPs, v4 for A and, when asked, v6 for AAAA."""
    wanted = {'A': set(), 'AAAA': set()}
    for node in nodes:
        for address in (node.get('status') or {}).get('addresses') or []:
            if address.get('type') != 'ExternalIP':
                continue
            ip = address.get('address', '')
            if ':' in ip:
                if ipv6:
                    wanted['AAAA'].add(ip)
            elif ip:
                wanted['A'].add(ip)
    return wanted


class DigitalOcean(object):
    """DigitalOcean's domain records API (docs.digitalocean.com/reference/api, "Domain Records")."""

    def __init__(self, base, token, retries=4, max_wait=20):
        self.base = base.rstrip('/')
        self.token = token
        self.retries = retries
        self.max_wait = max_wait

    def call(self, method, path, body=None):
        """(status, parsed body). A 429 is retried after what the API says (Retry-After, or ratelimit-reset)."""
        url = path if path.startswith('http') else self.base + path
        data = json.dumps(body).encode('utf-8') if body is not None else None
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, method=method)
            request.add_header('Authorization', 'Bearer ' + self.token)
            request.add_header('Content-Type', 'application/json')
            try:
                response = urllib.request.urlopen(request, timeout=30)
                status, headers, text = response.status, response.headers, response.read().decode('utf-8')
            except urllib.error.HTTPError as error:
                status, headers, text = error.code, error.headers, error.read().decode('utf-8')
            if status == 429 and attempt < self.retries:
                time.sleep(self.backoff(headers, attempt))
                continue
            try:
                return status, (json.loads(text) if text else {})
            except ValueError:
                return status, {'message': text[:200]}
        return status, {}

    def backoff(self, headers, attempt):
        retry_after = headers.get('Retry-After')
        reset = headers.get('ratelimit-reset')
        if retry_after and retry_after.isdigit():
            wait = int(retry_after)
        elif reset and reset.isdigit():
            wait = int(reset) - time.time()
        else:
            wait = 2 ** attempt
        return max(0.1, min(self.max_wait, wait))

    def records(self, domain, kind, fqdn):
        """Every record of `kind` named `fqdn`, following the pages (links.pages.next)."""
        params = urllib.parse.urlencode({'type': kind, 'name': fqdn, 'per_page': '200'})
        path = '/v2/domains/{}/records?{}'.format(urllib.parse.quote(domain), params)
        found = []
        while path:
            status, answer = self.call('GET', path)
            if status != 200:
                raise RuntimeError('listing {} records of {} answered {}: {}'.format(kind, fqdn, status, answer.get('message', '')))
            found.extend(answer.get('domain_records') or [])
            path = ((answer.get('links') or {}).get('pages') or {}).get('next')
        return [r for r in found if r.get('type') == kind and fqdn_of(r.get('name', ''), domain) == fqdn]


def fqdn_of(name, domain):
    return domain if name == '@' else '{}.{}'.format(name, domain)


class Publisher(object):
    """Keeps RECORD_NAME's records of each type equal to the serving nodes' addresses, as far as it safely can."""

    def __init__(self, do, domain, name, ttl):
        self.do = do
        self.domain = domain
        self.name = name
        self.fqdn = fqdn_of(name, domain)
        self.ttl = ttl

    def records_path(self, record_id=None):
        path = '/v2/domains/{}/records'.format(urllib.parse.quote(self.domain))
        return path + ('/{}'.format(record_id) if record_id is not None else '')

    def create(self, kind, ip):
        status, answer = self.do.call('POST', self.records_path(), {'type': kind, 'name': self.name, 'data': ip, 'ttl': self.ttl})
        if status != 201:
            log('adding {} {} {} answered {}: {}'.format(self.fqdn, kind, ip, status, answer.get('message', '')))
            return None
        return answer.get('domain_record')

    def publish(self, kind, wanted):
        """
        One type's records toward `wanted`. Returns whether no record of another owner is left on the name
        (the cut-over from `pulumi up`'s records is done).
        """
        records = self.do.records(self.domain, kind, self.fqdn)
        own = [r for r in records if r.get('ttl') == self.ttl]
        foreign = [r for r in records if r.get('ttl') != self.ttl]
        if not wanted:
            if records:
                log('no node serves the platform: keeping the {} published {} record(s) of {} ({})'.format(
                    len(records), kind, self.fqdn, ', '.join(sorted(r['data'] for r in records))))
            return not foreign
        live = list(records)
        covered = set(r['data'] for r in live)
        # Add first: every serving address gets a record before any record goes.
        for ip in sorted(wanted - covered):
            made = self.create(kind, ip)
            if made:
                own.append(made)
                live.append(made)
                log('{} {} {} added'.format(self.fqdn, kind, ip))
        # Another owner's records (pulumi up's, before the token) are moved aside, one at a time while
        # another record serves, and replaced by records of its own for the addresses that still serve.
        for record in sorted(foreign, key=lambda r: r['id']):
            others = [r for r in live if r['id'] != record['id']]
            if not others:
                log('{} {} {} is the only record: moved aside and replaced at once'.format(self.fqdn, kind, record['data']))
            status, answer = self.do.call('PUT', self.records_path(record['id']), {'name': '{}{}.{}'.format(RETIRED_PREFIX, record['id'], self.name.lstrip('*.'))})
            if status != 200:
                log('moving aside {} {} {} (id {}) answered {}: {}'.format(self.fqdn, kind, record['data'], record['id'], status, answer.get('message', '')))
                continue
            live = others
            if record['data'] in wanted and record['data'] not in set(r['data'] for r in live):
                made = self.create(kind, record['data'])
                if made:
                    own.append(made)
                    live.append(made)
            log('{} {} {} (id {}) taken over from another owner'.format(self.fqdn, kind, record['data'], record['id']))
        # Then take away what no longer serves, and duplicates, never the last record.
        seen = set()
        for record in sorted(own, key=lambda r: (r['data'] not in wanted, r['id'])):
            if record not in live:
                continue
            if record['data'] in wanted and record['data'] not in seen:
                seen.add(record['data'])
                continue
            if len(live) <= 1:
                continue
            status, answer = self.do.call('DELETE', self.records_path(record['id']))
            if status in (204, 404):
                live = [r for r in live if r['id'] != record['id']]
                log('{} {} {} removed'.format(self.fqdn, kind, record['data']))
            else:
                log('removing {} {} {} answered {}: {}'.format(self.fqdn, kind, record['data'], status, answer.get('message', '')))
        return not [r for r in live if r.get('ttl') != self.ttl]

    def release(self, kinds):
        """Deletes every record of its own: the stack no longer runs this reconciler."""
        for kind in kinds:
            for record in self.do.records(self.domain, kind, self.fqdn):
                if record.get('ttl') == self.ttl:
                    status, _ = self.do.call('DELETE', self.records_path(record['id']))
                    log('{} {} {} deleted at teardown: {}'.format(self.fqdn, kind, record['data'], status))


def reconcile(api, publisher, settings):
    """One pass. Returns whether the cut-over is done, and the lists' resourceVersions for the watches."""
    nodes, nodes_version = api.list(NODES)
    pods, pods_version = api.list(settings['pods_path'], {'labelSelector': settings['selector']})
    serving = serving_nodes(nodes, pods)
    wanted = addresses(serving, settings['ipv6'])
    done = True
    for kind in settings['kinds']:
        done = publisher.publish(kind, wanted[kind]) and done
    return done, [(NODES, nodes_version), (settings['pods_path'], pods_version)]


def deployment_gone(api, namespace, name):
    """
    Whether the stack no longer runs this reconciler: its Deployment is gone or going, or so are the
    rights and the ServiceAccount the stack gave it (a teardown deletes them right after the Deployment).
    """
    status, answer = api.json('GET', '/apis/apps/v1/namespaces/{}/deployments/{}'.format(namespace, name))
    return status in (401, 403, 404) or (status == 200 and bool(answer['metadata'].get('deletionTimestamp')))


def main(argv):
    env = os.environ
    ingress_namespace = env['INGRESS_NAMESPACE']
    settings = {
        'pods_path': '/api/v1/namespaces/{}/pods'.format(ingress_namespace),
        'selector': env['INGRESS_SELECTOR'],
        'ipv6': env.get('PUBLISH_IPV6', 'false') == 'true',
    }
    settings['kinds'] = ['A', 'AAAA'] if settings['ipv6'] else ['A']
    resync = int(env.get('RESYNC_SECONDS', '30'))
    ready_file = env.get('READY_FILE', '/tmp/hephy-doks-node-dns-ready')
    publisher = Publisher(
        DigitalOcean(env.get('DIGITALOCEAN_API', 'https://api.digitalocean.com'), env['DIGITALOCEAN_TOKEN']),
        env['DOMAIN'],
        env['RECORD_NAME'],
        int(env['TTL_SECONDS']),
    )
    api = in_cluster()

    def stop(signum, frame):
        try:
            if deployment_gone(api, env['POD_NAMESPACE'], env['DEPLOYMENT_NAME']):
                publisher.release(settings['kinds'])
        except Exception as error:  # the records stay, which is the safe side
            log('at exit, could not tell whether to release the records: {}'.format(error))
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)

    def one_pass():
        done, watches = reconcile(api, publisher, settings)
        # Ready (and `pulumi up` goes on to delete its own records) only once none of them serves.
        if done and not os.path.exists(ready_file):
            open(ready_file, 'w').close()
            log('{} is published by this reconciler alone'.format(publisher.fqdn))
        return watches

    return run_passes(api, one_pass, resync, log, once='--once' in argv)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
