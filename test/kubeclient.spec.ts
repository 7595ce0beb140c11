import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { KUBECLIENT, inClusterEnv, python36Imports } from "./inCluster";
import { Handler, Listening, httpServer, httpsServer, testPki } from "./standIns";

/**
 * The shared Kubernetes client of the in-cluster Python programs (files/lib/kubeclient.py), driven by
 * python3 against loopback API servers: how it authenticates, what it trusts, what it answers, and how
 * its watches end.
 */

/** Runs `code` (with `kubeclient` imported) and gives what it printed, one JSON document a line. */
function python(code: string, env: NodeJS.ProcessEnv): Promise<{ status: number; out: any[]; err: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn("python3", ["-c", `import json, kubeclient\n${code}`], { env });
        let out = "";
        let err = "";
        child.stdout.on("data", (chunk) => (out += chunk));
        child.stderr.on("data", (chunk) => (err += chunk));
        child.on("error", reject);
        child.on("close", (status) =>
            resolve({
                status: status ?? -1,
                out: out
                    .split("\n")
                    .filter(Boolean)
                    .map((l) => JSON.parse(l)),
                err,
            }),
        );
    });
}

describe("the in-cluster programs' Kubernetes client (files/lib/kubeclient.py), under python3", function () {
    this.timeout(20000);
    let account: string;
    const servers: Listening[] = [];
    const serve = async (handler: Handler) => {
        const server = await httpServer(handler);
        servers.push(server);
        return server;
    };

    beforeEach(() => {
        account = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-sa-"));
    });
    afterEach(async () => {
        await Promise.all(servers.splice(0).map((s) => s.close()));
        fs.rmSync(account, { recursive: true, force: true });
    });

    it("parses as Python 3.6 and imports the standard library only", () => {
        assert.deepEqual(python36Imports(KUBECLIENT), {
            imports: ["json", "os", "socket", "ssl", "threading", "time", "urllib.error", "urllib.parse", "urllib.request"],
            from: [],
        });
    });

    it("sends the ServiceAccount's token, read again at each request as the kubelet rotates it", async () => {
        const seen: (string | undefined)[] = [];
        const server = await serve((request, response) => {
            seen.push(request.headers.authorization);
            response.writeHead(200, { "content-type": "application/json" }).end('{"kind":"NodeList","metadata":{"resourceVersion":"42"},"items":[{"n":1}]}');
        });
        fs.writeFileSync(path.join(account, "token"), "first-token\n");
        const run = await python(
            `import os\napi = kubeclient.in_cluster()\nprint(json.dumps(api.list('/api/v1/nodes')))\nopen(os.path.join(os.environ['KUBE_SERVICE_ACCOUNT'], 'token'), 'w').write('rotated-token')\nprint(json.dumps(api.json('GET', '/api/v1/nodes')[0]))`,
            inClusterEnv(server.port, { KUBE_SERVICE_ACCOUNT: account }),
        );
        assert.equal(run.status, 0, run.err);
        assert.deepEqual(run.out, [[[{ n: 1 }], "42"], 200]);
        assert.deepEqual(seen, ["Bearer first-token", "Bearer rotated-token"]);
    });

    it("answers API errors as statuses, a body that is no JSON as its text, and a failed list as an error naming the collection", async () => {
        const server = await serve((request, response) => {
            if (request.url === "/html") {
                response.writeHead(502).end("<html>bad gateway</html>");
            } else {
                response
                    .writeHead(403, { "content-type": "application/json" })
                    .end('{"kind":"Status","code":403,"message":"nodes is forbidden: User \\"system:serviceaccount:x:y\\" cannot list"}');
            }
        });
        const run = await python(
            `api = kubeclient.in_cluster()\nprint(json.dumps(api.json('GET', '/api/v1/nodes')))\nprint(json.dumps(api.json('GET', '/html')))\ntry:\n    api.list('/api/v1/nodes')\nexcept RuntimeError as e:\n    print(json.dumps(str(e)))`,
            inClusterEnv(server.port, { KUBE_SERVICE_ACCOUNT: account }),
        );
        assert.equal(run.status, 0, run.err);
        assert.equal(run.out[0][0], 403);
        assert.deepEqual(run.out[1], [502, { message: "<html>bad gateway</html>" }]);
        assert.equal(run.out[2], 'listing /api/v1/nodes answered 403: nodes is forbidden: User "system:serviceaccount:x:y" cannot list');
    });

    it("trusts the API server's certificate only through the ServiceAccount's ca.crt", async () => {
        const pki = await testPki("kubeclient");
        const other = await testPki("kubeclient-other");
        const pair = await pki.leaf(["127.0.0.1"], ["digital_signature", "server_auth"]);
        const server = await httpsServer(pair, (_request, response) => response.writeHead(200, { "content-type": "application/json" }).end("{}"));
        servers.push(server);
        const code =
            "try:\n    print(json.dumps(kubeclient.in_cluster().json('GET', '/version')[0]))\nexcept Exception as e:\n    print(json.dumps(type(e).__name__))";
        const env = inClusterEnv(server.port, { KUBE_SERVICE_ACCOUNT: account, KUBE_API: `https://127.0.0.1:${server.port}` });
        fs.writeFileSync(path.join(account, "ca.crt"), pki.root);
        assert.deepEqual((await python(code, env)).out, [200]);
        fs.writeFileSync(path.join(account, "ca.crt"), other.root);
        assert.deepEqual((await python(code, env)).out, ["URLError"], "a server the cluster's CA did not sign is refused");
    });

    it("waits for the first change among several watches, from their lists' versions, and hangs up the others", async () => {
        const watches: string[] = [];
        const hungUp: [string, number][] = [];
        const server = await serve((request, response) => {
            const url = new URL(request.url ?? "", "http://stand-in");
            watches.push(`${url.pathname}?${url.searchParams}`);
            // As the API server does, headers at once, events as they come.
            response.writeHead(200, { "content-type": "application/json" }).flushHeaders();
            response.on("close", () => hungUp.push([url.pathname, Date.now()]));
            if (url.pathname === "/api/v1/pods") {
                setTimeout(() => response.write('{"type":"MODIFIED","object":{}}\n'), 300);
            }
        });
        const started = Date.now();
        const run = await python(
            // It stays up a while after the wait, so a watch it left open would still be open.
            "import sys, time\nt = time.time()\nkubeclient.wait_for_change(kubeclient.in_cluster(), [('/api/v1/nodes', '7'), ('/api/v1/pods', '9'), ('/api/v1/services', None)], 30, least=0)\nprint(json.dumps([round(time.time() - t, 1), time.time()]))\nsys.stdout.flush()\ntime.sleep(1.5)",
            inClusterEnv(server.port, { KUBE_SERVICE_ACCOUNT: account }),
        );
        assert.equal(run.status, 0, run.err);
        const [waited, returnedAt] = run.out[0];
        assert.ok(waited < 5 && Date.now() - started < 10000, `returned after ${waited} s, at the pods' event`);
        assert.deepEqual(watches.sort(), [
            "/api/v1/nodes?watch=true&resourceVersion=7&timeoutSeconds=30",
            "/api/v1/pods?watch=true&resourceVersion=9&timeoutSeconds=30",
        ]);
        assert.deepEqual(hungUp.map(([p]) => p).sort(), ["/api/v1/nodes", "/api/v1/pods"]);
        assert.ok(
            hungUp.every(([, at]) => at < returnedAt * 1000 + 500),
            "no watch left open on the API server once the wait is over",
        );
    });

    it("runs passes: one with --once, whose failure is the exit status; a failed pass is logged and the next one starts over", async () => {
        const server = await serve((_request, response) => response.writeHead(410, { "content-type": "application/json" }).end("{}"));
        const code = [
            "import sys",
            "api = kubeclient.in_cluster()",
            "seen = []",
            "def log(line): seen.append(line)",
            "def failing(): raise RuntimeError('the API is away')",
            "print(json.dumps([kubeclient.run_passes(api, failing, 1, log, once=True), kubeclient.run_passes(api, lambda: [], 1, log, once=True)]))",
            "passes = []",
            "def flaky():",
            "    passes.append(1)",
            "    if len(passes) == 1: raise RuntimeError('first pass fails')",
            "    if len(passes) == 3: raise SystemExit(0)",
            "    return [('/api/v1/nodes', '5')]",
            "try:",
            "    kubeclient.run_passes(api, flaky, 1, log)",
            "except SystemExit:",
            "    pass",
            "print(json.dumps([len(passes), seen]))",
        ].join("\n");
        const run = await python(code, inClusterEnv(server.port, { KUBE_SERVICE_ACCOUNT: account }));
        assert.equal(run.status, 0, run.err);
        assert.deepEqual(run.out, [
            [1, 0],
            [3, ["pass failed: the API is away", "pass failed: first pass fails"]],
        ]);
    });

    it("waits `least` seconds when a watch fails at once or there is no version to watch from", async () => {
        const server = await serve((_request, response) => response.writeHead(410, { "content-type": "application/json" }).end('{"code":410}'));
        const run = await python(
            "import time\napi = kubeclient.in_cluster()\nt = time.time()\nkubeclient.wait_for_change(api, [('/api/v1/nodes', '7')], 30, least=1)\nprint(json.dumps(round(time.time() - t, 1)))\nt = time.time()\nkubeclient.wait_for_change(api, [('/api/v1/nodes', None)], 30, least=1)\nprint(json.dumps(round(time.time() - t, 1)))",
            inClusterEnv(server.port, { KUBE_SERVICE_ACCOUNT: account }),
        );
        assert.equal(run.status, 0, run.err);
        assert.ok(run.out[0] >= 1 && run.out[0] < 2, `a gone version shortens the wait to least: ${run.out[0]}`);
        assert.ok(run.out[1] >= 1 && run.out[1] < 2, `nothing to watch: ${run.out[1]}`);
    });
});
