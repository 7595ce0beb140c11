import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as path from "node:path";
import { esmImport, ROOT } from "../offline/harness";
import { inClusterEnv, python36Imports } from "./inCluster";
import { ClusterState, clusterApi } from "./standIns";

/**
 * The route reconciler (charts/hephy-workflow/files/routes/routes.py), its real code run by python3
 * against a stand-in API server, with each app Service exactly as the v2.22.0 controller writes it for
 * a `deis` command (rootfs/api/models/app.py, domain.py, certificate.py, tls.py).
 */

const ROUTES = path.join(ROOT, "charts", "hephy-workflow", "files", "routes", "routes.py");
const PLATFORM = "paas.hephy-demo.net";
const ISSUER = "letsencrypt-prod";

interface Written {
    status: number;
    log: string[];
}

/** The reconciler's environment as the chart sets it, pointed at the stand-in at `port`. */
function reconcilerEnv(port: number, extra: Record<string, string>): NodeJS.ProcessEnv {
    return inClusterEnv(port, { PLATFORM_DOMAIN: PLATFORM, ...extra });
}

/** One pass of the reconciler (`--once`) against the stand-in at `port`. */
function pass(port: number): Promise<Written> {
    return new Promise((resolve, reject) => {
        const child = spawn("python3", [ROUTES, "--once"], {
            env: reconcilerEnv(port, { CLUSTER_ISSUER: ISSUER }),
        });
        let out = "";
        child.stdout.on("data", (chunk) => (out += chunk));
        child.stderr.on("data", (chunk) => (out += chunk));
        child.on("error", reject);
        child.on("close", (status) => resolve({ status: status ?? -1, log: out.split("\n").filter(Boolean) }));
    });
}

/** An app's Service as the controller writes it after `deis create <app>` and a first deploy, then the commands' annotations. */
function appService(app: string, annotations: Record<string, string> = {}, routable = true, created = "2026-11-29T10:00:00Z"): any {
    return {
        apiVersion: "v1",
        kind: "Service",
        metadata: {
            name: app,
            namespace: app,
            uid: `uid-service-${app}`,
            creationTimestamp: created,
            labels: { app, heritage: "deis", ...(routable ? { "router.deis.io/routable": "true" } : {}) },
            annotations: { "router.deis.io/domains": app, ...annotations },
        },
        spec: { ports: [{ name: "http", port: 80, targetPort: 5000, protocol: "TCP" }], selector: { app, heritage: "deis", type: "web" } },
    };
}

/** The Ingress the controller's overlay makes at `deis create` (charts/hephy-workflow/files/ingress.py). */
function overlayIngress(app: string): any {
    return {
        apiVersion: "networking.k8s.io/v1",
        kind: "Ingress",
        metadata: { name: app, namespace: app, uid: `uid-ingress-${app}`, resourceVersion: "7", creationTimestamp: "2026-11-29T10:00:01Z" },
        // Class-less as the overlay sends it; the API server gave it the default class.
        spec: {
            ingressClassName: "nginx",
            rules: [
                { host: `${app}.${PLATFORM}`, http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: app, port: { number: 80 } } } }] } },
            ],
        },
    };
}

const hostsOf = (ingress: any) => ingress.spec.rules.map((r: any) => r.host);

