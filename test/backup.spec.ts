import * as assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { CATALOG, UPSTREAM } from "../catalog";
import { WORKFLOW_BACKUP } from "../components/workflowBackup";
import { plain, programError, ROOT, Run, sentAsSecret, sharedRun, valueOf } from "../offline/harness";
import { K8sObject, parseManifest, podSpecs } from "../offline/manifests";
import { resetWorld, world } from "../offline/mocks";
import { chartArchive, helmReleases, renderRelease } from "../offline/renderReleases";
import { Admission, AdmissionRequest, admit } from "./admission";
import { Cluster, Entity, Pod, reachable } from "./networkPolicies";
import { S3StandIn } from "./s3StandIn";
import { firstStart } from "./databaseImage";
import { podRequest } from "./buildPods";
import { kubernetesApi, TestPki, testPki } from "./standIns";
import { BACKUP_FACTS, checkBackupCopy, checkVolumeSnapshots, DEFAULT_BACKUP_AGE_MINUTES, SNAPSHOT_AGE_MINUTES } from "../verify/backups";
import { VOLUME_SNAPSHOTS } from "../components/volumeSnapshots";
import { kubeConfig } from "../verify/cluster";
import { parseOptions } from "../verify/main";
import { parseOutputs } from "../verify/outputs";
import { FIXED } from "../project";
import { CREDENTIALS_OBJECT } from "../preflight";

/**
 * The off-cluster copy of Workflow's object store and the restore of a new stack from it: the program's
 * resources in mocked runs, the copy job's and the restore's real scripts run by the real rclone against
 * loopback S3 stand-ins (a minio on a directory, a versioned Spaces bucket), the database's real
 * first-start guards on the restored store, the refusals, and who the copy may reach.
 */

const BUCKET = "digitalocean:index/spacesBucket:SpacesBucket";
const KEY = "digitalocean:index/spacesKey:SpacesKey";
const SECRET = "kubernetes:core/v1:Secret";
const CONFIG_MAP = "kubernetes:core/v1:ConfigMap";
const CRON_JOB = "kubernetes:batch/v1:CronJob";
const BACKUP = { backupRegion: "fra1" };
/** A bucket an old stack copied to, which the account holds: a finished base backup among its keys. */
const OLD_BUCKET = "hephy-doks-production-backup-q7w2xa";
const SENTINEL = "dbwal/basebackups_005/base_000000010000000000000004_00000040_backup_stop_sentinel.json";
const RESTORE = { ...BACKUP, restoreFrom: `ams3/${OLD_BUCKET}` };
/** The old stack's database user and password, which its copy kept beside the data. */
const OLD_DATABASE = { user: "qwhxzmtkvplrnsoa", password: "Tz8pK2mVx9Lq4Rw7Ny3Hb6Jc1Fd5Gs0A" };
const withOldBucket = (region = "ams3") => {
    world.buckets[`${region}/${OLD_BUCKET}`] = [SENTINEL, "dbwal/wal_005/000000010000000000000004.lzo", "git/home/app:git-1/push/slug.tgz"];
    world.bucketObjects[`${region}/${OLD_BUCKET}/${WORKFLOW_BACKUP.credentialsObject}`] = JSON.stringify(OLD_DATABASE);
};

