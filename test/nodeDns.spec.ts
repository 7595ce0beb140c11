import * as assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT } from "../offline/harness";
import { inClusterEnv, python36Imports } from "./inCluster";
import { digitalOceanApi, nodesApi, NodeState } from "./nodeDnsStandIns";

/**
 * The node DNS reconciler (incluster/nodedns.py), its real code run by python3 against a stand-in of
 * DigitalOcean's domain records API and of the Kubernetes API, through what DigitalOcean does to a
 * cluster's nodes: joins, cordons, deaths, a surge upgrade that replaces every node.
 */

const NODEDNS = path.join(ROOT, "incluster", "nodedns.py");
const ZONE = "hephy-demo.net";
const NAME = "*.paas";
const FQDN = `${NAME}.${ZONE}`;
const SELECTOR = "app.kubernetes.io/name=kubernetes-ingress";
const OWN_TTL = 30;

describe("the node DNS reconciler (incluster/nodedns.py), under python3 against stand-ins of DigitalOcean's and the Kubernetes API", function () {
    this.timeout(20000);
    let dns: Awaited<ReturnType<typeof digitalOceanApi>>;
    let kube: Awaited<ReturnType<typeof nodesApi>>;
    let work: string;

    beforeEach(async () => {
        dns = await digitalOceanApi(ZONE, NAME);
        kube = await nodesApi("haproxy-ingress", SELECTOR);
        work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-nodedns-"));
    });
    afterEach(async () => {
        await Promise.all([dns.close(), kube.close()]);
        fs.rmSync(work, { recursive: true, force: true });
    });

    const env = (extra: Record<string, string> = {}) =>
        inClusterEnv(kube.port, {
            DIGITALOCEAN_API: `http://127.0.0.1:${dns.port}`,
            DIGITALOCEAN_TOKEN: "dop_v1_dns-only",
            DOMAIN: ZONE,
            RECORD_NAME: NAME,
            TTL_SECONDS: String(OWN_TTL),
            INGRESS_NAMESPACE: "haproxy-ingress",
            INGRESS_SELECTOR: SELECTOR,
            POD_NAMESPACE: "haproxy-ingress",
            DEPLOYMENT_NAME: "hephy-doks-node-dns",
            READY_FILE: path.join(work, "ready"),
            ...extra,
        });
    const run = (args: string[], extra: Record<string, string> = {}): { child: ChildProcess; done: Promise<{ status: number | null; log: string[] }> } => {
        const child = spawn("python3", [NODEDNS, ...args], { env: env(extra) });
        let out = "";
        child.stdout!.on("data", (chunk) => (out += chunk));
        child.stderr!.on("data", (chunk) => (out += chunk));
        const done = new Promise<{ status: number | null; log: string[] }>((resolve) =>
            child.on("close", (status) => resolve({ status, log: out.split("\n").filter(Boolean) })),
        );
        return { child, done };
    };
    const pass = async (extra: Record<string, string> = {}) => {
        const result = await run(["--once"], extra).done;
        return result;
    };
    const node = (name: string, ip: string, state: Partial<NodeState> = {}) =>
        kube.nodes.set(name, { name, ready: true, addresses: [ip], ingressReady: true, ...state });
    const own = () =>
        [...dns.records.values()]
            .filter((r) => r.name === NAME)
            .map((r) => [r.data, r.ttl])
            .sort();

    it("publishes every serving node's public address under the wildcard, with a 30 s TTL, and writes nothing when nothing changed", async () => {
        node("pool-a", "203.0.113.1");
        node("pool-b", "203.0.113.2");
        node("pool-c", "203.0.113.3");
        const first = await pass();
        assert.equal(first.status, 0, first.log.join("\n"));
        assert.deepEqual(own(), [
            ["203.0.113.1", OWN_TTL],
            ["203.0.113.2", OWN_TTL],
            ["203.0.113.3", OWN_TTL],
        ]);
        assert.ok(fs.existsSync(path.join(work, "ready")), "ready once it publishes alone");
        const before = dns.requests.length;
        await pass();
        const list = `GET /v2/domains/${ZONE}/records?type=A&name=%2A.paas.${ZONE}&per_page=200`;
        // The stand-in's pages hold two records; the next page's link is the API's own.
        assert.deepEqual(dns.requests.slice(before), [list, `${list.replace("%2A", "*")}&page=2`], "level-triggered: nothing to write");
    });

    it("drops a cordoned node, a NotReady one, one whose ingress pod is not ready, and a deleted one; adds a joining one", async () => {
        for (const [i, n] of ["a", "b", "c", "d", "e"].entries()) node(`pool-${n}`, `203.0.113.${i + 1}`);
        await pass();
        kube.nodes.get("pool-a")!.unschedulable = true;
        kube.nodes.get("pool-b")!.ready = false;
        kube.nodes.get("pool-c")!.ingressReady = false;
        kube.nodes.delete("pool-d");
        node("pool-f", "203.0.113.6");
        const result = await pass();
        assert.deepEqual(dns.published(), ["203.0.113.5", "203.0.113.6"], result.log.join("\n"));
        assert.ok(Math.min(...dns.counts) > 0);
    });

    it("a surge upgrade that replaces every node ends with the new nodes' addresses, never with no record", async () => {
        const old = ["203.0.113.1", "203.0.113.2", "203.0.113.3"];
        const fresh = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
        old.forEach((ip, i) => node(`old-${i}`, ip));
        await pass();
        // DOKS's surge upgrade: new nodes join (their ingress pods start), then each old node is cordoned,
        // drained and deleted, while old and new serve together.
        for (let i = 0; i < 3; i++) {
            node(`new-${i}`, fresh[i], { ingressReady: false });
            await pass();
            assert.ok(!dns.published().includes(fresh[i]), `new-${i} before its ingress pod is ready`);
            kube.nodes.get(`new-${i}`)!.ingressReady = true;
            kube.nodes.get(`old-${i}`)!.unschedulable = true;
            await pass();
            assert.ok(dns.published().includes(fresh[i]));
            assert.ok(!dns.published().includes(old[i]), `cordoned old-${i} is dropped`);
            kube.nodes.delete(`old-${i}`);
            await pass();
        }
        assert.deepEqual(dns.published(), [...fresh].sort());
        assert.ok(dns.counts.length > 0 && Math.min(...dns.counts) > 0, `never without records: ${dns.counts.join(",")}`);
    });

    it("keeps the last good set, and says so, when no node serves (all NotReady); the API's errors fail a pass without a write", async () => {
        node("pool-a", "203.0.113.1");
        node("pool-b", "203.0.113.2");
        await pass();
        for (const n of kube.nodes.values()) n.ready = false;
        const dark = await pass();
        assert.deepEqual(dns.published(), ["203.0.113.1", "203.0.113.2"]);
        assert.deepEqual(dark.log, [
            `hephy-doks node-dns: no node serves the platform: keeping the 2 published A record(s) of ${FQDN} (203.0.113.1, 203.0.113.2)`,
        ]);
        for (const n of kube.nodes.values()) n.ready = true;
        kube.nodes.delete("pool-b");
        kube.fail("/api/v1/namespaces/haproxy-ingress/pods", 503);
        const writes = dns.counts.length;
        const down = await pass();
        assert.equal(down.status, 1);
        assert.deepEqual(down.log, ["hephy-doks node-dns: pass failed: listing /api/v1/namespaces/haproxy-ingress/pods answered 503: stand-in failure"]);
        assert.equal(dns.counts.length, writes, "nothing written from half a picture");
        await pass();
        assert.deepEqual(dns.published(), ["203.0.113.1"], "the next pass repairs");
    });

    it("follows the pages of a long listing, retries after a 429, and reports a 422 without stopping", async () => {
        for (let i = 1; i <= 5; i++) dns.add({ type: "A", name: NAME, data: `192.0.2.${i}`, ttl: OWN_TTL });
        node("pool-a", "192.0.2.1");
        dns.limit(2);
        const result = await pass();
        assert.equal(result.status, 0, result.log.join("\n"));
        assert.deepEqual(dns.published(), ["192.0.2.1"], "records of pages 2 and 3 were seen and removed");
        assert.ok(
            dns.requests.some((r) => r.includes("page=3")),
            dns.requests.join("\n"),
        );
        assert.equal(dns.requests.filter((r) => r.startsWith("GET")).length, 3 + 2, "three pages, two of them asked again after a 429");

        const refused = await pass({ RECORD_NAME: "*.pa_as" });
        assert.equal(refused.status, 0);
        assert.deepEqual(refused.log, [
            `hephy-doks node-dns: adding *.pa_as.${ZONE} A 192.0.2.1 answered 422: Name Only valid hostname characters are allowed`,
        ]);
    });

    it("touches only its own records: other names and types in the zone stay as they are", async () => {
        const others = [
            dns.add({ type: "A", name: "www", data: "192.0.2.80", ttl: 3600 }),
            dns.add({ type: "TXT", name: NAME, data: "verification", ttl: OWN_TTL }),
            dns.add({ type: "A", name: "*.other", data: "192.0.2.81", ttl: OWN_TTL }),
            dns.add({ type: "A", name: "@", data: "192.0.2.82", ttl: OWN_TTL }),
        ];
        node("pool-a", "203.0.113.1");
        await pass();
        for (const record of others) assert.deepEqual(dns.records.get(record.id), record);
    });

    it("takes over the records pulumi up wrote: each moved aside once another record serves, so pulumi up deletes them with the name never empty", async () => {
        const legacy = ["203.0.113.1", "203.0.113.2", "203.0.113.3"].map((data) => dns.add({ type: "A", name: NAME, data, ttl: 60 }));
        legacy.forEach((r, i) => node(`pool-${i}`, r.data));
        // Before any node serves, it keeps them and is not ready, so pulumi up does not delete them yet.
        for (const n of kube.nodes.values()) n.ingressReady = false;
        await pass();
        assert.equal(fs.existsSync(path.join(work, "ready")), false);
        assert.deepEqual(dns.published(), ["203.0.113.1", "203.0.113.2", "203.0.113.3"]);
        for (const n of kube.nodes.values()) n.ingressReady = true;
        await pass();
        assert.deepEqual(own(), [
            ["203.0.113.1", OWN_TTL],
            ["203.0.113.2", OWN_TTL],
            ["203.0.113.3", OWN_TTL],
        ]);
        assert.deepEqual(
            legacy.map((r) => dns.records.get(r.id)!.name),
            legacy.map((r) => `hephy-doks-retired-${r.id}.paas`),
            "the old records, by id, now under names of their own for pulumi up to delete",
        );
        assert.ok(fs.existsSync(path.join(work, "ready")));
        // pulumi up deletes its records by id.
        legacy.forEach((r) => dns.records.delete(r.id));
        assert.deepEqual(dns.published(), ["203.0.113.1", "203.0.113.2", "203.0.113.3"]);
        assert.ok(Math.min(...dns.counts) > 0, `never without records: ${dns.counts.join(",")}`);
    });

    it("publishes AAAA records for the nodes' IPv6 addresses when the stack has IPv6, and none otherwise", async () => {
        node("pool-a", "203.0.113.1");
        kube.nodes.get("pool-a")!.addresses.push("2001:db8::1");
        await pass();
        assert.deepEqual(dns.published("AAAA"), []);
        await pass({ PUBLISH_IPV6: "true" });
        assert.deepEqual(dns.published("AAAA"), ["2001:db8::1"]);
        assert.deepEqual(dns.published("A"), ["203.0.113.1"]);
    });

    it("between passes watches nodes and pods, so a cordon lands within seconds, not at the 30 s pass", async () => {
        node("pool-a", "203.0.113.1");
        node("pool-b", "203.0.113.2");
        const loop = run([], { RESYNC_SECONDS: "30" });
        try {
            const until = async (check: () => boolean) => {
                for (const started = Date.now(); Date.now() - started < 8000; await new Promise((r) => setTimeout(r, 100))) {
                    if (check()) return Date.now() - started;
                }
                throw new Error(`timed out: ${kube.requests.join("\n")}`);
            };
            await until(() => dns.published().length === 2 && kube.requests.filter((r) => r.includes("watch=true")).length === 2);
            kube.nodes.get("pool-a")!.unschedulable = true;
            kube.changed();
            const took = await until(() => dns.published().length === 1);
            assert.ok(took < 7000, `${took} ms`);
            assert.ok(kube.requests.some((r) => /^GET \/api\/v1\/nodes\?watch=true&resourceVersion=\d+&timeoutSeconds=30$/.test(r)));
            assert.ok(kube.requests.some((r) => r.startsWith("GET /api/v1/namespaces/haproxy-ingress/pods?watch=true")));
        } finally {
            loop.child.kill("SIGKILL");
            await loop.done;
        }
    });

    /** Runs the reconciler until it is ready, then stops it as Kubernetes does, with SIGTERM. */
    const stopped = async () => {
        const loop = run([], { RESYNC_SECONDS: "30" });
        for (let i = 0; i < 100 && !fs.existsSync(path.join(work, "ready")); i++) await new Promise((r) => setTimeout(r, 100));
        fs.rmSync(path.join(work, "ready"), { force: true });
        loop.child.kill("SIGTERM");
        return loop.done;
    };

    it("deletes its own records at SIGTERM only when its Deployment is gone (teardown), never at a restart", async () => {
        node("pool-a", "203.0.113.1");
        dns.add({ type: "A", name: NAME, data: "203.0.113.9", ttl: 60 });
        const restarted = await stopped();
        assert.equal(restarted.status, 0, restarted.log.join("\n"));
        assert.deepEqual(dns.published(), ["203.0.113.1"], "a restart keeps them");
        kube.deployment.exists = false;
        const tornDown = await stopped();
        assert.ok(tornDown.log.includes(`hephy-doks node-dns: ${FQDN} A 203.0.113.1 deleted at teardown: 204`), tornDown.log.join("\n"));
        assert.deepEqual(dns.published(), []);
        assert.equal([...dns.records.values()].filter((r) => r.name.startsWith("hephy-doks-retired-")).length, 1, "another owner's stays");
    });

    it("takes its rights gone at SIGTERM as a teardown too (the stack deletes them right after the Deployment)", async () => {
        node("pool-a", "203.0.113.1");
        dns.add({ type: "A", name: NAME, data: "203.0.113.1", ttl: OWN_TTL });
        kube.fail("/apis/apps/v1/", 403);
        const result = await stopped();
        assert.deepEqual(dns.published(), [], result.log.join("\n"));
    });

    it("parses as the controller image's Python 3.6, with the standard library and the shared client only", () => {
        assert.deepEqual(python36Imports(NODEDNS), {
            imports: ["json", "os", "signal", "sys", "time", "urllib.error", "urllib.parse", "urllib.request"],
            from: ["kubeclient"],
        });
    });
});
