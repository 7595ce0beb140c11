import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { UPSTREAM } from "../catalog";
import { ROOT, Run, sharedRun } from "../offline/harness";
import { Admission, AdmissionRequest } from "./admission";
import { freePort, selfSignedCertificate } from "./registryServer";
import { python36Imports } from "./inCluster";
import { admitAll as admitAllOf, BUILDER, builderPod, NAME, podRequest, webhook, WEBHOOK_SETTINGS } from "./buildPods";

const CONTROLLER = "system:serviceaccount:deis:deis-controller";

describe("Dockerfile build pods: the builder's pod, the build-pod webhook, and the admission guards", () => {
    let run: Run;
    let built: any;
    const admitAll = (req: AdmissionRequest): Admission => admitAllOf(run, req);
    const relaxed = (pod: any) => {
        const copy = structuredClone(pod);
        copy.spec.containers[0].securityContext = { ...copy.spec.containers[0].securityContext, seccompProfile: { type: "Unconfined" } };
        return copy;
    };

    before(async () => {
        run = await sharedRun();
        const answer = webhook(builderPod());
        assert.equal(answer.response.allowed, true, JSON.stringify(answer.response));
        built = answer.pod;
    });

    it("leaves the builder's pod, as v2.13.7 makes it, refused: its Docker socket is a host path", () => {
        const { denied } = admitAll(podRequest(BUILDER, "deis", builderPod()));
        assert.ok(
            denied.some((m) => /mount no path of the node/.test(m)),
            denied.join("\n"),
        );
    });

    it("makes it a daemonless build: one container, no host path, no socket, no token, its security context stated", () => {
        const spec = built.spec;
        assert.deepEqual(built.metadata.labels, { heritage: NAME, "hephy-doks/build": "dockerfile" }, "the builder still finds it by heritage");
        assert.equal(built.metadata.name, NAME);
        assert.equal(spec.containers.length, 1, "the builder follows the log of the pod's one container");
        const [build] = spec.containers;
        assert.equal(build.name, "deis-dockerbuilder");
        assert.equal(build.image, UPSTREAM.workflowBuildImages.dockerfileBuild);
        assert.match(build.image, /@sha256:[0-9a-f]{64}$/);
        assert.deepEqual(build.command, UPSTREAM.workflowDockerfileBuild.command);
        assert.deepEqual(build.securityContext, {
            runAsUser: 1000,
            runAsGroup: 1000,
            runAsNonRoot: true,
            allowPrivilegeEscalation: true,
            capabilities: { drop: ["ALL"], add: ["SETGID", "SETUID"] },
            seccompProfile: { type: "Unconfined" },
            appArmorProfile: { type: "Unconfined" },
        });
        assert.equal(spec.restartPolicy, "Never");
        assert.equal(spec.automountServiceAccountToken, false);
        const volumes = JSON.stringify(spec.volumes);
        assert.ok(!/hostPath|docker\.sock|serviceAccountToken/.test(volumes), volumes);
        const everyContainer = [...spec.initContainers, ...spec.containers];
        for (const c of everyContainer) {
            assert.ok(!JSON.stringify(c).includes("docker.sock"), c.name);
            assert.notEqual(c.securityContext?.privileged, true, c.name);
        }
        const env = Object.fromEntries(build.env.map((e: any) => [e.name, e.value]));
        assert.equal(env.IMG_NAME, "myapp:git-1a2b3c4d");
        assert.equal(env.REGISTRY, "deis-registry.deis.svc.cluster.local:5000");
        assert.equal(env.BUILD_ARG_NAMES, "DEIS_DOCKER_BUILD_ARGS_ENABLED GREETING", "every key of DOCKER_BUILD_ARGS, as dockerbuilder passed them all");
        assert.equal(env.GREETING, "hello from config");
        assert.ok(
            !build.volumeMounts.some((m: any) => m.name === "objectstorage-keyfile"),
            "the object store's keys stay out of the container that runs the Dockerfile",
        );
        assert.deepEqual(
            build.volumeMounts.find((m: any) => m.mountPath === UPSTREAM.workflowDockerfileBuild.scriptMount),
            { name: "build-script", mountPath: UPSTREAM.workflowDockerfileBuild.scriptMount, readOnly: true },
        );
        const [fetch] = spec.initContainers;
        assert.equal(fetch.image, "hephy/dockerbuilder:v2.8.3", "the pod's own image fetches the source, with its object store client");
        assert.ok(fetch.volumeMounts.some((m: any) => m.name === "objectstorage-keyfile" && m.readOnly));
        assert.deepEqual(fetch.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
        assert.match(fetch.command[2], /objstorage --storage-type="\$BUILDER_STORAGE" download "\$TAR_PATH" \/workspace\/app\.tgz/);
    });

    it("admits the build pod as the webhook makes it, under every admission policy of the program", () => {
        const result = admitAll(podRequest(BUILDER, "deis", built));
        assert.ok(result.matched);
        assert.deepEqual(result.denied, []);
    });

    it("refuses the same relaxation to every other pod: the controller's apps, slug builds, Workflow's own, an altered build", () => {
        const appPod = {
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "myapp-web-1", labels: { app: "myapp", heritage: "deis" } },
            spec: { containers: [{ name: "myapp-web", image: "127.0.0.1:5555/myapp:git-1a2b3c4d" }] },
        };
        const slugBuild = {
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "slugbuild-myapp-1a2b3c4d-0f1e2d3c", labels: { heritage: "slugbuild-myapp-1a2b3c4d-0f1e2d3c" } },
            spec: { restartPolicy: "Never", containers: [{ name: "deis-slugbuilder", image: "hephy/slugbuilder:v2.8.0" }] },
        };
        const otherImage = structuredClone(built);
        otherImage.spec.containers[0].image = "quay.io/buildah/stable:latest";
        const otherCommand = structuredClone(built);
        otherCommand.spec.containers[0].command = ["/bin/sh", "-c", "cat /proc/1/environ"];
        const rootBuild = structuredClone(built);
        rootBuild.spec.containers[0].securityContext.runAsUser = 0;
        const relaxedInit = structuredClone(built);
        relaxedInit.spec.initContainers[0].securityContext = { appArmorProfile: { type: "Unconfined" } };
        const podLevel = structuredClone(built);
        podLevel.spec.securityContext = { seccompProfile: { type: "Unconfined" } };
        const annotated = {
            ...structuredClone(appPod),
            metadata: { ...appPod.metadata, annotations: { "container.apparmor.security.beta.kubernetes.io/myapp-web": "unconfined" } },
        };
        const cases: [string, AdmissionRequest][] = [
            ["an app pod the controller creates", podRequest(CONTROLLER, "myapp", relaxed(appPod), { heritage: "deis" })],
            [
                "an app pod its ReplicaSet creates",
                podRequest("system:serviceaccount:kube-system:replicaset-controller", "myapp", relaxed(appPod), { heritage: "deis" }),
            ],
            [
                "an app pod's AppArmor annotation",
                podRequest("system:serviceaccount:kube-system:replicaset-controller", "myapp", annotated, { heritage: "deis" }),
            ],
            ["a slug build", podRequest(BUILDER, "deis", relaxed(slugBuild))],
            [
                "a Workflow pod of the chart's",
                podRequest("system:serviceaccount:kube-system:replicaset-controller", "deis", relaxed({ ...appPod, metadata: { name: "deis-controller-x" } })),
            ],
            ["the build with another image", podRequest(BUILDER, "deis", otherImage)],
            ["the build with another command", podRequest(BUILDER, "deis", otherCommand)],
            ["the build as root", podRequest(BUILDER, "deis", rootBuild)],
            ["the build's source fetch", podRequest(BUILDER, "deis", relaxedInit)],
            ["the build, relaxed for the whole pod", podRequest(BUILDER, "deis", podLevel)],
            ["the build, made by the controller", podRequest(CONTROLLER, "deis", built)],
        ];
        for (const [what, req] of cases) {
            const { denied } = admitAll(req);
            assert.ok(
                denied.some((m) => /Unconfined, or an unmasked \/proc, is for Workflow's Dockerfile build container only/.test(m)),
                `${what}: ${denied.join("; ") || "admitted"}`,
            );
        }
        // The guard has teeth only where it matches: the platform's own pods elsewhere (Cilium's agent runs Unconfined) are not its business.
        assert.equal(admitAll(podRequest("system:serviceaccount:kube-system:daemon-set-controller", "kube-system", relaxed(appPod))).denied.length, 0);
    });

    it("refuses what it cannot read as the builder's pod, with the reason, and takes build arguments as names only", () => {
        const twoContainers = builderPod();
        twoContainers.spec.containers.push({ name: "sidecar", image: "busybox" });
        assert.match(webhook(twoContainers).response.status.message, /^hephy-doks build-pod webhook: not a Dockerfile build pod as the builder makes it/);
        const noImageName = builderPod();
        noImageName.spec.containers[0].env = noImageName.spec.containers[0].env.filter((e: any) => e.name !== "IMG_NAME");
        assert.match(webhook(noImageName).response.status.message, /has no IMG_NAME/);
        const badArgs = builderPod();
        badArgs.spec.containers[0].env.find((e: any) => e.name === "DOCKER_BUILD_ARGS").value = '{"A B": "1"}';
        assert.match(webhook(badArgs).response.status.message, /build arguments must be environment variable names, not A B/);
        const noArgs = webhook(builderPod({ GREETING: "hi" })).pod;
        assert.equal(
            noArgs.spec.containers[0].env.find((e: any) => e.name === "BUILD_ARG_NAMES").value,
            "",
            "without DEIS_DOCKER_BUILD_ARGS_ENABLED, no build argument",
        );
    });

    it("serves AdmissionReviews over HTTPS as the API server calls it, and takes a renewed certificate without a restart", async function () {
        this.timeout(30000);
        const work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-webhook-"));
        // Named as cert-manager's Secret mounts them: tls.crt and tls.key.
        const certificate = (name: string) => selfSignedCertificate(work, "tls", name, "DNS:deis-build-admission.deis.svc,IP:127.0.0.1");
        const port = await freePort();
        const first = certificate("first");
        const server = spawn("python3", [path.join(ROOT, "charts", "hephy-workflow", "files", "build", "admission.py")], {
            env: {
                ...process.env,
                PORT: String(port),
                TLS_DIR: work,
                BUILD_IMAGE: WEBHOOK_SETTINGS.image,
                REGISTRY: WEBHOOK_SETTINGS.registry,
                BUILD_SCRIPT_CONFIGMAP: WEBHOOK_SETTINGS.configmap,
                CNB_BUILD_IMAGE: WEBHOOK_SETTINGS.cnb_image,
                CNB_SCRIPT_CONFIGMAP: WEBHOOK_SETTINGS.cnb_configmap,
                PYTHONDONTWRITEBYTECODE: "1",
            },
            stdio: "ignore",
        });
        const call = (method: string, route: string, ca: string, body?: string) =>
            new Promise<{ status: number; body: string; peer: string }>((resolve, reject) => {
                const req = https.request(
                    {
                        host: "127.0.0.1",
                        port,
                        // A fresh TLS session each time: a resumed one shows no peer certificate.
                        agent: false,
                        method,
                        path: route,
                        ca,
                        servername: "deis-build-admission.deis.svc",
                        headers: body ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {},
                    },
                    (res) => {
                        const peer = String((res.socket as any).getPeerCertificate()?.subject?.CN);
                        let text = "";
                        res.on("data", (c) => (text += c));
                        res.on("end", () => resolve({ status: res.statusCode!, body: text, peer }));
                    },
                );
                req.on("error", reject);
                req.end(body);
            });
        try {
            for (let i = 0; ; i++) {
                try {
                    assert.equal((await call("GET", "/healthz", first)).status, 200);
                    break;
                } catch (e) {
                    if (i > 100) throw e;
                    await new Promise((r) => setTimeout(r, 50));
                }
            }
            assert.equal((await call("GET", "/healthz", first)).peer, "first");
            const review = JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "u-7", object: builderPod() } });
            const answer = await call("POST", "/mutate", first, review);
            assert.equal(answer.status, 200);
            const { response } = JSON.parse(answer.body);
            assert.equal(response.uid, "u-7");
            assert.equal(response.allowed, true);
            assert.equal(response.patchType, "JSONPatch");
            assert.equal((await call("POST", "/mutate", first, "{}")).status, 400, "not an AdmissionReview");
            // cert-manager renews the Secret; the mounted files change under the running server.
            await new Promise((r) => setTimeout(r, 20));
            const second = certificate("second");
            assert.equal((await call("GET", "/healthz", second)).peer, "second");
        } finally {
            server.kill();
            fs.rmSync(work, { recursive: true, force: true });
        }
    });

    it("runs, as the controller's overlay does, on the controller image's Python 3.6 with the standard library only", () => {
        const files = path.join(ROOT, "charts", "hephy-workflow", "files");
        assert.deepEqual(python36Imports(path.join(files, "build", "admission.py")), {
            imports: ["base64", "copy", "json", "os", "re", "socketserver", "ssl", "sys"],
            from: ["http.server"],
        });
        assert.deepEqual(python36Imports(path.join(files, "registry", "dockerclient.py")), {
            imports: ["base64", "json", "logging", "os", "re", "urllib.error", "urllib.parse", "urllib.request"],
            from: [],
        });
    });
});