/** The Workflow release of a run, rendered as helm-operator's Helm would. */
function renderWorkflow(run: Run): K8sObject[] {
    const release = helmReleases(run).find((r) => r.metadata.name === CATALOG.workflow.releaseName);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-backup-"));
    try {
        const found = chartArchive(run, release.spec, work);
        assert.ok("archive" in found);
        return parseManifest(renderRelease(release, found.archive, `${CATALOG.workflow.kubernetes.max}.0`)).map((o) => ({
            ...o,
            metadata: { ...o.metadata, namespace: "deis" },
        }));
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
}

const declared = (run: Run) => run.resources.filter((r) => r.custom && r.type.startsWith("kubernetes:")).map((r) => plain(r.inputs));

/** Every pod template of the program's objects and the rendered chart, CronJobs' included. */
function allPodSpecs(objects: K8sObject[]): { owner: string; spec: any }[] {
    const cronJobs = objects
        .filter((o) => o.kind === "CronJob")
        .map((o) => ({ owner: `CronJob/${o.metadata.name}`, spec: o.spec.jobTemplate.spec.template.spec }));
    return [...podSpecs(objects), ...cronJobs];
}

/** The Secrets a pod spec reads: volumes, env and envFrom, init containers included. */
function secretsRead(spec: any): string[] {
    const containers = [...(spec.initContainers ?? []), ...spec.containers];
    return [
        ...(spec.volumes ?? []).map((v: any) => v.secret?.secretName).filter(Boolean),
        ...containers.flatMap((c: any) => (c.env ?? []).map((e: any) => e.valueFrom?.secretKeyRef?.name).filter(Boolean)),
        ...containers.flatMap((c: any) => (c.envFrom ?? []).map((e: any) => e.secretRef?.name).filter(Boolean)),
    ];
}

describe("the off-cluster copy, as the program declares it", () => {
    let run: Run;
    let protectedRun: Run;
    let plainRun: Run;
    before(async function () {
        this.timeout(60000);
        // One evaluation at a time: the mock engine is the process's.
        run = await sharedRun({ config: BACKUP });
        protectedRun = await sharedRun({ config: { ...BACKUP, protect: "true", builderSshSources: '["81.2.69.0/24"]' } });
        plainRun = await sharedRun();
    });

    it("creates a private, versioned Spaces bucket in the region, whose lifecycle expires replaced versions, and which pulumi destroy leaves", () => {
        const bucket = run.one(BUCKET);
        const inputs = plain(bucket.inputs);
        assert.match(inputs.name, /^hephy-doks-staging-backup-[a-z0-9]{6}$/);
        assert.deepEqual(
            { ...inputs, name: undefined },
            {
                name: undefined,
                region: "fra1",
                acl: "private",
                versioning: { enabled: true },
                lifecycleRules: [
                    { id: "expire-replaced-versions", enabled: true, noncurrentVersionExpiration: { days: 30 }, abortIncompleteMultipartUploadDays: 1 },
                ],
                forceDestroy: false,
            },
        );
        assert.equal(bucket.retainOnDelete, true, "pulumi destroy forgets the bucket and leaves it in Spaces");
        assert.equal(bucket.protect, false);
        const protectedBucket = protectedRun.one(BUCKET);
        assert.deepEqual([protectedBucket.retainOnDelete, protectedBucket.protect], [true, true]);
    });

    it("gives the copy a key that can read and write that bucket alone, as a Secret of Workflow's namespace sent as a secret", () => {
        const bucket = run.one(BUCKET);
        const key = run.one(KEY);
        assert.deepEqual(plain(key.inputs).grants, [{ bucket: plain(bucket.inputs).name, permission: "readwrite" }]);
        const secret = run.resources.find((r) => r.type === SECRET && plain(r.inputs).metadata.name === WORKFLOW_BACKUP.copySecret)!;
        assert.equal(plain(secret.inputs).metadata.namespace, "deis");
        assert.deepEqual(plain(secret.inputs).stringData, { "access-key-id": key.state.accessKey, "secret-access-key": key.state.secretKey });
        assert.ok(sentAsSecret(secret.inputs.stringData), "the key reaches the provider as a secret");
        assert.ok(secret.inputDependsOn.includes(`${KEY}::${key.name}`));
    });

    it("keeps the database's user and password beside the copy, as a secret, in an object pulumi destroy leaves", () => {
        const object = run.one("digitalocean:index/spacesBucketObject:SpacesBucketObject");
        const inputs = plain(object.inputs);
        assert.deepEqual(
            [inputs.bucket, inputs.region, inputs.key, inputs.acl, inputs.contentType],
            [plain(run.one(BUCKET).inputs).name, "fra1", WORKFLOW_BACKUP.credentialsObject, "private", "application/json"],
        );
        assert.ok(sentAsSecret(object.inputs.content));
        const creds = plain(run.resources.find((r) => r.type === SECRET && plain(r.inputs).metadata.name === "database-creds")!.inputs).stringData;
        assert.deepEqual(JSON.parse(inputs.content), { user: creds.user, password: creds.password });
        assert.deepEqual([object.retainOnDelete, protectedRun.one("digitalocean:index/spacesBucketObject:SpacesBucketObject").protect], [true, true]);
    });

    it("mounts that key in the copy job alone, among every pod the program and Workflow's chart run", () => {
        const readers = allPodSpecs([...declared(run), ...renderWorkflow(run)])
            .filter(({ spec }) => secretsRead(spec).includes(WORKFLOW_BACKUP.copySecret))
            .map(({ owner }) => owner);
        assert.deepEqual(readers, [`CronJob/${WORKFLOW_BACKUP.copyJob}`]);
    });

    it("copies every 15 minutes, one copy at a time, with rclone pinned by digest, as nobody, without the Kubernetes API's token", () => {
        const cronJob = plain(run.one(CRON_JOB).inputs);
        assert.equal(cronJob.metadata.namespace, "deis");
        assert.deepEqual([cronJob.spec.schedule, cronJob.spec.concurrencyPolicy], ["*/15 * * * *", "Forbid"]);
        const pod = cronJob.spec.jobTemplate.spec.template;
        assert.deepEqual(pod.metadata.labels, { app: WORKFLOW_BACKUP.copyJob, heritage: "hephy-doks" });
        assert.equal(pod.spec.automountServiceAccountToken, false);
        assert.deepEqual([pod.spec.securityContext.runAsNonRoot, pod.spec.securityContext.runAsUser], [true, 65534]);
        const [container] = pod.spec.containers;
        assert.match(container.image, /^docker\.io\/rclone\/rclone:[0-9.]+@sha256:[0-9a-f]{64}$/);
        assert.deepEqual(container.command, ["/bin/sh", "/etc/hephy-doks/backup/copy.sh"]);
        const script = run.resources.find((r) => r.type === CONFIG_MAP && plain(r.inputs).metadata.name === WORKFLOW_BACKUP.script)!;
        assert.equal(plain(script.inputs).data["copy.sh"], fs.readFileSync(path.join(ROOT, "backup", "copy.sh"), "utf8"));
        const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value ?? e.valueFrom.secretKeyRef]));
        assert.equal(env.BACKUP_BUCKET, plain(run.one(BUCKET).inputs).name);
        assert.equal(env.RCLONE_CONFIG_SPACES_ENDPOINT, "https://fra1.digitaloceanspaces.com");
        assert.equal(env.RCLONE_CONFIG_MINIO_ENDPOINT, "http://deis-minio.deis.svc:9000");
    });

    it("exports the bucket, and counts Spaces in the monthly cost", async () => {
        assert.equal(await valueOf(run.outputs.backupBucket), plain(run.one(BUCKET).inputs).name);
        assert.equal(await valueOf(run.outputs.backupRegion), "fra1");
        assert.equal((await valueOf(run.outputs.monthlyCostUsd)) - (await valueOf(plainRun.outputs.monthlyCostUsd)), 5);
        assert.match(await valueOf(run.outputs.monthlyCostEstimate), /Spaces backup bucket \$5 \(the account's subscription, 250 GiB included\)/);
    });

    it("makes no bucket, key or copy without a backup region, and restores nothing", () => {
        assert.deepEqual([plainRun.ofType(BUCKET).length, plainRun.ofType(KEY).length, plainRun.ofType(CRON_JOB).length], [0, 0, 0]);
        assert.equal(plainRun.outputs.backupBucket, undefined);
        const minio = renderWorkflow(plainRun).find((o) => o.kind === "Deployment" && o.metadata.name === "deis-minio")!;
        assert.deepEqual(
            minio.spec.template.spec.initContainers.map((c: { name: string }) => c.name),
            ["buckets"],
        );
    });
});

const run = promisify(execFile);

/** rclone from Debian (`.ci/run` installs it); a test that needs it fails in CI without it, and is skipped elsewhere. */
function needRclone(context: Mocha.Context): void {
    if (spawnSync("rclone", ["version"]).status === 0) {
        return;
    }
    if (process.env.CI === "true") {
        throw new Error("rclone is not installed: .ci/run installs it with apt-get (Debian's rclone package)");
    }
    context.skip();
}

