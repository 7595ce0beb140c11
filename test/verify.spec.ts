import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { Certificate } from "@kubernetes-models/cert-manager/cert-manager.io/v1";
import { DaemonSet, Deployment, ReplicaSet, StatefulSet } from "kubernetes-models/apps/v1";
import { Node, PersistentVolumeClaim, Pod, Secret, Service } from "kubernetes-models/v1";
import { UPSTREAM } from "../catalog";
import { HELM_OPERATOR } from "../components/helmOperator";
import { TILLER } from "../components/tiller";
import { CHECKS, CheckResult } from "../verify/checks";
import { CLUSTER_FACTS, checkRevisions, clusterChecks, compareRevisions, kubeConfig } from "../verify/cluster";
import { checkKubernetesApi, clusterCredential, FRESH_CREDENTIAL_SECONDS } from "../verify/credential";
import { certificateNote, DEFAULT_WATCH_MINUTES, HELP, main, parseOptions, PRODUCTION_ISSUER, pushedApps, retried } from "../verify/main";
import {
    checkCertificate,
    checkControllerHealth,
    checkDns,
    checkHttp01,
    checkSshBanner,
    checkTcp,
    CONTROLLER_HOST,
    FrontDoor,
    frontDoorChecks,
    renewalOverdueDays,
} from "../verify/network";
import { LiveNode } from "../verify/nodes";
import { parseOutputs } from "../verify/outputs";
import { checkPush, DOCKERFILE_SAMPLE_APP, SAMPLE_APP } from "../verify/push";
import { WORKFLOW_HOSTS } from "../workflowAccess";
import { ROOT } from "../offline/harness";
import {
    bannerServer,
    digitalOceanApi,
    dnsServer,
    httpServer,
    httpsServer,
    kubeconfigFor,
    kubernetesApi,
    Listening,
    testPki,
    TestPki,
    tillerServer,
} from "./standIns";

const PLATFORM = "staging.hephy-demo.net";
const CONTROLLER = `${CONTROLLER_HOST}.${PLATFORM}`;
const RECORDED = path.join(ROOT, "test", "fixtures", "verify", "cluster.json");

/** A port nothing listens on: one a server had a moment ago. */
async function closedPort(): Promise<number> {
    const server = await httpServer(() => undefined);
    await server.close();
    return server.port;
}

/** Runs `body` with servers that are closed afterwards, whatever happens. */
async function using<T>(servers: Promise<Listening>[], body: (listening: Listening[]) => Promise<T>): Promise<T> {
    const started = await Promise.all(servers);
    try {
        return await body(started);
    } finally {
        await Promise.all(started.map((s) => s.close()));
    }
}

