import * as digitalocean from "@pulumi/digitalocean";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { MaintenanceDay } from "../types";

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
    /** The cluster's name in DigitalOcean, fixed so a later run can find it. */
    clusterName: string;
    /** The exact DOKS version slug, such as `1.33.1-do.0`, already resolved from what DigitalOcean offers. */
    version: string;
    /** Leave a running cluster's version as it is, whatever `version` says (its version could not be read). */
    keepRunningVersion: boolean;
    /** Whether DigitalOcean applies patch releases itself, in the maintenance window. */
    autoUpgrade: boolean;
    /** DigitalOcean's weekly maintenance window: its day and its start (UTC, `HH:MM`). */
    maintenance: { day: MaintenanceDay; startTime: string };
    /** Renew the kubeconfig credential when the one in state expires within this many hours. */
    credentialRenewalHours: number;
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
    /**
     * The stack's own VPC, which the cluster is made in: its name and private range (undefined lets
     * DigitalOcean choose). Undefined leaves a running cluster in the VPC it has.
     */
    vpc: { name: string; ipRange: string | undefined } | undefined;
}

/**
 * A DigitalOcean Kubernetes cluster with one node pool, a firewall that opens the ingress ports on
 * its workers, and the Kubernetes provider every other component deploys through.
 */
export class DoksCluster extends pulumi.ComponentResource {
    public readonly cluster: digitalocean.KubernetesCluster;
    public readonly firewall: digitalocean.Firewall;
    /** The stack's own VPC, if the cluster is in one. */
    public readonly vpc?: digitalocean.Vpc;
    /** The Kubernetes provider for this cluster; pass it to every Kubernetes component. */
    public readonly provider: k8s.Provider;
    /** Admin kubeconfig of the cluster, a secret. */
    public readonly kubeconfig: pulumi.Output<string>;
    /** The worker nodes, with their droplet IDs. */
    public readonly nodes: pulumi.Output<digitalocean.types.output.KubernetesClusterNodePoolNode[]>;

    constructor(name: string, args: DoksClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:cluster:DoksCluster", name, {}, opts);

        // Droplets of one VPC reach each other on every port, and every stack of a region would otherwise
        // share the default one. DigitalOcean deletes a VPC only once its cluster has let go of it, which
        // lags behind the cluster's deletion; the provider retries within the timeout.
        this.vpc = args.vpc
            ? new digitalocean.Vpc(
                  `${name}-vpc`,
                  {
                      name: args.vpc.name,
                      region: args.region,
                      ipRange: args.vpc.ipRange,
                      description: `The network of the ${args.clusterName} cluster (hephy-doks)`,
                  },
                  // A new range or region replaces it, under the same name, which DigitalOcean keeps unique:
                  // the old one (and the cluster on it) goes first.
                  { parent: this, protect: args.protect, deleteBeforeReplace: true, customTimeouts: { delete: "10m" } },
              )
            : undefined;

        this.cluster = new digitalocean.KubernetesCluster(
            `${name}-cluster`,
            {
                name: args.clusterName,
                region: args.region,
                // The provider replaces a cluster whose VPC changes (vpc_uuid is ForceNew).
                vpcUuid: this.vpc?.id,
                version: args.version,
                autoUpgrade: args.autoUpgrade,
                // New nodes first, old ones drained after, so capacity stays during upgrades
                // (docs.digitalocean.com/products/kubernetes/how-to/upgrade-cluster); NodeDns copes with the extra nodes.
                surgeUpgrade: true,
                maintenancePolicy: { day: args.maintenance.day, startTime: args.maintenance.startTime },
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
            { parent: this, protect: args.protect, ignoreChanges: args.keepRunningVersion ? ["version"] : [] },
        );

        // The DOKS credential in kubeConfigs expires after 7 days, and the provider renews it only once it
        // has expired (pulumi-digitalocean#77, #78, #312): a run that starts shortly before would lose it
        // half-way. Reading the cluster mints a new credential, so one that expires within the renewal
        // window is replaced by a fresh one whether or not the run refreshed. Read only then: a new cluster
        // has nothing to read during its first preview, and a renamed one is not found under its new name
        // until this run has renamed it.
        this.kubeconfig = pulumi.secret(
            pulumi.all([this.cluster.kubeConfigs, this.cluster.name]).apply(async ([stored, clusterName]) => {
                if (!expiresWithin(stored[0].expiresAt, args.credentialRenewalHours)) {
                    return stored[0].rawConfig;
                }
                try {
                    return (await digitalocean.getKubernetesCluster({ name: clusterName }, { parent: this })).kubeConfigs[0].rawConfig;
                } catch (error) {
                    pulumi.log.warn(
                        `cannot read a fresh credential of cluster ${clusterName} (${(error as Error).message}); using the one in state, which expires at ${stored[0].expiresAt}`,
                        this,
                    );
                    return stored[0].rawConfig;
                }
            }),
        );
        this.nodes = this.cluster.nodePool.apply((pool) => pool.nodes ?? []);

        this.provider = new k8s.Provider(
            `${name}-k8s`,
            // No deleteUnreachable here: a refresh with an expired credential would take the cluster for
            // unreachable and drop every live object from state. Teardown sets PULUMI_K8S_DELETE_UNREACHABLE
            // (.github/workflows/pulumi.yml), so a destroy forgets the objects of a cluster already gone.
            { kubeconfig: this.kubeconfig },
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

/** Whether an RFC 3339 expiry time is less than `hours` from now (or unknown). */
export function expiresWithin(expiresAt: string | undefined, hours: number, now = Date.now()): boolean {
    const at = expiresAt ? Date.parse(expiresAt) : NaN;
    return !(at - now > hours * 3600 * 1000);
}
