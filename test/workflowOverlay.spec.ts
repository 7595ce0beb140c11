import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT } from "../offline/harness";

const OVERLAY = path.join(ROOT, "charts", "hephy-workflow", "files", "ingress.py");
const HARNESS = path.join(ROOT, "test", "overlay", "harness.py");

interface Captured {
    requests: { method: string; path: string; params: Record<string, string> | null; json: any }[];
    errors: { status: number; raised: string; str: string }[];
}

/**
 * The environment of a python3 run: the machine's, less what keeps python3 from writing bytecode, so the
 * test sees whether the harness itself leaves any beside the overlay.
 */
function pythonEnv(): NodeJS.ProcessEnv {
    const { PYTHONDONTWRITEBYTECODE: _, ...env } = process.env;
    return env;
}

/** Runs the overlay under python3 against stubs of the v2.22.0 controller, recording every request it makes. */
function capture(overlay: string): Captured {
    return JSON.parse(execFileSync("python3", [HARNESS, overlay], { encoding: "utf8", env: pythonEnv() })) as Captured;
}

describe("the controller's ingress client overlay (charts/hephy-workflow/files/ingress.py)", () => {
    let captured: Captured;
    before(() => {
        captured = capture(OVERLAY);
    });

    it("creates no Ingress: the route reconciler owns every app's, with its hosts, certificates and access rules", () => {
        assert.deepEqual(
            captured.requests.filter((r) => r.method === "POST" || r.method === "PUT"),
            [],
            "App.create calls create at every deploy and scale while get finds none; a bare Ingress would serve the app without its rules",
        );
        assert.ok(
            captured.requests.some((r) => r.method === "GET"),
            "the harness did call it",
        );
    });

    it("leaves no bytecode beside the overlay, where the chart packager would find it", () => {
        const files = path.dirname(OVERLAY);
        assert.deepEqual(
            fs.readdirSync(files, { recursive: true }).filter((f) => /__pycache__|\.pyc$/.test(String(f))),
            [],
        );
        const copy = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-overlay-"));
        try {
            fs.copyFileSync(OVERLAY, path.join(copy, "ingress.py"));
            capture(path.join(copy, "ingress.py"));
            assert.deepEqual(fs.readdirSync(copy), ["ingress.py"]);
        } finally {
            fs.rmSync(copy, { recursive: true, force: true });
        }
    });

    it("never calls the extensions/v1beta1 API that Kubernetes 1.22 removed", () => {
        assert.ok(captured.requests.length >= 3);
        for (const request of captured.requests) {
            assert.match(request.path, /^\/apis\/networking\.k8s\.io\/v1\//, `${request.method} ${request.path}`);
        }
        assert.deepEqual(
            captured.requests.filter((r) => r.method !== "POST" && r.path.includes("/namespaces/myapp/")).map((r) => `${r.method} ${r.path}`),
            ["GET /apis/networking.k8s.io/v1/namespaces/myapp/ingresses/myapp", "DELETE /apis/networking.k8s.io/v1/namespaces/myapp/ingresses/myapp"],
        );
    });

    it("raises the controller's KubeHTTPException on an error answer, as the image's module does", () => {
        assert.deepEqual(
            captured.errors.map((e) => [e.status, e.raised]),
            [
                [404, "KubeHTTPException"],
                [500, "KubeHTTPException"],
            ],
        );
        assert.equal(captured.errors[0].str, "failed to get Ingress nosuchapp: 404 Not Found simulated Not Found");
    });

    it("fails the harness for a module that still speaks extensions/v1beta1, so the checks above can fail", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-overlay-"));
        try {
            const old = path.join(dir, "ingress.py");
            fs.writeFileSync(old, fs.readFileSync(OVERLAY, "utf8").replace("'networking.k8s.io/v1'", "'extensions/v1beta1'"));
            const paths = capture(old).requests.map((r) => r.path);
            assert.ok(
                paths.every((p) => p.startsWith("/apis/extensions/v1beta1/")),
                paths.join(", "),
            );
            fs.writeFileSync(old, "from scheduler.missing import Nothing\n");
            assert.notEqual(spawnSync("python3", [HARNESS, old]).status, 0, "an overlay that cannot be imported fails the harness");
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
