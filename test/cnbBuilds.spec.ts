import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { UPSTREAM } from "../catalog";
import { helmTemplateWith, sha256 } from "../offline/helm";
import { ROOT, sharedRun } from "../offline/harness";
import { find, K8sObject, parseManifest } from "../offline/manifests";
import { helmReleases } from "../offline/renderReleases";

const CHART = path.join(ROOT, "charts", "hephy-workflow");
const FILES = path.join(CHART, "files");
const HARNESS = path.join(ROOT, "test", "overlay", "cnb_harness.py");
const CONTROLLER = path.join(ROOT, "offline", "controller", "controller-v2.22.0-models-scheduler.tar.gz");
/** offline/controller/README.md: `git archive` of teamhephy/controller tag v2.22.0, as it says. */
const CONTROLLER_SHA256 = "72e0d7bdc1410f248721ad1134fb030c4f778a4cd80e807ac7bc522ad69ef4b5";

const CNB_IMAGE = "127.0.0.1:5555/myapp:git-1f2e3d4c";
const SLUGRUNNER = "docker.io/hephy/slugrunner:v2.7.0";
const SLUG_ENV = ["SLUG_URL", "BUILDER_STORAGE", "DEIS_MINIO_SERVICE_HOST", "DEIS_MINIO_SERVICE_PORT"];

interface Write {
    method: string;
    path: string;
    body: any;
}
interface Scenario {
    command: string;
    result: any;
    error: string | null;
    writes: Write[];
}

/** Runs the v2.22.0 controller's models and scheduler under python3, with or without files/cnb. */
function runController(withExtension: boolean): Map<string, Scenario> {
    const args = [HARNESS, CONTROLLER, FILES, ...(withExtension ? [] : ["--without-extension"])];
    const { scenarios } = JSON.parse(execFileSync("python3", args, { encoding: "utf8" })) as { scenarios: Scenario[] };
    return new Map(scenarios.map((s) => [s.command, s]));
}

/** The pod template a command wrote for `<app>-<type>`, created or updated. */
function template(scenario: Scenario, type: string): any {
    const write = scenario.writes.find(
        (w) =>
            (w.method === "PUT" && w.path.endsWith(`/deployments/myapp-${type}`)) ||
            (w.method === "POST" && w.path.endsWith("/deployments") && w.body.metadata.name === `myapp-${type}`),
    );
    assert.ok(write, `${scenario.command} wrote Deployment myapp-${type}: ${scenario.writes.map((w) => `${w.method} ${w.path}`).join(", ")}`);
    return write.body.spec.template;
}

const envNames = (container: any): string[] => container.env.map((e: any) => e.name);

