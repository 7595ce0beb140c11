import * as fs from "node:fs";
import * as path from "node:path";
import * as digitalocean from "@pulumi/digitalocean";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { childOf } from "./kube";

/** Names the backup gives objects in Workflow's namespace; the chart's network policies and the tests read them. */
export const WORKFLOW_BACKUP = {
    /** The CronJob that copies the object store, and the `app` label of its pods. */
    copyJob: "hephy-doks-backup",
    /** The Secret of the bucket's read-write key, mounted by the copy job alone. */
    copySecret: "backup-spaces-key",
    /** The Secret of the read-only key on the bucket a new stack restores from, mounted by minio's restore alone. */
    restoreSecret: "backup-restore-key",
    /** Keys of both Secrets. */
    secretKeys: { accessKey: "access-key-id", secretKey: "secret-access-key" },
    /** The copy's script (backup/copy.sh), in a ConfigMap of that name. */
    script: "hephy-doks-backup-script",
    /**
     * The object beside the copy that holds the database's user and password, which the restored data
     * needs; under a prefix the copy and the restore leave alone, as no bucket of minio's has that name.
     */
    credentialsObject: "hephy-doks/database-creds.json",
} as const;

/** The S3 endpoint of a Spaces region (docs.digitalocean.com/products/spaces/reference/s3-compatibility). */
export function spacesEndpoint(region: string): string {
    return `https://${region}.digitaloceanspaces.com`;
}

const COPY_SCRIPT = path.join(__dirname, "..", "backup", "copy.sh");
const SCRIPT_DIR = "/etc/hephy-doks/backup";
/** Cilium's label for a pod's namespace (pkg/k8s/apis/cilium.io const.go). */
const POD_NAMESPACE = "io.kubernetes.pod.namespace";

export interface WorkflowBackupArgs {
    /** The Kubernetes provider of the cluster. */
    provider: k8s.Provider;
    /** Workflow's namespace, already created. */
    namespace: pulumi.Input<string>;
    /** The start of the bucket's and keys' names: `hephy-doks-<stack>`. */
    namePrefix: string;
    /** The Spaces region of the bucket. */
    region: string;
    /** A protected stack: Pulumi refuses to delete the bucket even from its state. */
    protect: boolean;
    /** The copy's image, an upstream rclone pinned by digest. */
    image: string;
    /** The copy's schedule, in cron syntax. */
    schedule: string;
    /** Days a replaced or deleted object stays in the bucket as a noncurrent version. */
    noncurrentDays: number;
    /** Workflow's object store: its Service, its pods' labels, port, the Secret of its keys (`accesskey`, `secretkey`), and the database's bucket. */
    objectStore: { service: string; labels: Record<string, string>; port: number; credentialsSecret: string; databaseBucket: string };
    /** The cluster's DNS, which the copy asks for the object store's and Spaces' addresses. */
    dns: { namespace: string; labels: Record<string, string>; port: number };
    /** A bucket a new stack restores from, which minio's restore reads with a key of its own; undefined when the stack starts empty. */
    restoreFrom?: { region: string; bucket: string };
    /** The database's user and password, kept in the bucket for a restore. */
    databaseCredentials: { user: pulumi.Input<string>; password: pulumi.Input<string> };
}

/**
 * The off-cluster copy of Workflow's object store: a versioned Spaces bucket that `pulumi destroy` leaves
 * (retainOnDelete), a key that can read and write that bucket alone, in a Secret that only the copy job
 * mounts, and the CronJob that mirrors every bucket of minio into it. With `restoreFrom`, also a key
 * that can only read the bucket restored from, in a Secret that only minio's restore mounts.
 */
export class WorkflowBackup extends pulumi.ComponentResource {
    public readonly bucket: digitalocean.SpacesBucket;
    public readonly copyKey: digitalocean.SpacesKey;
    public readonly cronJob: k8s.batch.v1.CronJob;
    /** What the copy's pods reach: DNS, the object store, and the region's Spaces endpoint. */
    public readonly policy: k8s.apiextensions.CustomResource;
    /** What Workflow's release waits for: the Secrets its pods mount. */
    public readonly ready: pulumi.Resource[];

