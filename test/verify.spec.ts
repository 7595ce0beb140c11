import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { PersistentVolumeClaim, Pod, Secret, Service } from "kubernetes-models/v1";
import { UPSTREAM } from "../catalog";
import { HELM_OPERATOR } from "../components/helmOperator";
import { TILLER } from "../components/tiller";
import { CHECKS, CheckResult } from "../verify/checks";
import { CLUSTER_FACTS, checkRevisions, clusterChecks, compareRevisions, kubeConfig } from "../verify/cluster";
import { DEFAULT_WATCH_MINUTES, HELP, main, parseOptions, PRODUCTION_ISSUER, retried } from "../verify/main";
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
} from "../verify/network";
import { parseOutputs } from "../verify/outputs";
import { checkPush, SAMPLE_APP } from "../verify/push";
import { WORKFLOW_HOSTS } from "../workflowAccess";
import { ROOT } from "../offline/harness";
import { bannerServer, dnsServer, httpServer, httpsServer, kubeconfigFor, kubernetesApi, Listening, testPki, TestPki, tillerServer } from "./standIns";

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

function door(overrides: Partial<FrontDoor> = {}): FrontDoor {
    return {
        platformDomain: PLATFORM,
        nodeIps: ["127.0.0.1"],
        workflow: true,
        ports: { http: 1, https: 1, ssh: 1 },
        dnsServers: [],
        productionIssuer: PRODUCTION_ISSUER,
        minDaysLeft: 14,
        ...overrides,
    };
}

