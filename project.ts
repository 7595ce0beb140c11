/** The project's name, and the values the program fixes rather than reads from config. */

/** The Pulumi project name, which is also the namespace of every config key this program reads. */
export const PROJECT = "hephy-doks";

/** Values the program fixes rather than reads from config. */
export const FIXED = {
    /**
     * Short, so resolvers drop a record within a minute of the `pulumi up` that changes it. The records
     * change only at a `pulumi up`: a node replaced between runs keeps its stale record until the next one.
     */
    dnsTtlSeconds: 60,
    /**
     * The TTL of the records the in-cluster reconciler publishes (incluster/nodedns.py): DigitalOcean's
     * minimum, and the mark by which it knows its own records from those `pulumi up` wrote (dnsTtlSeconds).
     */
    nodeDnsTtlSeconds: 30,
    /** Between the reconciler's full passes; it watches nodes and pods in between, so changes land sooner. */
    nodeDnsResyncSeconds: 30,
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
    /**
     * The off-cluster copy of Workflow's object store runs every 15 minutes: its recovery point, with the
     * minute the database's WAL takes to reach minio (docs/operations.md, "Backups").
     */
    backupSchedule: "*/15 * * * *",
    /** Days an object the copy overwrote or deleted stays restorable in the bucket as a noncurrent version. */
    backupNoncurrentDays: 30,
    /** Snapshots of Workflow's volume, with hephy-doks:volumeSnapshots: every 6 hours, UTC. */
    snapshotSchedule: "0 */6 * * *",
    /** At most a month of snapshots every 6 hours; DigitalOcean allows one per volume every 10 minutes. */
    volumeSnapshotsMax: 120,
} as const;
