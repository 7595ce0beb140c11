import * as assert from "node:assert/strict";
import { ChildProcess, execFile, execFileSync, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { CATALOG } from "../catalog";
import { sharedRun } from "../offline/harness";
import { K8sObject, parseManifest } from "../offline/manifests";
import { chartArchive, helmReleases, renderRelease } from "../offline/renderReleases";
import { ociLayout, serveRegistry } from "./registryServer";
import { S3StandIn } from "./s3StandIn";

/** Debian's packages, which .ci/run installs: distribution 2.8 (`docker-registry`) and skopeo. */
const TOOLS = ["docker-registry", "skopeo"];
const MINIO_DATA = "/home/minio/data";

/**
 * The stack's registry keeps its images in minio, as the chart configures it: a real distribution
 * registry with the registry Deployment's own environment (the s3 driver, minio's Service as its
 * endpoint, the minio keys), against the S3 stand-in keeping minio's FS layout in a directory whose
 * bucket the minio Deployment's init container made. An image pushed and pulled with skopeo lands as
 * files of that bucket, the files the backup copies, and a new registry over a copy of them serves it.
 */
describe("the registry's images in minio, with distribution's s3 driver as the chart configures it", function () {
    this.timeout(60000);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-registry-s3-"));
    const children: ChildProcess[] = [];
    const standIns: S3StandIn[] = [];
    const keys = { accesskey: "minio-access-key", secretkey: "minio-secret-key" };
    let objects: K8sObject[];
    let registryEnv: NodeJS.ProcessEnv;
    let registry: string;
    let layerDigest: string;

    /** A registry with the chart's environment, its minio endpoint that of a stand-in on `directory`. */
    async function registryOn(directory: string, name: string): Promise<string> {
        const minio = await new S3StandIn([keys.accesskey], { directory }).start();
        standIns.push(minio);
        // The pod's environment has no AWS_CA_BUNDLE, which some machines set and 2.8's s3 client cannot load.
        const env = { ...registryEnv, REGISTRY_STORAGE_S3_REGIONENDPOINT: minio.endpoint, AWS_CA_BUNDLE: undefined };
        const { address, child } = await serveRegistry(work, name, "", env);
        children.push(child);
        return address;
    }

    // Asynchronous: the stand-in answers the registry from this process.
    const skopeo = async (...args: string[]) => (await promisify(execFile)("skopeo", ["--insecure-policy", ...args], { encoding: "utf8" })).stdout;

    /** An OCI layout holding one image of one uncompressed layer of 12 MiB, more than S3's 5 MiB minimum part. */
    function ociImage(dir: string): void {
        const source = path.join(work, "rootfs");
        fs.mkdirSync(source);
        fs.writeFileSync(path.join(source, "data"), crypto.randomBytes(12 * 1024 * 1024));
        const tar = execFileSync("tar", ["-cf", "-", "-C", source, "data"], { maxBuffer: 64 * 1024 * 1024 });
        const diffId = `sha256:${crypto.createHash("sha256").update(tar).digest("hex")}`;
        ociLayout(dir, { data: tar, mediaType: "application/vnd.oci.image.layer.v1.tar", diffId }, "v1");
    }

    before(async function () {
        const missing = TOOLS.filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
        if (missing.length > 0) {
            if (process.env.CI === "true") throw new Error(`missing ${missing.join(", ")}: .ci/run installs them (apt-get install docker-registry skopeo)`);
            console.warn(`skipping the registry on minio: missing ${missing.join(", ")} (apt-get install docker-registry skopeo)`);
            this.skip();
        }
        const run = await sharedRun();
        const release = helmReleases(run).find((r) => r.metadata.name === CATALOG.workflow.releaseName);
        const found = chartArchive(run, release.spec, work);
        assert.ok("archive" in found);
        objects = parseManifest(renderRelease(release, found.archive, `${CATALOG.workflow.kubernetes.max}.0`));
        const deployment = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "deis-registry")!;
        const env: { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: keyof typeof keys } } }[] =
            deployment.spec.template.spec.containers[0].env;
        registryEnv = Object.fromEntries(
            env.map((e) => {
                if (e.valueFrom) {
                    assert.equal(e.valueFrom.secretKeyRef.name, "minio-user", `${e.name}: minio's own keys`);
                    return [e.name, keys[e.valueFrom.secretKeyRef.key]];
                }
                return [e.name, e.value];
            }),
        );
        ociImage(path.join(work, "image"));
    });

    after(async () => {
        for (const child of children) child.kill();
        await Promise.all(standIns.map((s) => s.stop()));
        fs.rmSync(work, { recursive: true, force: true });
    });

    it("points the registry at minio's Service, path-style, and minio's init container makes its bucket", () => {
        const minioService = objects.find((o) => o.kind === "Service" && o.metadata.name === "deis-minio")!;
        assert.equal(registryEnv.REGISTRY_STORAGE, "s3");
        assert.equal(registryEnv.REGISTRY_STORAGE_S3_REGIONENDPOINT, `http://deis-minio.deis.svc.cluster.local:${minioService.spec.ports[0].port}`);
        assert.equal(registryEnv.REGISTRY_STORAGE_S3_FORCEPATHSTYLE, "true");
        assert.equal(registryEnv.REGISTRY_STORAGE_REDIRECT_DISABLE, "true", "no client reaches minio");
        assert.equal(registryEnv.REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY, undefined);
        const registryPod = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "deis-registry")!.spec.template.spec;
        assert.equal(registryPod.volumes, undefined, "no volume of its own");
        const minioPod = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "deis-minio")!.spec.template.spec;
        const buckets = minioPod.initContainers.find((c: { name: string }) => c.name === "buckets");
        assert.deepEqual(buckets.command, ["mkdir", "-p", `${MINIO_DATA}/${registryEnv.REGISTRY_STORAGE_S3_BUCKET}`]);
        assert.deepEqual(
            buckets.volumeMounts.map((m: { name: string; mountPath: string }) => [m.name, m.mountPath]),
            [["data", MINIO_DATA]],
        );
    });

    it("pushes an image into the bucket `registry` on minio's volume and pulls it back", async () => {
        const minioData = path.join(work, "minio");
        fs.mkdirSync(minioData);
        const buckets = objects
            .find((o) => o.kind === "Deployment" && o.metadata.name === "deis-minio")!
            .spec.template.spec.initContainers.find((c: { name: string }) => c.name === "buckets");
        // The init container's command, on this machine's stand-in of minio's volume.
        execFileSync(
            buckets.command[0],
            buckets.command.slice(1).map((a: string) => a.replace(MINIO_DATA, minioData)),
        );
        registry = await registryOn(minioData, "stack");
        const started = Date.now();
        await skopeo("copy", "--dest-tls-verify=false", `oci:${path.join(work, "image")}:v1`, `docker://${registry}/myapp:v1`);
        // skopeo compresses the layer on the way: the registry's digest is the one to find.
        const [digest] = JSON.parse(await skopeo("inspect", "--tls-verify=false", `docker://${registry}/myapp:v1`)).Layers;
        layerDigest = digest;
        const hex = digest.slice("sha256:".length);
        const blob = fs.readFileSync(path.join(minioData, "registry", "docker", "registry", "v2", "blobs", "sha256", hex.slice(0, 2), hex, "data"));
        assert.equal(crypto.createHash("sha256").update(blob).digest("hex"), hex, "the layer is a file of minio's bucket `registry`, whole");
        assert.ok(
            standIns[0].requests.some((r) => r.method === "PUT" && /partNumber=1&uploadId=/.test(r.query)),
            "written as a multipart upload, as distribution writes every blob",
        );
        assert.ok(fs.existsSync(path.join(minioData, "registry", "docker", "registry", "v2", "repositories", "myapp", "_manifests", "tags", "v1")));
        await skopeo("copy", "--src-tls-verify=false", `docker://${registry}/myapp:v1`, `oci:${path.join(work, "pulled")}:v1`);
        assert.ok(fs.readFileSync(path.join(work, "pulled", "blobs", "sha256", hex)).equals(blob), "pulled back whole");
        assert.ok(Date.now() - started < 20000, `${Date.now() - started} ms`);
    });

    it("serves the image from a copy of the bucket, as a restored stack's minio holds it", async () => {
        // The copy job syncs every bucket of the store and the restore writes them back as directories.
        const restored = path.join(work, "restored");
        fs.cpSync(path.join(work, "minio", "registry"), path.join(restored, "registry"), { recursive: true });
        const again = await registryOn(restored, "restored");
        const inspected = JSON.parse(await skopeo("inspect", "--tls-verify=false", `docker://${again}/myapp:v1`));
        assert.equal(inspected.Layers.length, 1);
        assert.equal(inspected.Layers[0], layerDigest);
    });
});