describe("npm run verify: the front door, against loopback stand-ins", () => {
    let pki: TestPki;
    before(async () => {
        pki = await testPki("verify-front-door");
    });

    it("dns: a random name under the wildcard resolves to exactly the nodes, and names the missing and the extra", async () => {
        await using([dnsServer(PLATFORM, ["127.0.0.1", "127.0.0.2"])], async ([dns]) => {
            const servers = [`127.0.0.1:${dns.port}`];
            const passed = await checkDns(door({ nodeIps: ["127.0.0.2", "127.0.0.1"], dnsServers: servers }));
            assert.equal(passed.ok, true, passed.evidence);
            assert.match(passed.evidence, /^hephy-doks-verify-[0-9a-f]{8}\.staging\.hephy-demo\.net → 127\.0\.0\.1, 127\.0\.0\.2$/);
            assert.match((dns as unknown as { asked: string[] }).asked[0], /^hephy-doks-verify-[0-9a-f]{8}\.staging\.hephy-demo\.net$/);
            const failed = await checkDns(door({ nodeIps: ["127.0.0.1", "127.0.0.3"], dnsServers: servers }));
            assert.equal(failed.ok, false);
            assert.match(failed.evidence, /nodes missing: 127\.0\.0\.3; not nodes: 127\.0\.0\.2$/);
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

    it("certificate: trusted, for the controller's name, from the production issuer and not about to expire; each fault named", async () => {
        const serve = async (names: string[], issuerOrg: string, validityHours: number) =>
            httpsServer(await pki.issue(names, { issuerOrg, validityHours }), (_, r) => r.end());
        const check = async (server: Promise<Listening>, trusted = true) =>
            using([server], ([s]) => checkCertificate(door({ ports: { http: 1, https: s.port, ssh: 1 }, ca: trusted ? [pki.root] : undefined }), "127.0.0.1"));

        const good = await check(serve([CONTROLLER], "Let's Encrypt", 24 * 60));
        assert.equal(good.ok, true, good.evidence);
        assert.match(good.evidence, /^deis\.staging\.hephy-demo\.net: issuer R99 \(Let's Encrypt\), valid to .*, 59 days left$/);

        const staging = await check(serve([CONTROLLER], "(STAGING) Let's Encrypt", 24 * 60));
        assert.equal(staging.ok, false);
        assert.match(staging.evidence, /; not from Let's Encrypt's production issuer$/);
        const expiring = await check(serve([CONTROLLER], "Let's Encrypt", 24 * 10));
        assert.match(expiring.evidence, /, 9 days left; expires within 14 days$/);
        const otherName = await check(serve([`other.${PLATFORM}`], "Let's Encrypt", 24 * 60));
        assert.match(otherName.evidence, /not valid for deis\.staging\.hephy-demo\.net \(it names DNS:other\.staging\.hephy-demo\.net\)/);
        const untrusted = await check(serve([CONTROLLER], "Let's Encrypt", 24 * 60), false);
        assert.match(untrusted.evidence, /not trusted \(UNABLE_TO_GET_ISSUER_CERT_LOCALLY\)/);
        assert.ok(![staging, expiring, otherName, untrusted].some((r) => r.ok));
    });

    it("http01: a challenge path answered passes, one redirected to HTTPS fails with where it goes", async () => {
        const seen: string[] = [];
        const answer = (status: number) =>
            httpServer((request, response) => {
                seen.push(`${request.headers.host} ${request.url}`);
                response.writeHead(status, status === 302 ? { location: `https://${request.headers.host}${request.url}` } : {}).end();
            });
        const check = (server: Promise<Listening>) => using([server], ([s]) => checkHttp01(door({ ports: { http: s.port, https: 1, ssh: 1 } }), "127.0.0.1"));
        const answered = await check(answer(404));
        assert.equal(answered.ok, true, answered.evidence);
        assert.match(seen[0], /^hephy-doks-verify-[0-9a-f]{8}\.staging\.hephy-demo\.net \/\.well-known\/acme-challenge\/[0-9a-f]{16}$/);
        const redirected = await check(answer(302));
        assert.equal(redirected.ok, false);
        assert.match(redirected.evidence, /→ 302, redirected to https:\/\/hephy-doks-verify-/);
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
                        ["tcp-80", "tcp-443", "certificate", "http01", "ssh-banner", "controller-health"].map((id) => `${id} ${ip}`),
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

    const withCluster = async (
        responses: Record<string, unknown>,
        tiller: { verifyClients: boolean; pair?: { cert: string; key: string } },
        body: (api: Awaited<ReturnType<typeof kubernetesApi>>) => Promise<void>,
    ) => {
        const tillerListening = await tillerServer(tiller.pair ?? tillerPair, pki.root, tiller.verifyClients);
        const api = await kubernetesApi(
            { "/api/v1/namespaces/flux/secrets/helm-client": clientSecret, ...responses },
            { pair: apiPair, ca: pki.root },
            tillerListening.port,
        );
        try {
            await body(api);
        } finally {
            await api.close();
            await tillerListening.close();
        }
    };
    const run = (api: { kubeconfig: string }, exposedServices: string[] = []) =>
        clusterChecks({ kubeconfig: api.kubeconfig, tillerCaCertPem: pki.root, exposedServices, workflow: true, settleMs: 150 });
    const byId = (results: CheckResult[], id: string) => results.filter((r) => r.id === id);

    it("holds the recorded answers to the API's own schemas", () => {
        const answers = recorded();
        const models: Record<string, new (o: any) => { validate(): void }> = {
            PodList: Pod,
            ServiceList: Service,
            PersistentVolumeClaimList: PersistentVolumeClaim,
            SecretList: Secret,
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
        assert.ok(validated >= 20, `${validated} objects validated`);
    });

    it("passes a healthy cluster, asking only what the real client asks and the stand-in answers", async () => {
        await withCluster(recorded(), { verifyClients: true }, async (api) => {
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
                /^pod tiller-deploy-7d9f8-abcde: helm-operator's certificate accepted, no certificate refused \(alert [a-z ]+\)$/,
            );
            assert.match(byId(results, "pods-ready")[0].evidence, /^15 pods ready in cert-manager, deis, flux, haproxy-ingress and Tiller's$/);
            assert.equal(byId(results, "storage-bound")[0].evidence, "deis/deis-minio-data Bound 10Gi");
            assert.deepEqual(
                api.requests.filter((r) => !r.answered),
                [],
            );
            assert.equal(api.requests.filter((r) => r.url === "/apis/helm.fluxcd.io/v1/helmreleases").length, 1, "listed once a pass");
            assert.deepEqual([...new Set(api.requests.map((r) => `${r.method} ${r.url.split("?")[0]}`))].sort(), [
                "GET /api/v1/namespaces/cert-manager/pods",
                "GET /api/v1/namespaces/deis/pods",
                "GET /api/v1/namespaces/flux/pods",
                "GET /api/v1/namespaces/flux/secrets/helm-client",
                "GET /api/v1/namespaces/haproxy-ingress/pods",
                "GET /api/v1/namespaces/kube-system/pods",
                "GET /api/v1/persistentvolumeclaims",
                "GET /api/v1/services",
                "GET /apis/helm.fluxcd.io/v1/helmreleases",
                "WEBSOCKET /api/v1/namespaces/kube-system/pods/tiller-deploy-7d9f8-abcde/portforward",
            ]);
        });
    });

    it("helmreleases: fails a release not released, with helm-operator's message, and an unobserved generation", async () => {
        const answers = recorded();
        const [ingress, , hephy] = answers["/apis/helm.fluxcd.io/v1/helmreleases"].items;
        hephy.status.conditions[2] = {
            type: "Released",
            status: "False",
            reason: "HelmUpgradeFailed",
            message: "upgrade failed: timed out waiting for the condition",
        };
        hephy.status.releaseStatus = "failed";
        ingress.metadata.generation = 2;
        await withCluster(answers, { verifyClients: true }, async (api) => {
            const failed = byId(await run(api), "helmreleases").filter((r) => !r.ok);
            assert.deepEqual(
                failed.map((r) => `${r.target}: ${r.evidence}`),
                [
                    "haproxy-ingress/ingress: release ingress deployed, Released True, generation 1/2: Release was successful for Helm release 'ingress' in 'haproxy-ingress'.",
                    "deis/hephy: release hephy failed, Released False, generation 1/1: upgrade failed: timed out waiting for the condition",
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

    it("tiller-mtls: fails a Tiller that takes clients without a certificate, or whose certificate is not the stack CA's", async () => {
        await withCluster(recorded(), { verifyClients: false }, async (api) => {
            const [open] = byId(await run(api), "tiller-mtls");
            assert.equal(open.ok, false);
            assert.match(open.evidence, /no certificate accepted; accepted a client without a certificate$/);
        });
        const stranger = await (await testPki("verify-stranger")).leaf([CLUSTER_FACTS.tillerHostname], ["digital_signature", "server_auth"]);
        await withCluster(recorded(), { verifyClients: true, pair: stranger }, async (api) => {
            const [foreign] = byId(await run(api), "tiller-mtls");
            assert.equal(foreign.ok, false);
            assert.match(foreign.evidence, /its certificate is not the stack CA's for tiller-deploy\.kube-system: UNABLE_TO_VERIFY_LEAF_SIGNATURE$/);
        });
        const noPod = recorded();
        noPod["/api/v1/namespaces/kube-system/pods?labelSelector=app%3Dhelm%2Cname%3Dtiller"].items[0].status.phase = "Pending";
        await withCluster(noPod, { verifyClients: true }, async (api) => {
            const [missing] = byId(await run(api), "tiller-mtls");
            assert.deepEqual([missing.ok, missing.evidence], [false, "no running Tiller pod (app=helm,name=tiller) in kube-system"]);
        });
    });

    it("pods-ready and storage-bound: a pod not ready and a claim not bound fail, named with the reason", async () => {
        const answers = recorded();
        const controller = answers["/api/v1/namespaces/deis/pods"].items[1];
        controller.status.conditions[1].status = "False";
        controller.status.containerStatuses[0].state = { waiting: { reason: "CrashLoopBackOff" } };
        answers["/api/v1/persistentvolumeclaims"].items[0].status = { phase: "Pending" };
        await withCluster(answers, { verifyClients: true }, async (api) => {
            const results = await run(api);
            assert.deepEqual(
                byId(results, "pods-ready").map((r) => [r.ok, r.evidence]),
                [[false, "not ready: deis/deis-controller-6c-bbbbb Running (CrashLoopBackOff)"]],
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
        assert.deepEqual(CLUSTER_FACTS.operator, { namespace: HELM_OPERATOR.namespace, clientSecret: HELM_OPERATOR.clientSecret });
        assert.equal(CONTROLLER_HOST, WORKFLOW_HOSTS.controller);
    });
});

describe("npm run verify --push: the seed's end-to-end run, against a stand-in controller and git remote", () => {
    /**
     * Workflow's API on loopback, routed as teamhephy/controller rootfs/api/urls.py routes it: login,
     * keys (`keys/(?P<id>.+)/?$`, so a trailing slash is part of the id) and apps; an app is served
     * once its push has landed.
     */
    function controllerStandIn(bare: string, opts: { serveApps: boolean; deleteFails?: boolean }) {
        const calls: string[] = [];
        const keys = new Set<string>();
        const apps = new Set<string>();
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
                    return JSON.parse(body).password === "s3cret" ? json(200, { token: "abc" }) : json(401, { detail: "bad credentials" });
                if (auth !== "token abc") return json(401, { detail: "Authentication credentials were not provided." });
                if (request.method === "POST" && url === "/v2/keys/") return (keys.add(JSON.parse(body).id), json(201, JSON.parse(body)));
                if (request.method === "POST" && url === "/v2/apps/") return (apps.add(JSON.parse(body).id), json(201, JSON.parse(body)));
                const key = /^\/v2\/keys\/(.+)\/?$/.exec(url)?.[1];
                if (request.method === "DELETE" && key !== undefined)
                    return keys.delete(decodeURIComponent(key)) ? json(204) : json(404, { detail: "Not found." });
                const app = /^\/v2\/apps\/([-_\w]+)\/?$/.exec(url)?.[1];
                if (request.method === "DELETE" && app !== undefined) {
                    if (opts.deleteFails) return json(500, { detail: "boom" });
                    return apps.delete(app) ? json(204) : json(404, { detail: "Not found." });
                }
                return json(404);
            });
        };
        return { calls, keys, apps, server: httpServer(handler) };
    }

    const push = async (opts: { serveApps: boolean; deleteFails?: boolean; password?: string; remote?: string }) => {
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
                appDir: SAMPLE_APP,
                deadlineMs: 600,
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
            new RegExp(`^app ${app} created, pushed, GET http://127\\.0\\.0\\.1:\\d+/served/${app} → 200: hephy-doks verify: served; app and key removed$`),
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
            /^app verify-[0-9a-f]{6} created, git failed: fatal: '.*no-such-remote-for-verify' does not appear to be a git repository; app and key removed$/,
        );
        assert.deepEqual(refused.left, []);
    });

    it("names what it leaves behind when removal fails, and stops at a refused login with nothing created", async () => {
        const leftover = await push({ serveApps: true, deleteFails: true });
        assert.equal(leftover.result.ok, false);
        assert.match(leftover.result.evidence, /; left behind: app (verify-[0-9a-f]{6}) \(deis apps:destroy -a \1, deis keys:remove \1\)$/);
        const refused = await push({ serveApps: true, password: "wrong" });
        assert.equal(refused.result.ok, false);
        assert.match(refused.result.evidence, /^POST \/v2\/auth\/login\/ → 401 \{"detail":"bad credentials"\}; app and key removed$/);
        assert.deepEqual(refused.calls, ["POST /v2/auth/login/ username,password"]);
    });
});

describe("npm run verify's command line", () => {
    it("documents every check in --help, and every option it reads", () => {
        for (const [id, check] of Object.entries(CHECKS)) {
            assert.ok(HELP.includes(`  ${id} `), `--help lists ${id}`);
            assert.ok(HELP.replace(/\s+/g, " ").includes(check.proves), `--help says what ${id} proves`);
        }
        for (const option of ["--stack", "--outputs", "--watch", "--retry", "--push", "--push-app", "--dns-server", "--skip", "--json", "--help"]) {
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
            dnsServers: [],
            skip: [],
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

    it("runs from an outputs file, reports in JSON with where to look, and exits 1 on a failure, 2 when it cannot run", async function () {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "verify-cli-"));
        const file = path.join(dir, "outputs.json");
        const lines: string[] = [];
        assert.equal(await main(["--outputs", file], (t) => lines.push(t)), 2);
        assert.match(lines[0], /^verify: ENOENT/);
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