/** Runs a command with `env` only (PATH unless given); resolves with its status and output, never rejects. */
async function runCommand(command: string, args: string[], env: Record<string, string>): Promise<{ status: number; stdout: string; stderr: string }> {
    try {
        const { stdout, stderr } = await run(command, args, { env: { PATH: process.env.PATH!, ...env }, timeout: 30000 });
        return { status: 0, stdout, stderr };
    } catch (error) {
        const e = error as { code?: number; stdout?: string; stderr?: string };
        return { status: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
    }
}

/** Runs a script as its container would: with sh, and `env` only. */
const runScript = (script: string, env: Record<string, string>) => runCommand("sh", [script], env);

/**
 * A container's environment as the kubelet would give it, on this machine: plain values as they are,
 * Secret references from `secrets`, and `overrides` for the endpoints the stand-ins answer at.
 */
function containerEnv(container: any, secrets: Record<string, Record<string, string>>, overrides: Record<string, string>): Record<string, string> {
    const env = Object.fromEntries(
        container.env.map((e: any) => [e.name, e.value ?? secrets[e.valueFrom.secretKeyRef.name]?.[e.valueFrom.secretKeyRef.key] ?? "<missing secret>"]),
    );
    return { ...env, ...overrides };
}

/**
 * A Spaces endpoint variable of a container as the stand-in answers it: the same name, in plain HTTP,
 * through the stand-in as the HTTP proxy (rclone addresses Spaces by virtual host, `<bucket>.<region>.digitaloceanspaces.com`).
 */
function throughStandIn(container: any, variable: string, spaces: S3StandIn): Record<string, string> {
    const endpoint: string = container.env.find((e: any) => e.name === variable).value;
    assert.match(endpoint, /^https:\/\/[a-z]+[0-9]\.digitaloceanspaces\.com$/);
    return { [variable]: endpoint.replace(/^https:/, "http:"), HTTP_PROXY: spaces.endpoint };
}

/** Writes files under `root`, creating directories; a value of null removes the file. */
function writeTree(root: string, files: Record<string, string | null>): void {
    for (const [name, content] of Object.entries(files)) {
        const file = path.join(root, name);
        if (content === null) {
            fs.rmSync(file);
        } else {
            fs.mkdirSync(path.dirname(file), { recursive: true });
            fs.writeFileSync(file, content);
        }
    }
}

/** The files under `root` and their contents, dotfiles and lost+found left out. */
function readTree(root: string): Record<string, string> {
    return Object.fromEntries(
        fs
            .readdirSync(root, { recursive: true, withFileTypes: true })
            .filter((e) => e.isFile())
            .map((e) => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join("/"))
            .filter((name) => !name.startsWith(".") && !name.startsWith("lost+found"))
            .sort()
            .map((name) => [name, fs.readFileSync(path.join(root, name), "utf8")]),
    );
}

/** What the bucket holds, every version of every key, newest first: its content, or "(deleted)" for a delete marker. */
function bucketVersions(spaces: S3StandIn, bucket: string): string[] {
    return spaces.versions(bucket).map((v) => `${v.key} ${v.isLatest ? "current" : "noncurrent"} ${v.body === undefined ? "(deleted)" : v.body.toString()}`);
}

const BASE_4 = "dbwal/basebackups_005/base_000000010000000000000004_00000040";
const BASE_6 = "dbwal/basebackups_005/base_000000010000000000000006_00000028";
const SLUG = "git/home/myapp:git-1a2b3c4d/push/slug.tgz";
/** A store as Workflow fills it: a finished base backup (its tar partition holds the database's rows here), WAL, a slug. */
const STORE = {
    [`${BASE_4}/tar_partitions/part_00000000.tar.lzo`]: JSON.stringify({
        users: ["admin-k3x9q2zt", "alice"],
        apps: ["myapp"],
        releases: ["myapp v1", "myapp v2"],
    }),
    [`${BASE_4}_backup_stop_sentinel.json`]: '{"wal_segment_backup_stop": "000000010000000000000004"}',
    "dbwal/wal_005/000000010000000000000004.lzo": "wal 4",
    [SLUG]: "slug v1",
};

const COPY_SECRETS = {
    "objectstorage-keyfile": { accesskey: "MINIOACCESSKEY", secretkey: "minio-secret" },
    [WORKFLOW_BACKUP.copySecret]: { "access-key-id": "DO00COPYKEY", "secret-access-key": "copy-secret" },
};

/** The copy job's container, run here: its script and environment, the stand-ins' endpoints, and `overrides`. */
function copyJob(container: any, script: string, stores: { minio: S3StandIn; spaces: S3StandIn }, home: string, overrides: Record<string, string> = {}) {
    return runScript(
        script,
        containerEnv(container, COPY_SECRETS, {
            RCLONE_CONFIG_MINIO_ENDPOINT: stores.minio.endpoint,
            ...throughStandIn(container, "RCLONE_CONFIG_SPACES_ENDPOINT", stores.spaces),
            HOME: home,
            ...overrides,
        }),
    );
}

/** The copy job's container and script, as a run declares them. */
function copyJobOf(run: Run, dir: string): { container: any; script: string } {
    const configMap = run.resources.find((r) => r.type === CONFIG_MAP && plain(r.inputs).metadata.name === WORKFLOW_BACKUP.script)!;
    const script = path.join(dir, "copy.sh");
    fs.writeFileSync(script, plain(configMap.inputs).data["copy.sh"]);
    return { container: plain(run.one(CRON_JOB).inputs).spec.jobTemplate.spec.template.spec.containers[0], script };
}

const CREDENTIALS = JSON.stringify(OLD_DATABASE);

describe("the copy job's script, run by the real rclone against a minio stand-in on a directory and a versioned Spaces stand-in", () => {
    let backupRun: Run;
    let container: any;
    let copyScript: string;
    let bucket: string;
    let dir: string;
    let minio: S3StandIn;
    let spaces: S3StandIn;
    const copy = () => copyJob(container, copyScript, { minio, spaces }, dir);
    const writes = () => spaces.requests.filter((r) => ["PUT", "DELETE", "POST"].includes(r.method));

    before(async function () {
        needRclone(this);
        this.timeout(60000);
        backupRun = await sharedRun({ config: BACKUP });
        bucket = plain(backupRun.one(BUCKET).inputs).name;
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-copy-"));
        ({ container, script: copyScript } = copyJobOf(backupRun, dir));
        fs.mkdirSync(path.join(dir, "volume", "lost+found"), { recursive: true });
        minio = await new S3StandIn(["MINIOACCESSKEY"], { directory: path.join(dir, "volume") }).start();
        spaces = await new S3StandIn(["DO00COPYKEY"], { versioned: true }, "fra1.digitaloceanspaces.com").start();
        spaces.createBucket(bucket);
        // What the program writes beside the copy (a SpacesBucketObject), before the first copy runs.
        spaces.put(bucket, WORKFLOW_BACKUP.credentialsObject, CREDENTIALS);
    });
    after(async () => {
        await minio?.stop();
        await spaces?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("refuses to mirror a store that holds no finished base backup, leaving the copy as it is", async () => {
        writeTree(path.join(dir, "volume"), { [`${BASE_4}/tar_partitions/part_00000000.tar.lzo`]: "half a backup" });
        const ran = await copy();
        assert.equal(ran.status, 1, ran.stderr);
        assert.match(ran.stderr, /the object store holds no finished base backup in dbwal; the copy in hephy-doks-staging-backup-[a-z0-9]{6} is left as it is/);
        assert.deepEqual([bucketVersions(spaces, bucket), writes()], [[`${WORKFLOW_BACKUP.credentialsObject} current ${CREDENTIALS}`], []]);
    });

    it("copies every bucket of the store, each under its name, as the store holds them, leaving what the program keeps beside them", async () => {
        writeTree(path.join(dir, "volume"), STORE);
        const ran = await copy();
        assert.equal(ran.status, 0, ran.stderr);
        assert.match(ran.stdout, /the object store is copied to hephy-doks-staging-backup-/);
        assert.deepEqual(spaces.objects(bucket), { ...readTree(path.join(dir, "volume")), [WORKFLOW_BACKUP.credentialsObject]: CREDENTIALS });
        assert.equal(spaces.versions(bucket).length, Object.keys(STORE).length + 1, "one version of each");
    });

    it("keeps what a later copy overwrites or deletes as noncurrent versions, and makes the current objects the store's", async () => {
        // A new build of the app, a new base backup with its WAL, and WAL-E's retention deleting the old backup.
        writeTree(path.join(dir, "volume"), {
            [SLUG]: "slug v2",
            [`${BASE_6}/tar_partitions/part_00000000.tar.lzo`]: JSON.stringify({
                users: ["admin-k3x9q2zt", "alice", "bob"],
                apps: ["myapp"],
                releases: ["myapp v3"],
            }),
            [`${BASE_6}_backup_stop_sentinel.json`]: '{"wal_segment_backup_stop": "000000010000000000000006"}',
            "dbwal/wal_005/000000010000000000000006.lzo": "wal 6",
            [`${BASE_4}/tar_partitions/part_00000000.tar.lzo`]: null,
            [`${BASE_4}_backup_stop_sentinel.json`]: null,
        });
        const ran = await copy();
        assert.equal(ran.status, 0, ran.stderr);
        assert.deepEqual(spaces.objects(bucket), { ...readTree(path.join(dir, "volume")), [WORKFLOW_BACKUP.credentialsObject]: CREDENTIALS });
        assert.deepEqual(bucketVersions(spaces, bucket), [
            `${BASE_4}/tar_partitions/part_00000000.tar.lzo current (deleted)`,
            `${BASE_4}/tar_partitions/part_00000000.tar.lzo noncurrent ${STORE[`${BASE_4}/tar_partitions/part_00000000.tar.lzo`]}`,
            `${BASE_4}_backup_stop_sentinel.json current (deleted)`,
            `${BASE_4}_backup_stop_sentinel.json noncurrent ${STORE[`${BASE_4}_backup_stop_sentinel.json`]}`,
            `${BASE_6}/tar_partitions/part_00000000.tar.lzo current {"users":["admin-k3x9q2zt","alice","bob"],"apps":["myapp"],"releases":["myapp v3"]}`,
            `${BASE_6}_backup_stop_sentinel.json current {"wal_segment_backup_stop": "000000010000000000000006"}`,
            "dbwal/wal_005/000000010000000000000004.lzo current wal 4",
            "dbwal/wal_005/000000010000000000000006.lzo current wal 6",
            `${SLUG} current slug v2`,
            `${SLUG} noncurrent slug v1`,
            `${WORKFLOW_BACKUP.credentialsObject} current ${CREDENTIALS}`,
        ]);
    });

    it("writes nothing when nothing changed, and signs with the copy's key only", async () => {
        const before = writes().length;
        const ran = await copy();
        assert.equal(ran.status, 0, ran.stderr);
        assert.equal(writes().length, before);
        const wrongKey = await runScript(copyScript, {
            ...containerEnv(
                container,
                { "objectstorage-keyfile": { accesskey: "MINIOACCESSKEY", secretkey: "s" } },
                { RCLONE_CONFIG_MINIO_ENDPOINT: minio.endpoint },
            ),
            RCLONE_CONFIG_SPACES_ENDPOINT: "http://fra1.digitaloceanspaces.com",
            HTTP_PROXY: spaces.endpoint,
            HOME: dir,
            RCLONE_RETRIES: "1",
            RCLONE_LOW_LEVEL_RETRIES: "1",
        });
        assert.notEqual(wrongKey.status, 0, "a key that is not the bucket's is refused");
    });
});

describe("restoring a new stack from a copy: the chart's restore, then the database's first start, with the real scripts against the stand-ins", () => {
    let restoreRun: Run;
    let minioDeployment: K8sObject;
    let restoreContainer: any;
    let restoreScript: string;
    let dir: string;
    let spaces: S3StandIn;
    const DATABASE_ROWS = STORE[`${BASE_4}/tar_partitions/part_00000000.tar.lzo`];
    const RESTORE_SECRETS = { [WORKFLOW_BACKUP.restoreSecret]: { "access-key-id": "DO00RESTOREKEY", "secret-access-key": "restore-secret" } };
    const restore = (volume: string, bucket = OLD_BUCKET) =>
        runScript(
            restoreScript,
            containerEnv(restoreContainer, RESTORE_SECRETS, {
                ...throughStandIn(restoreContainer, "RCLONE_CONFIG_SOURCE_ENDPOINT", spaces),
                DATA_DIR: volume,
                RESTORE_BUCKET: bucket,
                HOME: dir,
            }),
        );
    const newVolume = (name: string) => {
        const volume = path.join(dir, name);
        fs.mkdirSync(path.join(volume, "lost+found"), { recursive: true });
        return volume;
    };

    before(async function () {
        needRclone(this);
        this.timeout(60000);
        withOldBucket();
        try {
            restoreRun = await sharedRun({ config: RESTORE });
        } finally {
            resetWorld();
        }
        const workflow = renderWorkflow(restoreRun);
        minioDeployment = workflow.find((o) => o.kind === "Deployment" && o.metadata.name === "deis-minio")!;
        [restoreContainer] = minioDeployment.spec.template.spec.initContainers;
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-restore-"));
        restoreScript = path.join(dir, "restore.sh");
        const configMap = workflow.find((o) => o.kind === "ConfigMap" && o.metadata.name === "deis-minio-restore")!;
        fs.writeFileSync(restoreScript, configMap.data["restore.sh"]);
        assert.equal(configMap.data["restore.sh"], fs.readFileSync(path.join(ROOT, "charts", "hephy-workflow", "files", "minio", "restore.sh"), "utf8"));

        // The old stack: its store, copied by its copy job to its bucket in ams3.
        const oldStore = newVolume("old-volume");
        writeTree(oldStore, STORE);
        const oldMinio = await new S3StandIn(["MINIOACCESSKEY"], { directory: oldStore }).start();
        // The old stack's copy key writes the bucket, the new stack's restore key reads it.
        spaces = await new S3StandIn(["DO00COPYKEY", "DO00RESTOREKEY"], { versioned: true }, "ams3.digitaloceanspaces.com").start();
        spaces.createBucket(OLD_BUCKET);
        spaces.put(OLD_BUCKET, WORKFLOW_BACKUP.credentialsObject, CREDENTIALS);
        const { container, script } = copyJobOf(await sharedRun({ config: BACKUP }), dir);
        const copied = await copyJob(container, script, { minio: oldMinio, spaces }, dir, {
            BACKUP_BUCKET: OLD_BUCKET,
            RCLONE_CONFIG_SPACES_ENDPOINT: "http://ams3.digitaloceanspaces.com",
        });
        await oldMinio.stop();
        assert.equal(copied.status, 0, copied.stderr);
    });
    after(async () => {
        await spaces?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("declares a key that can only read the bucket restored from, mounted by minio's restore alone, before Workflow's release", () => {
        const keys = restoreRun.ofType(KEY).map((k) => plain(k.inputs).grants);
        assert.deepEqual(keys, [
            [{ bucket: plain(restoreRun.one(BUCKET).inputs).name, permission: "readwrite" }],
            [{ bucket: OLD_BUCKET, permission: "read" }],
        ]);
        const secret = restoreRun.resources.find((r) => r.type === SECRET && plain(r.inputs).metadata.name === WORKFLOW_BACKUP.restoreSecret)!;
        assert.ok(sentAsSecret(secret.inputs.stringData));
        const hephy = restoreRun.resources.find((r) => plain(r.inputs).kind === "HelmRelease" && plain(r.inputs).metadata.name === "hephy")!;
        assert.ok(hephy.dependsOn.includes(`${SECRET}::${secret.name}`), "the release waits for the restore's Secret");
        const readers = allPodSpecs([...declared(restoreRun), ...renderWorkflow(restoreRun)])
            .filter(({ spec }) => secretsRead(spec).includes(WORKFLOW_BACKUP.restoreSecret))
            .map(({ owner }) => owner);
        assert.deepEqual(readers, ["Deployment/deis-minio"]);
        assert.deepEqual(secretsRead({ containers: minioDeployment.spec.template.spec.containers }), ["minio-user", "minio-user"]);
    });

    it("gives the new database the old stack's user and password, which the restored data opens with, and keeps them beside its own copy", () => {
        const creds = restoreRun.resources.find((r) => r.type === SECRET && plain(r.inputs).metadata.name === "database-creds")!;
        assert.deepEqual(plain(creds.inputs).stringData, OLD_DATABASE);
        assert.ok(sentAsSecret(creds.inputs.stringData));
        assert.deepEqual(JSON.parse(plain(restoreRun.one("digitalocean:index/spacesBucketObject:SpacesBucketObject").inputs).content), OLD_DATABASE);
    });

    it("renders the restore as minio's init container: rclone pinned by digest, as minio's user, from the bucket's region, into the volume", () => {
        assert.equal(restoreContainer.name, "restore");
        assert.equal(restoreContainer.image, UPSTREAM.backupImage);
        assert.deepEqual([restoreContainer.securityContext.runAsUser, restoreContainer.securityContext.runAsGroup], [1000, 1000]);
        const env = Object.fromEntries(restoreContainer.env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
        assert.deepEqual(
            [env.RCLONE_CONFIG_SOURCE_ENDPOINT, env.RESTORE_BUCKET, env.DATABASE_BUCKET, env.DATA_DIR],
            ["https://ams3.digitaloceanspaces.com", OLD_BUCKET, "dbwal", "/home/minio/data"],
        );
        assert.ok(restoreContainer.volumeMounts.some((m: any) => m.name === "data" && m.mountPath === env.DATA_DIR));
    });

    it("fills the new volume with the old store, object for object, then the database's first start restores the newest backup from it", async function () {
        this.timeout(30000);
        const volume = newVolume("volume");
        const restored = await restore(volume);
        assert.equal(restored.status, 0, restored.stderr);
        assert.match(restored.stdout, new RegExp(`the object store is restored from ${OLD_BUCKET}`));
        assert.deepEqual(readTree(volume), STORE);
        assert.ok(fs.existsSync(path.join(volume, ".hephy-doks-restored")));

        // Only now does minio start, on the filled volume (an init container ends before the containers
        // start), and the database, waiting for it, starts with an empty data directory.
        const minio = await new S3StandIn(["MINIOACCESSKEY"], { directory: volume }).start();
        try {
            const started = await databaseFirstStart(dir, minio);
            assert.equal(started.status, 0, started.stderr);
            assert.deepEqual(started.log, [
                "create_bucket boto=/etc/hephy-doks/boto.cfg",
                "wal-e --terse backup-list boto=/etc/hephy-doks/boto.cfg",
                "create_bucket boto=default",
                "wal-e --terse backup-list boto=default",
                "wal-e backup-fetch base_000000010000000000000004_00000040",
                "003: restored",
                "004: periodic backups start",
                "entrypoint: init complete",
                "entrypoint: server started",
                "do_backup",
            ]);
            assert.match(started.stdout, /the newest backup was restored/);
            // The users, apps and releases of the old stack, in the database's restored data.
            assert.equal(fs.readFileSync(path.join(started.recovery, "database.json"), "utf8"), DATABASE_ROWS);
        } finally {
            await minio.stop();
        }
    });

    it("restores once: a restart after it, or a volume that already holds a store, is left as it is", async () => {
        const volume = newVolume("volume");
        const before = spaces.requests.length;
        const again = await restore(volume);
        assert.equal(again.status, 0, again.stderr);
        assert.match(again.stdout, /restored from .* before; nothing to do/);
        assert.equal(spaces.requests.length, before);

        const running = newVolume("running");
        writeTree(running, { [SLUG]: "a newer slug" });
        const left = await restore(running);
        assert.equal(left.status, 0, left.stderr);
        assert.match(left.stderr, /the volume already holds an object store; restoreFrom fills an empty one only/);
        assert.deepEqual(readTree(running), { [SLUG]: "a newer slug" });
    });

    it("takes up a restore cut short, and refuses a bucket with no finished base backup, leaving the volume empty", async () => {
        const cut = newVolume("cut");
        writeTree(cut, { ".hephy-doks-restoring": "", [SLUG]: "slug v1" });
        const resumed = await restore(cut);
        assert.equal(resumed.status, 0, resumed.stderr);
        assert.deepEqual(readTree(cut), STORE);

        spaces.createBucket("empty-backup");
        const empty = newVolume("empty");
        const refused = await restore(empty, "empty-backup");
        assert.equal(refused.status, 1);
        assert.match(refused.stderr, /empty-backup holds no finished base backup of the database in dbwal\/; nothing to restore from/);
        assert.deepEqual(fs.readdirSync(empty), ["lost+found"]);
    });
});

/**
 * The database image's first start (teamhephy/postgres v2.7.6 docker-entrypoint.sh sources every script of
 * docker-entrypoint-initdb.d in name order): the chart's real guards among models of the image's scripts,
 * with WAL-E and create_bucket answered by rclone against the minio stand-in. `wal-e --terse backup-list`
 * prints a heading and a line per base backup with a stop sentinel (wal_e/worker/base.py); backup-fetch
 * LATEST fetches the newest; 003 restores when the listing has more than one line.
 */
async function databaseFirstStart(dir: string, minio: S3StandIn): Promise<{ status: number; stdout: string; stderr: string; log: string[]; recovery: string }> {
    const work = fs.mkdtempSync(path.join(dir, "database-"));
    const bin = path.join(work, "bin");
    fs.mkdirSync(bin);
    const stub = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/usr/bin/env bash\nset -o pipefail\n${body}\n`, { mode: 0o755 });
    const sentinels = 'rclone lsf "minio:dbwal/basebackups_005/" | sed -n "s/_backup_stop_sentinel\\.json$//p" | sort';
    stub("envdir", 'shift; exec "$@"');
    stub("su-exec", 'shift; exec "$@"');
    stub("sleep", "/bin/sleep 0.05");
    stub("create_bucket", 'echo "create_bucket boto=${BOTO_CONFIG:-default}" >> "$LOG"; rclone mkdir minio:dbwal');
    stub(
        "wal-e",
        [
            'if [ "$1 $2" = "--terse backup-list" ]; then',
            '  echo "wal-e $* boto=${BOTO_CONFIG:-default}" >> "$LOG"',
            '  echo "name last_modified expanded_size_bytes wal_segment_backup_start"',
            `  ${sentinels}`,
            'elif [ "$1 $3" = "backup-fetch LATEST" ]; then',
            `  latest=$(${sentinels} | tail -n 1); echo "wal-e backup-fetch $latest" >> "$LOG"`,
            '  mkdir -p "$2" && rclone cat "minio:dbwal/basebackups_005/$latest/tar_partitions/part_00000000.tar.lzo" > "$2/database.json" && echo 11 > "$2/PG_VERSION"',
            'else echo "unexpected wal-e $*" >> "$LOG"; exit 99; fi',
        ].join("\n"),
    );
    stub("do_backup", 'if [ -f "$PGDATA/recovery.conf" ]; then exit 0; fi; echo "do_backup" >> "$LOG"');
    stub("pg_isready", '[ -f "$STATE/server-up" ]');
    const models: Record<string, string> = {
        "002_create_bucket.sh": 'envdir "$WALE_ENVDIR" create_bucket\n',
        "003_restore_from_backup.sh": [
            'if [[ $(envdir "$WALE_ENVDIR" wal-e --terse backup-list | wc -l) -gt "1" ]]; then',
            '  envdir "$WALE_ENVDIR" wal-e backup-fetch "$PGDATA_RECOVERY" LATEST; mkdir -p "$PGDATA"; touch "$PGDATA/recovery.conf"; echo "003: restored" >> "$LOG"',
            'else echo "003: empty database" >> "$LOG"; fi',
        ].join("\n"),
        "004_run_backups.sh": 'echo "004: periodic backups start" >> "$LOG"\n',
    };
    const { entrypoint, scripts } = firstStart(work, models);
    const log = path.join(work, "log");
    fs.writeFileSync(log, "");
    const recovery = path.join(work, "recovery");
    const result = await runCommand("bash", [entrypoint, ...scripts], {
        PATH: `${bin}:${process.env.PATH}`,
        HOME: work,
        LOG: log,
        STATE: work,
        WALE_ENVDIR: path.join(work, "env"),
        PGDATA: path.join(work, "pgdata"),
        PGDATA_RECOVERY: recovery,
        OBJECT_STORAGE_WAIT_SECONDS: "30",
        GUARD_BOTO_CONFIG: "/etc/hephy-doks/boto.cfg",
        // WAL-E's and create_bucket's object store: the minio stand-in, with the store's keys.
        RCLONE_CONFIG_MINIO_TYPE: "s3",
        RCLONE_CONFIG_MINIO_PROVIDER: "Minio",
        RCLONE_CONFIG_MINIO_ENDPOINT: minio.endpoint,
        RCLONE_CONFIG_MINIO_ACCESS_KEY_ID: "MINIOACCESSKEY",
        RCLONE_CONFIG_MINIO_SECRET_ACCESS_KEY: "minio-secret",
    });
    return { ...result, log: fs.readFileSync(log, "utf8").split("\n").filter(Boolean), recovery };
}

describe("restoreFrom refused before anything is declared", () => {
    afterEach(resetWorld);
    const refused = async (config: Record<string, string>) => {
        const { error, declared } = await programError({ config });
        assert.deepEqual(declared, [], "nothing is declared");
        return (error as unknown as { problems: string[] }).problems;
    };

    it("refuses a bucket the account does not have, and one that holds no finished base backup", async () => {
        assert.deepEqual(await refused(RESTORE), [
            `hephy-doks:restoreFrom ams3/${OLD_BUCKET} is no Spaces bucket this account can read (not found); ` +
                "the provider reads Spaces with the keys in SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY " +
                "(pulumi config set --stack staging hephy-doks:restoreFrom <region>/<bucket>, a stack's backupBucket output; or pulumi config rm --stack staging hephy-doks:restoreFrom)",
        ]);
        // Half a backup: WAL, and a base backup without its stop sentinel.
        world.buckets[`ams3/${OLD_BUCKET}`] = ["dbwal/wal_005/000000010000000000000004.lzo", `${BASE_4}/tar_partitions/part_00000000.tar.lzo`, SLUG];
        assert.deepEqual(await refused(RESTORE), [
            `hephy-doks:restoreFrom ams3/${OLD_BUCKET} holds no finished base backup of the database (nothing under dbwal/basebackups_005/): ` +
                "a restore would start Workflow empty (pulumi config set --stack staging hephy-doks:restoreFrom <region>/<bucket>, a stack's backupBucket output; or pulumi config rm --stack staging hephy-doks:restoreFrom)",
        ]);
    });

    it("refuses a bucket that holds no database credentials beside its backup, which the restored database opens with", async () => {
        withOldBucket();
        delete world.bucketObjects[`ams3/${OLD_BUCKET}/${WORKFLOW_BACKUP.credentialsObject}`];
        assert.deepEqual(await refused(RESTORE), [
            `hephy-doks:restoreFrom ams3/${OLD_BUCKET} holds no readable hephy-doks/database-creds.json (not found), the user and password its database opens with: ` +
                "the stack that made it must have run this program's copy " +
                "(pulumi config set --stack staging hephy-doks:restoreFrom <region>/<bucket>, a stack's backupBucket output; or pulumi config rm --stack staging hephy-doks:restoreFrom)",
        ]);
        assert.equal(CREDENTIALS_OBJECT, WORKFLOW_BACKUP.credentialsObject);
    });

    it("reads a bucket without a region in backupRegion, and passes one that holds a finished base backup", async () => {
        withOldBucket();
        const { error } = await programError({ config: { backupRegion: "fra1", restoreFrom: OLD_BUCKET } });
        assert.match(error.message, new RegExp(`restoreFrom fra1/${OLD_BUCKET} is no Spaces bucket`));
        withOldBucket("fra1");
        const restored = await sharedRun({ config: { backupRegion: "fra1", restoreFrom: OLD_BUCKET } });
        assert.equal(restored.ofType(KEY).length, 2);
        assert.equal(
            restored.invokes.filter((i) => i.token.endsWith("/getSpacesBucketObject:getSpacesBucketObject")).length,
            1,
            "the credentials are read once",
        );
    });

    it("refuses a restoreFrom that names no bucket, or comes without backupRegion or Workflow, naming the fix", async () => {
        assert.deepEqual(await refused({ backupRegion: "fra1", restoreFrom: "s3://old" }), [
            'hephy-doks:restoreFrom must name a Spaces bucket as <bucket> (in backupRegion) or <region>/<bucket>, got "s3://old" ' +
                "(pulumi config set --stack staging hephy-doks:restoreFrom fra1/hephy-doks-production-backup-1a2b3c)",
        ]);
        assert.deepEqual(await refused({ restoreFrom: `ams3/${OLD_BUCKET}` }), [
            "hephy-doks:restoreFrom needs backupRegion: a restored stack keeps an off-cluster copy of its own, and reads the bucket with a key made beside it " +
                "(pulumi config set --stack staging hephy-doks:backupRegion ams3)",
        ]);
        withOldBucket();
        assert.deepEqual(await refused({ ...RESTORE, workflowEnabled: "false" }), [
            "hephy-doks:restoreFrom fills Workflow's object store, and workflowEnabled is false (pulumi config set --stack staging hephy-doks:workflowEnabled true)",
        ]);
        assert.deepEqual(await refused({ backupRegion: "Frankfurt" }), [
            'hephy-doks:backupRegion must be a Spaces region slug (such as fra1, ams3 or nyc3), or empty for no off-cluster copy, got "Frankfurt" ' +
                "(pulumi config set --stack staging hephy-doks:backupRegion fra1)",
        ]);
    });
});

describe("what the copy job may reach, as Cilium would enforce the policies, and what admission keeps from its key", () => {
    let cluster: Cluster;
    let backupRun: Run;
    const copyPod: Pod = {
        kind: "pod",
        name: "hephy-doks-backup-29000000-abcde",
        namespace: "deis",
        labels: { app: WORKFLOW_BACKUP.copyJob, heritage: "hephy-doks" },
    };
    const pod = (namespace: string, name: string, labels: Record<string, string>): Pod => ({ kind: "pod", namespace, name, labels });
    const world_ = (fqdn: string, address = "162.243.189.2"): Entity => ({ kind: "entity", name: fqdn, entity: "world", address, fqdn });
    const PEERS = {
        minio: pod("deis", "deis-minio", { app: "deis-minio", heritage: "deis" }),
        database: pod("deis", "deis-database", { app: "deis-database", heritage: "deis" }),
        controller: pod("deis", "deis-controller", { app: "deis-controller", heritage: "deis" }),
        coreDns: pod("kube-system", "coredns", { "k8s-app": "kube-dns" }),
        app: pod("myapp", "myapp-web", { app: "myapp", type: "web", heritage: "deis" }),
        build: pod("deis", "slugbuild-myapp-1a2b3c4d-5e6f7a8b", { heritage: "slugbuild-myapp-1a2b3c4d-5e6f7a8b" }),
        spaces: world_("fra1.digitaloceanspaces.com"),
        bucket: world_("hephy-doks-staging-backup-kefezo.fra1.digitaloceanspaces.com"),
        otherRegion: world_("nyc3.digitaloceanspaces.com"),
        website: world_("example.org", "93.184.215.14"),
        metadata: { kind: "entity", name: "metadata", entity: "world", address: "169.254.169.254" } as Entity,
        api: { kind: "entity", name: "API server", entity: "kube-apiserver" } as Entity,
        node: { kind: "entity", name: "another node", entity: "remote-node" } as Entity,
    };

    before(async function () {
        this.timeout(60000);
        backupRun = await sharedRun({ config: BACKUP });
        const isPolicy = (o: any) => ["NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"].includes(o.kind);
        cluster = {
            namespaces: {
                ...Object.fromEntries(["deis", "kube-system", "flux"].map((n) => [n, { "kubernetes.io/metadata.name": n }])),
                myapp: { "kubernetes.io/metadata.name": "myapp", heritage: "deis" },
            },
            policies: [...declared(backupRun).filter(isPolicy), ...renderWorkflow(backupRun).filter(isPolicy)],
        };
    });

    it("reaches DNS, the object store, and its region's Spaces endpoint over HTTPS, and nothing else", () => {
        const reaches = (to: keyof typeof PEERS, port: number, protocol = "TCP") => reachable(cluster, copyPod, PEERS[to], port, protocol);
        assert.deepEqual([reaches("coreDns", 53, "UDP"), reaches("minio", 9000), reaches("spaces", 443), reaches("bucket", 443)], [true, true, true, true]);
        for (const [to, port] of [
            ["spaces", 80],
            ["otherRegion", 443],
            ["website", 443],
            ["metadata", 80],
            ["api", 443],
            ["node", 10250],
            ["database", 5432],
            ["controller", 8000],
            ["app", 5000],
            ["coreDns", 9153],
        ] as const) {
            assert.equal(reaches(to, port), false, `the copy reaches ${to}:${port}`);
        }
    });

    it("is reached by no one, and the object store admits it beside its other clients", () => {
        for (const from of ["app", "build", "controller", "node"] as const) {
            assert.equal(reachable(cluster, PEERS[from], copyPod, 8080), false, `${from} reaches the copy`);
        }
        assert.equal(reachable(cluster, PEERS.build, PEERS.minio, 9000), true);
        assert.equal(reachable(cluster, PEERS.controller, PEERS.minio, 9000), false);
    });

    it("keeps the backup's key and the copy's label out of what the builder and the controller may start", () => {
        const spec = (name: string) =>
            plain(backupRun.resources.find((r) => r.type.endsWith(":ValidatingAdmissionPolicy") && plain(r.inputs).metadata.name === name)!.inputs).spec;
        const request = podRequest;
        const buildPod = (extra: { labels?: Record<string, string>; volumes?: any[]; env?: any[] }) => ({
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "slugbuild-myapp-1a2b3c4d", labels: { heritage: "slugbuild-myapp-1a2b3c4d", ...extra.labels } },
            spec: { containers: [{ name: "deis-slugbuilder", image: "hephy/slugbuilder:v2.8.0", env: extra.env ?? [] }], volumes: extra.volumes ?? [] },
        });
        const builder = "system:serviceaccount:deis:deis-builder";
        const denied = (name: string, req: AdmissionRequest): Admission => admit(spec(name), req);
        assert.deepEqual(denied("guard-builder-pods", request(builder, "deis", buildPod({}))).denied, []);
        // One refusal each, whatever the policy's wording.
        const refusal = (pod: unknown) => denied("guard-builder-pods", request(builder, "deis", pod)).denied.join("; ");
        assert.match(refusal(buildPod({ volumes: [{ name: "k", secret: { secretName: WORKFLOW_BACKUP.copySecret } }] })), /^a build pod mounts no Secret but/);
        const fromKey = [{ name: "K", valueFrom: { secretKeyRef: { name: WORKFLOW_BACKUP.copySecret, key: "secret-access-key" } } }];
        assert.match(refusal(buildPod({ env: fromKey })), /^a build pod reads no Secret into its environment$/);
        assert.match(refusal(buildPod({ labels: { app: WORKFLOW_BACKUP.copyJob } })), /^a build pod carries the label heritage only\b[^;]*$/);
        const controllerPod = { ...buildPod({ labels: { app: WORKFLOW_BACKUP.copyJob } }), metadata: { name: "x", labels: { app: WORKFLOW_BACKUP.copyJob } } };
        assert.ok(
            denied("guard-workflow-namespaces", request("system:serviceaccount:deis:deis-controller", "deis", controllerPod)).denied.length > 0,
            "the controller starts no pod in Workflow's namespace",
        );
    });
});

describe("npm run verify: the age of the newest off-cluster copy, read from a stand-in Kubernetes API", () => {
    const NOW = Date.parse("2026-12-07T12:00:00Z");
    const ago = (minutes: number) => new Date(NOW - minutes * 60_000).toISOString();
    const cronJob = (created: number, lastSuccess?: number) => ({
        apiVersion: "batch/v1",
        kind: "CronJob",
        metadata: { name: BACKUP_FACTS.copyJob.name, namespace: BACKUP_FACTS.copyJob.namespace, creationTimestamp: ago(created) },
        spec: { schedule: "*/15 * * * *", jobTemplate: { spec: { template: { spec: { containers: [] } } } } },
        status: lastSuccess === undefined ? {} : { lastSuccessfulTime: ago(lastSuccess), lastScheduleTime: ago(lastSuccess) },
    });
    let pki: TestPki;
    let apiPair: { cert: string; key: string };
    before(async () => {
        pki = await testPki("verify-backup");
        apiPair = await pki.leaf(["127.0.0.1"], ["digital_signature", "server_auth"]);
    });
    const check = async (answer: unknown | undefined, maxAge = DEFAULT_BACKUP_AGE_MINUTES) => {
        const path_ = `/apis/batch/v1/namespaces/${BACKUP_FACTS.copyJob.namespace}/cronjobs/${BACKUP_FACTS.copyJob.name}`;
        const api = await kubernetesApi(answer === undefined ? {} : { [path_]: answer }, { pair: apiPair, ca: pki.root });
        try {
            return await checkBackupCopy(kubeConfig(api.kubeconfig), "hephy-doks-production-backup-q7w2xa", maxAge, NOW);
        } finally {
            await api.close();
        }
    };

    it("passes a copy younger than the bound, and fails one older, with its age", async () => {
        assert.deepEqual(await check(cronJob(600, 14)), {
            id: "backup-copy",
            target: "hephy-doks-production-backup-q7w2xa",
            ok: true,
            evidence: "the newest copy is 14 min old (2026-12-07T11:46:00.000Z), the bound 45 min",
        });
        const stale = await check(cronJob(600, 50));
        assert.deepEqual([stale.ok, stale.evidence], [false, "the newest copy is 50 min old (2026-12-07T11:10:00.000Z), the bound 45 min"]);
        assert.equal((await check(cronJob(600, 50), 60)).ok, true, "--backup-age moves the bound");
    });

    it("passes a new CronJob whose first copy is not yet due, fails one that never succeeded, and fails without one", async () => {
        assert.deepEqual(await check(cronJob(10)), {
            id: "backup-copy",
            target: "hephy-doks-production-backup-q7w2xa",
            ok: true,
            evidence: "no copy yet: the CronJob is 10 min old, its first copy is due within 45 min",
        });
        const never = await check(cronJob(180));
        assert.deepEqual([never.ok, never.evidence], [false, "no copy has succeeded in the 180 min since the CronJob was made"]);
        const missing = await check(undefined);
        assert.equal(missing.ok, false);
        assert.match(missing.evidence, /404/);
    });

    it("names the CronJob and its period as the program does, and reads the bound from --backup-age", () => {
        assert.deepEqual(BACKUP_FACTS.copyJob, { namespace: CATALOG.workflow.namespace, name: WORKFLOW_BACKUP.copyJob });
        assert.equal(FIXED.backupSchedule, `*/${BACKUP_FACTS.copyEveryMinutes} * * * *`);
        assert.equal(parseOptions([]).backupAgeMinutes, 45);
        assert.equal(parseOptions(["--backup-age", "120"]).backupAgeMinutes, 120);
        assert.throws(() => parseOptions(["--backup-age", "0"]), /--backup-age must be a whole number of minutes from 1 to 10080/);
        assert.deepEqual(parseOutputs({ ...MINIMAL_OUTPUTS, backupBucket: "b-1" }, "test").backupBucket, "b-1");
    });
});

const MINIMAL_OUTPUTS = { platformDomain: "paas.hephy-demo.net", nodeIps: ["203.0.113.10"], kubeconfig: "k", tillerCaCertPem: "c" };

describe("snapshots of Workflow's volume, scheduled by snapscheduler through a class that retains them", () => {
    const CLASS = "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotClass";
    const SCHEDULE = "kubernetes:snapscheduler.backube/v1:SnapshotSchedule";
    let run: Run;
    let plainRun: Run;
    before(async function () {
        this.timeout(60000);
        run = await sharedRun({ config: { volumeSnapshots: "8" } });
        plainRun = await sharedRun();
    });
    const release = (r: Run) => r.resources.find((x) => plain(x.inputs).kind === "HelmRelease" && plain(x.inputs).metadata.name === "snapscheduler");

    it("makes a VolumeSnapshotClass of DigitalOcean's driver that retains its snapshots when their VolumeSnapshot goes", () => {
        const inputs = plain(run.one(CLASS).inputs);
        assert.deepEqual([inputs.metadata.name, inputs.driver, inputs.deletionPolicy], [VOLUME_SNAPSHOTS.snapshotClass, "dobs.csi.digitalocean.com", "Retain"]);
    });

    it("installs snapscheduler from its release tag through helm-operator, after the operator and the admission guards", () => {
        const hr = release(run)!;
        const spec = plain(hr.inputs).spec;
        assert.deepEqual(spec.chart, { git: "https://github.com/backube/snapscheduler", ref: "v3.5.0", path: "helm/snapscheduler", skipDepUpdate: true });
        assert.deepEqual([spec.helmVersion, plain(hr.inputs).metadata.annotations["pulumi.com/waitFor"]], ["v3", "condition=Released"]);
        const operator = run.resources.find((r) => r.type === "kubernetes:apps/v1:Deployment" && plain(r.inputs).metadata.name === "flux-helm-operator")!;
        assert.ok(hr.dependsOn.includes(`${operator.type}::${operator.name}`), hr.dependsOn.join(", "));
        assert.ok(hr.dependsOn.some((d) => d.includes("ValidatingAdmissionPolicy")));
    });

    it("snapshots both of Workflow's claims every 6 hours, keeping 8 of each, once snapscheduler and the class exist", () => {
        const schedule = run.one(SCHEDULE);
        const spec = plain(schedule.inputs).spec;
        assert.deepEqual(spec, {
            claimSelector: { matchLabels: { heritage: "hephy-doks" } },
            retention: { maxCount: 8 },
            schedule: "0 */6 * * *",
            snapshotTemplate: { snapshotClassName: VOLUME_SNAPSHOTS.snapshotClass, labels: { heritage: "hephy-doks" } },
        });
        assert.equal(plain(schedule.inputs).metadata.namespace, "deis");
        const claims = run.ofType("kubernetes:core/v1:PersistentVolumeClaim").map((c) => plain(c.inputs).metadata);
        assert.deepEqual(
            claims.filter((m) => Object.entries(spec.claimSelector.matchLabels).every(([k, v]) => m.labels?.[k] === v)).map((m) => m.name),
            ["deis-minio-data"],
        );
        assert.ok(schedule.dependsOn.includes(`kubernetes:helm.fluxcd.io/v1:HelmRelease::${release(run)!.name}`));
        assert.ok(schedule.dependsOn.includes(`${CLASS}::${run.one(CLASS).name}`));
    });

    it("counts the snapshots in the cost, at most a volume's size each, and makes none by default", async () => {
        assert.match(await valueOf(run.outputs.monthlyCostEstimate), /8 snapshots of the Workflow volume, at most 160 GiB at \$0\.06\/GiB \$9\.60/);
        assert.equal(Math.round(((await valueOf(run.outputs.monthlyCostUsd)) - (await valueOf(plainRun.outputs.monthlyCostUsd))) * 100), 960);
        assert.equal(await valueOf(run.outputs.volumeSnapshotsKept), 8);
        assert.deepEqual([plainRun.ofType(CLASS).length, plainRun.ofType(SCHEDULE).length, release(plainRun)], [0, 0, undefined]);
    });

    it("refuses a retention count out of range", async () => {
        const { error } = await programError({ config: { volumeSnapshots: "500" } });
        assert.match(
            error.message,
            /hephy-doks:volumeSnapshots must be an integer from 0 to 120, got "500" \(pulumi config set --stack staging hephy-doks:volumeSnapshots 8\)/,
        );
    });
});

describe("npm run verify: the age of the newest snapshot of each claim, read from a stand-in Kubernetes API", () => {
    const NOW = Date.parse("2026-12-07T12:00:00Z");
    const ago = (minutes: number) => new Date(NOW - minutes * 60_000).toISOString();
    const snapshot = (claim: string, minutes: number, ready = true) => ({
        metadata: { name: `${claim}-${minutes}`, labels: { [VOLUME_SNAPSHOTS.scheduleLabel]: VOLUME_SNAPSHOTS.schedule } },
        spec: { source: { persistentVolumeClaimName: claim } },
        status: { readyToUse: ready, creationTime: ago(minutes) },
    });
    let pki: TestPki;
    let apiPair: { cert: string; key: string };
    before(async () => {
        pki = await testPki("verify-snapshots");
        apiPair = await pki.leaf(["127.0.0.1"], ["digital_signature", "server_auth"]);
    });
    const check = async (items: unknown[]) => {
        const query = `labelSelector=${encodeURIComponent(BACKUP_FACTS.snapshots.labelSelector)}`;
        const url = `/apis/snapshot.storage.k8s.io/v1/namespaces/deis/volumesnapshots?${query}`;
        const api = await kubernetesApi(
            { [url]: { apiVersion: "snapshot.storage.k8s.io/v1", kind: "VolumeSnapshotList", items } },
            { pair: apiPair, ca: pki.root },
        );
        try {
            return { result: await checkVolumeSnapshots(kubeConfig(api.kubeconfig), SNAPSHOT_AGE_MINUTES, NOW), asked: api.requests.map((r) => r.url) };
        } finally {
            await api.close();
        }
    };

    it("passes when each claim's newest ready snapshot is younger than 13 hours, and fails when one is older or none is ready", async () => {
        const fresh = await check([snapshot("deis-minio-data", 700), snapshot("deis-minio-data", 120), snapshot("deis-registry-data", 125)]);
        assert.deepEqual(
            [fresh.result.ok, fresh.result.evidence],
            [true, "newest ready snapshot per claim: deis-minio-data 120 min, deis-registry-data 125 min"],
        );
        const stale = await check([snapshot("deis-minio-data", 120), snapshot("deis-registry-data", 800), snapshot("deis-registry-data", 10, false)]);
        assert.deepEqual(
            [stale.result.ok, stale.result.evidence],
            [false, "newest ready snapshot per claim: deis-minio-data 120 min, deis-registry-data 800 min, older than 780 min"],
        );
        const none = await check([snapshot("deis-minio-data", 10, false)]);
        assert.equal(none.result.ok, false);
        assert.match(none.result.evidence, /no ready snapshot in deis \(1 listed/);
    });

    it("names the snapshots and their period as the program does", () => {
        assert.equal(BACKUP_FACTS.snapshots.labelSelector, `${VOLUME_SNAPSHOTS.scheduleLabel}=${VOLUME_SNAPSHOTS.schedule}`);
        assert.equal(FIXED.snapshotSchedule, `0 */${BACKUP_FACTS.snapshots.everyMinutes / 60} * * *`);
        assert.equal(parseOutputs({ ...MINIMAL_OUTPUTS, volumeSnapshotsKept: 8 }, "test").volumeSnapshotsKept, 8);
    });
});
