import * as net from "node:net";
import * as k8s from "@kubernetes/client-node";
import { Outcome, fail, pass } from "./checks";

/** A node of the cluster as it runs now: its name, its public IPv4 address and whether it is Ready. */
export interface LiveNode {
    name: string;
    /** The node's ExternalIP (IPv4), which DigitalOcean's cloud controller manager sets; undefined if it has none yet. */
    address?: string;
    ready: boolean;
    /** Cordoned (`spec.unschedulable`), as a drain leaves it: its record may stay or go. */
    cordoned?: boolean;
}

/**
 * The cluster's nodes from the Kubernetes API. DigitalOcean's cloud controller manager gives each node
 * its droplet's public addresses as ExternalIP, IPv4 and (when the droplet has one) IPv6
 * (digitalocean-cloud-controller-manager cloud-controller-manager/do/common.go `nodeAddresses`); the
 * A records carry the IPv4 one.
 */
export async function liveNodes(config: k8s.KubeConfig): Promise<LiveNode[]> {
    const nodes = (await config.makeApiClient(k8s.CoreV1Api).listNode()).items;
    return nodes
        .map((node) => ({
            name: node.metadata?.name ?? "?",
            address: node.status?.addresses?.find((a) => a.type === "ExternalIP" && net.isIPv4(a.address))?.address,
            ready: node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
            cordoned: node.spec?.unschedulable === true,
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * DNS answers held against the live nodes: every Ready node's address must be among them, and every
 * answer must be a Ready node's. What differs is named: a Ready node with no record (missing), an
 * answer no node has (dead: a node DigitalOcean replaced), an answer of a node that is not Ready.
 * `verify --watch` of the DNS reconciler uses it as it is.
 */
export function recordsAgainstNodes(answers: readonly string[], nodes: readonly LiveNode[]): Outcome {
    const ready = nodes.filter((n) => n.ready && n.address);
    const byAddress = new Map(nodes.filter((n) => n.address).map((n) => [n.address!, n]));
    // A cordoned node is being drained: the in-cluster reconciler drops its record, pulumi up keeps it.
    const missing = ready.filter((n) => !n.cordoned && !answers.includes(n.address!)).map((n) => `${n.name} ${n.address}`);
    const dead = answers.filter((ip) => !byAddress.has(ip));
    const notReady = answers.filter((ip) => byAddress.get(ip)?.ready === false).map((ip) => `${ip} (${byAddress.get(ip)!.name})`);
    const unaddressed = nodes.filter((n) => n.ready && !n.address).map((n) => n.name);
    const seen = `${[...answers].sort().join(", ") || "no address"}; Ready nodes: ${ready.map((n) => `${n.name} ${n.address}`).join(", ") || "none"}`;
    const problems = [
        missing.length ? `nodes with no record: ${missing.join(", ")}` : "",
        dead.length ? `records of no node (replaced or gone): ${dead.join(", ")}` : "",
        notReady.length ? `records of nodes not Ready: ${notReady.join(", ")}` : "",
        unaddressed.length ? `Ready nodes with no ExternalIP yet: ${unaddressed.join(", ")}` : "",
        ready.length === 0 ? "no Ready node" : "",
    ].filter(Boolean);
    return problems.length === 0 ? pass(seen) : fail(`${seen}; ${problems.join("; ")}`);
}