describe("buildpack apps run from the image their CNB build pushed (charts/hephy-workflow/files/cnb), in the v2.22.0 controller's own code", () => {
    let withCnb: Map<string, Scenario>;
    let upstream: Map<string, Scenario>;
    const step = (command: string): Scenario => {
        const scenario = withCnb.get(command);
        assert.ok(scenario, command);
        assert.equal(scenario.error, null, `${command}: ${scenario.error}`);
        return scenario;
    };

    before(function () {
        this.timeout(20000);
        assert.equal(sha256(CONTROLLER), CONTROLLER_SHA256, "the controller's files are the tag's, unmodified");
        withCnb = runController(true);
        upstream = runController(false);
    });

    it("records a push the builder reports as a slug as the image the CNB build pushed, and deploys it with the Procfile's web type", () => {
        const push = step("git push (buildpack app)");
        assert.deepEqual(push.result, { image: CNB_IMAGE, type: "buildpack", version: 3 });
        const pod = template(push, "web");
        const [container] = pod.spec.containers;
        assert.equal(container.image, CNB_IMAGE);
        assert.deepEqual(container.command, ["/cnb/process/web"]);
        assert.equal(container.args, undefined);
        assert.equal(container.name, "myapp-web");
        assert.deepEqual(
            SLUG_ENV.filter((name) => envNames(container).includes(name)),
            [],
            "no slug to download, no object store address",
        );
        assert.ok(envNames(container).includes("PORT"));
        assert.equal(pod.spec.volumes, undefined, "no object store keys in the app's pods");
        assert.deepEqual(container.volumeMounts, []);
        assert.deepEqual(container.readinessProbe.tcpSocket, { port: 5000 }, "ready when the app listens on PORT");
    });

    it("keeps the labels and container name deis logs and the routes read, as slugrunner's pods had them", () => {
        const slug = template(step("git push (slug, before the upgrade)"), "web");
        const cnb = template(step("git push (buildpack app)"), "web");
        assert.deepEqual(Object.keys(cnb.metadata.labels).sort(), Object.keys(slug.metadata.labels).sort());
        assert.deepEqual({ ...cnb.metadata.labels, version: "" }, { ...slug.metadata.labels, version: "" });
        assert.equal(cnb.spec.containers[0].name, slug.spec.containers[0].name);
    });

    it("deis scale web=2 worker=1: scales web and creates worker as /cnb/process/worker from the same image", () => {
        const scale = step("deis scale web=2 worker=1");
        const replicas = scale.writes.find((w) => w.path.endsWith("/deployments/myapp-web/scale"));
        assert.equal(replicas?.body.spec.replicas, 2);
        const worker = scale.writes.find((w) => w.method === "POST" && w.path.endsWith("/deployments"));
        assert.equal(worker?.body.metadata.name, "myapp-worker");
        assert.equal(worker.body.spec.replicas, 1);
        const [container] = worker.body.spec.template.spec.containers;
        assert.equal(container.image, CNB_IMAGE);
        assert.deepEqual(container.command, ["/cnb/process/worker"]);
        assert.equal(container.readinessProbe, undefined, "a worker is not routed");
    });

    it("deis config:set: the new release's value reaches both process types at run time, from the release's Secret", () => {
        const set = step("deis config:set GREETING=hello");
        const secret = set.writes.find((w) => w.method === "POST" && w.path.endsWith("/secrets"));
        assert.equal(secret?.body.metadata.name, "myapp-v4-env");
        assert.equal(Buffer.from(secret.body.data.greeting, "base64").toString(), "hello");
        for (const type of ["web", "worker"]) {
            const [container] = template(set, type).spec.containers;
            assert.equal(container.image, CNB_IMAGE, type);
            const greeting = container.env.find((e: any) => e.name === "GREETING");
            assert.deepEqual(greeting?.valueFrom.secretKeyRef, { name: "myapp-v4-env", key: "greeting" }, type);
        }
    });

    it("deis healthchecks:set: the app's own probe replaces the default, on PORT", () => {
        const [container] = template(step("deis healthchecks:set liveness httpGet /healthz"), "web").spec.containers;
        assert.deepEqual(container.livenessProbe.httpGet, { path: "/healthz", port: 5000 });
        assert.equal(container.readinessProbe, undefined);
    });

    it("deis run: the command runs through the CNB launcher in the app's image, and its output and exit code come back", () => {
        const run = step("deis run 'python manage.py migrate'");
        assert.deepEqual(run.result, [0, "ran ['/cnb/lifecycle/launcher'] ['python manage.py migrate']\n"]);
        const pod = run.writes.find((w) => w.method === "POST" && w.path.endsWith("/pods"))!.body;
        const [container] = pod.spec.containers;
        assert.equal(container.image, CNB_IMAGE);
        assert.deepEqual(container.command, ["/cnb/lifecycle/launcher"]);
        assert.deepEqual(container.args, ["python manage.py migrate"], "one argument: the launcher runs it as a bash script");
        assert.equal(pod.spec.restartPolicy, "Never");
        assert.equal(pod.spec.volumes, undefined);
        assert.ok(run.writes.some((w) => w.method === "DELETE" && w.path === `/api/v1/namespaces/myapp/pods/${pod.metadata.name}`));
    });

    it("deis releases:rollback to a CNB release deploys its image with its config again", () => {
        const rollback = step("deis releases:rollback v4");
        assert.deepEqual(rollback.result, { version: 6 });
        for (const type of ["web", "worker"]) {
            const [container] = template(rollback, type).spec.containers;
            assert.equal(container.image, CNB_IMAGE);
            assert.deepEqual(container.command, [`/cnb/process/${type}`]);
            assert.ok(envNames(container).includes("GREETING"));
        }
    });

    it("slug releases from before the upgrade keep running: the controller's restart leaves them, and a rollback to one runs slugrunner", () => {
        const before = template(step("git push (slug, before the upgrade)"), "web");
        assert.deepEqual(before, template(upstream.get("git push (slug, before the upgrade)")!, "web"), "made as the image's controller makes it");
        assert.deepEqual(
            step("controller start after the upgrade").writes.filter((w) => w.path.includes("/deployments")),
            [],
            "the running slug Deployment is left as it is",
        );
        const rollback = step("deis releases:rollback v2");
        assert.deepEqual(rollback.result, { version: 7 });
        const pod = template(rollback, "web");
        const [container] = pod.spec.containers;
        assert.equal(container.image, SLUGRUNNER);
        assert.deepEqual([container.command, container.args], [["/runner/init"], ["start", "web"]]);
        assert.ok(SLUG_ENV.every((name) => envNames(container).includes(name)));
        assert.equal(pod.spec.volumes[0].secret.secretName, "objectstorage-keyfile");
        const run = step("deis run 'ls' (slug release)");
        assert.deepEqual(run.result, [0, "ran ['/runner/init'] ['ls']\n"]);
    });

    it("leaves Dockerfile builds to the image's scheduler", () => {
        const push = step("git push (Dockerfile app)");
        assert.deepEqual(push.result, { image: "myapp", type: "dockerfile", version: 9 });
        assert.deepEqual(template(push, "cmd"), template(upstream.get("git push (Dockerfile app)")!, "cmd"));
    });

    it("without the extension, the same push runs slugrunner with the object key: what the checks above tell apart", () => {
        const push = upstream.get("git push (buildpack app)")!;
        assert.equal(push.result.image, "home/myapp:git-1f2e3d4c/push/slug.tgz");
        const [container] = template(push, "web").spec.containers;
        assert.equal(container.image, SLUGRUNNER);
        assert.deepEqual(upstream.get("deis run 'python manage.py migrate'")!.result, [0, "ran ['/runner/init'] ['python manage.py migrate']\n"]);
    });
});

