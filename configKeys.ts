import { MaintenanceDay } from "./types";

/**
 * The stack configuration's keys: every key this program reads, its default, and the values the
 * program fixes rather than reads. config.ts checks them; Pulumi.yaml declares the same keys and defaults.
 */

/** The Pulumi project name, which is also the namespace of every config key this program reads. */
export const PROJECT = "hephy-doks";

/**
 * Every key this program reads, in Pulumi.yaml's order, with its default: the one list of keys (a typo
 * such as `nodecount` is reported instead of ignored). `Pulumi.yaml` declares the same defaults for the
 * CLI; a test keeps the two in step. What only the user knows has none.
 */
export const DEFAULTS = {
    region: "fra1",
    kubernetesVersion: "latest",
    nodeSize: "s-2vcpu-4gb",
    nodeCount: 3,
    domain: undefined,
    /** Empty means "use the stack name". */
    platformSubdomain: "",
    acmeEmail: undefined,
    builderSshSources: ["0.0.0.0/0", "::/0"] as readonly string[],
    protect: false,
    /** DigitalOcean's HA control plane costs extra and cannot be turned off once on (see PRICES). */
    haControlPlane: false,
    /** ECDSA P-256: small, fast, and accepted by Tiller's and helm-operator's Go TLS stacks. */
    tlsKeyAlgorithm: "ECDSA-P256",
    /** The Tiller CA lives ten years; the leaves one year and are renewed by the first `pulumi up` in their last 30 days. */
    tlsCaValidityHours: 87600,
    tlsCertValidityHours: 8760,
    tlsEarlyRenewalHours: 720,
    /** Tiller's release history bound; Helm 2 defaults to 0 (unbounded). */
    tillerHistoryMax: 10,
    workflowEnabled: true,
    /** Workflow's object store (slugs, database backups) on a block-storage volume: $1 a month at 10 GiB. */
    workflowStorageGib: 10,
    /** DigitalOcean applies patch releases (security fixes) itself, in the maintenance window. */
    autoUpgrade: true,
    /** A weekend night, UTC. */
    maintenanceDay: "sunday" as MaintenanceDay,
    maintenanceStartTime: "03:00",
    /** JSON object of per-release overrides of the catalog below; empty means the catalog as is. */
    releases: "{}",
    /** Secret Helm values per release: none. */
    releaseSecretValues: undefined,
    /** Services the admission policy lets be NodePort or LoadBalancer: none. */
    exposedServices: [] as readonly string[],
    /** Empty: DigitalOcean gives the stack's VPC a /20 that overlaps no other network of the account. */
    vpcIpRange: "",
} as const;

/** Values the program fixes rather than reads from config. */
export const FIXED = {
    /**
     * Short, so resolvers drop a record within a minute of the `pulumi up` that changes it. The records
     * change only at a `pulumi up`: a node replaced between runs keeps its stale record until the next one.
     */
    dnsTtlSeconds: 60,
    /**
     * A kubeconfig credential that expires within this many hours is renewed before the run uses it:
     * longer than the longest run (the cluster, then three releases of up to 15 minutes each).
     */
    credentialRenewalHours: 24,
    /** Inbound sources for HTTP and HTTPS: everyone, over IPv4 and IPv6. */
    publicSources: ["0.0.0.0/0", "::/0"] as readonly string[],
    nodeCountMin: 1,
    nodeCountMax: 50,
    /** The private ranges a VPC may take (RFC 1918), and the sizes DigitalOcean allows (docs.digitalocean.com/products/networking/vpc/). */
    vpcPrivateRanges: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] as readonly string[],
    vpcPrefixMin: 16,
    vpcPrefixMax: 24,
    /**
     * Ranges a VPC must not overlap: DOKS's pod and service networks (10.244.0.0/16, 10.245.0.0/16) and
     * DigitalOcean's reserved ranges (10.229.0.0/16 in every region, per its release notes of 2025-03-07;
     * 10.246.0.0/24 and 10.10.0.0/16 as third-party notes list them).
     */
    vpcReservedRanges: ["10.244.0.0/16", "10.245.0.0/16", "10.229.0.0/16", "10.246.0.0/24", "10.10.0.0/16"] as readonly string[],
    /**
     * minio refuses to start on a disk whose usable size, 95% of it, is 900 MiB or less, and fails every
     * write once its free space is (minio RELEASE.2019-02-06T21-16-36Z, the base of hephy/minio v2.4.5,
     * cmd/posix.go `checkDiskMinTotal`, `checkDiskMinFree`); ext4 keeps another 5% for root. Below 5 GiB
     * little would be left for slugs.
     */
    workflowStorageGibMin: 5,
    /** A DigitalOcean volume holds at most 16 TiB (digitalocean/csi-digitalocean driver/controller.go `maximumVolumeSizeInBytes`). */
    workflowStorageGibMax: 16384,
} as const;

export const CONFIG_KEYS = Object.keys(DEFAULTS) as readonly (keyof typeof DEFAULTS)[];
