import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CATALOG } from "../catalog";
import { WORKFLOW_SECRETS } from "../components/workflowSecrets";
import { WORKFLOW_VOLUME } from "../components/workflowStorage";
import { helmTemplateWith } from "../offline/helm";
import { plain, ROOT, Run, kubernetesModel, sharedRun } from "../offline/harness";
import { find, K8sObject, minors, notServed, parseManifest, podSpecs, removedIn } from "../offline/manifests";
import { chartArchive, helmReleases, renderRelease } from "../offline/renderReleases";
import { httpServer } from "./standIns";

const CHART = path.join(ROOT, "charts", "hephy-workflow");

describe("the project's Workflow chart, rendered by Helm 3.8.1 (Go 1.17) with the values the program sends", () => {
    let run: Run;
    let release: any;
    let values: Record<string, unknown>;
    let archive: string;
    let work: string;
    const rendered = new Map<string, K8sObject[]>();
    const range = CATALOG.workflow.kubernetes;

    before(async function () {
        // The first render may fetch and verify the Helm binary.
        this.timeout(120000);
        run = await sharedRun();
        release = helmReleases(run).find((r) => r.metadata.name === "hephy");
        assert.ok(release, "the program releases Workflow");
        values = release.spec.values;
        // The archive exactly as the in-cluster repository serves it.
        work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-workflow-"));
        const found = chartArchive(run, release.spec, work);
        assert.ok("archive" in found && found.source === "the archive the program serves", JSON.stringify(found));
        archive = found.archive;
        for (const minor of minors(range)) {
            rendered.set(minor, parseManifest(renderRelease(release, archive, `${minor}.0`)));
        }
    });

    after(() => work && fs.rmSync(work, { recursive: true, force: true }));

    it(`renders for every minor of the catalog's range, ${range.min} to ${range.max}, with only APIs those minors serve`, () => {
        assert.deepEqual([...rendered.keys()], minors(range));
        for (const [minor, objects] of rendered) {
            assert.ok(objects.length >= 30, `${minor}: ${objects.length} objects`);
            assert.deepEqual(objects.map((o) => notServed(o, minor)).filter(Boolean), [], `Kubernetes ${minor}`);
        }
    });

    it("knows an API the cluster does not serve when it sees one, so the check above can fail", () => {
        assert.match(notServed({ apiVersion: "monitoring.coreos.com/v1", kind: "ServiceMonitor" }, "1.35")!, /neither a GA built-in API/);
        assert.equal(
            removedIn({ apiVersion: "policy/v1beta1", kind: "PodDisruptionBudget" }, "1.25"),
            "policy/v1beta1 PodDisruptionBudget was removed in 1.25",
        );
        assert.equal(removedIn({ apiVersion: "policy/v1beta1", kind: "PodDisruptionBudget" }, "1.24"), undefined);
        assert.ok(removedIn({ apiVersion: "extensions/v1beta1", kind: "Ingress" }, "1.34"));
    });

    it("renders objects valid against the Kubernetes schemas", async () => {
        for (const object of rendered.get(range.max)!) {
            const model = await kubernetesModel(object.apiVersion, object.kind);
            assert.ok(model, `a schema for ${object.apiVersion} ${object.kind}`);
            new model(object).validate();
        }
    });

    it("renders byte-identically twice, so helm-operator's dry-run compare never cuts a revision", () => {
        const render = () => renderRelease(release, archive, `${range.max}.0`);
        assert.equal(render(), render());
    });

    it("asks for no load balancer and no node port: the builder's SSH is a ClusterIP Service on 2222", () => {
        for (const [minor, objects] of rendered) {
            const services = objects.filter((o) => o.kind === "Service");
            assert.deepEqual(
                services.filter((s) => (s.spec.type ?? "ClusterIP") !== "ClusterIP").map((s) => s.metadata.name),
                [],
                minor,
            );
            assert.deepEqual(
                services.filter((s) => s.spec.ports.some((p: any) => p.nodePort !== undefined)).map((s) => s.metadata.name),
                [],
                minor,
            );
            const builder = find(objects, "Service", "deis-builder");
            assert.deepEqual(
                builder.spec.ports.map((p: any) => [p.port, p.protocol ?? "TCP"]),
                [[2222, "TCP"]],
            );
            const sshPort = builder.spec.ports[0].targetPort;
            const builderPod = find(objects, "Deployment", "deis-builder").spec.template.spec;
            assert.ok(
                builderPod.containers[0].ports.some((p: any) => p.containerPort === sshPort || p.name === sshPort),
                "2222 reaches the builder's SSH port",
            );
        }
    });

    it("runs the controller in native-ingress mode with the networking/v1 ingress client mounted over the image's", () => {
        const objects = rendered.get(range.max)!;
        const pod = find(objects, "Deployment", "deis-controller").spec.template.spec;
        const [controller] = pod.containers;
        const env = Object.fromEntries(controller.env.map((e: any) => [e.name, e.value]));
        assert.equal(env.EXPERIMENTAL_NATIVE_INGRESS, "true");
        assert.equal(env.EXPERIMENTAL_NATIVE_INGRESS_HOSTNAME, "staging.hephy-demo.net");
        const mount = controller.volumeMounts.find((m: any) => m.mountPath === "/app/scheduler/resources/ingress.py");
        assert.ok(mount, "the overlay is mounted at the module's path");
        assert.equal(mount.subPath, "ingress.py");
        const volume = pod.volumes.find((v: any) => v.name === mount.name);
        const overlay = find(objects, "ConfigMap", volume.configMap.name);
        assert.equal(overlay.data["ingress.py"], fs.readFileSync(path.join(CHART, "files", "ingress.py"), "utf8"));
    });

    it("grants the builder no cluster-wide Secret access: its Role reads only registry-secret", () => {
        const objects = rendered.get(range.max)!;
        const clusterRole = find(objects, "ClusterRole", "deis:deis-builder");
        assert.deepEqual(clusterRole.rules, [{ apiGroups: [""], resources: ["namespaces"], verbs: ["list"] }]);
        const role = find(objects, "Role", "deis-builder");
        const secretRules = role.rules.filter((r: any) => r.resources.includes("secrets"));
        assert.deepEqual(secretRules, [
            { apiGroups: [""], resources: ["secrets"], verbs: ["create", "update", "delete"] },
            { apiGroups: [""], resources: ["secrets"], resourceNames: [WORKFLOW_SECRETS.registry.name], verbs: ["get"] },
        ]);
        assert.ok(!role.rules.some((r: any) => r.verbs.includes("list") && r.resources.includes("secrets")));
    });

    it("runs the route reconciler from the controller's image, with its code from a ConfigMap and the stack's domain and issuer", () => {
        const objects = rendered.get(range.max)!;
        const deployment = find(objects, "Deployment", "deis-routes");
        const pod = deployment.spec.template.spec;
        const controller = find(objects, "Deployment", "deis-controller").spec.template.spec.containers[0];
        assert.equal(pod.containers[0].image, controller.image, "no image the chart did not already pull");
        assert.equal(pod.serviceAccountName, "deis-routes");
        assert.deepEqual(pod.containers[0].command, ["python", "/opt/hephy-doks/routes/routes.py"]);
        const env = Object.fromEntries(pod.containers[0].env.map((e: any) => [e.name, e.value]));
        assert.deepEqual(env, {
            PLATFORM_DOMAIN: "staging.hephy-demo.net",
            CLUSTER_ISSUER: "letsencrypt-prod",
            RESYNC_SECONDS: "300",
            PYTHONDONTWRITEBYTECODE: "1",
        });
        const code = find(objects, "ConfigMap", pod.volumes[0].configMap.name);
        assert.equal(code.data["routes.py"], fs.readFileSync(path.join(CHART, "files", "routes", "routes.py"), "utf8"));
        assert.equal(code.data["kubeclient.py"], fs.readFileSync(path.join(CHART, "files", "lib", "kubeclient.py"), "utf8"), "the shared client, beside it");
        assert.equal(deployment.spec.strategy.type, "Recreate", "one writer at a time");
    });

    it("probes nsqd and the logger from inside their containers, so their HTTP ports stay closed to the node, and the probes pass", async () => {
        const objects = rendered.get(range.max)!;
        const probes = [
            { kind: "StatefulSet", name: "deis-nsqd", port: 4151, path: "/ping" },
            { kind: "Deployment", name: "deis-logger", port: 8088, path: "/healthz" },
        ];
        for (const { kind, name, port, path: probePath } of probes) {
            const { livenessProbe, readinessProbe } = find(objects, kind, name).spec.template.spec.containers[0];
            assert.deepEqual(livenessProbe.exec, readinessProbe.exec, name);
            assert.equal(livenessProbe.httpGet, undefined, `${name}: no probe from the node`);
            const command: string[] = livenessProbe.exec.command;
            assert.ok(command.join(" ").includes(`127.0.0.1:${port}`) || command.join(" ").includes(`127.0.0.1/${port}`), command.join(" "));
            // The command as the container runs it, pointed at a loopback server answering as nsqd or the
            // logger does (GNU wget stands in for busybox's, with the same flags): 200 passes, 503 and silence fail.
            for (const [answer, passes] of [
                [200, true],
                [503, false],
                [0, false],
            ] as const) {
                const seen: string[] = [];
                const server = await httpServer((request, response) => {
                    seen.push(`${request.method} ${request.url}`);
                    response.writeHead(answer as number).end("OK");
                });
                const target = server.port;
                if (answer === 0) await server.close();
                const local = command.map((part) =>
                    part.replace(`127.0.0.1:${port}`, `127.0.0.1:${target}`).replace(`127.0.0.1/${port}`, `127.0.0.1/${target}`),
                );
                const status = await new Promise<number | null>((resolve) =>
                    spawn(local[0], local.slice(1), { stdio: "ignore", timeout: 5000 }).on("close", resolve),
                );
                if (answer !== 0) await server.close();
                assert.equal(status === 0, passes, `${name} probe against ${answer || "nothing"}: ${status}`);
                if (answer !== 0) assert.deepEqual(seen, [`GET ${probePath}`]);
            }
        }
    });

    it("grants the route reconciler Services to read and Ingresses to write, and no Secret", () => {
        const objects = rendered.get(range.max)!;
        assert.deepEqual(find(objects, "ClusterRole", "deis:deis-routes").rules, [
            { apiGroups: [""], resources: ["services"], verbs: ["list", "watch"] },
            { apiGroups: ["networking.k8s.io"], resources: ["ingresses"], verbs: ["list", "watch", "create", "update", "delete"] },
        ]);
        const bound = objects.filter((o) => /RoleBinding$/.test(o.kind) && o.subjects?.some((s: any) => s.name === "deis-routes"));
        assert.deepEqual(
            bound.map((b) => `${b.kind} ${b.roleRef.kind}/${b.roleRef.name}`),
            ["ClusterRoleBinding ClusterRole/deis:deis-routes"],
            "bound to nothing else",
        );
    });

    it("grants the controller networking.k8s.io Ingresses", () => {
        const role = find(rendered.get(range.max)!, "ClusterRole", "deis:deis-controller");
        const rule = role.rules.find((r: any) => r.apiGroups.includes("networking.k8s.io") && r.resources.includes("ingresses"));
        assert.ok(rule, "a rule for networking.k8s.io ingresses");
        for (const verb of ["get", "list", "create", "delete"]) {
            assert.ok(rule.verbs.includes(verb), verb);
        }
    });

    it("serves the controller API through a networking/v1 Ingress on the platform domain, with a Let's Encrypt certificate", () => {
        const ingress = find(rendered.get(range.max)!, "Ingress", "controller-api-server-ingress-http");
        assert.equal(ingress.apiVersion, "networking.k8s.io/v1");
        assert.equal(ingress.metadata.annotations?.["cert-manager.io/cluster-issuer"], "letsencrypt-prod");
        assert.deepEqual(ingress.spec.rules, [
            {
                host: "deis.staging.hephy-demo.net",
                http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "deis-controller", port: { number: 80 } } } }] },
            },
        ]);
        assert.deepEqual(ingress.spec.tls, [{ hosts: ["deis.staging.hephy-demo.net"], secretName: "controller-api-server-tls" }]);
        assert.equal(ingress.spec.ingressClassName, undefined, "class-less, like the apps' Ingresses");
    });

    it("keeps minio's data on the claim the program declares, writable by the image's user, with the Secret's credentials", () => {
        const objects = rendered.get(range.max)!;
        assert.deepEqual(
            objects.filter((o) => o.kind === "PersistentVolumeClaim").map((o) => o.metadata.name),
            [],
            "the claim is the program's, not the release's",
        );
        const claimName = WORKFLOW_VOLUME.claim;
        assert.ok(run.ofType("kubernetes:core/v1:PersistentVolumeClaim").some((c) => plain(c.inputs).metadata.name === claimName));
        const minio = find(objects, "Deployment", "deis-minio").spec.template.spec;
        const volume = minio.volumes.find((v: any) => v.persistentVolumeClaim);
        assert.deepEqual(volume.persistentVolumeClaim, { claimName });
        const [container] = minio.containers;
        const mount = container.volumeMounts.find((m: any) => m.name === volume.name);
        assert.equal(mount.subPath, undefined);
        assert.deepEqual(container.args, [`server ${mount.mountPath}`], "minio serves the volume's root");
        assert.deepEqual(minio.securityContext, { fsGroup: 1000, fsGroupChangePolicy: "OnRootMismatch" });
        const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.valueFrom?.secretKeyRef ?? e.value]));
        assert.deepEqual(
            [env.MINIO_ACCESS_KEY, env.MINIO_SECRET_KEY],
            [
                { name: "minio-user", key: "accesskey" },
                { name: "minio-user", key: "secretkey" },
            ],
        );
        assert.equal(find(objects, "Deployment", "deis-minio").spec.strategy.type, "Recreate", "a ReadWriteOnce volume is never mounted twice");
    });

    it("refuses to render without the claim", () => {
        const { minio: _, ...withoutClaim } = values as any;
        assert.throws(
            () =>
                helmTemplateWith(
                    { chart: CHART, releaseName: "hephy", namespace: "deis", kubeVersion: `${range.max}.0`, values: withoutClaim },
                    { name: "none.yaml", text: "" },
                ),
            /minio\.data_claim is required/,
        );
    });

    it("guards the database's first start: its scripts run between the image's, in the order the entrypoint sources them", () => {
        const objects = rendered.get(range.max)!;
        const database = find(objects, "Deployment", "deis-database").spec.template;
        const [container] = database.spec.containers;
        const guards = find(objects, "ConfigMap", "deis-database-init-guards");
        const files = fs.readdirSync(path.join(CHART, "files", "database")).sort();
        assert.deepEqual(Object.keys(guards.data).sort(), files);
        for (const file of files) {
            assert.equal(guards.data[file], fs.readFileSync(path.join(CHART, "files", "database", file), "utf8"), file);
        }
        const initdb = container.volumeMounts.filter((m: any) => m.mountPath.startsWith("/docker-entrypoint-initdb.d/"));
        assert.deepEqual(
            initdb.map((m: any) => m.subPath),
            files.filter((f) => f.endsWith(".sh")),
        );
        // teamhephy/postgres v2.7.6 rootfs/docker-entrypoint-initdb.d, sourced by `for f in /docker-entrypoint-initdb.d/*`.
        const image = ["001_setup_envdir.sh", "002_create_bucket.sh", "003_restore_from_backup.sh", "004_run_backups.sh"];
        const sourced = [...image, ...initdb.map((m: any) => path.posix.basename(m.mountPath))].sort();
        assert.deepEqual(sourced, [
            "001_setup_envdir.sh",
            "001_wait_for_object_storage.sh",
            "002_create_bucket.sh",
            "003_restore_from_backup.sh",
            "003_verify_restore.sh",
            "003_x_back_up_now.sh",
            "004_run_backups.sh",
        ]);
        assert.deepEqual(
            [...sourced].sort((a, b) => a.localeCompare(b, "en")),
            sourced,
            "the same order under a locale's collation",
        );
        const settings = container.volumeMounts.find((m: any) => m.mountPath === "/etc/hephy-doks");
        assert.equal(database.spec.volumes.find((v: any) => v.name === settings.name).configMap.name, guards.metadata.name);
        const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
        assert.equal(env.OBJECT_STORAGE_WAIT_SECONDS, "300");
        // The guards' boto settings are the mounted file the environment names.
        assert.equal(env.GUARD_BOTO_CONFIG, `${settings.mountPath}/boto.cfg`);
        assert.ok(Object.hasOwn(guards.data, "boto.cfg"));
        assert.ok(
            !container.volumeMounts.some((m: any) => m.mountPath.startsWith("/var/lib/postgresql")),
            "$PGDATA stays in the container, so the first-start scripts run at every start",
        );
        assert.ok(database.spec.terminationGracePeriodSeconds >= 120, "room for the preStop base backup");
        assert.match(database.metadata.annotations["checksum/init-guards"], /^[0-9a-f]{64}$/);
    });

    it("starts the controller through the project's start, which ensures the admin from its Secret before the API serves", () => {
        const objects = rendered.get(range.max)!;
        const pod = find(objects, "Deployment", "deis-controller").spec.template;
        const [controller] = pod.spec.containers;
        assert.deepEqual(controller.command, ["/bin/bash", "/opt/hephy-doks/start.sh", "/app", "300"]);
        const bootstrap = find(objects, "ConfigMap", "deis-controller-bootstrap");
        for (const file of ["start.sh", "ensure_admin.py"]) {
            assert.equal(bootstrap.data[file], fs.readFileSync(path.join(CHART, "files", "controller", file), "utf8"), file);
        }
        const mounted = (mountPath: string) =>
            pod.spec.volumes.find((v: any) => v.name === controller.volumeMounts.find((m: any) => m.mountPath === mountPath).name);
        assert.equal(mounted("/opt/hephy-doks").configMap.name, bootstrap.metadata.name);
        const env = Object.fromEntries(controller.env.map((e: any) => [e.name, e.value]));
        assert.equal(mounted(env.ADMIN_CREDENTIALS_DIR).secret.secretName, WORKFLOW_SECRETS.admin.name);
        assert.equal(env.REGISTRATION_MODE, "admin_only");
        // An app's namespace is its name; the controller would adopt, then delete, any of these.
        assert.deepEqual(env.RESERVED_NAMES.split(","), [
            "deis",
            "deis-builder",
            "deis-workflow-manager",
            "grafana",
            "default",
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "flux",
            "haproxy-ingress",
            "cert-manager",
        ]);
        // The start may wait 300 s for the database before gunicorn listens; the liveness probe must not kill it meanwhile.
        const { periodSeconds, failureThreshold } = controller.startupProbe;
        assert.ok(periodSeconds * failureThreshold >= 300 + 120, `${periodSeconds * failureThreshold} s`);
        assert.equal(controller.startupProbe.httpGet.path, "/healthz");
        assert.match(pod.metadata.annotations["checksum/bootstrap"], /^[0-9a-f]{64}$/);
    });

    it("refuses to render registration open to anyone", () => {
        const open = { ...values, controller: { ...(values.controller as object), registration_mode: "enabled" } };
        assert.throws(
            () =>
                helmTemplateWith(
                    { chart: CHART, releaseName: "hephy", namespace: "deis", kubeVersion: `${range.max}.0`, values: open },
                    { name: "none.yaml", text: "" },
                ),
            /controller\.registration_mode must be admin_only or disabled, got "enabled"/,
        );
    });

    it("gives the controller API upstream's 20-minute server timeout, in the ingress controller's own annotation", () => {
        const ingress = find(rendered.get(range.max)!, "Ingress", "controller-api-server-ingress-http");
        // haproxytech/kubernetes-ingress v3.2 pkg/utils/utils.go ParseTime: ms, s, m, h, d suffixes; bare numbers are milliseconds.
        const timeout = String(ingress.metadata.annotations?.["haproxy.org/timeout-server"]);
        const parsed = /^([0-9]+)(ms|s|m|h|d)?$/.exec(timeout);
        assert.ok(parsed, timeout);
        const seconds = Number(parsed[1]) * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[parsed[2] ?? "ms"]!;
        assert.ok(seconds >= 1200, `${seconds} s`);
    });

    it("renders no Secret, and every Secret it reads is one the program creates, with that key", () => {
        const objects = rendered.get(range.max)!;
        assert.deepEqual(
            objects.filter((o) => o.kind === "Secret").map((o) => o.metadata.name),
            [],
        );
        const created = new Map<string, readonly string[]>(Object.values(WORKFLOW_SECRETS).map((s) => [s.name, s.keys]));
        // cert-manager writes the Secret of each Certificate the chart renders (the build-pod webhook's).
        const issued = objects.filter((o) => o.kind === "Certificate").map((o) => o.spec.secretName);
        assert.deepEqual(issued, ["deis-build-admission-tls"]);
        const references: string[] = [];
        for (const { owner, spec } of podSpecs(objects)) {
            for (const volume of spec.volumes ?? []) {
                if (volume.secret) {
                    references.push(`${owner} volume ${volume.secret.secretName}`);
                    assert.ok(
                        created.has(volume.secret.secretName) || issued.includes(volume.secret.secretName),
                        `${owner} mounts ${volume.secret.secretName}`,
                    );
                }
            }
            for (const container of spec.containers) {
                for (const ref of (container.env ?? []).map((e: any) => e.valueFrom?.secretKeyRef).filter(Boolean)) {
                    references.push(`${owner} env ${ref.name}/${ref.key}`);
                    assert.ok(created.get(ref.name)?.includes(ref.key), `${owner} reads ${ref.name}/${ref.key}`);
                }
            }
        }
        assert.ok(references.length >= 10, references.join("\n"));
        const declared = run.ofType("kubernetes:core/v1:Secret").map((r) => plain(r.inputs).metadata);
        for (const name of created.keys()) {
            assert.ok(
                declared.some((m) => m.name === name && m.namespace === "deis"),
                `the program creates ${name} in deis`,
            );
        }
    });

    it("pins every image by tag or digest and pulls it only when missing", () => {
        for (const { owner, spec } of podSpecs(rendered.get(range.max)!)) {
            for (const container of [...(spec.initContainers ?? []), ...spec.containers]) {
                assert.match(container.image, /(:v?[0-9]+\.[0-9]+\.[0-9]+|@sha256:[0-9a-f]{64})$/, `${owner} ${container.name}`);
                assert.equal(container.imagePullPolicy, "IfNotPresent", `${owner} ${container.name}`);
            }
        }
    });

    it("uses only template functions Tiller 2.17 has", () => {
        const known = new Set(
            fs
                .readFileSync(path.join(ROOT, "test", "fixtures", "helm-v2.17.0-functions.txt"), "utf8")
                .split("\n")
                .filter((l) => l && !l.startsWith("#")),
        );
        const keywords = new Set(["if", "else", "end", "range", "with", "define", "template", "block", "nil", "true", "false"]);
        const used = new Set<string>();
        for (const file of fs.readdirSync(path.join(CHART, "templates"))) {
            const text = fs.readFileSync(path.join(CHART, "templates", file), "utf8");
            for (const [, action] of text.matchAll(/\{\{-?([\s\S]*?)-?\}\}/g)) {
                const code = action.replace(/"(?:[^"\\]|\\.)*"|`[^`]*`|\/\*[\s\S]*?\*\//g, " ");
                for (const [, word] of code.matchAll(/(?<![.$\w])([A-Za-z_]\w*)/g)) {
                    if (!keywords.has(word)) used.add(word);
                }
            }
        }
        assert.ok(used.has("include") && used.has("toYaml"), [...used].join(", "));
        assert.deepEqual(
            [...used].filter((f) => !known.has(f)),
            [],
        );
        assert.ok(!known.has("lookup"), "the list is Helm 2's, without Helm 3's lookup");
    });

    it("fails to render a template that needs a newer Go than helm-operator's Helm, with the engine's error", () => {
        assert.throws(
            () =>
                helmTemplateWith(
                    { chart: CHART, releaseName: "hephy", namespace: "deis", kubeVersion: `${range.max}.0`, values },
                    { name: "broken.yaml", text: "{{- range .Values.global }}{{ break }}{{- end }}\n" },
                ),
            /cannot render .* for Kubernetes .*:\n.*function "break" not defined/s,
        );
    });
});