describe("the chart's wiring of buildpack builds: the build-pod webhook and the controller's extension", () => {
    let objects: K8sObject[];

    before(async function () {
        this.timeout(120000);
        const values = helmReleases(await sharedRun()).find((r) => r.metadata.name === "hephy")!.spec.values;
        objects = parseManifest(
            helmTemplateWith({ chart: CHART, releaseName: "hephy", namespace: "deis", kubeVersion: "1.35.0", values }, { name: "none.yaml", text: "" }),
        );
    });

    it("mounts files/cnb as the package hephy_doks beside the controller's code, in force, and rolls the controller when it changes", () => {
        const pod = find(objects, "Deployment", "deis-controller").spec.template;
        const [controller] = pod.spec.containers;
        const mount = controller.volumeMounts.find((m: any) => m.mountPath === "/app/hephy_doks");
        assert.ok(mount?.readOnly, "mounted read-only at /app/hephy_doks");
        const configMap = find(objects, "ConfigMap", pod.spec.volumes.find((v: any) => v.name === mount.name).configMap.name);
        const files = fs.readdirSync(path.join(FILES, "cnb")).sort();
        assert.deepEqual(files, ["__init__.py", "apps.py", "builds.py", "scheduler.py", "settings.py"], "the package the harness runs, and nothing else");
        assert.deepEqual(Object.keys(configMap.data).sort(), files);
        for (const file of files) {
            assert.equal(configMap.data[file], fs.readFileSync(path.join(FILES, "cnb", file), "utf8"), file);
        }
        assert.match(pod.metadata.annotations["checksum/cnb"], /^[0-9a-f]{64}$/);
        assert.equal(controller.env.find((e: any) => e.name === "DJANGO_SETTINGS_MODULE")?.value, "hephy_doks.settings");
    });

    it("sends the builder's slugbuild pods, and only the builder's build pods, to the webhook, with the pinned builder image and the script", () => {
        const [hook] = find(objects, "MutatingWebhookConfiguration", "hephy-doks-build-pods").webhooks;
        assert.equal(hook.failurePolicy, "Fail", "a webhook that is down fails the build, never a slug build in its place");
        const condition = hook.matchConditions.map((c: any) => c.expression).join(" ");
        assert.match(condition, /request\.userInfo\.username == 'system:serviceaccount:deis:deis-builder'/);
        assert.match(condition, /startsWith\('dockerbuild-'\) \|\| object\.metadata\.name\.startsWith\('slugbuild-'\)/);
        const [webhookContainer] = find(objects, "Deployment", "deis-build-admission").spec.template.spec.containers;
        const env = Object.fromEntries(webhookContainer.env.map((e: any) => [e.name, e.value]));
        assert.equal(env.CNB_BUILD_IMAGE, UPSTREAM.workflowBuildImages.cnbBuild);
        assert.equal(env.CNB_SCRIPT_CONFIGMAP, UPSTREAM.workflowCnbBuild.scriptConfigMap);
        const script = find(objects, "ConfigMap", UPSTREAM.workflowCnbBuild.scriptConfigMap);
        assert.equal(script.data["cnb-build.sh"], fs.readFileSync(path.join(FILES, "build", "cnb-build.sh"), "utf8"));
    });

    it("lets buildpack builds push to the registry, as Dockerfile builds do", () => {
        const policy = find(objects, "NetworkPolicy", "deis-registry");
        const selectors = policy.spec.ingress.flatMap((rule: any) => rule.from.map((peer: any) => peer.podSelector));
        assert.ok(
            selectors.some((s: any) => s?.matchExpressions?.some((e: any) => e.key === "hephy-doks/build" && e.operator === "In" && e.values.includes("cnb"))),
            JSON.stringify(selectors),
        );
    });
});
