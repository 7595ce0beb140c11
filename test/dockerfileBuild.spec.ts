import * as assert from "node:assert/strict";
import { ChildProcess, execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT } from "../offline/harness";
import { builderPod, callPython, webhook } from "./buildPods";
import { selfSignedCertificate, serveRegistry } from "./registryServer";

const FILES = path.join(ROOT, "charts", "hephy-workflow", "files");
const SCRIPT = path.join(FILES, "build", "dockerfile-build.sh");
const CLIENT = path.join(FILES, "registry", "dockerclient.py");
/** Debian's packages, which .ci/run installs: buildah 1.28, distribution 2.8 (`docker-registry`), openssl. */
const TOOLS = ["buildah", "docker-registry", "openssl", "tar"];

/**
 * A real Dockerfile build, as the build pod runs it: the chart's dockerfile-build.sh with Debian's buildah
 * (chroot isolation, vfs, as in the pod; here as the machine's root rather than a user namespace's),
 * with the environment the build-pod webhook gives the builder's pod, pushing to a real distribution
 * registry on loopback; nodes read it through a second registry in pull-through mode, as each node's
 * proxy does; the controller overlay reads the port back and copies a `deis pull` image from a third,
 * over TLS. One shared setup: every build here costs about a second.
 */
describe("a Dockerfile build and the controller's image client, with buildah and distribution on loopback", function () {
    this.timeout(60000);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-build-"));
    const registries: ChildProcess[] = [];
    let stack: string;
    let proxy: string;
    let pub: string;
    let env: NodeJS.ProcessEnv;

    /** Starts distribution on loopback with `extra` YAML; returns host:port once it answers. */
    async function registry(name: string, extra: string): Promise<string> {
        const { address, child } = await serveRegistry(work, name, extra);
        registries.push(child);
        return address;
    }

    const buildah = (...args: string[]) =>
        execFileSync("buildah", ["--storage-driver", "vfs", ...args], { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

    /** The build container's environment as the webhook writes it, pointed at this machine's registry and workspace. */
    function buildEnv(workspace: string): NodeJS.ProcessEnv {
        const { pod } = webhook(builderPod());
        const podEnv = Object.fromEntries(pod.spec.containers[0].env.map((e: any) => [e.name, e.value]));
        return { ...env, ...podEnv, REGISTRY: stack, WORKSPACE: workspace, HOME: work, CONTAINERS_REGISTRIES_CONF: path.join(work, "registries.conf") };
    }

    /** Runs dockerfile-build.sh on a source tree, as the build container does. */
    function build(files: Record<string, string>, failWait = "0") {
        const workspace = fs.mkdtempSync(path.join(work, "ws-"));
        const source = path.join(workspace, "source");
        fs.mkdirSync(source);
        for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(source, name), text);
        execFileSync("tar", ["-czf", path.join(workspace, "app.tgz"), "-C", source, "."]);
        const started = Date.now();
        const result = spawnSync("sh", [SCRIPT], { env: { ...buildEnv(workspace), FAIL_WAIT_SECONDS: failWait }, encoding: "utf8" });
        return { status: result.status, log: result.stdout + result.stderr, seconds: (Date.now() - started) / 1000 };
    }

    /** The controller overlay, called as api/models/release.py calls it, with the controller's environment. */
    const client = (fn: string, ...args: unknown[]) => clientVia(proxy, fn, ...args);
    /** The same, reaching the registry at `internal`: its Service in the cluster. */
    const clientVia = (internal: string, fn: string, ...args: unknown[]) =>
        callPython(CLIENT, fn, args, {
            ...process.env,
            DEIS_REGISTRY_SERVICE_HOST: "127.0.0.1",
            DEIS_REGISTRY_SERVICE_PORT: "5555",
            // The controller reaches the registry through its Service; reads here go through a node's proxy.
            DEIS_REGISTRY_INTERNAL_URL: `http://${internal}`,
            SSL_CERT_FILE: path.join(work, "public.crt"),
        });

    /** A file of an image layer in the stack's registry. */
    async function fileInLayer(repository: string, tag: string, file: string): Promise<string> {
        const manifest = await (
            await fetch(`http://${stack}/v2/${repository}/manifests/${tag}`, { headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" } })
        ).json();
        const top = manifest.layers[manifest.layers.length - 1].digest;
        const blob = path.join(work, "layer.tgz");
        fs.writeFileSync(blob, Buffer.from(await (await fetch(`http://${stack}/v2/${repository}/blobs/${top}`)).arrayBuffer()));
        return execFileSync("tar", ["-xzOf", blob, file], { encoding: "utf8" });
    }

    before(async function () {
        const missing = TOOLS.filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
        if (missing.length > 0) {
            if (process.env.CI === "true") throw new Error(`missing ${missing.join(", ")}: .ci/run installs them (apt-get install buildah docker-registry)`);
            console.warn(`skipping the real build: missing ${missing.join(", ")} (apt-get install buildah docker-registry)`);
            this.skip();
        }
        fs.writeFileSync(path.join(work, "storage.conf"), `[storage]\ndriver = "vfs"\nrunroot = "${work}/run"\ngraphroot = "${work}/graph"\n`);
        env = { ...process.env, CONTAINERS_STORAGE_CONF: path.join(work, "storage.conf"), STORAGE_DRIVER: "vfs", BUILDAH_ISOLATION: "chroot" };
        selfSignedCertificate(work, "public", "127.0.0.1", "IP:127.0.0.1");
        stack = await registry("stack", "");
        proxy = await registry("proxy", `proxy:\n  remoteurl: http://${stack}\n`);
        pub = await registry("public", `  tls:\n    certificate: ${work}/public.crt\n    key: ${work}/public.key\n`);
        // The chart's registries.conf, with this machine's registries as the chart adds the stack's.
        const conf = fs.readFileSync(path.join(FILES, "build", "registries.conf"), "utf8");
        fs.writeFileSync(path.join(work, "registries.conf"), `${conf}\n[[registry]]\nlocation = "${stack}"\ninsecure = true\n`);
        // A base image the test makes: the machine's dash and its C library, no more.
        const container = buildah("from", "scratch");
        const root = buildah("mount", container);
        for (const [from, to] of [
            ["/bin/dash", "bin/sh"],
            ["/lib/x86_64-linux-gnu/libc.so.6", "lib/x86_64-linux-gnu/libc.so.6"],
            ["/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"],
        ]) {
            fs.mkdirSync(path.dirname(path.join(root, to)), { recursive: true });
            fs.copyFileSync(from, path.join(root, to));
        }
        fs.chmodSync(path.join(root, "bin/sh"), 0o755);
        buildah("commit", "--format", "docker", container, `${stack}/base:1`);
        buildah("push", "--tls-verify=false", `${stack}/base:1`);
        // A public image for `deis pull`, exposing 9090.
        buildah("config", "--port", "9090/tcp", container);
        buildah("commit", "--format", "docker", container, `${pub}/library/web:1.0`);
        buildah("push", "--tls-verify=false", `${pub}/library/web:1.0`);
    });

    after(() => {
        for (const child of registries) child.kill();
        fs.rmSync(work, { recursive: true, force: true });
    });

    it("builds a Dockerfile with RUN and a build argument, and pushes <app>:git-<sha> where the nodes pull it", async () => {
        const result = build({
            Dockerfile: `FROM ${stack}/base:1\nARG GREETING\nRUN echo "greeting=$GREETING" > /greeting\nEXPOSE 8080\nCMD ["/bin/sh"]\n`,
        });
        assert.equal(result.status, 0, result.log);
        assert.match(result.log, /STEP 3\/5: RUN echo "greeting=\$GREETING" > \/greeting/);
        assert.match(result.log, /Pushed myapp:git-1a2b3c4d$/m);
        assert.ok(result.seconds < 20, `${result.seconds} s`);
        assert.equal(
            await fileInLayer("myapp", "git-1a2b3c4d", "greeting"),
            "greeting=hello from config\n",
            "the app's config reached RUN as a build argument",
        );
        // Through a node's proxy, as containerd pulls 127.0.0.1:5555/myapp:git-1a2b3c4d.
        const viaProxy = await fetch(`http://${proxy}/v2/myapp/manifests/git-1a2b3c4d`, {
            headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" },
        });
        assert.equal(viaProxy.status, 200);
    });

    it("reads the built image's port as the controller does, without a Docker socket", () => {
        assert.deepEqual(client("get_port", "127.0.0.1:5555/myapp:git-1a2b3c4d", true), { result: 8080 });
        assert.deepEqual(client("get_port", "127.0.0.1:5555/base:1", true), { result: null }, "no EXPOSE: no port, and the controller asks for one");
        const missing = client("get_port", "127.0.0.1:5555/nothing:git-00000000", true);
        assert.equal(missing.raised, "RegistryException");
        assert.match(missing.str!, /^Could not inspect image 127\.0\.0\.1:5555\/nothing:git-00000000: 404/);
    });

    it("fails the push with the build's own error and exit code, after the wait that lets the log reach git push", () => {
        const result = build({ Dockerfile: `FROM ${stack}/base:1\nRUN echo about to fail && exit 7\n` }, "1");
        assert.equal(result.status, 7, result.log);
        assert.match(result.log, /^about to fail$/m);
        assert.match(result.log, /dockerfile build: the build failed with exit code 7$/m);
        assert.ok(result.seconds >= 1, "it waits before exiting");
        const noDockerfile = build({ "README.md": "hi\n" });
        assert.equal(noDockerfile.status, 2);
        assert.match(noDockerfile.log, /no Dockerfile at the root of the pushed tree/);
        assert.match(fs.readFileSync(SCRIPT, "utf8"), /sleep "\$\{FAIL_WAIT_SECONDS:-3\}"/, "3 s in the pod, as dockerbuilder waited");
    });

    it("copies a public image into the stack's registry for deis pull, and reads its port there", async () => {
        assert.deepEqual(clientVia(stack, "publish_release", `${pub}/library/web:1.0`, "127.0.0.1:5555/myapp:v2", false, null), { result: null });
        assert.deepEqual(client("get_port", "127.0.0.1:5555/myapp:v2", false, null), { result: 9090 });
        const refused = clientVia(stack, "publish_release", `${pub}/deis/controller:1.0`, "127.0.0.1:5555/myapp:v3", false, null);
        assert.match(refused.str!, /reserved by Deis/);
        const absent = clientVia(stack, "publish_release", `${pub}/library/absent:1.0`, "127.0.0.1:5555/myapp:v4", false, null);
        assert.equal(absent.raised, "RegistryException");
        assert.match(absent.str!, /^Could not copy image 127\.0\.0\.1:\d+\/library\/absent:1\.0: 404/);
    });
});
