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
    nodes: pulumi.Input<pulumi.Input<{ dropletId: pulumi.Input<string> }>[]>;
    /** Record TTL in seconds. */
    ttl: number;
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

        const nodes = pulumi.output(args.nodes);
        const ips: pulumi.Output<string>[] = [];
        this.records = [];
        for (let i = 0; i < args.nodeCount; i++) {
            const dropletId = nodes.apply((list) => {
                if (list.length !== args.nodeCount) {
                    throw new pulumi.ResourceError(
                        `the node pool reports ${list.length} nodes but hephy-doks:nodeCount is ${args.nodeCount}; ` +
                            "run `pulumi refresh` once the pool has settled",
                        this,
                    );
                }
                // The provider reports droplet IDs as strings; getDroplet takes a number.
                return Number(list[i].dropletId);
            });
            const droplet = digitalocean.getDropletOutput({ id: dropletId }, { parent: this });
            ips.push(droplet.ipv4Address);
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
