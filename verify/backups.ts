import * as k8s from "@kubernetes/client-node";
import { CheckResult, fail, pass, runCheck } from "./checks";

/**
 * Names the program gives the backup's objects (components/workflowBackup.ts WORKFLOW_BACKUP);
 * test/backup.spec.ts holds them equal, as verify does not load the program.
 */
export const BACKUP_FACTS = {
    /** The CronJob that copies the object store to the stack's Spaces bucket. */
    copyJob: { namespace: "deis", name: "hephy-doks-backup" },
    /** The copy runs every 15 minutes (project.ts FIXED.backupSchedule). */
    copyEveryMinutes: 15,
    /** The snapshots of Workflow's volume (components/volumeSnapshots.ts VOLUME_SNAPSHOTS), every 6 hours (FIXED.snapshotSchedule). */
    snapshots: { namespace: "deis", labelSelector: "snapscheduler.backube/schedule=hephy-doks-volumes", everyMinutes: 360 },
} as const;

/** A snapshot older than two periods and an hour fails: two in a row missed. */
export const SNAPSHOT_AGE_MINUTES = 2 * BACKUP_FACTS.snapshots.everyMinutes + 60;

/** By default a copy older than three periods fails: two runs in a row missed, or failed. */
export const DEFAULT_BACKUP_AGE_MINUTES = 3 * BACKUP_FACTS.copyEveryMinutes;

const API_MS = 30_000;

const minutesAgo = (time: Date | string | number, now: number) => Math.round((now - new Date(time).getTime()) / 60_000);

/**
 * The newest off-cluster copy is younger than `maxAgeMinutes`, as the copy's CronJob records its last
 * success (batch/v1 CronJobStatus `lastSuccessfulTime`). A CronJob younger than the bound that has not
 * succeeded yet passes: its first copy is not yet due.
 */
export function checkBackupCopy(config: k8s.KubeConfig, bucket: string, maxAgeMinutes: number, now = Date.now()): Promise<CheckResult> {
    return runCheck("backup-copy", bucket, API_MS, async () => {
        const { namespace, name } = BACKUP_FACTS.copyJob;
        const cronJob = await config.makeApiClient(k8s.BatchV1Api).readNamespacedCronJob({ namespace, name });
        const last = cronJob.status?.lastSuccessfulTime;
        const created = cronJob.metadata?.creationTimestamp;
        const running = cronJob.status?.active?.length ? `; ${cronJob.status.active.length} running now` : "";
        if (last === undefined) {
            const age = created ? minutesAgo(created, now) : Infinity;
            return age <= maxAgeMinutes
                ? pass(`no copy yet: the CronJob is ${age} min old, its first copy is due within ${maxAgeMinutes} min${running}`)
                : fail(`no copy has succeeded in the ${Number.isFinite(age) ? `${age} min` : "time"} since the CronJob was made${running}`);
        }
        const age = minutesAgo(last, now);
        const seen = `the newest copy is ${age} min old (${new Date(last).toISOString()}), the bound ${maxAgeMinutes} min${running}`;
        return age <= maxAgeMinutes ? pass(seen) : fail(seen);
    });
}

interface VolumeSnapshot {
    metadata?: { name?: string; creationTimestamp?: string };
    spec?: { source?: { persistentVolumeClaimName?: string } };
    status?: { readyToUse?: boolean; creationTime?: string };
}

/**
 * Every claim snapshotted has a ready snapshot younger than `maxAgeMinutes` (snapshot.storage.k8s.io/v1
 * VolumeSnapshotStatus `readyToUse`, `creationTime`), among those snapscheduler made.
 */
export function checkVolumeSnapshots(config: k8s.KubeConfig, maxAgeMinutes = SNAPSHOT_AGE_MINUTES, now = Date.now()): Promise<CheckResult> {
    return runCheck("volume-snapshot", "", API_MS, async () => {
        const { namespace, labelSelector } = BACKUP_FACTS.snapshots;
        const list = (await config
            .makeApiClient(k8s.CustomObjectsApi)
            .listNamespacedCustomObject({ group: "snapshot.storage.k8s.io", version: "v1", namespace, plural: "volumesnapshots", labelSelector })) as {
            items: VolumeSnapshot[];
        };
        const newest = new Map<string, number>();
        for (const snapshot of list.items.filter((s) => s.status?.readyToUse === true)) {
            const claim = snapshot.spec?.source?.persistentVolumeClaimName ?? "?";
            const age = minutesAgo(snapshot.status?.creationTime ?? snapshot.metadata?.creationTimestamp ?? 0, now);
            newest.set(claim, Math.min(age, newest.get(claim) ?? Infinity));
        }
        if (newest.size === 0) {
            return fail(`no ready snapshot in ${namespace} (${list.items.length} listed, ${labelSelector})`);
        }
        const seen = [...newest.entries()].map(([claim, age]) => `${claim} ${age} min`).join(", ");
        const stale = [...newest.values()].some((age) => age > maxAgeMinutes);
        return stale ? fail(`newest ready snapshot per claim: ${seen}, older than ${maxAgeMinutes} min`) : pass(`newest ready snapshot per claim: ${seen}`);
    });
}
