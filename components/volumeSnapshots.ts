import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { childOf } from "./kube";

/** What the snapshots are made with and named, which verify and the tests read. */
export const VOLUME_SNAPSHOTS = {
    /** A class of the program's own: DigitalOcean's `do-block-storage` deletes a snapshot with its VolumeSnapshot. */
    snapshotClass: "hephy-doks-retain",
    /** The SnapshotSchedule in Workflow's namespace, and the label of the VolumeSnapshots it makes. */
    schedule: "hephy-doks-volumes",
    /** snapscheduler labels every snapshot with its schedule's name (v3.5.0 internal/controller/snapshotschedule_controller.go `ScheduleKey`). */
    scheduleLabel: "snapscheduler.backube/schedule",
} as const;

export interface VolumeSnapshotsArgs {
    /** The Kubernetes provider of the cluster. */
    provider: k8s.Provider;
    /** Workflow's namespace, whose claims labelled `claimLabels` are snapshotted. */
    namespace: pulumi.Input<string>;
    /** The labels of the claims to snapshot. */
    claimLabels: Record<string, string>;
    /** DigitalOcean's CSI driver, which takes the snapshots. */
    driver: string;
    /** When to snapshot, in cron syntax. */
    schedule: string;
    /** How many snapshots of each claim to keep; older ones are deleted from the cluster (their DigitalOcean snapshots stay, see docs/operations.md). */
    keep: number;
    /** backube/snapscheduler's chart, from its repository at a release tag, and the namespace it runs in. */
    operator: { git: string; ref: string; path: string; namespace: string; values: Record<string, unknown> };
    /** What a HelmRelease waits for: the HelmRelease CRD, helm-operator, and the admission guards. */
    operatorReady: pulumi.Resource[];
    /** How long `pulumi up` waits for helm-operator to report the release Released, in seconds. */
    releaseTimeoutSeconds: number;
}

/**
 * Scheduled snapshots of Workflow's volume, kept after their claim, their cluster and `pulumi destroy`:
 * backube/snapscheduler takes them by a SnapshotSchedule, through a VolumeSnapshotClass of the
 * program's own whose deletionPolicy is Retain, so deleting a VolumeSnapshot object (snapscheduler's
 * retention, the cluster's deletion) leaves DigitalOcean's snapshot.
 */
export class VolumeSnapshots extends pulumi.ComponentResource {
    public readonly snapshotClass: k8s.apiextensions.CustomResource;
    public readonly release: k8s.apiextensions.CustomResource;
    public readonly schedule: k8s.apiextensions.CustomResource;

    constructor(name: string, args: VolumeSnapshotsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:volumeSnapshots:VolumeSnapshots", name, {}, opts);
        const labels = { heritage: "hephy-doks" };

        // csi-digitalocean deploy/kubernetes/releases/*: its driver and the snapshot.storage.k8s.io/v1 CRDs
        // DOKS installs; the class's deletionPolicy is the only difference from its default class.
        this.snapshotClass = new k8s.apiextensions.CustomResource(
            `${name}-snapshot-class`,
            {
                apiVersion: "snapshot.storage.k8s.io/v1",
                kind: "VolumeSnapshotClass",
                metadata: { name: VOLUME_SNAPSHOTS.snapshotClass, labels },
                driver: args.driver,
                deletionPolicy: "Retain",
            },
            childOf(this, args.provider),
        );

        const namespace = new k8s.core.v1.Namespace(
            `${name}-snapscheduler`,
            { metadata: { name: args.operator.namespace, labels } },
            childOf(this, args.provider, args.operatorReady),
        );
        this.release = new k8s.apiextensions.CustomResource(
            `${name}-snapscheduler`,
            {
                apiVersion: "helm.fluxcd.io/v1",
                kind: "HelmRelease",
                metadata: {
                    name: "snapscheduler",
                    namespace: namespace.metadata.name,
                    annotations: { "pulumi.com/waitFor": "condition=Released", "pulumi.com/timeoutSeconds": String(args.releaseTimeoutSeconds) },
                },
                spec: {
                    releaseName: "snapscheduler",
                    helmVersion: "v3",
                    // A release tag of the chart's repository (the charts' Helm repository serves the same chart).
                    chart: { git: args.operator.git, ref: args.operator.ref, path: args.operator.path, skipDepUpdate: true },
                    wait: true,
                    timeout: args.releaseTimeoutSeconds - 60,
                    values: args.operator.values,
                },
            },
            childOf(this, args.provider, [...args.operatorReady, namespace]),
        );

        // snapscheduler.backube/v1 SnapshotSchedule (the chart's CRD, templates/snapscheduler.backube_snapshotschedules.yaml @ v3.5.0).
        this.schedule = new k8s.apiextensions.CustomResource(
            `${name}-schedule`,
            {
                apiVersion: "snapscheduler.backube/v1",
                kind: "SnapshotSchedule",
                metadata: { name: VOLUME_SNAPSHOTS.schedule, namespace: args.namespace, labels },
                spec: {
                    claimSelector: { matchLabels: args.claimLabels },
                    retention: { maxCount: args.keep },
                    schedule: args.schedule,
                    snapshotTemplate: { snapshotClassName: this.snapshotClass.metadata.name, labels },
                },
            },
            childOf(this, args.provider, [this.release, this.snapshotClass]),
        );

        this.registerOutputs({});
    }
}
