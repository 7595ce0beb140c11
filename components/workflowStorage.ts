import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { childOf } from "./kube";

/**
 * Where Workflow's object store lives: minio (the chart's `deis-minio`) keeps every app's slugs and the
 * database's only backups, and DOKS replaces every node at each upgrade, so its data directory is a
 * DigitalOcean volume, claimed by the program rather than by the chart: a claim Helm never owned
 * survives the release's deletion or reinstallation.
 */
export const WORKFLOW_VOLUME = {
    /** The StorageClass the claim names: DigitalOcean's CSI driver with the stack's reclaim policy. */
    storageClass: "hephy-doks-workflow",
    /** The PersistentVolumeClaim the chart mounts at minio's data directory (`minio.data_claim`). */
    claim: "deis-minio-data",
    /** The labels of the claim, by which its snapshots are scheduled. */
    labels: { heritage: "hephy-doks" },
} as const;

/** DigitalOcean's block-storage CSI driver on DOKS (digitalocean/csi-digitalocean deploy/kubernetes/releases/*\/driver.yaml). */
export const DO_CSI_PROVISIONER = "dobs.csi.digitalocean.com";

export interface WorkflowStorageArgs {
    /** The Kubernetes provider of the cluster. */
    provider: k8s.Provider;
    /** Workflow's namespace, already created. */
    namespace: pulumi.Input<string>;
    /** Size of the object store's volume in GiB, whole (the driver truncates a fraction of a GiB). */
    sizeGib: number;
    /** A protected stack: the volume outlives its claim, and Pulumi refuses to delete the claim. */
    protect: boolean;
}

/**
 * A StorageClass of the program's own and the claim on a DigitalOcean volume that holds Workflow's object
 * store, and in it the image registry's bucket (charts/hephy-workflow templates/registry.yaml).
 */
export class WorkflowStorage extends pulumi.ComponentResource {
    public readonly storageClass: k8s.storage.v1.StorageClass;
    public readonly claim: k8s.core.v1.PersistentVolumeClaim;

    constructor(name: string, args: WorkflowStorageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:workflowStorage:WorkflowStorage", name, {}, opts);
        const labels = WORKFLOW_VOLUME.labels;

        this.storageClass = new k8s.storage.v1.StorageClass(
            `${name}-storage-class`,
            {
                metadata: { name: WORKFLOW_VOLUME.storageClass, labels },
                provisioner: DO_CSI_PROVISIONER,
                // DOKS's own do-block-storage deletes a volume with its claim; a protected stack keeps it.
                reclaimPolicy: args.protect ? "Retain" : "Delete",
                allowVolumeExpansion: true,
                // A volume belongs to a region, not a zone, so it can be made at once: `pulumi up` then
                // waits for the claim to be Bound and fails there, loudly, if DigitalOcean refuses the volume.
                volumeBindingMode: "Immediate",
                // minio's pod gives its group the volume (fsGroup), which needs a filesystem type.
                parameters: { "csi.storage.k8s.io/fstype": "ext4" },
            },
            {
                ...childOf(this, args.provider),
                // The API server refuses to change either in place (kubernetes pkg/apis/storage/validation
                // `ValidateStorageClassUpdate`); a volume keeps the policy it was made with.
                replaceOnChanges: ["reclaimPolicy", "volumeBindingMode"],
                deleteBeforeReplace: true,
            },
        );

        this.claim = new k8s.core.v1.PersistentVolumeClaim(
            `${name}-claim`,
            {
                metadata: { name: WORKFLOW_VOLUME.claim, namespace: args.namespace, labels },
                spec: {
                    accessModes: ["ReadWriteOnce"],
                    storageClassName: this.storageClass.metadata.name,
                    resources: { requests: { storage: `${args.sizeGib}Gi` } },
                },
            },
            { ...childOf(this, args.provider), protect: args.protect },
        );

        this.registerOutputs({});
    }
}
