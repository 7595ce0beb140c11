import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as YAML from "yaml";
import { CATALOG, UPSTREAM } from "../catalog";
import { INGRESS_CLASS } from "../components/releaseValues";
import { helmTemplateWith, sha256 } from "../offline/helm";
import { plain, Run, kubernetesModel, runProgram, sharedRun } from "../offline/harness";
import { find, K8sObject, minors, notServed, parseManifest, podSpecs } from "../offline/manifests";
import { ASSEMBLED_FIXTURES, CHART_FIXTURES, chartArchive, helmReleases, renderRelease } from "../offline/renderReleases";
import { ReleaseKey, RepositoryChart } from "../types";

/** The catalog's releases that helm-operator installs with Helm 3 from a chart repository. */
const V3_RELEASES = (Object.keys(CATALOG) as ReleaseKey[]).filter((key) => CATALOG[key].helmVersion === "v3");

/** Renders a release as `npm run plan` does, for a minor. */
function render(archive: string, spec: any, minor: string): string {
    return renderRelease(spec, archive, `${minor}.0`);
}

describe("the third-party releases, rendered by Helm 3.8.1 (Go 1.17) from their chart archives with the values the program sends", () => {
    let run: Run;
    let work: string;
    /** release key → minor → rendered objects */
    const rendered = new Map<ReleaseKey, Map<string, K8sObject[]>>();
    const specs = new Map<ReleaseKey, any>();
    const archives = new Map<ReleaseKey, string>();

    before(async function () {
        // The first render may fetch and verify the Helm binary.
        this.timeout(120000);
        run = await sharedRun();
        work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-charts-"));
        for (const key of V3_RELEASES) {
            const spec = helmReleases(run).find((r) => r.metadata.name === CATALOG[key].releaseName);
            const found = chartArchive(run, spec.spec, work);
            assert.ok("archive" in found, `${key}: ${"missing" in found ? found.missing : ""}`);
            specs.set(key, spec);
            archives.set(key, found.archive);
            rendered.set(key, new Map(minors(CATALOG[key].kubernetes).map((minor) => [minor, parseManifest(render(found.archive, spec, minor))])));
        }
    });

    after(() => work && fs.rmSync(work, { recursive: true, force: true }));

    it("renders each chart from the published archive, whose sha256 is the catalog's, or else from one assembled from its tag and pinned; each holds the catalog's chart and version", () => {
        assert.deepEqual(V3_RELEASES, ["ingress", "certManager"]);
        const archiveName = (key: ReleaseKey) => `${(CATALOG[key].chart as RepositoryChart).name}-${(CATALOG[key].chart as RepositoryChart).version}.tgz`;
        const published = V3_RELEASES.filter((key) => fs.existsSync(path.join(CHART_FIXTURES, archiveName(key))));
        const assembled = new Map(
            fs
                .readFileSync(path.join(ASSEMBLED_FIXTURES, "SHA256SUMS"), "utf8")
                .trim()
                .split("\n")
                .map((line) => line.split(/\s+/).reverse() as [string, string]),
        );
        assert.deepEqual(
            fs.readdirSync(CHART_FIXTURES).filter((f) => f.endsWith(".tgz")),
            published.map(archiveName),
            "no published archive left over",
        );
        assert.deepEqual(
            fs.readdirSync(ASSEMBLED_FIXTURES).filter((f) => f.endsWith(".tgz")),
            [...assembled.keys()],
            "SHA256SUMS pins every assembled archive",
        );
        for (const key of V3_RELEASES) {
            const chart = CATALOG[key].chart as RepositoryChart;
            assert.match(CATALOG[key].archiveSha256 ?? "", /^[0-9a-f]{64}$/, `${key}: the catalog pins the publisher's digest`);
            // A published archive must be the catalog's; an assembled one (whose catalog digest stays unconfirmed) its pinned sum.
            const expected = published.includes(key) ? CATALOG[key].archiveSha256 : assembled.get(archiveName(key));
            assert.ok(expected, `${key}: a published or an assembled archive of ${archiveName(key)}`);
            assert.equal(sha256(archives.get(key)!), expected, archiveName(key));
            const chartYaml = YAML.parse(execFileSync("tar", ["-xzOf", archives.get(key)!, `${chart.name}/Chart.yaml`], { encoding: "utf8" }));
            assert.deepEqual([chartYaml.name, chartYaml.version, chartYaml.apiVersion], [chart.name, chart.version, "v2"]);
        }
    });

    for (const key of V3_RELEASES) {
        const range = CATALOG[key].kubernetes;
        it(`${key}: renders for every minor of the catalog's range, ${range.min} to ${range.max}, with only APIs the cluster serves`, () => {
            const byMinor = rendered.get(key)!;
            assert.deepEqual([...byMinor.keys()], minors(range));
            for (const [minor, objects] of byMinor) {
                assert.ok(objects.length >= 5, `${minor}: ${objects.length} objects`);
                assert.deepEqual(objects.map((o) => notServed(o, minor)).filter(Boolean), [], `Kubernetes ${minor}`);
            }
        });

        it(`${key}: renders objects valid against the Kubernetes schemas`, async () => {
            for (const object of rendered.get(key)!.get(range.max)!) {
                const model = await kubernetesModel(object.apiVersion, object.kind);
                assert.ok(model, `a schema for ${object.apiVersion} ${object.kind}`);
                new model(object).validate();
            }
        });

        it(`${key}: renders byte-identically twice, so helm-operator's dry-run compare never cuts a revision`, () => {
            assert.equal(render(archives.get(key)!, specs.get(key), range.max), render(archives.get(key)!, specs.get(key), range.max));
        });
    }

    it("asks for no load balancer and no node port: neither chart renders a Service that is not ClusterIP", () => {
        for (const key of V3_RELEASES) {
            for (const [minor, objects] of rendered.get(key)!) {
                const services = objects.filter((o) => o.kind === "Service");
                assert.deepEqual(
                    services.filter((s) => (s.spec.type ?? "ClusterIP") !== "ClusterIP").map((s) => s.metadata.name),
                    [],
                    `${key} ${minor}`,
                );
                assert.deepEqual(
                    services.filter((s) => s.spec.ports.some((p: any) => p.nodePort !== undefined)).map((s) => s.metadata.name),
                    [],
                    `${key} ${minor}`,
                );
            }
        }
        assert.deepEqual(
            rendered
                .get("ingress")!
                .get("1.35")!
                .filter((o) => o.kind === "Service"),
            [],
            "the ingress controller has no Service at all",
        );
    });

    describe("the ingress controller", () => {
        const controller = (minor: string) => {
            const objects = rendered.get("ingress")!.get(minor)!;
            const daemonSets = objects.filter((o) => o.kind === "DaemonSet");
            assert.equal(daemonSets.length, 1);
            assert.equal(objects.filter((o) => o.kind === "Deployment").length, 0, "no Deployment beside the DaemonSet");
            const pod = daemonSets[0].spec.template.spec;
            const container = pod.containers[0];
            return { objects, pod, container, args: container.args as string[] };
        };

        it("labels its pods as the node DNS reconciler selects them, and no other pod of the release", async () => {
            const withToken = await runProgram({ config: { dnsToken: `dop_v1_${"ab".repeat(32)}` } });
            const env = plain(withToken.one("kubernetes:apps/v1:Deployment", "staging-node-dns").inputs).spec.template.spec.containers[0].env;
            const selector = env
                .find((e: any) => e.name === "INGRESS_SELECTOR")
                .value.split(",")
                .map((term: string) => term.split("="));
            const objects = rendered.get("ingress")!.get(CATALOG.ingress.kubernetes.max)!;
            const selected = objects.filter((o) => selector.every(([key, value]: string[]) => o.spec?.template?.metadata?.labels?.[key] === value));
            assert.deepEqual(
                selected.map((o) => o.kind),
                ["DaemonSet"],
            );
        });

        it("runs on every node's host network, bound to 80 and 443 there, with 2222 declared", () => {
            for (const minor of minors(CATALOG.ingress.kubernetes)) {
                const { pod, container, args } = controller(minor);
                assert.equal(pod.hostNetwork, true, minor);
                assert.equal(pod.dnsPolicy, "ClusterFirstWithHostNet");
                assert.ok(args.includes("--http-bind-port=80") && args.includes("--https-bind-port=443"), args.join(" "));
                const ports = container.ports.map((p: any) => `${p.containerPort}/${p.protocol}`);
                for (const port of ["80/TCP", "443/TCP", `${UPSTREAM.builder.port}/TCP`]) {
                    assert.ok(ports.includes(port), `${minor}: ${port} in ${ports.join(", ")}`);
                }
                // The DaemonSet has no node selector or affinity, so every node runs it.
                assert.equal(pod.nodeSelector, undefined);
                assert.equal(pod.affinity, undefined);
            }
        });

        it("closes the debug and admin listeners: no pprof, no metrics server, no controller port, no QUIC", () => {
            const { container, args } = controller(CATALOG.ingress.kubernetes.max);
            assert.ok(!args.includes("--pprof") && !args.includes("--prometheus"), args.join(" "));
            assert.ok(args.includes("--controller-port=0") && args.includes("--disable-quic"), args.join(" "));
            assert.ok(!args.some((a) => a.startsWith("--quic")), args.join(" "));
            const ports = container.ports.map((p: any) => p.containerPort);
            assert.ok(!ports.includes(6060), `6060 in ${ports.join(", ")}`);
            assert.ok(
                container.ports.every((p: any) => p.protocol === "TCP"),
                "no UDP",
            );
            // The stats listener, which binds every address of the node, takes connections from the node itself only.
            const { objects } = controller(CATALOG.ingress.kubernetes.max);
            const config = objects.find((o) => o.kind === "ConfigMap" && args.includes(`--configmap=${o.metadata.namespace}/${o.metadata.name}`))!;
            assert.equal(config.data["stats-config-snippet"], "tcp-request connection reject unless { src 127.0.0.0/8 ::1 }");
        });

        it("runs as the ServiceAccount the admission policy keeps from writing Secrets and CRDs", () => {
            const { objects, pod } = controller(CATALOG.ingress.kubernetes.max);
            assert.equal(pod.serviceAccountName, UPSTREAM.ingressServiceAccount);
            assert.ok(objects.some((o) => o.kind === "ServiceAccount" && o.metadata.name === UPSTREAM.ingressServiceAccount));
            const binding = objects.find((o) => o.kind === "ClusterRoleBinding")!;
            assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: UPSTREAM.ingressServiceAccount, namespace: CATALOG.ingress.namespace }]);
            // What the chart grants and the controller never uses, which the policy takes back.
            const role = objects.find((o) => o.kind === "ClusterRole" && o.metadata.name === binding.roleRef.name)!;
            const secretVerbs = role.rules.filter((r: any) => r.resources.includes("secrets")).flatMap((r: any) => r.verbs);
            assert.ok(secretVerbs.includes("create"), secretVerbs.join(", "));
            const guard = run.resources
                .map((r) => plain(r.inputs))
                .find((o) => o.kind === "ValidatingAdmissionPolicy" && o.metadata.name === "guard-ingress-controller-writes");
            assert.ok(
                guard.spec.matchConditions[0].expression.includes(`system:serviceaccount:${CATALOG.ingress.namespace}:${UPSTREAM.ingressServiceAccount}`),
            );
        });

        it("forwards raw TCP 2222 to the builder Service that the Workflow chart renders", () => {
            const { args } = controller(CATALOG.ingress.kubernetes.max);
            const flag = args.find((a) => a.startsWith("--configmap-tcp-services="))!;
            assert.ok(flag, args.join(" "));
            const [namespace, name] = flag.split("=")[1].split("/");
            const forwards = run.resources.find(
                (r) => r.type === "kubernetes:core/v1:ConfigMap" && plain(r.inputs).metadata.name === name && plain(r.inputs).metadata.namespace === namespace,
            );
            assert.ok(forwards, `the program creates ConfigMap ${namespace}/${name}`);
            const target = plain(forwards.inputs).data[String(UPSTREAM.builder.port)];
            assert.equal(target, `${CATALOG.workflow.namespace}/${UPSTREAM.builder.service}:${UPSTREAM.builder.port}`);
            // The target exists: the program's own Workflow chart renders that Service on that port.
            const hephy = helmReleases(run).find((r) => r.metadata.name === CATALOG.workflow.releaseName);
            const workflowArchive = chartArchive(run, hephy.spec, work);
            assert.ok("archive" in workflowArchive);
            const builder = find(parseManifest(render(workflowArchive.archive, hephy, CATALOG.workflow.kubernetes.max)), "Service", UPSTREAM.builder.service);
            assert.equal(hephy.metadata.namespace, target.split("/")[0]);
            assert.ok(builder.spec.ports.some((p: any) => p.port === UPSTREAM.builder.port && (p.protocol ?? "TCP") === "TCP"));
        });

        it("serves the default IngressClass, under the name the ClusterIssuers' HTTP-01 solvers use, to itself", () => {
            const { objects, args } = controller(CATALOG.ingress.kubernetes.max);
            const classes = objects.filter((o) => o.kind === "IngressClass");
            assert.equal(classes.length, 1);
            const [ingressClass] = classes;
            assert.equal(ingressClass.metadata.annotations?.["ingressclass.kubernetes.io/is-default-class"], "true");
            assert.equal(ingressClass.metadata.name, INGRESS_CLASS);
            // The controller takes an Ingress only if its class's controller is haproxy.org/ingress-controller/<--ingress.class>
            // (haproxytech/kubernetes-ingress pkg/store/store.go and documentation/ingressclass.md @ v3.2).
            const flag = args.find((a) => a.startsWith("--ingress.class="))?.split("=")[1];
            assert.equal(flag, ingressClass.metadata.name);
            assert.equal(ingressClass.spec.controller, `haproxy.org/ingress-controller/${flag}`);
            const issuers = run.resources.filter((r) => plain(r.inputs).kind === "ClusterIssuer");
            assert.equal(issuers.length, 2);
            for (const issuer of issuers) {
                assert.deepEqual(plain(issuer.inputs).spec.acme.solvers, [
                    { http01: { ingress: { ingressClassName: ingressClass.metadata.name, serviceType: "ClusterIP" } } },
                ]);
            }
        });

        it("serves the program's default certificate instead of generating one, and redirects HTTPS to 443", () => {
            const { objects, args } = controller(CATALOG.ingress.kubernetes.max);
            assert.deepEqual(
                objects.filter((o) => o.kind === "Secret").map((o) => o.metadata.name),
                [],
                "the chart renders no Secret",
            );
            const [namespace, name] = args
                .find((a) => a.startsWith("--default-ssl-certificate="))!
                .split("=")[1]
                .split("/");
            const secret = run.resources.find((r) => r.type === "kubernetes:core/v1:Secret" && plain(r.inputs).metadata.name === name);
            assert.ok(secret, `the program creates ${name}`);
            assert.equal(plain(secret.inputs).metadata.namespace, namespace);
            assert.equal(plain(secret.inputs).type, "kubernetes.io/tls");
            const config = objects.find((o) => o.kind === "ConfigMap" && args.includes(`--configmap=${o.metadata.namespace}/${o.metadata.name}`));
            assert.ok(config, "the controller's ConfigMap");
            assert.equal(config.data["ssl-redirect-port"], "443");
            // Only Ingresses with TLS redirect; a global ssl-redirect would also redirect cert-manager's HTTP-01 solvers
            // (haproxytech/kubernetes-ingress pkg/annotations/ingress/httpsRedirect.go @ v3.2).
            assert.equal(config.data["ssl-redirect"], undefined);
        });

        it("runs a pinned controller image", () => {
            for (const { owner, spec } of podSpecs(controller(CATALOG.ingress.kubernetes.max).objects)) {
                for (const container of spec.containers) {
                    assert.match(container.image, /^docker\.io\/haproxytech\/kubernetes-ingress:3\.2\.12$/, `${owner} ${container.name}`);
                }
            }
        });
    });

    describe("cert-manager", () => {
        it("asks for CPU and memory for every container, so no pod of it is BestEffort, evicted first", () => {
            const objects = rendered.get("certManager")!.get(CATALOG.certManager.kubernetes.max)!;
            const pods = objects.filter((o) => ["Deployment", "Job"].includes(o.kind));
            assert.deepEqual(pods.map((o) => o.metadata.name).sort(), [
                "cert-manager",
                "cert-manager-cainjector",
                "cert-manager-startupapicheck",
                "cert-manager-webhook",
            ]);
            for (const o of pods) {
                for (const c of o.spec.template.spec.containers) {
                    assert.ok(
                        c.resources?.requests?.cpu && c.resources?.requests?.memory,
                        `${o.kind} ${o.metadata.name}/${c.name}: ${JSON.stringify(c.resources)}`,
                    );
                }
            }
        });

        it("leaves the CRDs to the program and runs its webhook behind a ClusterIP Service", () => {
            const objects = rendered.get("certManager")!.get(CATALOG.certManager.kubernetes.max)!;
            assert.deepEqual(
                objects.filter((o) => o.kind === "CustomResourceDefinition").map((o) => o.metadata.name),
                [],
            );
            const webhook = objects.find((o) => o.kind === "Service" && o.metadata.name.endsWith("webhook"));
            assert.ok(webhook);
            assert.equal(webhook.spec.type, "ClusterIP");
            const deployment = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "cert-manager")!;
            const args: string[] = deployment.spec.template.spec.containers[0].args;
            assert.ok(args.includes("--default-issuer-name=letsencrypt-prod") && args.includes("--default-issuer-kind=ClusterIssuer"), args.join(" "));
        });
    });

    it("fails to render a template that needs a newer Go than helm-operator's Helm, with the engine's error", () => {
        const spec = specs.get("ingress");
        assert.throws(
            () =>
                helmTemplateWith(
                    {
                        chart: archives.get("ingress")!,
                        releaseName: "ingress",
                        namespace: spec.metadata.namespace,
                        kubeVersion: "1.35.0",
                        values: spec.spec.values,
                    },
                    { name: "broken.yaml", text: "{{- range .Values.controller.extraArgs }}{{ break }}{{- end }}\n" },
                ),
            /cannot render .* for Kubernetes .*:\n.*function "break" not defined/s,
        );
    });
});
