import * as assert from "node:assert/strict";
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { ROOT } from "../offline/harness";
import { slugBuilderPod, webhook } from "./buildPods";
import { ociLayout, serveRegistry } from "./registryServer";

const SCRIPT = path.join(ROOT, "charts", "hephy-workflow", "files", "build", "cnb-build.sh");
/** Stand-ins of the lifecycle's creator and of the object store's client (test/build/creator, objstorage). */
const STANDIN = path.join(ROOT, "test", "build");
/** Debian's packages, which .ci/run installs: distribution 2.8 (`docker-registry`) and skopeo. */
const TOOLS = ["docker-registry", "skopeo", "python3", "tar"];

/** A one-layer OCI image layout in `dir`, for the stand-in to push: what an export sends, in small. */
function exportLayout(dir: string): void {
    const emptyTar = Buffer.alloc(1024); // an empty tar archive: two zero blocks
    ociLayout(dir, {
        data: zlib.gzipSync(emptyTar),
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        diffId: `sha256:${crypto.createHash("sha256").update(emptyTar).digest("hex")}`,
    });
}

interface Build {
    /** The exit code of the build container, which the builder reads. */
    status: number | null;
    log: string;
    args: string[];
    procfile?: string;
    seconds: number;
}

/**
 * The build pod as the build-pod webhook makes it of the builder's slugbuild pod, its three commands run
 * here with their environments: the chart's cnb-build.sh around a stand-in of the lifecycle's creator
 * (test/build/creator) that pushes to a real distribution registry on loopback, and the source fetch
 * and the process types' upload around a stand-in of the object store's client.
 */