    constructor(name: string, args: WorkflowBackupArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:workflowBackup:WorkflowBackup", name, {}, opts);
        const labels = { heritage: "hephy-doks" };
        const child = childOf(this, args.provider);

        // Bucket names are global to a region: the stack's name and a suffix no one else picks.
        const suffix = new random.RandomString(`${name}-backup-suffix`, { length: 6, upper: false, special: false }, { parent: this });
        const prefix = `${args.namePrefix.slice(0, 48).replace(/-+$/, "")}-backup`;
        this.bucket = new digitalocean.SpacesBucket(
            `${name}-backup`,
            {
                name: pulumi.interpolate`${prefix}-${suffix.result}`,
                region: args.region,
                acl: "private",
                versioning: { enabled: true },
                // What a sync overwrites or deletes stays restorable for noncurrentDays, then stops costing.
                lifecycleRules: [
                    {
                        id: "expire-replaced-versions",
                        enabled: true,
                        noncurrentVersionExpiration: { days: args.noncurrentDays },
                        abortIncompleteMultipartUploadDays: 1,
                    },
                ],
                forceDestroy: false,
            },
            // The copy must outlive the stack: `pulumi destroy` only forgets the bucket (docs/operations.md
            // says how to delete it on purpose), and a protected stack refuses even that.
            { parent: this, retainOnDelete: true, protect: args.protect },
        );

        // A restore brings back a database that only its own user opens (the controller also names its
        // database after that user: controller v2.22.0 api/settings/production.py DATABASES), so the
        // credentials stay with the copy, and outlive the stack with it.
        new digitalocean.SpacesBucketObject(
            `${name}-backup-database-creds`,
            {
                region: args.region,
                bucket: this.bucket.name,
                key: WORKFLOW_BACKUP.credentialsObject,
                acl: "private",
                // A type the provider's data source returns the body of (getSpacesBucketObject).
                contentType: "application/json",
                content: pulumi.secret(pulumi.jsonStringify({ user: args.databaseCredentials.user, password: args.databaseCredentials.password })),
            },
            { parent: this, retainOnDelete: true, protect: args.protect },
        );

        this.copyKey = new digitalocean.SpacesKey(
            `${name}-backup-copy`,
            { name: pulumi.interpolate`${this.bucket.name}-copy`, grants: [{ bucket: this.bucket.name, permission: "readwrite" }] },
            { parent: this },
        );
        const keySecret = (resourceName: string, secretName: string, key: digitalocean.SpacesKey) =>
            new k8s.core.v1.Secret(
                resourceName,
                {
                    metadata: { name: secretName, namespace: args.namespace, labels },
                    type: "Opaque",
                    stringData: {
                        [WORKFLOW_BACKUP.secretKeys.accessKey]: pulumi.secret(key.accessKey),
                        [WORKFLOW_BACKUP.secretKeys.secretKey]: pulumi.secret(key.secretKey),
                    },
                },
                child,
            );
        const copySecret = keySecret(`${name}-backup-copy-key`, WORKFLOW_BACKUP.copySecret, this.copyKey);
        this.ready = [copySecret];

        if (args.restoreFrom) {
            const restoreKey = new digitalocean.SpacesKey(
                `${name}-backup-restore`,
                { name: `${prefix}-restore-from-${args.restoreFrom.bucket}`.slice(0, 63), grants: [{ bucket: args.restoreFrom.bucket, permission: "read" }] },
                { parent: this },
            );
            this.ready.push(keySecret(`${name}-backup-restore-key`, WORKFLOW_BACKUP.restoreSecret, restoreKey));
        }

        const script = new k8s.core.v1.ConfigMap(
            `${name}-backup-script`,
            { metadata: { name: WORKFLOW_BACKUP.script, namespace: args.namespace, labels }, data: { "copy.sh": fs.readFileSync(COPY_SCRIPT, "utf8") } },
            child,
        );
        // rclone's remotes from the environment (rclone docs/content/docs.md, "Config file"); the s3 backend's
        // options by their names in backend/s3/s3.go. Spaces is addressed by virtual host (rclone's quirks for
        // provider DigitalOcean), so its names are <bucket>.<region>.digitaloceanspaces.com.
        const env: Record<string, pulumi.Input<string>> = {
            RCLONE_CONFIG_MINIO_TYPE: "s3",
            RCLONE_CONFIG_MINIO_PROVIDER: "Minio",
            RCLONE_CONFIG_MINIO_ENDPOINT: pulumi.interpolate`http://${args.objectStore.service}.${args.namespace}.svc:${args.objectStore.port}`,
            RCLONE_CONFIG_SPACES_TYPE: "s3",
            RCLONE_CONFIG_SPACES_PROVIDER: "DigitalOcean",
            RCLONE_CONFIG_SPACES_ENDPOINT: spacesEndpoint(args.region),
            RCLONE_CONFIG_SPACES_ACL: "private",
            // The key may not create buckets; the bucket is the program's.
            RCLONE_CONFIG_SPACES_NO_CHECK_BUCKET: "true",
            DATABASE_BUCKET: args.objectStore.databaseBucket,
            BACKUP_BUCKET: this.bucket.name,
            // No config file, and nowhere to write but the scratch volume.
            RCLONE_CONFIG: "/dev/null",
            HOME: "/tmp",
        };
        const secretEnv: Record<string, { name: string; key: string }> = {
            RCLONE_CONFIG_MINIO_ACCESS_KEY_ID: { name: args.objectStore.credentialsSecret, key: "accesskey" },
            RCLONE_CONFIG_MINIO_SECRET_ACCESS_KEY: { name: args.objectStore.credentialsSecret, key: "secretkey" },
            RCLONE_CONFIG_SPACES_ACCESS_KEY_ID: { name: WORKFLOW_BACKUP.copySecret, key: WORKFLOW_BACKUP.secretKeys.accessKey },
            RCLONE_CONFIG_SPACES_SECRET_ACCESS_KEY: { name: WORKFLOW_BACKUP.copySecret, key: WORKFLOW_BACKUP.secretKeys.secretKey },
        };

        this.cronJob = new k8s.batch.v1.CronJob(
            `${name}-backup`,
            {
                metadata: { name: WORKFLOW_BACKUP.copyJob, namespace: args.namespace, labels },
                spec: {
                    schedule: args.schedule,
                    timeZone: "Etc/UTC",
                    // One copy at a time; a run that could not start within 5 minutes waits for the next.
                    concurrencyPolicy: "Forbid",
                    startingDeadlineSeconds: 300,
                    successfulJobsHistoryLimit: 1,
                    failedJobsHistoryLimit: 3,
                    jobTemplate: {
                        spec: {
                            backoffLimit: 2,
                            activeDeadlineSeconds: 4 * 3600,
                            template: {
                                metadata: { labels: { app: WORKFLOW_BACKUP.copyJob, ...labels } },
                                spec: {
                                    restartPolicy: "Never",
                                    // It needs no Kubernetes API.
                                    automountServiceAccountToken: false,
                                    securityContext: { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, seccompProfile: { type: "RuntimeDefault" } },
                                    containers: [
                                        {
                                            name: "copy",
                                            image: args.image,
                                            command: ["/bin/sh", `${SCRIPT_DIR}/copy.sh`],
                                            env: [
                                                ...Object.entries(env).map(([envName, value]) => ({ name: envName, value })),
                                                ...Object.entries(secretEnv).map(([envName, secretKeyRef]) => ({ name: envName, valueFrom: { secretKeyRef } })),
                                            ],
                                            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
                                            resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "512Mi" } },
                                            volumeMounts: [
                                                { name: "script", mountPath: SCRIPT_DIR, readOnly: true },
                                                { name: "scratch", mountPath: "/tmp" },
                                            ],
                                        },
                                    ],
                                    volumes: [
                                        { name: "script", configMap: { name: script.metadata.name } },
                                        { name: "scratch", emptyDir: { sizeLimit: "64Mi" } },
                                    ],
                                },
                            },
                        },
                    },
                },
            },
            childOf(this, args.provider, [copySecret]),
        );

        const port = (number: number, protocol: string) => ({ ports: [{ port: String(number), protocol }] });
        const spacesHost = new URL(spacesEndpoint(args.region)).hostname;
        this.policy = new k8s.apiextensions.CustomResource(
            `${name}-backup-egress`,
            {
                apiVersion: "cilium.io/v2",
                kind: "CiliumNetworkPolicy",
                metadata: { name: WORKFLOW_BACKUP.copyJob, namespace: args.namespace, labels },
                spec: {
                    description: "The backup copy reaches DNS, the object store and its Spaces region's endpoint, and nothing else.",
                    endpointSelector: { matchLabels: { app: WORKFLOW_BACKUP.copyJob } },
                    egress: [
                        // Names are resolved through Cilium's DNS proxy, which learns the addresses toFQDNs
                        // allows (docs.cilium.io, "DNS based" policies).
                        {
                            toEndpoints: [{ matchLabels: { [POD_NAMESPACE]: args.dns.namespace, ...args.dns.labels } }],
                            toPorts: [{ ...port(args.dns.port, "ANY"), rules: { dns: [{ matchPattern: "*" }] } }],
                        },
                        { toEndpoints: [{ matchLabels: args.objectStore.labels }], toPorts: [port(args.objectStore.port, "TCP")] },
                        { toFQDNs: [{ matchName: spacesHost }, { matchPattern: `*.${spacesHost}` }], toPorts: [port(443, "TCP")] },
                    ],
                },
            },
            child,
        );

        this.registerOutputs({ bucket: this.bucket.name });
    }
}