/** Runs `body` with a stack's outputs written to a file, removed afterwards. */
async function withOutputsFile<T>(outputs: object, body: (file: string) => Promise<T>): Promise<T> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "verify-outputs-"));
    try {
        const file = path.join(dir, "outputs.json");
        fs.writeFileSync(file, JSON.stringify(outputs));
        return await body(file);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

function door(overrides: Partial<FrontDoor> = {}): FrontDoor {
    return {
        platformDomain: PLATFORM,
        nodeIps: ["127.0.0.1"],
        workflow: true,
        ports: { http: 1, https: 1, ssh: 1 },
        dnsServers: [],
        certificateHosts: [CONTROLLER],
        productionIssuer: PRODUCTION_ISSUER,
        ...overrides,
    };
}

describe("npm run verify: the front door, against loopback stand-ins", () => {
    let pki: TestPki;
    before(async () => {
        pki = await testPki("verify-front-door");
    });

    it("dns: a random name under the wildcard resolves to exactly the live Ready nodes' ExternalIPs, naming nodes missing and records dead", async () => {
        const node = (name: string, address: string | undefined, ready = true): LiveNode => ({ name, address, ready });
        await using([dnsServer(PLATFORM, ["127.0.0.1", "127.0.0.2"])], async ([dns]) => {
            const servers = [`127.0.0.1:${dns.port}`];
            const live = [node("workers-a", "127.0.0.1"), node("workers-b", "127.0.0.2")];
            const passed = await checkDns(door({ liveNodes: live, dnsServers: servers }));
            assert.equal(passed.ok, true, passed.evidence);
            assert.match(
                passed.evidence,
                /^hephy-doks-verify-[0-9a-f]{8}\.staging\.hephy-demo\.net → 127\.0\.0\.1, 127\.0\.0\.2; Ready nodes: workers-a 127\.0\.0\.1, workers-b 127\.0\.0\.2$/,
            );
            assert.match((dns as unknown as { asked: string[] }).asked[0], /^hephy-doks-verify-[0-9a-f]{8}\.staging\.hephy-demo\.net$/);
            // DigitalOcean replaced every node: the records and the stack's nodeIps went stale together.
            const replaced = await checkDns(
                door({ nodeIps: ["127.0.0.1", "127.0.0.2"], liveNodes: [node("workers-c", "127.0.0.3"), node("workers-d", "127.0.0.4")], dnsServers: servers }),
            );
            assert.equal(replaced.ok, false);
            assert.match(
                replaced.evidence,
                /; nodes with no record: workers-c 127\.0\.0\.3, workers-d 127\.0\.0\.4; records of no node \(replaced or gone\): 127\.0\.0\.1, 127\.0\.0\.2$/,
            );
            const drained = await checkDns(door({ liveNodes: [node("workers-a", "127.0.0.1"), node("workers-b", "127.0.0.2", false)], dnsServers: servers }));
            assert.match(drained.evidence, /; records of nodes not Ready: 127\.0\.0\.2 \(workers-b\)$/);
            const fresh = await checkDns(door({ liveNodes: [...live, node("workers-e", undefined)], dnsServers: servers }));
            assert.match(fresh.evidence, /; Ready nodes with no ExternalIP yet: workers-e$/);
            assert.ok(![replaced, drained, fresh].some((r) => r.ok));
            // Without the cluster, the stack's outputs are all there is, and the evidence says so.
            const failed = await checkDns(door({ nodeIps: ["127.0.0.1", "127.0.0.3"], dnsServers: servers }));
            assert.equal(failed.ok, false);
            assert.match(
                failed.evidence,
                /\(the live nodes could not be read: compared with the stack's nodeIps output\); nodes missing: 127\.0\.0\.3; not nodes: 127\.0\.0\.2$/,
            );
            const elsewhere = await checkDns(door({ platformDomain: "other.hephy-demo.net", dnsServers: servers }));
            assert.equal(elsewhere.ok, false);
            assert.match(elsewhere.evidence, /ENOTFOUND/);
        });
    });

    it("tcp: a listening port passes, a closed one fails with the refusal", async () => {
        await using([httpServer((_, response) => response.end())], async ([server]) => {
            assert.deepEqual(await checkTcp("tcp-80", "127.0.0.1", server.port), {
                id: "tcp-80",
                target: "127.0.0.1",
                ok: true,
                evidence: `connected to 127.0.0.1:${server.port}`,
            });
        });
        const refused = await checkTcp("tcp-443", "127.0.0.1", await closedPort());
        assert.equal(refused.ok, false);
        assert.match(refused.evidence, /ECONNREFUSED/);
    });

    it("certificate: trusted, for the controller's name, from the production issuer, renewal not overdue for its lifetime; each fault named", async () => {
        const serve = async (names: string[], issuerOrg: string, validityHours: number) =>
            httpsServer(await pki.issue(names, { issuerOrg, validityHours }), (_, r) => r.end());
        const check = async (server: Promise<Listening>, trusted = true, daysLater = 0) =>
            using([server], ([s]) =>
                checkCertificate(
                    door({ ports: { http: 1, https: s.port, ssh: 1 }, ca: trusted ? [pki.root] : undefined }),
                    "127.0.0.1",
                    new Date(Date.now() + daysLater * 86_400_000),
                ),
            );

        const good = await check(serve([CONTROLLER], "Let's Encrypt", 24 * 60));
        assert.equal(good.ok, true, good.evidence);
        assert.match(good.evidence, /^deis\.staging\.hephy-demo\.net: issuer R99 \(Let's Encrypt\), valid to .*, 59 of 60 days left$/);

        const staging = await check(serve([CONTROLLER], "(STAGING) Let's Encrypt", 24 * 60));
        assert.equal(staging.ok, false);
        assert.match(staging.evidence, /; not from Let's Encrypt's production issuer$/);
        // Let's Encrypt's 45-day certificates (from 2028-02-16): 7 days left is inside cert-manager's
        // renewal window but not overdue, where the fixed 14-day threshold failed it; 5 days left is overdue.
        const short = serve([CONTROLLER], "Let's Encrypt", 24 * 45);
        const inWindow = await check(short, true, 37);
        assert.equal(inWindow.ok, true, inWindow.evidence);
        assert.match(inWindow.evidence, /, 7 of 45 days left$/);
        const overdue = await check(serve([CONTROLLER], "Let's Encrypt", 24 * 45), true, 39);
        assert.match(
            overdue.evidence,
            /, 5 of 45 days left; less than 7 days \(a sixth of its lifetime\) left: cert-manager's renewal, due with 15 days left, has not happened$/,
        );
        assert.deepEqual([90, 64, 45].map(renewalOverdueDays), [15, 10, 7]);
        const otherName = await check(serve([`other.${PLATFORM}`], "Let's Encrypt", 24 * 60));
        assert.match(otherName.evidence, /not valid for deis\.staging\.hephy-demo\.net \(it names DNS:other\.staging\.hephy-demo\.net\)/);
        const untrusted = await check(serve([CONTROLLER], "Let's Encrypt", 24 * 60), false);
        assert.match(untrusted.evidence, /not trusted \(UNABLE_TO_GET_ISSUER_CERT_LOCALLY\)/);
        assert.ok(![staging, overdue, otherName, untrusted].some((r) => r.ok));
    });

    it("http01: the challenge path of each certificate host, following redirects as Let's Encrypt does, and failing those it would not follow", async () => {
        const pair = await pki.issue([CONTROLLER], { issuerOrg: "(STAGING) Let's Encrypt", validityHours: 24 });
        const seen: string[] = [];
        // The ingress on the node: plain HTTP answers `plain` (a status and where to), HTTPS answers 404 as for an unknown token.
        const node = (plain: (host: string, path: string) => [number, string?]) => [
            httpServer((request, response) => {
                seen.push(`http ${request.headers.host} ${request.url}`);
                const [status, location] = plain(request.headers.host ?? "", request.url ?? "");
                response.writeHead(status, location ? { location } : {}).end();
            }),
            httpsServer(pair, (request, response) => {
                seen.push(`https ${request.headers.host} ${request.url}`);
                response.writeHead(404).end();
            }),
        ];
        const check = (plain: (host: string, path: string) => [number, string?], host = CONTROLLER) =>
            using(node(plain), ([h, s]) => checkHttp01(door({ ports: { http: h.port, https: s.port, ssh: 1 } }), "127.0.0.1", host));

        const answered = await check(() => [404]);
        assert.equal(answered.ok, true, answered.evidence);
        assert.equal(answered.target, `127.0.0.1 ${CONTROLLER}`);
        assert.match(seen[0], /^http deis\.staging\.hephy-demo\.net \/\.well-known\/acme-challenge\/[0-9a-f]{16}$/);
        // An Ingress's ssl-redirect on the matched route: Let's Encrypt follows it to 443, certificate unchecked.
        seen.length = 0;
        const toHttps = await check((host, path) => [308, `https://${host}${path}`]);
        assert.equal(toHttps.ok, true, toHttps.evidence);
        assert.match(
            toHttps.evidence,
            /^GET http:\/\/deis\.staging\.hephy-demo\.net\/\.well-known\/acme-challenge\/[0-9a-f]{16} → 308 https:\/\/deis\..*\/[0-9a-f]{16} → 404$/,
        );
        assert.deepEqual(
            seen.map((l) => l.split(" ").slice(0, 2).join(" ")),
            [`http ${CONTROLLER}`, `https ${CONTROLLER}`],
        );
        const otherPort = await check((host, path) => [302, `https://${host}:8443${path}`]);
        assert.match(
            otherPort.evidence,
            /→ 302 https:\/\/deis\.staging\.hephy-demo\.net:8443\/.*: Let's Encrypt would not follow it \(port 8443: Let's Encrypt follows redirects to ports 80 and 443 only\)$/,
        );
        const toAddress = await check((_, path) => [301, `http://127.0.0.1${path}`]);
        assert.match(toAddress.evidence, /: Let's Encrypt would not follow it \(an IP address: Let's Encrypt follows redirects to names only\)$/);
        const loop = await check((host, path) => [302, `http://${host}${path.replace(/(\?n=(\d+))?$/, (_, __, n) => `?n=${Number(n ?? 0) + 1}`)}`]);
        assert.match(loop.evidence, /\?n=11: Let's Encrypt would not follow it \(more than 10 redirects\)$/);
        assert.ok(![otherPort, toAddress, loop].some((r) => r.ok));
    });

    it("ssh-banner: an SSH server's banner passes; another protocol, or a port that closes, fails", async () => {
        const check = (banner: string) => using([bannerServer(banner)], ([s]) => checkSshBanner("127.0.0.1", s.port));
        const ssh = await check("SSH-2.0-Go\r\n");
        assert.deepEqual([ssh.ok, ssh.evidence], [true, "SSH-2.0-Go"]);
        const web = await check("HTTP/1.1 400 Bad Request\r\n\r\n");
        assert.deepEqual([web.ok, web.evidence], [false, 'not an SSH banner: "HTTP/1.1 400 Bad Request"']);
        const closed = await check("");
        assert.deepEqual([closed.ok, closed.evidence], [false, 'connection closed after ""']);
    });

    it("controller-health: /healthz of the controller's name through the ingress, 200 passes, anything else fails with the body", async () => {
        const pair = await pki.issue([CONTROLLER], { issuerOrg: "Let's Encrypt", validityHours: 24 * 60 });
        const seen: string[] = [];
        const controller = (status: number) =>
            httpsServer(pair, (request, response) => {
                seen.push(`${request.headers.host} ${request.url}`);
                response.writeHead(status).end(status === 200 ? "OK" : "upstream connect error");
            });
        const check = (server: Promise<Listening>) =>
            using([server], ([s]) => checkControllerHealth(door({ ports: { http: 1, https: s.port, ssh: 1 }, ca: [pki.root] }), "127.0.0.1"));
        const healthy = await check(controller(200));
        assert.equal(healthy.ok, true, healthy.evidence);
        assert.match(seen[0], /^deis\.staging\.hephy-demo\.net \/healthz$/);
        const down = await check(controller(503));
        assert.deepEqual(
            [down.ok, down.evidence.replace(/:\d+\//, ":PORT/")],
            [false, "GET https://deis.staging.hephy-demo.net:PORT/healthz → 503: upstream connect error"],
        );
    });

    it("checks every node, and leaves out the builder and controller when Workflow is off", async () => {
        const dead = await closedPort();
        const ports = { http: dead, https: dead, ssh: dead };
        await using([dnsServer(PLATFORM, ["127.0.0.1", "127.0.0.2"])], async ([dns]) => {
            const dnsServers = [`127.0.0.1:${dns.port}`];
            const withWorkflow = await frontDoorChecks(door({ nodeIps: ["127.0.0.1", "127.0.0.2"], ports, dnsServers }));
            assert.deepEqual(
                withWorkflow.map((r) => `${r.id} ${r.target}`),
                [
                    "dns ",
                    ...["127.0.0.1", "127.0.0.2"].flatMap((ip) =>
                        ["tcp-80", "tcp-443", "certificate", "http01", "ssh-banner", "controller-health"].map(
                            (id) => `${id} ${ip}${id === "http01" ? ` ${CONTROLLER}` : ""}`,
                        ),
                    ),
                ],
            );
            assert.deepEqual(
                withWorkflow.filter((r) => r.ok).map((r) => r.id),
                ["dns"],
            );
            const without = await frontDoorChecks(door({ nodeIps: ["127.0.0.1"], ports, dnsServers, workflow: false }));
            assert.deepEqual(
                without.map((r) => r.id),
                ["dns", "tcp-80", "tcp-443", "certificate", "http01"],
            );
        });
    });
});

/** The recorded answers of a healthy cluster, with helm-operator's client Secret added by the test. */
function recorded(extra: Record<string, unknown> = {}): Record<string, any> {
    return { ...JSON.parse(fs.readFileSync(RECORDED, "utf8")), ...extra };
}

describe("npm run verify: the cluster, through a stand-in Kubernetes API serving recorded JSON", function () {
    let pki: TestPki;
    let tillerPair: { cert: string; key: string };
    let clientSecret: unknown;
    let apiPair: { cert: string; key: string };

    before(async () => {
        pki = await testPki("verify-cluster");
        apiPair = await pki.leaf(["127.0.0.1"], ["digital_signature", "server_auth"]);
        tillerPair = await pki.leaf([CLUSTER_FACTS.tillerHostname], ["digital_signature", "server_auth"]);
        const client = await pki.leaf(["flux-helm-operator"], ["digital_signature", "client_auth"]);
        const b64 = (s: string) => Buffer.from(s).toString("base64");
        clientSecret = {
            metadata: { name: "helm-client", namespace: "flux" },
            type: "kubernetes.io/tls",
            data: { "tls.crt": b64(client.cert), "tls.key": b64(client.key) },
        };
    });

    type Tiller = Awaited<ReturnType<typeof tillerServer>>;
    const withCluster = async (
        responses: Record<string, unknown>,
        tiller: { verifyClients: boolean; pair?: { cert: string; key: string }; clientCa?: string; servingStatus?: number },
        body: (api: Awaited<ReturnType<typeof kubernetesApi>>, tiller: Tiller) => Promise<void>,
    ) => {
        const tillerListening = await tillerServer(tiller.pair ?? tillerPair, tiller.clientCa ?? pki.root, tiller.verifyClients, tiller.servingStatus);
        const api = await kubernetesApi(
            { "/api/v1/namespaces/flux/secrets/helm-client": clientSecret, ...responses },
            { pair: apiPair, ca: pki.root },
            tillerListening.port,
        );
        try {
            await body(api, tillerListening);
        } finally {
            await api.close();
            await tillerListening.close();
        }
    };
    const run = (api: { kubeconfig: string }, exposedServices: string[] = []) =>
        clusterChecks({ kubeconfig: api.kubeconfig, tillerCaCertPem: pki.root, exposedServices, workflow: true });
    const byId = (results: CheckResult[], id: string) => results.filter((r) => r.id === id);
    const tillerPod = () => recorded()["/api/v1/namespaces/kube-system/pods?labelSelector=app%3Dhelm%2Cname%3Dtiller"].items[0].metadata.name as string;

    it("holds the recorded answers to the API's own schemas, and HelmReleases to helm-operator v1.4.4's vocabulary", () => {
        const answers = recorded();
        const models: Record<string, new (o: any) => { validate(): void }> = {
            PodList: Pod,
            ServiceList: Service,
            PersistentVolumeClaimList: PersistentVolumeClaim,
            SecretList: Secret,
            NodeList: Node,
            DeploymentList: Deployment,
            DaemonSetList: DaemonSet,
            StatefulSetList: StatefulSet,
            ReplicaSetList: ReplicaSet,
            CertificateList: Certificate,
        };
        let validated = 0;
        for (const [url, list] of Object.entries(answers)) {
            const Model = models[list.kind];
            if (Model) {
                list.items.forEach((item: object) => new Model(item).validate());
                validated += list.items.length;
            } else {
                assert.equal(list.kind, "HelmReleaseList", url);
            }
        }
        assert.ok(validated >= 60, `${validated} objects validated`);
        // fluxcd/helm-operator v1.4.4 pkg/status/conditions.go ConditionsForPhase: a condition's reason is the
        // phase that set it, its message that phase's template, with lastUpdateTime; Succeeded is the steady phase.
        const templates: Record<string, [string, string]> = {
            ChartFetched: ["ChartFetched", "Chart fetch was successful for Helm release '%s' in '%s'."],
            Deployed: ["Deployed", "Installation or upgrade succeeded for Helm release '%s' in '%s'."],
            Released: ["Succeeded", "Release was successful for Helm release '%s' in '%s'."],
        };
        for (const release of answers["/apis/helm.fluxcd.io/v1/helmreleases"].items) {
            assert.equal(release.status.phase, "Succeeded");
            assert.equal(release.status.releaseStatus, "deployed", "pkg/helm/release.go StatusDeployed, for Helm 2 and 3 alike");
            for (const condition of release.status.conditions) {
                const [reason, message] = templates[condition.type];
                assert.equal(condition.reason, reason);
                assert.equal(condition.message, message.replace("%s", release.spec.releaseName).replace("%s", release.metadata.namespace));
                assert.ok(condition.lastUpdateTime && condition.lastTransitionTime);
            }
        }
        // Services as the charts and DOKS make them: kubernetes on 443, kube-dns on 53, Tiller on 44134.
        const ports = Object.fromEntries(
            answers["/api/v1/services"].items.map((s: any) => [`${s.metadata.namespace}/${s.metadata.name}`, s.spec.ports.map((p: any) => p.port)]),
        );
        assert.deepEqual(
            [ports["default/kubernetes"], ports["kube-system/kube-dns"], ports["kube-system/tiller-deploy"]],
            [[443], [53, 53, 9153], [TILLER.port]],
        );
    });

    it("passes a healthy cluster, asking only what the real client asks and the stand-in answers", async () => {
        await withCluster(recorded(), { verifyClients: true }, async (api, tiller) => {
            const results = await run(api);
            assert.deepEqual(
                results.filter((r) => !r.ok),
                [],
            );
            assert.deepEqual(
                results.map((r) => `${r.id} ${r.target}`),
                [
                    "helmreleases haproxy-ingress/ingress",
                    "helmreleases cert-manager/cert-manager",
                    "helmreleases deis/hephy",
                    "no-exposed-services ",
                    "tiller-mtls ",
                    "pods-ready ",
                    "storage-bound ",
                ],
            );
            assert.match(
                byId(results, "tiller-mtls")[0].evidence,
                new RegExp(`^pod ${tillerPod()}: with helm-operator's certificate, health SERVING; no certificate refused \\(alert [a-z ]+\\)$`),
            );
            assert.equal(tiller.checks, 1, "one gRPC health check reached Tiller");
            assert.equal(
                byId(results, "pods-ready")[0].evidence,
                "13 Deployments, 2 DaemonSets, 1 StatefulSet available in cert-manager, deis, flux, haproxy-ingress and Tiller's",
            );
            assert.equal(byId(results, "storage-bound")[0].evidence, "deis/deis-minio-data Bound 10Gi");
            assert.deepEqual(
                api.requests.filter((r) => !r.answered),
                [],
            );
            assert.equal(api.requests.filter((r) => r.url === "/apis/helm.fluxcd.io/v1/helmreleases").length, 1, "listed once a pass");
            assert.deepEqual([...new Set(api.requests.map((r) => `${r.method} ${r.url.split("?")[0]}`))].sort(), [
                "GET /api/v1/namespaces/flux/secrets/helm-client",
                "GET /api/v1/namespaces/kube-system/pods",
                "GET /api/v1/persistentvolumeclaims",
                "GET /api/v1/pods",
                "GET /api/v1/services",
                "GET /apis/apps/v1/daemonsets",
                "GET /apis/apps/v1/deployments",
                "GET /apis/apps/v1/replicasets",
                "GET /apis/apps/v1/statefulsets",
                "GET /apis/helm.fluxcd.io/v1/helmreleases",
                `WEBSOCKET /api/v1/namespaces/kube-system/pods/${tillerPod()}/portforward`,
            ]);
        });
    });

    it("helmreleases: fails a release not released, in helm-operator's words, and an unobserved generation", async () => {
        const answers = recorded();
        const [ingress, , hephy] = answers["/apis/helm.fluxcd.io/v1/helmreleases"].items;
        // What helm-operator v1.4.4 writes for phase DeployFailed (pkg/status/conditions.go, pkg/release/release.go).
        const failed = "Installation or upgrade failed for Helm release 'hephy' in 'deis'.";
        const at = "2026-11-29T11:00:00Z";
        hephy.status.phase = "DeployFailed";
        hephy.status.releaseStatus = "failed";
        hephy.status.conditions = [
            hephy.status.conditions[0],
            { type: "Deployed", status: "False", reason: "DeployFailed", message: failed, lastUpdateTime: at, lastTransitionTime: at },
            { type: "Released", status: "False", reason: "DeployFailed", message: failed, lastUpdateTime: at, lastTransitionTime: at },
        ];
        ingress.metadata.generation = 2;
        await withCluster(answers, { verifyClients: true }, async (api) => {
            const results = byId(await run(api), "helmreleases").filter((r) => !r.ok);
            assert.deepEqual(
                results.map((r) => `${r.target}: ${r.evidence}`),
                [
                    "haproxy-ingress/ingress: release ingress deployed (phase Succeeded), Released True, generation 1/2: Release was successful for Helm release 'ingress' in 'haproxy-ingress'.",
                    `deis/hephy: release hephy failed (phase DeployFailed), Released False, generation 1/1: ${failed}`,
                ],
            );
        });
        await withCluster(
            { ...recorded(), "/apis/helm.fluxcd.io/v1/helmreleases": { kind: "HelmReleaseList", items: [] } },
            { verifyClients: true },
            async (api) => {
                assert.deepEqual(
                    byId(await run(api), "helmreleases").map((r) => [r.ok, r.evidence]),
                    [[false, "no HelmRelease in the cluster"]],
                );
            },
        );
    });

    it("revisions: a release that gains one within the window fails with its rate; a still window passes", async () => {
        const answers = recorded();
        await withCluster(answers, { verifyClients: true }, async (api) => {
            const config = kubeConfig(api.kubeconfig);
            const still = await checkRevisions(config, 4, async () => undefined);
            assert.deepEqual(
                [still.ok, still.evidence],
                [true, "no release moved in 4 min: tiller/hephy 2, haproxy-ingress/ingress 1, cert-manager/cert-manager 1"],
            );
            // helm-operator upgrades hephy while the window is open, as a template with randAlphaNum makes it.
            const tiller = answers["/api/v1/namespaces/kube-system/secrets?labelSelector=OWNER%3DTILLER"];
            const moved = await checkRevisions(config, 4, async () => {
                tiller.items.push({
                    ...tiller.items[1],
                    metadata: { ...tiller.items[1].metadata, name: "hephy.v3", labels: { ...tiller.items[1].metadata.labels, VERSION: "3" } },
                });
            });
            assert.deepEqual([moved.ok, moved.evidence], [false, "moved in 4 min: tiller/hephy 2 → 3 (about 15 an hour)"]);
        });
        assert.deepEqual(compareRevisions(new Map(), new Map(), 4), {
            ok: false,
            evidence: "no release revision found (no Secret labelled OWNER=TILLER or owner=helm)",
        });
        assert.ok(DEFAULT_WATCH_MINUTES > 3, "the default window spans helm-operator's 3-minute compare");
    });

    it("no-exposed-services: a LoadBalancer or NodePort fails unless exposedServices names it", async () => {
        const answers = recorded();
        answers["/api/v1/services"].items.push(
            { metadata: { name: "ingress-kubernetes-ingress", namespace: "haproxy-ingress" }, spec: { type: "LoadBalancer" } },
            { metadata: { name: "metrics", namespace: "monitoring" }, spec: { type: "NodePort" } },
        );
        await withCluster(answers, { verifyClients: true }, async (api) => {
            const [exposed] = byId(await run(api), "no-exposed-services");
            assert.deepEqual(
                [exposed.ok, exposed.evidence],
                [false, "exposed: haproxy-ingress/ingress-kubernetes-ingress (LoadBalancer), monitoring/metrics (NodePort)"],
            );
            const [allowed] = byId(await run(api, ["monitoring/metrics"]), "no-exposed-services");
            assert.equal(allowed.ok, false);
            assert.equal(allowed.evidence, "exposed: haproxy-ingress/ingress-kubernetes-ingress (LoadBalancer)");
            const [both] = byId(await run(api, ["monitoring/metrics", "haproxy-ingress/ingress-kubernetes-ingress"]), "no-exposed-services");
            assert.equal(both.ok, true, both.evidence);
        });
    });

    it("tiller-mtls: acceptance is a gRPC health answer, refusal the handshake's alert; each fault named", async () => {
        await withCluster(recorded(), { verifyClients: false }, async (api) => {
            const [open] = byId(await run(api), "tiller-mtls");
            assert.equal(open.ok, false);
            assert.match(open.evidence, /health SERVING; no certificate accepted; accepted a client without a certificate$/);
        });
        // A Tiller that trusts another CA refuses helm-operator's certificate only after a TLS 1.3 handshake:
        // the handshake completes, the health call does not.
        const strangers = await testPki("verify-stranger");
        await withCluster(recorded(), { verifyClients: true, clientCa: strangers.root }, async (api, tiller) => {
            const [refused] = byId(await run(api), "tiller-mtls");
            assert.equal(refused.ok, false);
            assert.match(refused.evidence, /with helm-operator's certificate, health not answered; .*; no health answer with helm-operator's certificate: .+$/);
            assert.equal(tiller.checks, 0);
        });
        const stranger = await strangers.leaf([CLUSTER_FACTS.tillerHostname], ["digital_signature", "server_auth"]);
        await withCluster(recorded(), { verifyClients: true, pair: stranger }, async (api) => {
            const [foreign] = byId(await run(api), "tiller-mtls");
            assert.equal(foreign.ok, false);
            assert.match(
                foreign.evidence,
                /; its certificate is not the stack CA's for tiller-deploy\.kube-system: UNABLE_TO_VERIFY_LEAF_SIGNATURE; no health answer/,
            );
        });
        await withCluster(recorded(), { verifyClients: true, servingStatus: 2 }, async (api) => {
            const [starting] = byId(await run(api), "tiller-mtls");
            assert.deepEqual(
                [starting.ok, starting.evidence.replace(/\(alert [a-z ]+\)/, "(alert)")],
                [false, `pod ${tillerPod()}: with helm-operator's certificate, health NOT_SERVING; no certificate refused (alert); Tiller reports NOT_SERVING`],
            );
        });
        const noPod = recorded();
        noPod["/api/v1/namespaces/kube-system/pods?labelSelector=app%3Dhelm%2Cname%3Dtiller"].items[0].status.phase = "Pending";
        await withCluster(noPod, { verifyClients: true }, async (api) => {
            const [missing] = byId(await run(api), "tiller-mtls");
            assert.deepEqual([missing.ok, missing.evidence], [false, "no running Tiller pod (app=helm,name=tiller) in kube-system"]);
        });
    });

    /** A Failed pod as the kubelet leaves it, owned as `like` is. */
    const failedPod = (like: any, suffix: string, reason: string, message: string) => ({
        ...like,
        metadata: { ...like.metadata, name: `${like.metadata.name.replace(/-[^-]+$/, "")}-${suffix}`, uid: `uid-${suffix}` },
        status: { phase: "Failed", reason, message, startTime: "2026-11-30T03:00:00Z" },
    });
    const podsOf = (answers: Record<string, any>, prefix: string) => answers["/api/v1/pods"].items.filter((p: any) => p.metadata.name.startsWith(prefix));

    it("pods-ready: Failed pods of controllers that have replaced them are history; evictions, shutdowns and rejections leave the verdict alone", async () => {
        const answers = recorded();
        const [controller] = podsOf(answers, "deis-controller-");
        const [fluentd] = podsOf(answers, "deis-logger-fluentd-");
        answers["/api/v1/pods"].items.push(
            // pkg/kubelet/eviction/helpers.go (Reason, message fragments), pkg/kubelet/nodeshutdown, pkg/kubelet/lifecycle/predicate.go.
            failedPod(
                controller,
                "x7k2p",
                "Evicted",
                "The node was low on resource: memory. Threshold quantity: 100Mi, available: 62Mi. Container deis-controller was using 612Mi, which exceeds its request of 0. ",
            ),
            failedPod(controller, "q9w4e", "Terminated", "Pod was terminated in response to imminent node shutdown."),
            failedPod(fluentd, "m3n8b", "OutOfcpu", "Pod was rejected: Node didn't have enough resource: cpu, requested: 100, used: 1930, capacity: 1900"),
        );
        await withCluster(answers, { verifyClients: true }, async (api) => {
            const [ready] = byId(await run(api), "pods-ready");
            assert.deepEqual(
                [ready.ok, ready.evidence],
                [
                    true,
                    "13 Deployments, 2 DaemonSets, 1 StatefulSet available in cert-manager, deis, flux, haproxy-ingress and Tiller's; " +
                        "history, not faults: Failed pods of available controllers or finished Jobs (Evicted 1, Terminated 1, OutOfcpu 1)",
                ],
            );
        });
    });

    it("pods-ready and storage-bound: a controller short of pods and a claim not bound fail, named with the reason", async () => {
        const answers = recorded();
        const deployment = answers["/apis/apps/v1/deployments"].items.find((d: any) => d.metadata.name === "deis-controller");
        deployment.status.availableReplicas = 0;
        deployment.status.readyReplicas = 0;
        const [controller] = podsOf(answers, "deis-controller-");
        controller.status.conditions[3].status = "False";
        controller.status.containerStatuses[0].state = { waiting: { reason: "CrashLoopBackOff" } };
        answers["/api/v1/pods"].items.push(failedPod(controller, "x7k2p", "Evicted", "The node was low on resource: memory. "));
        const daemonSet = answers["/apis/apps/v1/daemonsets"].items.find((d: any) => d.metadata.name === "ingress-kubernetes-ingress");
        daemonSet.status.numberAvailable = 2;
        const ingress = podsOf(answers, "ingress-kubernetes-ingress-")[2];
        ingress.status = {
            phase: "Pending",
            conditions: [
                {
                    type: "PodScheduled",
                    status: "False",
                    reason: "Unschedulable",
                    message: "0/3 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.",
                },
            ],
        };
        answers["/api/v1/persistentvolumeclaims"].items[0].status = { phase: "Pending" };
        await withCluster(answers, { verifyClients: true }, async (api) => {
            const results = await run(api);
            assert.deepEqual(
                byId(results, "pods-ready").map((r) => [r.ok, r.evidence]),
                [
                    [
                        false,
                        `unavailable: deis/deis-controller (Deployment, 0 of 1 available: ${controller.metadata.name} Running (CrashLoopBackOff); Failed pods: Evicted 1); ` +
                            `haproxy-ingress/ingress-kubernetes-ingress (DaemonSet, 2 of 3 available: ${ingress.metadata.name} Pending (0/3 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.))`,
                    ],
                ],
            );
            assert.deepEqual(
                byId(results, "storage-bound").map((r) => [r.ok, r.evidence]),
                [[false, "not Bound: deis/deis-minio-data (deis/deis-minio-data Pending)"]],
            );
        });
        await withCluster(
            { ...recorded(), "/api/v1/persistentvolumeclaims": { kind: "PersistentVolumeClaimList", items: [] } },
            { verifyClients: true },
            async (api) => {
                assert.deepEqual(
                    byId(await run(api), "storage-bound").map((r) => r.evidence),
                    ["no PersistentVolumeClaim: Workflow's object store has no volume"],
                );
            },
        );
    });

    it("pods-ready: a Deployment whose new pods crash while it keeps its old one available fails, with the controller's verdict and the new pod", async () => {
        const answers = recorded();
        const deployment = answers["/apis/apps/v1/deployments"].items.find((d: any) => d.metadata.name === "deis-controller");
        const [oldSet] = answers["/apis/apps/v1/replicasets"].items.filter((r: any) => r.metadata.name.startsWith("deis-controller-"));
        const [oldPod] = podsOf(answers, "deis-controller-");
        // An upgrade to an image that crashes: the rolling update (maxSurge 1, maxUnavailable 0 for one
        // replica) starts a new ReplicaSet and keeps the old pod until the new one is available, and after
        // progressDeadlineSeconds the deployment controller says so (pkg/controller/deployment/progress.go,
        // Progressing False, reason ProgressDeadlineExceeded).
        const newSet = { ...oldSet, metadata: { ...oldSet.metadata, name: "deis-controller-9f8e7d6c5b", uid: "uid-deis-controller-9f8e7d6c5b" } };
        const crashing = {
            ...oldPod,
            metadata: {
                ...oldPod.metadata,
                name: "deis-controller-9f8e7d6c5b-k2j4h",
                uid: "uid-deis-controller-9f8e7d6c5b-k2j4h",
                ownerReferences: [{ ...oldPod.metadata.ownerReferences[0], name: newSet.metadata.name, uid: newSet.metadata.uid }],
            },
            status: {
                ...oldPod.status,
                conditions: oldPod.status.conditions.map((c: any) => (c.type === "Ready" || c.type === "ContainersReady" ? { ...c, status: "False" } : c)),
                containerStatuses: [{ ...oldPod.status.containerStatuses[0], ready: false, state: { waiting: { reason: "CrashLoopBackOff" } } }],
            },
        };
        answers["/apis/apps/v1/replicasets"].items.push(newSet);
        answers["/api/v1/pods"].items.push(crashing);
        const stuck = 'ReplicaSet "deis-controller-9f8e7d6c5b" has timed out progressing.';
        Object.assign(deployment.metadata, { generation: 2 });
        Object.assign(deployment.status, {
            observedGeneration: 2,
            replicas: 2,
            updatedReplicas: 1,
            readyReplicas: 1,
            availableReplicas: 1,
            unavailableReplicas: 1,
        });
        deployment.status.conditions = deployment.status.conditions.map((c: any) =>
            c.type === "Progressing" ? { ...c, status: "False", reason: "ProgressDeadlineExceeded", message: stuck } : c,
        );
        new Deployment(deployment).validate();
        await withCluster(answers, { verifyClients: true }, async (api) => {
            const [ready] = byId(await run(api), "pods-ready");
            assert.deepEqual(
                [ready.ok, ready.evidence],
                [
                    false,
                    `unavailable: deis/deis-controller (Deployment, 1 of 1 available, its rollout not done: ${stuck}: deis-controller-9f8e7d6c5b-k2j4h Running (CrashLoopBackOff))`,
                ],
            );
        });
        // Before the deadline, the old pod still running says the same.
        deployment.status.conditions = recorded()["/apis/apps/v1/deployments"].items.find((d: any) => d.metadata.name === "deis-controller").status.conditions;
        await withCluster(answers, { verifyClients: true }, async (api) => {
            const [ready] = byId(await run(api), "pods-ready");
            assert.match(
                ready.evidence,
                /^unavailable: deis\/deis-controller \(Deployment, 1 of 1 available, its rollout not done: pods of an older template still running: 1: /,
            );
        });
    });

    it("kubernetes-api, day 8: the expired credential of the outputs is named with what to run; a fresh one from DigitalOcean's API is used", async () => {
        const clusterId = "bd5f5959-5e1e-4205-a714-a914373942af";
        await withCluster(recorded(), { verifyClients: true }, async (api) => {
            const server = `https://127.0.0.1:${api.port}`;
            // The output of an up 8 days ago: DigitalOcean's token in it has expired, so the API server answers 401.
            const expired = { kubeconfig: kubeconfigFor(server, pki.root, "do-token-of-8-days-ago"), clusterId };
            const stale = await checkKubernetesApi(await clusterCredential(expired, undefined), "staging");
            assert.equal(stale.result.ok, false);
            assert.equal(
                stale.result.evidence,
                "the API server answered 401 Unauthorized to the stack's kubeconfig output (DigitalOcean's credential of the last pulumi up, valid 7 days); " +
                    "no DigitalOcean token (DIGITALOCEAN_TOKEN) to fetch a fresh one: the credential has expired. " +
                    "export DIGITALOCEAN_TOKEN=$(pulumi config get digitalocean:token --stack staging) and run verify again (it fetches a fresh credential), " +
                    "or run pulumi up --refresh=false --stack staging (it renews the output)",
            );
            assert.equal(stale.config, undefined, "no cluster check runs on a refused credential");

            let minted = 0;
            const doApi = await digitalOceanApi({ id: clusterId, token: "dop_v1_user" }, (expirySeconds) => {
                const token = `doks-${++minted}-${expirySeconds}`;
                api.tokens.add(token);
                return kubeconfigFor(server, pki.root, token);
            });
            try {
                const fresh = await clusterCredential(expired, "dop_v1_user", doApi.url);
                assert.equal(fresh.fresh, true);
                const reached = await checkKubernetesApi(fresh, "staging");
                assert.deepEqual(
                    [reached.result.ok, reached.result.evidence],
                    [
                        true,
                        `3 nodes listed with a fresh credential from DigitalOcean's API (GET /v2/kubernetes/clusters/${clusterId}/kubeconfig, valid 60 min)`,
                    ],
                );
                assert.deepEqual(
                    reached.nodes?.map((n) => `${n.name} ${n.address} ${n.ready}`),
                    recorded()["/api/v1/nodes"].items.map((n: any) => `${n.metadata.name} ${n.status.addresses[2].address} true`),
                );
                assert.deepEqual(doApi.requests, [`GET /v2/kubernetes/clusters/${clusterId}/kubeconfig?expiry_seconds=${FRESH_CREDENTIAL_SECONDS}`]);
                const refused = await clusterCredential(expired, "dop_v1_revoked", doApi.url);
                assert.deepEqual([refused.fresh, refused.kubeconfig === expired.kubeconfig], [false, true]);
                assert.match(refused.source, /; no fresh one: DigitalOcean's API answered 401 Unable to authenticate you$/);
            } finally {
                await doApi.close();
            }
        });
    });

    it("runs the whole verify on a stack whose last up was 8 days ago: with the user's token it passes the cluster, without it names the expiry", async () => {
        const clusterId = "bd5f5959-5e1e-4205-a714-a914373942af";
        const answers = recorded();
        // The nodes on loopback, so the front door's checks run against nothing that listens.
        answers["/api/v1/nodes"].items.forEach((n: any, i: number) => (n.status.addresses[2].address = `127.0.0.${i + 1}`));
        await withCluster(answers, { verifyClients: true }, async (api) => {
            const server = `https://127.0.0.1:${api.port}`;
            const doApi = await digitalOceanApi(
                { id: clusterId, token: "dop_v1_user" },
                () => (api.tokens.add("doks-fresh"), kubeconfigFor(server, pki.root, "doks-fresh")),
            );
            const dns = await dnsServer(PLATFORM, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
            const outputs = {
                platformDomain: PLATFORM,
                nodeIps: ["127.0.0.9"],
                kubeconfig: kubeconfigFor(server, pki.root, "do-token-of-8-days-ago"),
                clusterId,
                tillerCaCertPem: pki.root,
                exposedServices: [],
            };
            try {
                await withOutputsFile(outputs, async (file) => {
                    const dead = await closedPort();
                    const reach = { ports: { http: dead, https: dead, ssh: dead }, retryPauseMs: 10 };
                    const report = async (env: NodeJS.ProcessEnv) => {
                        const out: string[] = [];
                        const status = await main(
                            ["--outputs", file, "--watch", "0", "--json", "--dns-server", `127.0.0.1:${dns.port}`],
                            (t) => out.push(t),
                            reach,
                            env,
                        );
                        return { status, checks: JSON.parse(out.join("\n")).checks as CheckResult[] };
                    };
                    const withToken = await report({ DIGITALOCEAN_TOKEN: "dop_v1_user", DIGITALOCEAN_API_URL: doApi.url });
                    assert.deepEqual(
                        withToken.checks.filter((c) => ["kubernetes-api", "dns", "helmreleases", "pods-ready", "tiller-mtls"].includes(c.id) && !c.ok),
                        [],
                    );
                    assert.match(withToken.checks.find((c) => c.id === "dns")!.evidence, /; Ready nodes: hephy-staging-workers-e7k2q 127\.0\.0\.1, /);
                    assert.deepEqual(
                        [...new Set(withToken.checks.filter((c) => c.id === "tcp-80").map((c) => c.target))],
                        ["127.0.0.1", "127.0.0.2", "127.0.0.3"],
                        "the live nodes are probed, not the stack's stale nodeIps",
                    );
                    // --retry and --watch can hold the run for two hours: the credential must outlive them, or the
                    // revisions' second sample meets a 401.
                    const frontDoor = ["dns", "tcp-80", "tcp-443", "certificate", "http01"].flatMap((id) => ["--skip", id]);
                    const env = { DIGITALOCEAN_TOKEN: "dop_v1_user", DIGITALOCEAN_API_URL: doApi.url };
                    assert.equal(await main(["--outputs", file, "--watch", "0", "--retry", "30", "--json", ...frontDoor], () => undefined, reach, env), 0);
                    assert.match(doApi.requests[doApi.requests.length - 1], new RegExp(`\\?expiry_seconds=${FRESH_CREDENTIAL_SECONDS + 30 * 60}$`));
                    const without = await report({});
                    assert.equal(without.status, 1);
                    const credential = without.checks.find((c) => c.id === "kubernetes-api")!;
                    assert.match(
                        credential.evidence,
                        /^the API server answered 401 Unauthorized to the stack's kubeconfig output .*: the credential has expired\. export DIGITALOCEAN_TOKEN=/,
                    );
                    assert.equal((credential as CheckResult & { lookAt: string }).lookAt, CHECKS["kubernetes-api"].lookAt);
                    assert.ok(
                        !without.checks.some((c) => ["helmreleases", "pods-ready", "tiller-mtls", "storage-bound"].includes(c.id)),
                        "one cause, said once",
                    );
                });
            } finally {
                await dns.close();
                await doApi.close();
            }
        });
    });

    it("fails every check, quickly and with the reason, when the API cannot be reached", async () => {
        const kubeconfig = kubeconfigFor(`https://127.0.0.1:${await closedPort()}`);
        const results = await clusterChecks({ kubeconfig, tillerCaCertPem: pki.root, exposedServices: [], workflow: true });
        assert.deepEqual(
            results.map((r) => r.id),
            ["helmreleases", "no-exposed-services", "tiller-mtls", "pods-ready", "storage-bound"],
        );
        for (const result of results) {
            assert.equal(result.ok, false);
            assert.match(result.evidence, /ECONNREFUSED/);
        }
    });

    it("names objects as the program does", () => {
        assert.equal(CLUSTER_FACTS.tiller.namespace, TILLER.namespace);
        assert.equal(CLUSTER_FACTS.tiller.port, TILLER.port);
        assert.equal(
            CLUSTER_FACTS.tiller.labels,
            Object.entries(TILLER.labels)
                .map(([k, v]) => `${k}=${v}`)
                .join(","),
        );
        assert.equal(CLUSTER_FACTS.tillerHostname, UPSTREAM.tillerHostname);
        assert.equal(CLUSTER_FACTS.tillerVersion, UPSTREAM.tillerImage.split(":").pop());
        assert.deepEqual(CLUSTER_FACTS.operator, { namespace: HELM_OPERATOR.namespace, clientSecret: HELM_OPERATOR.clientSecret });
        assert.equal(CONTROLLER_HOST, WORKFLOW_HOSTS.controller);
    });
});

describe("npm run verify --push: the seed's end-to-end run, against a stand-in controller and git remote", () => {
    /**
     * Workflow's API on loopback, routed as teamhephy/controller rootfs/api/urls.py routes it: login
     * (DRF's obtain_auth_token, which answers bad credentials 400 with non_field_errors:
     * djangorestframework 3.12 rest_framework/authtoken/serializers.py AuthTokenSerializer), keys
     * (`keys/(?P<id>.+)/?$`, so a trailing slash is part of the id) and apps; an app is served once its
     * push has landed.
     */
    function controllerStandIn(bare: string, opts: { serveApps: boolean; deleteFails?: boolean; existing?: string[] }) {
        const calls: string[] = [];
        const keys = new Set<string>();
        const apps = new Set<string>(opts.existing);
        const handler = (request: http.IncomingMessage, response: http.ServerResponse) => {
            let body = "";
            request.on("data", (c) => (body += c));
            request.on("end", () => {
                const auth = request.headers.authorization ?? "";
                const url = request.url ?? "";
                calls.push(`${request.method} ${url}${body ? ` ${Object.keys(JSON.parse(body)).join(",")}` : ""}${auth ? " (token)" : ""}`);
                const json = (status: number, value?: unknown) =>
                    response.writeHead(status, { "content-type": "application/json" }).end(value === undefined ? "" : JSON.stringify(value));
                if (url.startsWith("/served/")) {
                    const landed = fs.existsSync(path.join(bare, "refs", "heads", "master"));
                    return opts.serveApps && landed ? response.writeHead(200).end("hephy-doks verify: served\n") : response.writeHead(404).end();
                }
                if (url === "/v2/auth/login/")
                    return JSON.parse(body).password === "s3cret"
                        ? json(200, { token: "abc" })
                        : json(400, { non_field_errors: ["Unable to log in with provided credentials."] });
                if (auth !== "token abc") return json(401, { detail: "Authentication credentials were not provided." });
                if (request.method === "POST" && url === "/v2/keys/") return (keys.add(JSON.parse(body).id), json(201, JSON.parse(body)));
                if (request.method === "POST" && url === "/v2/apps/") return (apps.add(JSON.parse(body).id), json(201, JSON.parse(body)));
                const key = /^\/v2\/keys\/(.+)\/?$/.exec(url)?.[1];
                if (request.method === "DELETE" && key !== undefined)
                    return keys.delete(decodeURIComponent(key)) ? json(204) : json(404, { detail: "Not found." });
                const app = /^\/v2\/apps\/([-_\w]+)\/?$/.exec(url)?.[1];
                if (request.method === "GET" && app !== undefined) return apps.has(app) ? json(200, { id: app }) : json(404, { detail: "Not found." });
                if (request.method === "DELETE" && app !== undefined) {
                    if (opts.deleteFails) return json(500, { detail: "boom" });
                    return apps.delete(app) ? json(204) : json(404, { detail: "Not found." });
                }
                return json(404);
            });
        };
        return { calls, keys, apps, server: httpServer(handler) };
    }

    const push = async (opts: {
        serveApps: boolean;
        deleteFails?: boolean;
        password?: string;
        remote?: string;
        name?: string;
        existing?: string[];
        appDir?: string;
    }) => {
        const bare = fs.mkdtempSync(path.join(os.tmpdir(), "verify-remote-"));
        execFileSync("git", ["init", "-q", "--bare", bare]);
        const standIn = controllerStandIn(bare, opts);
        const result = await using([standIn.server], ([s]) =>
            checkPush({
                controllerUrl: `http://127.0.0.1:${s.port}`,
                username: "admin-1234abcd",
                password: opts.password ?? "s3cret",
                remote: () => opts.remote ?? bare,
                appUrl: (app) => `http://127.0.0.1:${s.port}/served/${app}`,
                appDir: opts.appDir ?? SAMPLE_APP,
                app: opts.name,
                certificateNote: certificateNote(PLATFORM, [{ namespace: "deis", name: "c", dnsNames: [CONTROLLER], notBefore: new Date().toISOString() }]),
                // A served app ends the wait at once; one never served waits this long, which must still
                // cover ssh-keygen and git's four commands on a loaded machine (600 ms did not, under CI's load).
                deadlineMs: opts.serveApps ? 15_000 : 3_000,
                pollMs: 100,
            }),
        );
        const pushed = fs.existsSync(path.join(bare, "refs", "heads", "master"));
        const log = pushed ? execFileSync("git", ["-C", bare, "log", "--format=%s", "master"], { encoding: "utf8" }).trim() : "";
        const files = pushed ? execFileSync("git", ["-C", bare, "ls-tree", "--name-only", "master"], { encoding: "utf8" }).trim().split("\n") : [];
        fs.rmSync(bare, { recursive: true, force: true });
        return { result, calls: standIn.calls, left: [...standIn.keys, ...standIn.apps], log, files };
    };

    it("creates a key and an app, pushes the sample app, fetches it, and removes both", async () => {
        const { result, calls, log, files } = await push({ serveApps: true });
        assert.equal(result.ok, true, result.evidence);
        const app = result.target;
        assert.match(app, /^verify-[0-9a-f]{6}$/);
        assert.match(
            result.evidence,
            new RegExp(
                `^app ${app} created, a new production certificate for ${app}\\.staging\\.hephy-demo\\.net: 2 of the 50 a week Let's Encrypt allows the registered domain, ` +
                    `counting this cluster's of the last 7 days \\(--push-name reuses one\\), pushed, GET http://127\\.0\\.0\\.1:\\d+/served/${app} → 200: hephy-doks verify: served; app and key removed$`,
            ),
        );
        assert.deepEqual(
            calls.filter((c) => !c.startsWith("GET /served/")),
            [
                "POST /v2/auth/login/ username,password",
                "POST /v2/keys/ id,public (token)",
                "POST /v2/apps/ id (token)",
                `DELETE /v2/apps/${app}/ (token)`,
                `DELETE /v2/keys/${app} (token)`,
            ],
        );
        assert.equal(log, "hephy-doks verify");
        assert.deepEqual(files, ["Procfile", "app.py", "requirements.txt"]);
    });

    it("pushes the Dockerfile sample beside the buildpack one, and says it is a Dockerfile build", async () => {
        const { result, files } = await push({ serveApps: true, appDir: DOCKERFILE_SAMPLE_APP });
        assert.equal(result.ok, true, result.evidence);
        assert.match(result.evidence, /^app verify-[0-9a-f]{6} created \(Dockerfile build\), /);
        assert.deepEqual(files, ["Dockerfile"], "a Dockerfile at the root, so the builder builds it as one");
        const dockerfile = fs.readFileSync(path.join(DOCKERFILE_SAMPLE_APP, "Dockerfile"), "utf8");
        assert.match(dockerfile, /^RUN /m);
        assert.match(dockerfile, /^EXPOSE 8000$/m, "its port comes from the image, as the controller reads it");
        assert.deepEqual(
            pushedApps(parseOptions(["--push"])).map((a) => [path.basename(a.appDir), a.name]),
            [
                ["sample-app", undefined],
                ["sample-dockerfile-app", undefined],
            ],
        );
        assert.deepEqual(
            pushedApps(parseOptions(["--push", "--push-name", "smoke"])).map((a) => a.name),
            ["smoke", "smoke-dockerfile"],
        );
        assert.deepEqual(
            pushedApps(parseOptions(["--push", "--push-app", "/tmp/mine"])).map((a) => a.appDir),
            ["/tmp/mine"],
        );
    });

    it("fails an app never served, or a push git refuses, and still removes the app and the key", async () => {
        const unserved = await push({ serveApps: false });
        assert.equal(unserved.result.ok, false);
        assert.match(
            unserved.result.evidence,
            /pushed, http:\/\/127\.0\.0\.1:\d+\/served\/verify-[0-9a-f]{6} not served: last answer 404; app and key removed$/,
        );
        assert.deepEqual(unserved.left, []);
        const refused = await push({ serveApps: true, remote: path.join(os.tmpdir(), "no-such-remote-for-verify") });
        assert.equal(refused.result.ok, false);
        assert.match(
            refused.result.evidence,
            /^app verify-[0-9a-f]{6} created, a new production certificate .*, git failed: fatal: '.*no-such-remote-for-verify' does not appear to be a git repository; app and key removed$/,
        );
        assert.deepEqual(refused.left, []);
    });

    it("--push-name: pushes to a fixed app, created once and kept, so its certificate is issued once and reused", async () => {
        const first = await push({ serveApps: true, name: "verify-fixed" });
        assert.equal(first.result.ok, true, first.result.evidence);
        assert.match(first.result.evidence, /^app verify-fixed created, a new production certificate for verify-fixed\.staging\.hephy-demo\.net: 2 of the 50 /);
        assert.match(first.result.evidence, /; key removed, app verify-fixed kept for the next run$/);
        assert.deepEqual(first.left, ["verify-fixed"]);
        const again = await push({ serveApps: true, name: "verify-fixed", existing: ["verify-fixed"] });
        assert.equal(again.result.ok, true, again.result.evidence);
        assert.match(again.result.evidence, /^app verify-fixed reused, verify-fixed\.staging\.hephy-demo\.net keeps its certificate, pushed, /);
        assert.deepEqual(
            again.calls.filter((c) => !c.startsWith("GET /served/")),
            [
                "POST /v2/auth/login/ username,password",
                "POST /v2/keys/ id,public (token)",
                "GET /v2/apps/verify-fixed/ (token)",
                "DELETE /v2/keys/verify-fixed (token)",
            ],
        );
        assert.deepEqual(again.left, ["verify-fixed"]);
    });

    it("names what it leaves behind when removal fails, and stops at a refused login with nothing created", async () => {
        const leftover = await push({ serveApps: true, deleteFails: true });
        assert.equal(leftover.result.ok, false);
        assert.match(leftover.result.evidence, /; left behind: app (verify-[0-9a-f]{6}) \(deis apps:destroy -a \1, deis keys:remove \1\)$/);
        const refused = await push({ serveApps: true, password: "wrong" });
        assert.equal(refused.result.ok, false);
        assert.match(
            refused.result.evidence,
            /^POST \/v2\/auth\/login\/ → 400 \{"non_field_errors":\["Unable to log in with provided credentials\."\]\}; app and key removed$/,
        );
        assert.deepEqual(refused.calls, ["POST /v2/auth/login/ username,password"]);
    });
});

describe("npm run verify's command line", () => {
    it("documents every check in --help, and every option it reads", () => {
        for (const [id, check] of Object.entries(CHECKS)) {
            assert.ok(HELP.includes(`  ${id} `), `--help lists ${id}`);
            assert.ok(HELP.replace(/\s+/g, " ").includes(check.proves), `--help says what ${id} proves`);
        }
        for (const option of [
            "--stack",
            "--outputs",
            "--watch",
            "--retry",
            "--push",
            "--push-app",
            "--push-name",
            "--dns-server",
            "--skip",
            "--json",
            "--help",
        ]) {
            assert.ok(HELP.includes(`  ${option} `) || HELP.includes(`, ${option} `), option);
        }
        assert.ok(
            HELP.split("\n").every((line) => line.length <= 100),
            "no line wider than 100 columns",
        );
    });

    it("reads its options strictly, with npm's -- hint for a stray word", () => {
        assert.deepEqual(parseOptions([]), {
            stack: undefined,
            outputs: undefined,
            watchMinutes: DEFAULT_WATCH_MINUTES,
            retryMinutes: 0,
            push: false,
            pushApp: SAMPLE_APP,
            pushName: undefined,
            dnsServers: [],
            skip: [],
            backupAgeMinutes: 45,
            json: false,
            help: false,
        });
        assert.deepEqual(parseOptions(["--stack", "production", "--watch", "0", "--dns-server", "1.1.1.1", "--dns-server", "8.8.8.8", "--json"]).dnsServers, [
            "1.1.1.1",
            "8.8.8.8",
        ]);
        assert.throws(() => parseOptions(["production"]), /npm run verify -- --stack production/);
        assert.throws(() => parseOptions(["--watch", "soon"]), /^Error: --watch must be a number of minutes from 0 to 60, got "soon"/);
        assert.throws(() => parseOptions(["--retry", "90"]), /^Error: --retry must be a number of minutes from 0 to 60, got "90"/);
        assert.equal(parseOptions(["--retry", "10"]).retryMinutes, 10);
        assert.throws(() => parseOptions(["--stack", "a", "--stack", "b"]), /--stack is given twice/);
        assert.throws(() => parseOptions(["--pish"]), /Unknown option '--pish'/);
        assert.deepEqual(parseOptions(["--skip", "ssh-banner", "--skip", "push"]).skip, ["ssh-banner", "push"]);
        assert.equal(parseOptions(["--push", "--push-name", "verify-fixed"]).pushName, "verify-fixed");
        assert.throws(() => parseOptions(["--push-name", "Verify_1"]), /^Error: --push-name must be a Workflow app name .*, got "Verify_1"$/);
        assert.throws(() => parseOptions(["--skip", "ssh"]), /^Error: --skip takes a check's name \(dns, tcp-80, .*\), got "ssh"/);
    });

    it("runs failed checks again until they pass, within the --retry bound, and keeps the last failure after it", async () => {
        let runs = 0;
        const flaky = async (): Promise<CheckResult[]> => [{ id: "certificate", target: "127.0.0.1", ok: ++runs >= 3, evidence: `run ${runs}` }];
        assert.deepEqual(await retried(flaky, 1_000, 10), [{ id: "certificate", target: "127.0.0.1", ok: true, evidence: "run 3" }]);
        runs = -100;
        const started = Date.now();
        const [last] = await retried(flaky, 200, 20);
        assert.equal(last.ok, false);
        assert.ok(Date.now() - started < 400, "bounded by --retry");
        runs = 0;
        assert.equal((await retried(flaky, 0, 10))[0].evidence, "run 1", "no retry by default");
    });

    it("refuses outputs that are not a stack's, naming each missing one", () => {
        assert.throws(
            () => parseOutputs({ platformDomain: PLATFORM, nodeIps: "1.2.3.4" }, "f.json"),
            /^Error: the outputs of f\.json are not a hephy-doks stack's \(run pulumi up first\?\): nodeIps must be a list of strings; kubeconfig must be a non-empty string; tillerCaCertPem must be a non-empty string$/,
        );
    });

    it("refuses outputs written without --show-secrets up front, exit 2, with how to write the file", async () => {
        // What `pulumi stack output --json` writes for secret outputs without --show-secrets.
        const hidden = { platformDomain: PLATFORM, nodeIps: ["127.0.0.1"], kubeconfig: "[secret]", tillerCaCertPem: "pem", workflowAdminPassword: "[secret]" };
        await withOutputsFile(hidden, async (file) => {
            const lines: string[] = [];
            assert.equal(await main(["--outputs", file], (t) => lines.push(t)), 2);
            assert.deepEqual(lines, [
                `verify: the outputs of ${file} hide their secrets (kubeconfig, workflowAdminPassword read "[secret]"): they were written without --show-secrets. ` +
                    "Write them with (umask 077; pulumi stack output --json --show-secrets > FILE)",
            ]);
            assert.ok(HELP.replace(/\s+/g, " ").includes("(umask 077; pulumi stack output --json --show-secrets > FILE)"));
        });
    });

    it("runs from an outputs file, reports in JSON with where to look, and exits 1 on a failure, 2 when it cannot run", async function () {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "verify-cli-"));
        const file = path.join(dir, "outputs.json");
        const lines: string[] = [];
        assert.equal(await main(["--outputs", file], (t) => lines.push(t)), 2);
        assert.equal(
            lines[0],
            `verify: cannot read the outputs file ${file} (ENOENT): write it with (umask 077; pulumi stack output --json --show-secrets > ${file}), or leave out --outputs`,
        );
        fs.writeFileSync(file, "{not json");
        assert.equal(await main(["--outputs", file], (t) => lines.push(t)), 2);
        assert.equal(lines[1], `verify: the outputs file ${file} is not JSON: write it with pulumi stack output --json --show-secrets`);
        lines.length = 0;
        await using([dnsServer(PLATFORM, ["127.0.0.1"])], async ([dns]) => {
            const api = kubeconfigFor(`https://127.0.0.1:${await closedPort()}`);
            fs.writeFileSync(
                file,
                JSON.stringify({ platformDomain: PLATFORM, nodeIps: ["127.0.0.1"], kubeconfig: api, tillerCaCertPem: "pem", exposedServices: [] }),
            );
            const out: string[] = [];
            const dead = await closedPort();
            const reach = { ports: { http: dead, https: dead, ssh: dead }, retryPauseMs: 10 };
            assert.equal(await main(["--outputs", file, "--watch", "0", "--json", "--dns-server", `127.0.0.1:${dns.port}`], (t) => out.push(t), reach), 1);
            const report = JSON.parse(out.join("\n"));
            assert.equal(report.ok, false);
            assert.equal(report.checks[0].id, "dns");
            assert.equal(report.checks[0].ok, true, report.checks[0].evidence);
            const failed = report.checks.filter((c: { ok: boolean }) => !c.ok);
            assert.ok(failed.length >= 5);
            assert.ok(failed.every((c: { lookAt?: string; id: keyof typeof CHECKS }) => c.lookAt === CHECKS[c.id].lookAt));
            assert.ok(!report.checks.some((c: { id: string }) => c.id === "ssh-banner" || c.id === "push"), "no Workflow in the outputs, no --push");
        });
        fs.rmSync(dir, { recursive: true, force: true });
    });
});
