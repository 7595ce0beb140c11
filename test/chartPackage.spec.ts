import * as assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as YAML from "yaml";
import { packageChart } from "../chartPackage";
import { CONFIGMAP_MAX_BYTES } from "../components/chartServer";
import { helmBinary, helmEnv } from "../offline/helm";
import { plain, ROOT, Run, runProgram } from "../offline/harness";

const CHART = path.join(ROOT, "charts", "hephy-workflow");
const REPOSITORY = "http://hephy-doks-charts.flux.svc.cluster.local:8080/";

function sha256(data: Buffer): string {
    return crypto.createHash("sha256").update(data).digest("hex");
}

/** A copy of a chart directory in a git work tree of its own, under the project's .gitignore, every file added to the index. */
function gitCopy(chart: string): string {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-chart-"));
    fs.cpSync(chart, copy, { recursive: true });
    execFileSync("git", ["init", "--quiet"], { cwd: copy });
    // The project's ignore rules, as a file of the repository rather than of the chart.
    fs.copyFileSync(path.join(ROOT, ".gitignore"), path.join(copy, ".git", "info", "exclude"));
    execFileSync("git", ["add", "--all"], { cwd: copy });
    return copy;
}

/** Runs helm with a private home; resolves with its output, rejects with its error. */
function helm(args: string[], home: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = spawn(helmBinary(), args, { env: helmEnv(home) });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`helm ${args.join(" ")}: ${err}`))));
    });
}

describe("packaging the project's Workflow chart (chartPackage.ts)", () => {
    it("gives the same bytes, version and index for the same files", () => {
        const first = packageChart(CHART, REPOSITORY);
        const second = packageChart(CHART, REPOSITORY);
        assert.ok(first.archive.equals(second.archive));
        assert.equal(first.indexYaml, second.indexYaml);
        assert.match(first.version, /^2\.23\.0-doks\.1\.g[0-9a-f]{12}$/);
        assert.equal(first.fileName, `hephy-workflow-${first.version}.tgz`);
    });

    it("writes an index whose digest is the archive's sha256 and whose URL is absolute", () => {
        const packaged = packageChart(CHART, REPOSITORY);
        const index = YAML.parse(packaged.indexYaml);
        const [entry] = index.entries["hephy-workflow"];
        assert.equal(entry.digest, sha256(packaged.archive));
        assert.equal(entry.version, packaged.version);
        assert.deepEqual(entry.urls, [`${REPOSITORY}${packaged.fileName}`]);
        assert.equal(index.apiVersion, "v1");
        const chart = YAML.parse(fs.readFileSync(path.join(CHART, "Chart.yaml"), "utf8"));
        assert.deepEqual([entry.name, entry.appVersion, entry.description], [chart.name, chart.appVersion, chart.description]);
    });

    it("packages only what git tracks: leftovers in the chart directory move neither the bytes nor the version", () => {
        // A clone of the chart under the project's own .gitignore, so parallel specs never see the leftovers.
        const copy = gitCopy(CHART);
        try {
            const clean = packageChart(copy, REPOSITORY);
            assert.equal(clean.version, packageChart(CHART, REPOSITORY).version, "the copy packages as the chart does");
            // What tests, python3 and editors leave in a work tree; none is tracked, some are ignored.
            for (const stray of [path.join("files", "__pycache__", "ingress.cpython-311.pyc"), "values.yaml.orig", ".DS_Store"]) {
                fs.mkdirSync(path.dirname(path.join(copy, stray)), { recursive: true });
                fs.writeFileSync(path.join(copy, stray), "stray");
            }
            const dirty = packageChart(copy, REPOSITORY);
            assert.equal(dirty.version, clean.version);
            assert.ok(dirty.archive.equals(clean.archive));
            assert.deepEqual(dirty.untracked, [".DS_Store", "values.yaml.orig"], "an untracked file that is not ignored is named, so a ChartServer can warn");
        } finally {
            fs.rmSync(copy, { recursive: true, force: true });
        }
    });

    it("changes the version and the digest when a tracked file changes, and ships a file once git tracks it", () => {
        const copy = gitCopy(CHART);
        try {
            const before = packageChart(copy, REPOSITORY);
            fs.appendFileSync(path.join(copy, "files", "ingress.py"), "\n# changed\n");
            const edited = packageChart(copy, REPOSITORY);
            assert.notEqual(edited.version, before.version);
            assert.notEqual(edited.digest, before.digest);
            fs.writeFileSync(path.join(copy, "templates", "added.yaml"), "# added\n");
            assert.equal(packageChart(copy, REPOSITORY).version, edited.version, "not tracked yet");
            execFileSync("git", ["add", "templates/added.yaml"], { cwd: copy });
            assert.notEqual(packageChart(copy, REPOSITORY).version, edited.version, "tracked");
        } finally {
            fs.rmSync(copy, { recursive: true, force: true });
        }
    });

    it("refuses a chart directory outside a git work tree, saying why", () => {
        const copy = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-chart-"));
        try {
            fs.cpSync(CHART, copy, { recursive: true });
            assert.throws(() => packageChart(copy, REPOSITORY), /cannot list the files git tracks in .*run the program from a git clone/s);
        } finally {
            fs.rmSync(copy, { recursive: true, force: true });
        }
    });

    describe("as the program serves it", () => {
        let run: Run;
        before(async () => {
            run = await runProgram();
        });

        it("puts exactly the packaged archive and index in a ConfigMap under 1 MiB", () => {
            const packaged = packageChart(CHART, REPOSITORY);
            const content = plain(run.one("kubernetes:core/v1:ConfigMap", "staging-charts-content").inputs);
            const archive = Buffer.from(content.binaryData[packaged.fileName], "base64");
            assert.ok(archive.equals(packaged.archive));
            assert.equal(content.data["index.yaml"], packaged.indexYaml);
            assert.ok(archive.length + packaged.indexYaml.length < CONFIGMAP_MAX_BYTES, `${archive.length} bytes`);
            const deployment = plain(run.one("kubernetes:apps/v1:Deployment", "staging-charts-deployment").inputs);
            assert.equal(deployment.spec.template.metadata.annotations["hephy-doks/chart-digest"], packaged.digest, "a new chart rolls the server");
        });

        it("serves what Helm pulls through the index, as helm-operator does", async () => {
            const home = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-pull-"));
            const server = http.createServer();
            try {
                await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
                const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
                // The same packaging, addressed to the loopback server instead of the in-cluster Service.
                const packaged = packageChart(CHART, url);
                const files: Record<string, Buffer> = { "/index.yaml": Buffer.from(packaged.indexYaml), [`/${packaged.fileName}`]: packaged.archive };
                server.on("request", (req, res) => {
                    const body = files[req.url ?? ""];
                    res.writeHead(body ? 200 : 404).end(body);
                });
                await helm(["pull", "hephy-workflow", "--repo", url, "--version", packaged.version, "--destination", home], home);
                assert.ok(fs.readFileSync(path.join(home, packaged.fileName)).equals(packaged.archive));
                const chart = YAML.parse(await helm(["show", "chart", path.join(home, packaged.fileName)], home));
                assert.deepEqual([chart.apiVersion, chart.name, chart.version], ["v1", "hephy-workflow", packaged.version]);
            } finally {
                server.close();
                fs.rmSync(home, { recursive: true, force: true });
            }
        });
    });
});