describe("a buildpack build's script (files/build/cnb-build.sh), around a stand-in lifecycle and a real registry", function () {
    this.timeout(30000);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-cnb-"));
    let registry: ChildProcess | undefined;
    let address: string;
    let built: any;

    before(async function () {
        const missing = TOOLS.filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
        if (missing.length > 0) {
            if (process.env.CI === "true") throw new Error(`missing ${missing.join(", ")}: .ci/run installs them (apt-get install docker-registry skopeo)`);
            console.warn(`skipping the buildpack build's script: missing ${missing.join(", ")} (apt-get install docker-registry skopeo)`);
            this.skip();
        }
        ({ address, child: registry } = await serveRegistry(work, "registry"));
        exportLayout(path.join(work, "image"));
        built = webhook(slugBuilderPod()).pod;
    });

    after(() => {
        registry?.kill();
        fs.rmSync(work, { recursive: true, force: true });
    });

    /**
     * Runs the pod the build-pod webhook makes of the builder's slugbuild pod: its fetch-source command, its
     * procfile-upload sidecar beside the build container's script, each with its own environment from the
     * pod (the pod's directories moved under a temporary one), and the object store a directory.
     */
    async function build(files: Record<string, string>, podEnv: Record<string, string | undefined> = {}, standIn: Record<string, string> = {}): Promise<Build> {
        // The builder's pod with other values, as the webhook passes them on: each container keeps its own names.
        const pod = structuredClone(built);
        for (const c of [...pod.spec.initContainers, ...pod.spec.containers]) {
            const names = c.env.map((e: any) => e.name);
            c.env = c.env.filter((e: any) => !(e.name in podEnv));
            for (const [name, value] of Object.entries(podEnv)) {
                if (value !== undefined && (names.includes(name) || c === pod.spec.containers[0])) c.env.push({ name, value });
            }
        }
        const [fetch, upload] = pod.spec.initContainers;
        const [container] = pod.spec.containers;
        const dir = fs.mkdtempSync(path.join(work, "pod-"));
        const dirs = Object.fromEntries(["CNB_APP_DIR", "CNB_LAYERS_DIR", "CNB_PLATFORM_DIR", "HANDOFF", "TMPDIR"].map((name) => [name, path.join(dir, name)]));
        for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
        fs.mkdirSync(path.join(dirs.CNB_PLATFORM_DIR, "env"));
        fs.writeFileSync(path.join(dirs.CNB_PLATFORM_DIR, "env", "GREETING"), "hello"); // the app's config, as the Secret's files
        const objects = path.join(dir, "objects");
        const source = path.join(dir, "source");
        fs.mkdirSync(source);
        for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(source, name), text);
        fs.mkdirSync(path.join(objects, "git", "home", "myapp:git-1f2e3d4c"), { recursive: true });
        execFileSync("tar", ["-czf", path.join(objects, "git", "home", "myapp:git-1f2e3d4c", "tar"), "-C", source, "."]);
        const record = path.join(dir, "creator-args");
        const envOf = (c: any): NodeJS.ProcessEnv => ({
            ...Object.fromEntries(c.env.map((e: any) => [e.name, e.value])),
            ...(c.env.some((e: any) => e.name === "REGISTRY") ? { REGISTRY: address, CNB_INSECURE_REGISTRIES: address } : {}),
            ...Object.fromEntries(Object.entries(dirs).filter(([name]) => name === "TMPDIR" || c.env.some((e: any) => e.name === name))),
            PATH: `${STANDIN}:${process.env.PATH}`,
            STANDIN_OBJECTS: objects,
            ...standIn,
        });
        const fetched = spawnSync("sh", ["-c", fetch.command[2]], { env: envOf(fetch), encoding: "utf8" });
        assert.equal(fetched.status, 0, fetched.stderr);
        const sidecar = spawn("sh", ["-c", upload.command[2]], { env: envOf(upload), stdio: "ignore", detached: true });
        const started = Date.now();
        const child = spawn("bash", [SCRIPT], {
            env: {
                ...envOf(container),
                CNB_LIFECYCLE_DIR: STANDIN,
                STANDIN_RECORD: record,
                STANDIN_IMAGE: path.join(work, "image"),
                FAIL_WAIT_SECONDS: "0",
                UPLOAD_WAIT_SECONDS: "5",
                ...standIn,
            },
        });
        let log = "";
        child.stdout!.on("data", (d) => (log += d));
        child.stderr!.on("data", (d) => (log += d));
        const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
        process.kill(-sidecar.pid!); // the kubelet ends a sidecar when the pod's container has ended
        const stored = path.join(objects, "git", "home", "myapp:git-1f2e3d4c", "push", "Procfile");
        return {
            status,
            log,
            args: fs.existsSync(record) ? fs.readFileSync(record, "utf8").trim().split("\n") : [],
            procfile: fs.existsSync(stored) ? fs.readFileSync(stored, "utf8") : undefined,
            seconds: (Date.now() - started) / 1000,
        };
    }

    const tags = async (repository: string): Promise<string[]> =>
        ((await (await fetch(`http://${address}/v2/${repository}/tags/list`)).json()).tags ?? []).sort();

    it("builds and pushes <app>:git-<sha> to the stack's registry, with the layer cache and the previous build beside it", async () => {
        const result = await build({ Procfile: "web: gunicorn app:app\nworker: python worker.py\n", "requirements.txt": "gunicorn\n" });
        assert.equal(result.status, 0, result.log);
        assert.deepEqual(result.args, [
            `-app=${result.args[0].slice(5)}`,
            result.args[1],
            result.args[2],
            "-log-level=info",
            `-cache-image=${address}/myapp:cnb-cache`,
            `-previous-image=${address}/myapp:cnb-latest`,
            `-tag=${address}/myapp:cnb-latest`,
            `${address}/myapp:git-1f2e3d4c`,
        ]);
        assert.match(result.args[1], /^-layers=.*\/CNB_LAYERS_DIR$/, "the lifecycle's directories, as the webhook names them");
        assert.match(result.args[2], /^-platform=.*\/CNB_PLATFORM_DIR$/);
        assert.deepEqual(await tags("myapp"), ["cnb-cache", "cnb-latest", "git-1f2e3d4c"]);
        const manifest = await fetch(`http://${address}/v2/myapp/manifests/git-1f2e3d4c`, {
            method: "HEAD",
            headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
        });
        assert.equal(manifest.status, 200, "the name the controller deploys, 127.0.0.1:5555/myapp:git-1f2e3d4c on a node");
    });

    it("passes the lifecycle's lines on to git push in order, and hands the build's process types to the builder", async () => {
        const result = await build({ Procfile: "web: gunicorn app:app\nworker: python worker.py\n" });
        assert.equal(result.status, 0, result.log);
        const lines = result.log.split("\n");
        const expected = ["-----> Building myapp:git-1f2e3d4c with Cloud Native Buildpacks", "===> DETECTING", "heroku/python 6.5.3", "===> EXPORTING"];
        const at = expected.map((l) => lines.indexOf(l));
        assert.ok(
            at.every((i, n) => i >= 0 && (n === 0 || i > at[n - 1])),
            result.log,
        );
        assert.deepEqual(JSON.parse(result.procfile!), { web: "gunicorn app:app", worker: "python worker.py" });
        assert.match(result.log, /-----> Process types: \{"web": "gunicorn app:app"/);
    });

    it("takes a buildpack's default process when the app has no Procfile", async () => {
        const result = await build({ "package.json": "{}" });
        assert.equal(result.status, 0, result.log);
        assert.deepEqual(JSON.parse(result.procfile!), { web: "npm start" });
    });

    it("builds without the cache when the app set DEIS_DISABLE_CACHE (the builder then gives no CACHE_PATH)", async () => {
        const result = await build({ Procfile: "web: ./run\n" }, { CACHE_PATH: undefined });
        assert.equal(result.status, 0, result.log);
        assert.ok(result.args.includes("-skip-restore"));
        assert.ok(!result.args.some((a) => a.startsWith("-cache-image") || a.startsWith("-previous-image")), result.args.join(" "));
        assert.ok(result.args.includes(`-tag=${address}/myapp:cnb-latest`));
    });

    it("fails the push with the lifecycle's exit code and a line that says which phase, after the lifecycle's own output", async () => {
        const cases: [string, string, RegExp][] = [
            ["20", "DETECTING", /no buildpack recognised the app/],
            ["51", "BUILDING", /the app failed to build \(the buildpack's output above says why\)/],
            ["62", "EXPORTING", /could not be pushed to the stack's registry/],
            ["42", "RESTORING", /previous build's layers could not be read .* DEIS_DISABLE_CACHE/],
        ];
        for (const [code, phase, message] of cases) {
            const result = await build({ Procfile: "web: ./run\n" }, {}, { STANDIN_EXIT: code, STANDIN_FAIL_AT: phase });
            assert.equal(String(result.status), code, result.log);
            assert.match(result.log, message);
            assert.ok(result.log.indexOf(`ERROR: failed to ${phase}`) < result.log.search(message), "the lifecycle's own error comes first");
            assert.equal(result.procfile, undefined);
        }
    });

    it("waits before exiting on a failure, as slugbuilder did, so the last lines reach git push", async () => {
        const result = await build({ Procfile: "web: ./run\n" }, {}, { STANDIN_EXIT: "51", STANDIN_FAIL_AT: "BUILDING", FAIL_WAIT_SECONDS: "1" });
        assert.equal(result.status, 51);
        assert.ok(result.seconds >= 1, `${result.seconds} s`);
    });

    it("refuses BUILDPACK_URL with what to do, before building anything", async () => {
        const result = await build({ Procfile: "web: ./run\n" }, { BUILDPACK_URL: "https://github.com/heroku/heroku-buildpack-python#v193" });
        assert.equal(result.status, 2);
        assert.match(result.log, /BUILDPACK_URL is set .* cannot run a classic buildpack fetched by URL\. Run 'deis config:unset BUILDPACK_URL'/);
        assert.deepEqual(result.args, [], "the lifecycle never ran");
    });

    it("ends the procfile-upload sidecar at the kubelet's SIGTERM as its container's PID 1, waiting or done, not at the grace period's kill", async () => {
        // The builder waits for the pod to end (builder v2.13.7 build.go waitForPodEnd) before git push goes on.
        const upload = built.spec.initContainers[1];
        const run = async (handOff: boolean) => {
            const dir = fs.mkdtempSync(path.join(work, "sidecar-"));
            const env = {
                ...Object.fromEntries(upload.env.map((e: any) => [e.name, e.value])),
                HANDOFF: dir,
                TMPDIR: dir,
                PATH: `${STANDIN}:${process.env.PATH}`,
                STANDIN_OBJECTS: path.join(dir, "objects"),
            };
            if (handOff) fs.writeFileSync(path.join(dir, "Procfile"), '{"web": "./run"}');
            // PID 1 of a PID namespace of its own, as in its container: a signal without a handler is ignored.
            const sidecar = spawn("unshare", ["--pid", "--fork", "--map-root-user", "sh", "-c", upload.command[2]], { env, stdio: "ignore" });
            const ended = new Promise((resolve) => sidecar.on("close", resolve));
            const deadline = Date.now() + 5000;
            while (!(handOff ? fs.existsSync(path.join(dir, "uploaded")) : fs.existsSync(path.join(dir, "objectstore")))) {
                assert.ok(Date.now() < deadline, "the sidecar did not start");
                await new Promise((resolve) => setTimeout(resolve, 50));
            }
            const pid1 = Number(fs.readFileSync(`/proc/${sidecar.pid}/task/${sidecar.pid}/children`, "utf8").trim());
            const stopped = Date.now();
            process.kill(pid1, "SIGTERM");
            const outcome = await Promise.race([ended.then(() => "ended"), new Promise((resolve) => setTimeout(() => resolve("still running"), 3000))]);
            if (outcome !== "ended") process.kill(pid1, "SIGKILL");
            await ended;
            return { outcome, seconds: (Date.now() - stopped) / 1000 };
        };
        const [waiting, done] = await Promise.all([run(false), run(true)]);
        assert.equal(waiting.outcome, "ended", "a failed build: the sidecar still waiting for the process types");
        assert.equal(done.outcome, "ended", "a build whose process types were stored");
        assert.ok(Math.max(waiting.seconds, done.seconds) < 2.5, `${waiting.seconds} s, ${done.seconds} s`);
    });

    it("fails when the process types cannot be stored, with the upload's error, and when the pod is not the webhook's", async () => {
        const failed = await build({ Procfile: "web: ./run\n" }, {}, { STANDIN_UPLOAD_ERROR: "objstorage: access denied" });
        assert.equal(failed.status, 1);
        assert.match(failed.log, /process types could not be stored for the builder \(objstorage: access denied\)/);
        const unchanged = await build({ Procfile: "web: ./run\n" }, {}, { HANDOFF: "" });
        assert.equal(unchanged.status, 2);
        assert.match(unchanged.log, /HANDOFF is not set \(was the pod changed by the build-pod webhook\?\)/);
        const badPath = await build({ Procfile: "web: ./run\n" }, { PUT_PATH: "home/../x/push" });
        assert.equal(badPath.status, 2);
        assert.match(badPath.log, /is not home\/<app>:git-<sha>\/push/);
    });
});