describe("the route reconciler (files/routes/routes.py), under python3 against a stand-in API server", function () {
    this.timeout(20000);
    let validate: (ingress: any) => void;
    let state: ClusterState;
    let api: Awaited<ReturnType<typeof clusterApi>>;

    before(async () => {
        const { Ingress } = await esmImport("kubernetes-models/networking.k8s.io/v1");
        validate = (ingress) => new Ingress(ingress).validate();
    });
    beforeEach(async () => {
        state = { services: new Map(), ingresses: new Map(), defaultIngressClass: "nginx" };
        api = await clusterApi(state, (ingress) => validate(ingress));
    });
    afterEach(() => api.close());

    const withApp = (service: any, ingress: any = overlayIngress(service.metadata.name)) => {
        state.services.set(`${service.metadata.namespace}/${service.metadata.name}`, service);
        if (ingress) state.ingresses.set(`${ingress.metadata.namespace}/${ingress.metadata.name}`, ingress);
    };
    const ingress = (key: string) => state.ingresses.get(key);

    it("takes over a new app's Ingress and gives its host a certificate from the stack's issuer; a second pass writes nothing", async () => {
        withApp(appService("myapp"));
        const first = await pass(api.port);
        assert.equal(first.status, 0, first.log.join("\n"));
        const taken = ingress("myapp/myapp");
        assert.equal(taken.metadata.uid, "uid-ingress-myapp", "updated in place, not recreated");
        assert.deepEqual(taken.metadata.labels, { "app.kubernetes.io/managed-by": "hephy-doks-routes" });
        assert.deepEqual(taken.metadata.annotations, { "haproxy.org/ssl-redirect": "false", "cert-manager.io/cluster-issuer": ISSUER });
        assert.deepEqual(taken.metadata.ownerReferences, [{ apiVersion: "v1", kind: "Service", name: "myapp", uid: "uid-service-myapp" }]);
        assert.deepEqual(hostsOf(taken), [`myapp.${PLATFORM}`]);
        assert.deepEqual(taken.spec.tls, [{ hosts: [`myapp.${PLATFORM}`], secretName: taken.spec.tls[0].secretName }]);
        assert.match(taken.spec.tls[0].secretName, /^myapp-paas-hephy-demo-net-[0-9a-f]{10}-tls$/);
        assert.deepEqual(taken.spec.rules[0].http.paths, [{ path: "/", pathType: "Prefix", backend: { service: { name: "myapp", port: { number: 80 } } } }]);
        assert.equal(taken.spec.ingressClassName, "nginx", "the class the API server gave it is kept");
        const before = api.requests.length;
        const second = await pass(api.port);
        assert.deepEqual(api.requests.slice(before), ["GET /api/v1/services", "GET /apis/networking.k8s.io/v1/ingresses"], "level-triggered: nothing to write");
        assert.equal(second.status, 0);
    });

    it("deis domains:add: a custom domain and another platform subdomain become hosts, each with its certificate", async () => {
        withApp(appService("myapp", { "router.deis.io/domains": "myapp,shop,www.shop-demo.org" }));
        await pass(api.port);
        const taken = ingress("myapp/myapp");
        assert.deepEqual(hostsOf(taken), [`myapp.${PLATFORM}`, `shop.${PLATFORM}`, "www.shop-demo.org"]);
        assert.deepEqual(
            taken.spec.tls.map((t: any) => t.hosts),
            [[`myapp.${PLATFORM}`], [`shop.${PLATFORM}`], ["www.shop-demo.org"]],
        );
        assert.equal(new Set(taken.spec.tls.map((t: any) => t.secretName)).size, 3);
    });

    it("deis certs:attach: the attached certificate serves its host from an Ingress without an issuer; one for another app's domain is refused", async () => {
        withApp(appService("myapp", { "router.deis.io/domains": "myapp,www.shop-demo.org", "router.deis.io/certificates": "www.shop-demo.org:shop" }));
        await pass(api.port);
        assert.deepEqual(hostsOf(ingress("myapp/myapp")), [`myapp.${PLATFORM}`]);
        const attached = ingress("myapp/myapp.certs");
        assert.deepEqual(hostsOf(attached), ["www.shop-demo.org"]);
        assert.deepEqual(attached.spec.tls, [{ hosts: ["www.shop-demo.org"], secretName: "shop-cert" }]);
        assert.equal(attached.metadata.annotations["cert-manager.io/cluster-issuer"], undefined, "cert-manager leaves the user's Secret alone");
        assert.equal(attached.spec.ingressClassName, "nginx");
        const written = api.requests.length;
        await pass(api.port);
        assert.equal(api.requests.length - written, 2, "a created Ingress, given its class by the API server, is not rewritten");

        state.services.set(
            "myapp/myapp",
            appService("myapp", {
                "router.deis.io/domains": "myapp,www.shop-demo.org",
                "router.deis.io/certificates": "www.other.org:shop,www.shop-demo.org:Bad_Name",
            }),
        );
        const refused = await pass(api.port);
        assert.deepEqual(
            refused.log.filter((l) => !l.endsWith("write(s)")),
            [
                "hephy-doks routes: myapp/myapp: certificate shop is attached to www.other.org, which is not a domain of the app",
                "hephy-doks routes: myapp/myapp: certificate entry 'www.shop-demo.org:Bad_Name' names no certificate",
            ],
        );
        assert.deepEqual(hostsOf(ingress("myapp/myapp")), [`myapp.${PLATFORM}`, "www.shop-demo.org"], "the host falls back to an issued certificate");
        assert.equal(ingress("myapp/myapp.certs"), undefined, "the attached-certificate Ingress goes");
    });

    it("deis tls:enable: plain HTTP redirects to HTTPS ('True', as tls.py writes it)", async () => {
        withApp(appService("myapp", { "router.deis.io/ssl.enforce": "True" }));
        await pass(api.port);
        assert.equal(ingress("myapp/myapp").metadata.annotations["haproxy.org/ssl-redirect"], "true");
    });

    it("deis whitelist:add: only those sources reach the app; a malformed entry leaves the app's routes as they were", async () => {
        withApp(appService("myapp", { "router.deis.io/whitelist": "10.0.0.0/8,203.0.113.7,2001:db8::/32" }));
        await pass(api.port);
        assert.equal(ingress("myapp/myapp").metadata.annotations["haproxy.org/allow-list"], "10.0.0.0/8,203.0.113.7/32,2001:db8::/32");
        const applied = ingress("myapp/myapp");

        state.services.set("myapp/myapp", appService("myapp", { "router.deis.io/whitelist": "10.0.0.0/8,not-a-network" }));
        const bad = await pass(api.port);
        assert.deepEqual(bad.log, [
            "hephy-doks routes: myapp/myapp: whitelist entry 'not-a-network' is no address or network",
            "hephy-doks routes: myapp/myapp: left as it is until its whitelist is fixed",
        ]);
        assert.deepEqual(ingress("myapp/myapp"), applied, "never opened wider than asked");
    });

    it("deis maintenance:on: the app answers 503 with a short page; off, it is served again", async () => {
        withApp(appService("myapp", { "router.deis.io/maintenance": "True" }));
        await pass(api.port);
        assert.match(
            ingress("myapp/myapp").metadata.annotations["haproxy.org/backend-config-snippet"],
            /^http-request return status 503 content-type "text\/plain" string ".+"$/,
        );
        state.services.set("myapp/myapp", appService("myapp", { "router.deis.io/maintenance": "False" }));
        await pass(api.port);
        assert.equal(ingress("myapp/myapp").metadata.annotations["haproxy.org/backend-config-snippet"], undefined);
    });

    it("deis routing:disable, or the app's Service gone: its Ingresses go", async () => {
        withApp(appService("myapp", { "router.deis.io/domains": "myapp,www.shop-demo.org", "router.deis.io/certificates": "www.shop-demo.org:shop" }));
        withApp(appService("other"));
        await pass(api.port);
        assert.ok(ingress("myapp/myapp") && ingress("myapp/myapp.certs"));
        // `deis routing:disable` writes "false" (App.routable); a deploy of an unroutable app drops the label.
        const disabled = appService("myapp");
        disabled.metadata.labels["router.deis.io/routable"] = "false";
        state.services.set("myapp/myapp", disabled);
        state.services.delete("other/other");
        await pass(api.port);
        assert.deepEqual([...state.ingresses.keys()], [], "unroutable and deleted apps keep no route");
    });

    it("deis routing:disable takes every host of the app off the door, its per-process Services' too, which keep routable: true", async () => {
        withApp(appService("myapp"));
        // `deis services:add worker`: a per-process Service, labelled routable at its creation and never again.
        const worker = appService("myapp-worker", { "router.deis.io/domains": "myapp-worker" });
        worker.metadata.namespace = "myapp";
        worker.metadata.labels.app = "myapp";
        state.services.set("myapp/myapp-worker", worker);
        await pass(api.port);
        assert.deepEqual([...state.ingresses.keys()].sort(), ["myapp/myapp", "myapp/myapp-worker"]);
        // App.routable(False) (rootfs/api/models/app.py): the label on the app's own Service only.
        const disabled = appService("myapp");
        disabled.metadata.labels["router.deis.io/routable"] = "false";
        state.services.set("myapp/myapp", disabled);
        await pass(api.port);
        assert.equal(state.services.get("myapp/myapp-worker").metadata.labels["router.deis.io/routable"], "true", "as the controller leaves it");
        assert.deepEqual([...state.ingresses.keys()], [], "myapp-worker's host is off the door too");
        state.services.set("myapp/myapp", appService("myapp"));
        await pass(api.port);
        assert.deepEqual([...state.ingresses.keys()].sort(), ["myapp/myapp", "myapp/myapp-worker"], "routing:enable brings both back");
    });

    it("serves each host once: an unmanaged Ingress (Workflow's API) keeps its host, and the older app keeps a host two claim", async () => {
        state.ingresses.set("deis/deis-controller-api", {
            apiVersion: "networking.k8s.io/v1",
            kind: "Ingress",
            metadata: { name: "deis-controller-api", namespace: "deis", resourceVersion: "3" },
            spec: {
                rules: [
                    {
                        host: `deis.${PLATFORM}`,
                        http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "deis-controller", port: { number: 80 } } } }] },
                    },
                ],
            },
        });
        withApp(appService("newer", { "router.deis.io/domains": "newer,www.shop-demo.org" }, true, "2026-11-29T11:00:00Z"));
        withApp(appService("older", { "router.deis.io/domains": "older,www.shop-demo.org,deis" }, true, "2026-11-29T09:00:00Z"));
        const result = await pass(api.port);
        assert.deepEqual(
            result.log.filter((l) => l.includes("already served")),
            [
                `hephy-doks routes: older/older: host deis.${PLATFORM} is already served by Ingress deis/deis-controller-api`,
                "hephy-doks routes: newer/newer: host www.shop-demo.org is already served by Service older/older",
            ],
        );
        assert.deepEqual(hostsOf(ingress("older/older")), [`older.${PLATFORM}`, "www.shop-demo.org"]);
        assert.deepEqual(hostsOf(ingress("newer/newer")), [`newer.${PLATFORM}`]);
        assert.equal(ingress("deis/deis-controller-api").metadata.labels, undefined, "never touched");
        const hosts = [...state.ingresses.values()].flatMap(hostsOf);
        assert.equal(new Set(hosts).size, hosts.length, "no host in two Ingresses");
    });

    it("a wildcard custom domain is routed, but not given a certificate HTTP-01 cannot issue", async () => {
        withApp(appService("myapp", { "router.deis.io/domains": "myapp,*.shop-demo.org" }));
        const result = await pass(api.port);
        assert.deepEqual(hostsOf(ingress("myapp/myapp")), [`myapp.${PLATFORM}`, "*.shop-demo.org"]);
        assert.deepEqual(
            ingress("myapp/myapp").spec.tls.map((t: any) => t.hosts[0]),
            [`myapp.${PLATFORM}`],
        );
        assert.ok(
            result.log.includes(
                "hephy-doks routes: myapp/myapp: *.shop-demo.org is a wildcard, which HTTP-01 cannot certify; attach a certificate (deis certs:attach)",
            ),
        );
    });

    it("survives API errors: a failed write is logged and the next pass repairs it; a failed list fails the pass", async () => {
        withApp(appService("myapp"));
        api.fail("PUT", "/apis/networking.k8s.io/v1/namespaces/myapp/ingresses", 500);
        const failed = await pass(api.port);
        assert.equal(failed.status, 0);
        assert.ok(
            failed.log.some((l) => l.startsWith("hephy-doks routes: myapp/myapp: writing the Ingress answered 500")),
            failed.log.join("\n"),
        );
        assert.equal(ingress("myapp/myapp").metadata.labels, undefined);
        await pass(api.port);
        assert.deepEqual(ingress("myapp/myapp").metadata.labels, { "app.kubernetes.io/managed-by": "hephy-doks-routes" });
        api.fail("GET", "/api/v1/services", 503);
        const down = await pass(api.port);
        assert.equal(down.status, 1);
        assert.deepEqual(down.log, ["hephy-doks routes: pass failed: listing /api/v1/services answered 503: stand-in failure"]);
    });

    it("normalises a whitelist to what HAProxy parses: netmask notation becomes a prefix, a lone address a /32", async () => {
        withApp(appService("myapp", { "router.deis.io/whitelist": "10.0.0.0/255.0.0.0,203.0.113.7,10.1.2.3/16" }));
        await pass(api.port);
        assert.equal(ingress("myapp/myapp").metadata.annotations["haproxy.org/allow-list"], "10.0.0.0/8,203.0.113.7/32,10.1.0.0/16");
    });

    it("deis domains:remove: the host goes, with its certificate entry; a domain that is no host name is refused", async () => {
        withApp(appService("myapp", { "router.deis.io/domains": "myapp,www.shop-demo.org" }));
        await pass(api.port);
        state.services.set("myapp/myapp", appService("myapp", { "router.deis.io/domains": "myapp,bad_domain!" }));
        const result = await pass(api.port);
        assert.deepEqual(hostsOf(ingress("myapp/myapp")), [`myapp.${PLATFORM}`]);
        assert.deepEqual(
            ingress("myapp/myapp").spec.tls.map((t: any) => t.hosts[0]),
            [`myapp.${PLATFORM}`],
        );
        assert.ok(result.log.includes("hephy-doks routes: myapp/myapp: domain 'bad_domain!' is not a host name"), result.log.join("\n"));
    });

    it("keeps each app's own host, and refuses a wildcard that would catch the platform's", async () => {
        withApp(appService("victim", {}, true, "2026-11-29T11:00:00Z"));
        withApp(appService("thief", { "router.deis.io/domains": `thief,victim.${PLATFORM},*.${PLATFORM}` }, true, "2026-11-29T09:00:00Z"));
        const result = await pass(api.port);
        assert.deepEqual(hostsOf(ingress("thief/thief")), [`thief.${PLATFORM}`]);
        assert.deepEqual(hostsOf(ingress("victim/victim")), [`victim.${PLATFORM}`]);
        assert.deepEqual(
            result.log.filter((l) => l.includes("thief")),
            [
                `hephy-doks routes: thief/thief: domain *.${PLATFORM} would catch other apps' hosts under the platform domain`,
                `hephy-doks routes: thief/thief: host victim.${PLATFORM} is app victim's own`,
            ],
        );
    });

    it("leaves cert-manager's HTTP-01 solver alone, and no claim on the host it certifies", async () => {
        withApp(appService("myapp"));
        state.ingresses.set("myapp/cm-acme-http-solver-x7k2p", {
            apiVersion: "networking.k8s.io/v1",
            kind: "Ingress",
            metadata: {
                name: "cm-acme-http-solver-x7k2p",
                namespace: "myapp",
                resourceVersion: "11",
                labels: { "acme.cert-manager.io/http01-solver": "true" },
            },
            spec: {
                rules: [
                    {
                        host: `myapp.${PLATFORM}`,
                        http: {
                            paths: [
                                {
                                    path: "/.well-known/acme-challenge/token",
                                    pathType: "Exact",
                                    backend: { service: { name: "cm-acme-http-solver-abcde", port: { number: 8089 } } },
                                },
                            ],
                        },
                    },
                ],
            },
        });
        const result = await pass(api.port);
        assert.deepEqual(hostsOf(ingress("myapp/myapp")), [`myapp.${PLATFORM}`], "the app keeps its host while its certificate is issued");
        assert.equal(ingress("myapp/cm-acme-http-solver-x7k2p").metadata.resourceVersion, "11");
        assert.deepEqual(
            result.log.filter((l) => l.includes("already served")),
            [],
        );
    });

    it("routes a per-process Service under the app's access rules, so its host cannot bypass them", async () => {
        withApp(appService("myapp", { "router.deis.io/whitelist": "10.0.0.0/8", "router.deis.io/ssl.enforce": "True", "router.deis.io/maintenance": "true" }));
        const worker = appService("myapp-worker", { "router.deis.io/domains": "myapp-worker" });
        worker.metadata.namespace = "myapp";
        worker.metadata.labels.app = "myapp";
        state.services.set("myapp/myapp-worker", worker);
        await pass(api.port);
        const routed = ingress("myapp/myapp-worker");
        assert.deepEqual(hostsOf(routed), [`myapp-worker.${PLATFORM}`]);
        assert.deepEqual(
            [
                routed.metadata.annotations["haproxy.org/allow-list"],
                routed.metadata.annotations["haproxy.org/ssl-redirect"],
                Boolean(routed.metadata.annotations["haproxy.org/backend-config-snippet"]),
            ],
            ["10.0.0.0/8", "true", true],
        );
        assert.equal(routed.spec.rules[0].http.paths[0].backend.service.name, "myapp-worker");
    });

    it("keeps going past a Service it cannot read, leaving that one's routes as they are; Services not Workflow's are not routed", async () => {
        withApp(appService("myapp"));
        await pass(api.port);
        const broken = appService("myapp");
        delete broken.metadata.uid;
        state.services.set("myapp/myapp", broken);
        withApp(appService("other"));
        const stranger = appService("stranger");
        delete stranger.metadata.labels.heritage;
        withApp(stranger, null);
        const result = await pass(api.port);
        assert.equal(result.status, 0);
        assert.ok(
            result.log.some((l) => l.startsWith("hephy-doks routes: myapp/myapp: left as it is, its Service cannot be read")),
            result.log.join("\n"),
        );
        assert.ok(ingress("myapp/myapp"), "kept");
        assert.ok(ingress("other/other"), "the next app is routed");
        assert.equal(ingress("stranger/stranger"), undefined, "a Service without heritage: deis is not an app's");
    });

    it("between passes, watches Services and Ingresses from the last lists' versions, so an edit of either is repaired within seconds", async () => {
        withApp(appService("myapp"));
        const child = spawn("python3", [ROUTES], {
            env: reconcilerEnv(api.port, { RESYNC_SECONDS: "1" }),
        });
        try {
            await new Promise((resolve) => setTimeout(resolve, 1500));
        } finally {
            child.kill();
        }
        const watches = api.requests.filter((r) => r.includes("watch=true"));
        assert.ok(watches.length >= 2, api.requests.join("\n"));
        assert.deepEqual(
            watches
                .slice(0, 2)
                .map((w) => w.replace(/resourceVersion=\d+/, "resourceVersion=N"))
                .sort(),
            [
                "GET /api/v1/services?watch=true&resourceVersion=N&timeoutSeconds=1",
                "GET /apis/networking.k8s.io/v1/ingresses?watch=true&resourceVersion=N&timeoutSeconds=1",
            ],
        );
        assert.ok(ingress("myapp/myapp"), "a pass ran first");
    });

    it("parses as the controller image's Python 3.6, with the standard library and the shared client only", () => {
        assert.deepEqual(python36Imports(ROUTES), { imports: ["hashlib", "ipaddress", "os", "re", "sys"], from: ["kubeclient"] });
        const walrus = spawnSync("python3", ["-c", "import ast; ast.parse('(x := 1)', feature_version=(3, 6))"], { encoding: "utf8" });
        assert.notEqual(walrus.status, 0, "the check refuses newer syntax");
    });

    it("leaves Ingresses it does not own alone, in app namespaces too", async () => {
        withApp(appService("myapp"));
        state.ingresses.set("myapp/hand-made", {
            apiVersion: "networking.k8s.io/v1",
            kind: "Ingress",
            metadata: { name: "hand-made", namespace: "myapp", resourceVersion: "9" },
            spec: {
                rules: [
                    {
                        host: "hand.example-shop.org",
                        http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "myapp", port: { number: 80 } } } }] },
                    },
                ],
            },
        });
        await pass(api.port);
        assert.equal(ingress("myapp/hand-made").metadata.resourceVersion, "9");
    });
});
