/**
 * Who reaches whom under a set of Kubernetes NetworkPolicies and Cilium policies, as Cilium (DOKS's
 * network) enforces them: each side's policies must let a connection through, egress at the source and
 * ingress at the destination; a pod that no policy selects in a direction is open in it; a deny rule
 * wins over any allow; traffic from a pod's own node passes every allow-list (Cilium's allow-localhost in
 * Kubernetes mode), but not a deny. Kubernetes selectors match pods only, never nodes or the world
 * (docs.cilium.io, "Layer 3 examples"; kubernetes.io/docs/concepts/services-networking/network-policies).
 */

export type EntityName = "host" | "remote-node" | "world" | "kube-apiserver";

/** A pod of the cluster. */
export interface Pod {
    kind: "pod";
    name: string;
    namespace: string;
    labels: Record<string, string>;
}

/** Something outside the pod network: a node (its processes and host-network pods), the API server, or an address of the world. */
export interface Entity {
    kind: "entity";
    name: string;
    entity: EntityName;
    /** An IPv4 address of the world, or of an API server outside the cluster, for CIDR rules. */
    address?: string;
    /** The DNS name the world's address was resolved from, for Cilium's toFQDNs rules. */
    fqdn?: string;
}

/**
 * The reserved identities an entity carries. An API server outside the cluster (DOKS's control plane, at
 * a public address) has a CIDR identity, and every CIDR identity carries `reserved:world` besides
 * `reserved:kube-apiserver` (cilium pkg/labels/cidr/cidr.go `GetCIDRLabels`; pkg/ipcache/metadata.go
 * merges the API server's label into the prefix's labels): `toEntities: [world]` takes it.
 */
function reservedIdentities(peer: Entity): EntityName[] {
    return peer.entity === "kube-apiserver" && peer.address !== undefined ? ["kube-apiserver", "world"] : [peer.entity];
}

export type Peer = Pod | Entity;

export interface Cluster {
    /** Every namespace's labels (`kubernetes.io/metadata.name` included). */
    namespaces: Record<string, Record<string, string>>;
    /** NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy objects. */
    policies: any[];
}

interface Selector {
    matchLabels?: Record<string, string>;
    matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

const NAMESPACE_KEY = "io.kubernetes.pod.namespace";

function selects(selector: Selector | undefined, labels: Record<string, string>): boolean {
    const value = (key: string) => labels[key.replace(/^k8s:/, "")];
    return (
        Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => value(k) === v) &&
        (selector?.matchExpressions ?? []).every((e) => {
            const present = value(e.key) !== undefined;
            switch (e.operator) {
                case "In":
                    return present && e.values!.includes(value(e.key));
                case "NotIn":
                    return !present || !e.values!.includes(value(e.key));
                case "Exists":
                    return present;
                case "DoesNotExist":
                    return !present;
                default:
                    throw new Error(`unknown selector operator ${e.operator}`);
            }
        })
    );
}

/** The labels Cilium gives a pod's identity: its own, its namespace's name, and its namespace's labels. */
function identity(cluster: Cluster, pod: Pod): Record<string, string> {
    const namespaceLabels = Object.entries(cluster.namespaces[pod.namespace] ?? {}).map(([k, v]) => [`io.cilium.k8s.namespace.labels.${k}`, v]);
    return { ...pod.labels, [NAMESPACE_KEY]: pod.namespace, ...Object.fromEntries(namespaceLabels) };
}

function inCidr(address: string, cidr: string): boolean {
    const toNumber = (ip: string) => ip.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
    const [network, prefix] = cidr.split("/");
    const size = 2 ** (32 - Number(prefix));
    return Math.floor(toNumber(address) / size) === Math.floor(toNumber(network) / size);
}

function portMatches(ports: { port: number | string; protocol?: string }[] | undefined, port: number, protocol: string): boolean {
    return ports === undefined || ports.length === 0 || ports.some((p) => Number(p.port) === port && [protocol, "ANY"].includes(p.protocol ?? "TCP"));
}

/** A Cilium rule's ports (`toPorts`), which all of a rule's peers share. */
function ciliumPortMatches(toPorts: { ports?: { port: string; protocol?: string }[] }[] | undefined, port: number, protocol: string): boolean {
    return toPorts === undefined || toPorts.some((p) => portMatches(p.ports, port, protocol));
}

