import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";

export interface NodeDnsArgs {
    /** The DNS zone, already in the DigitalOcean account, such as `example.com`. */
    domain: string;
    /** Record name relative to the zone, such as `*.staging`. */
    recordName: string;
    /** How many nodes the pool has; one A record is declared per node, so `pulumi preview` lists them all. */
    nodeCount: number;
    /** The node pool's nodes, whose droplets carry the public addresses. */
    nodes: pulumi.Input<pulumi.Input<PoolNode>[]>;
    /** Record TTL in seconds. */
    ttl: number;
    /**
     * Whether this program writes the records. False once the in-cluster reconciler owns them
     * (NodeDnsReconciler): the addresses are still read, for `npm run verify`.
     */
    declareRecords: boolean;
}

/** What NodeDns reads of a node of the pool. */
export interface PoolNode {
    dropletId: pulumi.Input<string>;
    /** `provisioning`, `running`, `draining` or `deleting` (DigitalOcean's node status). */
    status?: pulumi.Input<string>;
    /** Creation time as DigitalOcean reports it, always in UTC, so it sorts as text. */
    createdAt?: pulumi.Input<string>;
}

/**
 * The nodes to publish, one per record: running nodes first, the newest of them, then draining ones (a
 * drain leaves DaemonSet pods, the ingress controller among them, serving until the node goes), then
 * provisioning ones; never a node without a droplet yet. During a surge upgrade the pool has more nodes
 * than records and the old ones are about to be drained; their replacements are the newest. The chosen
 * nodes go to the records oldest first, so a pool that did not change keeps each record on its node.
 * Fewer usable nodes than records means the pool does not have the size the stack declares.
 */
export function publishedNodes<T extends { dropletId: string; status?: string; createdAt?: string }>(nodes: readonly T[], count: number): T[] {
    const rank: Record<string, number> = { running: 0, draining: 1, provisioning: 2 };
    const order = (n: T) => rank[n.status ?? "running"] ?? 3;
    const age = (a: T, b: T) => (a.createdAt ?? "").localeCompare(b.createdAt ?? "");
    const chosen = nodes
        .filter((n) => n.dropletId)
        .sort((a, b) => order(a) - order(b) || age(b, a))
        .slice(0, count);
    if (chosen.length < count) {
        throw new Error(
            `the node pool has ${chosen.length} nodes with a droplet (of ${nodes.length}), fewer than the ${count} of hephy-doks:nodeCount; run pulumi up again once the pool has its nodes`,
        );
    }
    return chosen.sort(age);
}

/**
 * Round-robin DNS for the platform: one A record per worker node under the same wildcard name.
 * Every node runs the ingress controller on its host network, so every node is a load balancer.
 */
export class NodeDns extends pulumi.ComponentResource {
    public readonly records: digitalocean.DnsRecord[];
    /** The nodes' public IPv4 addresses, in node order. */
    public readonly nodeIps: pulumi.Output<string[]>;

    constructor(name: string, args: NodeDnsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:dns:NodeDns", name, {}, opts);

        // The pool as this run read it (Pulumi.yaml refreshes before every update), so each `pulumi up`
        // points the records at the nodes that exist now.
        const published = pulumi.output(args.nodes).apply((list) => {
            try {
                return publishedNodes(list, args.nodeCount);
            } catch (error) {
                throw new pulumi.ResourceError((error as Error).message, this);
            }
        });
        const ips: pulumi.Output<string>[] = [];
        this.records = [];
        for (let i = 0; i < args.nodeCount; i++) {
            // The provider reports droplet IDs as strings; getDroplet takes a number.
            const dropletId = published.apply((list) => Number(list[i].dropletId));
            const droplet = digitalocean.getDropletOutput({ id: dropletId }, { parent: this });
            ips.push(droplet.ipv4Address);
            if (!args.declareRecords) {
                continue;
            }
            this.records.push(
                new digitalocean.DnsRecord(
                    `${name}-node-${i}`,
                    {
                        domain: args.domain,
                        type: "A",
                        name: args.recordName,
                        value: droplet.ipv4Address,
                        ttl: args.ttl,
                    },
                    { parent: this },
                ),
            );
        }
        this.nodeIps = pulumi.all(ips);

        this.registerOutputs({ nodeIps: this.nodeIps });
    }
}
