import * as digitalocean from "@pulumi/digitalocean";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

/** A port the worker firewall opens, and who may reach it. */
export interface InboundPort {
    /** The TCP port. */
    port: number;
    /** CIDRs allowed to connect. */
    sources: readonly string[];
}

export interface DoksClusterArgs {
    /** DigitalOcean region slug, such as `fra1`. */
    region: string;
    /** The exact DOKS version slug, such as `1.33.1-do.0`, already resolved from what DigitalOcean offers. */
    version: string;
    /** Droplet size slug of the worker nodes. Changing it replaces the whole cluster (pulumi-digitalocean#317). */
    nodeSize: string;
    /** Number of worker nodes. */
    nodeCount: number;
    /** A tag of ours put on every worker droplet; the firewall targets it. */
    workerTag: string;
    /** Inbound TCP ports the worker firewall opens, with their sources. */
    inboundPorts: readonly InboundPort[];
    /** Whether the cluster gets DigitalOcean's highly available control plane; DigitalOcean cannot turn it off again. */
    haControlPlane: boolean;
    /** Sets Pulumi's `protect` on the cluster so `pulumi destroy` refuses to delete it. */
    protect: boolean;
}

/**
 * A DigitalOcean Kubernetes cluster with one node pool, a firewall that opens the ingress ports on
 * its workers, and the Kubernetes provider every other component deploys through.
 */
export class DoksCluster extends pulumi.ComponentResource {
    public readonly cluster: digitalocean.KubernetesCluster;
    public readonly firewall: digitalocean.Firewall;
    /** The Kubernetes provider for this cluster; pass it to every Kubernetes component. */
    public readonly provider: k8s.Provider;
    /** Admin kubeconfig of the cluster, a secret. */
    public readonly kubeconfig: pulumi.Output<string>;
    /** The worker nodes, with their droplet IDs. */
    public readonly nodes: pulumi.Output<digitalocean.types.output.KubernetesClusterNodePoolNode[]>;

    constructor(name: string, args: DoksClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:cluster:DoksCluster", name, {}, opts);

        this.cluster = new digitalocean.KubernetesCluster(
            `${name}-cluster`,
            {
                region: args.region,
                version: args.version,
                ha: args.haControlPlane,
                nodePool: {
                    name: `${name}-workers`,
                    size: args.nodeSize,
                    nodeCount: args.nodeCount,
                    tags: [args.workerTag],
                },
                // The ingress DaemonSet needs no load balancer, but a stray LoadBalancer Service or a
                // PersistentVolumeClaim would otherwise outlive the cluster and keep billing.
                destroyAllAssociatedResources: true,
            },
            { parent: this, protect: args.protect },
        );

        // The DOKS credential in kubeConfigs expires after 7 days (pulumi-digitalocean#77, #78, #312).
        // Pulumi.yaml sets `options.refresh: always`, so each `pulumi up`/`preview` re-reads the cluster,
        // which gets a fresh credential from the DigitalOcean API before the provider below connects.
        this.kubeconfig = pulumi.secret(this.cluster.kubeConfigs.apply((configs) => configs[0].rawConfig));
        this.nodes = this.cluster.nodePool.apply((pool) => pool.nodes ?? []);

        this.provider = new k8s.Provider(
            `${name}-k8s`,
            {
                kubeconfig: this.kubeconfig,
                // Once the cluster is gone (a staging teardown that deleted it first), forget its objects
                // instead of failing to reach an API server that no longer exists.
                deleteUnreachable: true,
            },
            { parent: this },
        );

        // DOKS keeps its own managed firewall on the workers (NodePorts, kubelet, outbound); it is
        // reconciled by DigitalOcean and must not be edited. A droplet's effective rules are the union
        // of every firewall attached to it, so this one only adds inbound rules and leaves outbound to
        // the managed one. https://docs.digitalocean.com/products/kubernetes/details/managed/ (the
        // managed k8s-<cluster> firewalls); https://www.digitalocean.com/docs/networking/firewalls/how-to/manage-droplets/
        // ("the union of all of the Firewalls' rules").
        this.firewall = new digitalocean.Firewall(
            `${name}-workers`,
            {
                tags: [args.workerTag],
                inboundRules: args.inboundPorts.map((p) => ({
                    protocol: "tcp",
                    portRange: String(p.port),
                    sourceAddresses: [...p.sources],
                })),
            },
            { parent: this, dependsOn: [this.cluster] },
        );

        this.registerOutputs({
            clusterId: this.cluster.id,
            endpoint: this.cluster.endpoint,
            kubeconfig: this.kubeconfig,
            firewallId: this.firewall.id,
        });
    }
}

/**
 * Resolves `hephy-doks:kubernetesVersion` (a prefix, or undefined for the newest) to the exact DOKS
 * slug DigitalOcean offers now. The program awaits this before declaring any resource, so the version
 * can be checked against the release catalog first. Following DigitalOcean's newest patch of a minor
 * keeps its automatic patch upgrades from showing up as drift.
 */
export async function resolveKubernetesVersion(prefix: string | undefined): Promise<string> {
    const found = await digitalocean.getKubernetesVersions(prefix === undefined ? {} : { versionPrefix: prefix });
    if (found.latestVersion) {
        return found.latestVersion;
    }
    const offered = await digitalocean.getKubernetesVersions({});
    throw new pulumi.RunError(
        `hephy-doks:kubernetesVersion ${JSON.stringify(prefix)} matches no version DigitalOcean offers; ` +
            `offered now: ${offered.validVersions.join(", ")} (pulumi config set hephy-doks:kubernetesVersion <minor>)`,
    );
}