/** Whether a Cilium rule's peer fields (`from*` or `to*`) take `peer`; a rule with none takes everyone. */
function ciliumPeerMatches(cluster: Cluster, rule: any, side: "from" | "to", peer: Peer, policyNamespace: string | undefined): boolean {
    const endpoints: Selector[] | undefined = rule[`${side}Endpoints`];
    const entities: string[] | undefined = rule[`${side}Entities`];
    const cidrs: string[] | undefined = rule[`${side}CIDR`];
    // Egress only: Cilium's toFQDNs.
    const fqdns: { matchName?: string; matchPattern?: string }[] | undefined = side === "to" ? rule.toFQDNs : undefined;
    if (endpoints === undefined && entities === undefined && cidrs === undefined && fqdns === undefined) {
        return true;
    }
    if (peer.kind === "pod") {
        const labels = identity(cluster, peer);
        // In a namespaced policy, a selector that names no namespace means the policy's own.
        const scoped = (s: Selector) => policyNamespace === undefined || s.matchLabels?.[NAMESPACE_KEY] !== undefined || peer.namespace === policyNamespace;
        return (endpoints ?? []).some((s) => scoped(s) && selects(s, labels)) || (entities ?? []).some((e) => e === "all" || e === "cluster");
    }
    const identities: string[] = reservedIdentities(peer);
    const byEntity = (entities ?? []).some((e) => e === "all" || identities.includes(e) || (e === "cluster" && ["host", "remote-node"].includes(peer.entity)));
    const byCidr = identities.includes("world") && peer.address !== undefined && (cidrs ?? []).some((c) => inCidr(peer.address!, c));
    const byFqdn =
        identities.includes("world") &&
        peer.fqdn !== undefined &&
        (fqdns ?? []).some((f) => f.matchName === peer.fqdn || (f.matchPattern !== undefined && fqdnPattern(f.matchPattern).test(peer.fqdn!)));
    return byEntity || byCidr || byFqdn;
}

/** A toFQDNs matchPattern as a regular expression: `*` matches valid DNS characters but the dot, within one label (docs.cilium.io, "DNS based"). */
function fqdnPattern(pattern: string): RegExp {
    return new RegExp(
        `^${pattern
            .split("*")
            .map((part) => part.replace(/[.]/g, "\\."))
            .join("[-a-zA-Z0-9_]*")}$`,
    );
}

/** Whether a NetworkPolicy peer list (`from` or `to`) takes `peer`. */
function networkPolicyPeerMatches(cluster: Cluster, peers: any[] | undefined, peer: Peer, policyNamespace: string): boolean {
    if (peers === undefined || peers.length === 0) {
        return true;
    }
    if (peer.kind !== "pod") {
        return false;
    }
    return peers.some((p) => {
        if (p.ipBlock !== undefined) {
            return false;
        }
        const namespaceOk =
            p.namespaceSelector === undefined ? peer.namespace === policyNamespace : selects(p.namespaceSelector, cluster.namespaces[peer.namespace] ?? {});
        return namespaceOk && (p.podSelector === undefined || selects(p.podSelector, peer.labels));
    });
}

type Direction = "ingress" | "egress";

/** The policies that select `pod` in `direction`, and whether any of them lets `peer` through on `port`, or denies it. */
function verdict(
    cluster: Cluster,
    pod: Pod,
    direction: Direction,
    peer: Peer,
    port: number,
    protocol: string,
): { isolated: boolean; allowed: boolean; denied: boolean } {
    let isolated = false;
    let allowed = false;
    let denied = false;
    const side = direction === "ingress" ? "from" : "to";
    for (const policy of cluster.policies) {
        const namespace: string | undefined = policy.metadata.namespace;
        if (policy.kind === "NetworkPolicy") {
            const types: string[] = policy.spec.policyTypes ?? ["Ingress", ...(policy.spec.egress ? ["Egress"] : [])];
            if (
                namespace !== pod.namespace ||
                !selects(policy.spec.podSelector, pod.labels) ||
                !types.includes(direction === "ingress" ? "Ingress" : "Egress")
            ) {
                continue;
            }
            isolated = true;
            allowed ||= (policy.spec[direction] ?? []).some(
                (rule: any) => networkPolicyPeerMatches(cluster, rule[side], peer, namespace) && portMatches(rule.ports, port, protocol),
            );
        } else if (policy.kind === "CiliumNetworkPolicy" || policy.kind === "CiliumClusterwideNetworkPolicy") {
            const scope = policy.kind === "CiliumNetworkPolicy" ? namespace : undefined;
            if ((scope !== undefined && scope !== pod.namespace) || !selects(policy.spec.endpointSelector, identity(cluster, pod))) {
                continue;
            }
            const rules: any[] | undefined = policy.spec[direction];
            const denies: any[] | undefined = policy.spec[`${direction}Deny`];
            isolated ||= rules !== undefined || denies !== undefined;
            const matches = (rule: any) => ciliumPeerMatches(cluster, rule, side, peer, scope) && ciliumPortMatches(rule.toPorts, port, protocol);
            allowed ||= (rules ?? []).some(matches);
            denied ||= (denies ?? []).some(matches);
        } else {
            throw new Error(`not a network policy: ${policy.apiVersion} ${policy.kind}`);
        }
    }
    return { isolated, allowed, denied };
}

/** Whether `from` can open a connection to `to` on `port`. */
export function reachable(cluster: Cluster, from: Peer, to: Peer, port: number, protocol = "TCP"): boolean {
    if (from.kind === "pod") {
        const out = verdict(cluster, from, "egress", to, port, protocol);
        if (out.denied || (out.isolated && !out.allowed)) {
            return false;
        }
    }
    if (to.kind === "pod") {
        const into = verdict(cluster, to, "ingress", from, port, protocol);
        // A pod's own node passes every allow-list, but not a deny.
        const ownNode = from.kind === "entity" && from.entity === "host";
        if (into.denied || (!ownNode && into.isolated && !into.allowed)) {
            return false;
        }
    }
    return true;
}
