import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import { ROOT, Recorded, Run } from "../offline/harness";
import { COMPUTED, main as planMain, Plan, SECRET, parseArgs, planStack, readable, renderPlan, stackConfig, typeProblems } from "../scripts/plan";
import { OFFERED_VERSIONS, world, ZONES } from "../offline/mocks";
import { HELM_OVERRIDE, helmBinary, helmSpawnError } from "../offline/helm";

function recorded(type: string, name: string, inputs: Record<string, any>, parent = "pulumi:pulumi:Stack"): Recorded {
    return {
        type,
        name,
        inputs,
        state: {},
        custom: true,
        parent,
        dependsOn: [],
        inputDependsOn: [],
        provider: undefined,
        providerRef: undefined,
        protect: false,
        deleteBeforeReplace: false,
        replaceOnChanges: [],
        ignoreChanges: [],
    };
}

const FIXTURES = path.join(__dirname, "fixtures");

describe("offline plan of a stack file", () => {
    let plan: Plan & { run: Run };

    before(async () => {
        plan = await planStack("example", FIXTURES);
    });

    it("prints one tree line per resource, each under its component", () => {
        const lines = plan.tree.split("\n");
        assert.equal(lines[0], "pulumi:pulumi:Stack");
        assert.equal(lines.length - 1, plan.run.resources.length);
        const at = (text: string) => lines.findIndex((l) => l.endsWith(text));
        assert.match(lines[at("hephy-doks:cluster:DoksCluster  example")], /^├─ /);
        assert.match(lines[at("digitalocean:index/kubernetesCluster:KubernetesCluster  example-cluster")], /^│  ├─ /);
        assert.ok(at("digitalocean:index/kubernetesCluster:KubernetesCluster  example-cluster") > at("hephy-doks:cluster:DoksCluster  example"));
        assert.ok(
            lines.includes(
                "   ├─ kubernetes:yaml/v2:ConfigFile  example-cert-manager-crds  (objects from https://github.com/cert-manager/cert-manager/releases/download/v1.21.1/cert-manager.crds.yaml)",
            ),
            "a ConfigFile says where its objects come from",
        );
    });

    it("counts resources per type, with no LoadBalancer, and prints the monthly cost", () => {
        const summary = plan.summary.split("\n");
        assert.equal(summary[0], `Resources: ${plan.run.resources.length}`);
        for (const line of [
            "    3  digitalocean:index/dnsRecord:DnsRecord",
            "    1  digitalocean:index/kubernetesCluster:KubernetesCluster",
            "    2  kubernetes:helm.fluxcd.io/v1:HelmRelease",
            "    2  kubernetes:apps/v1:Deployment",
        ]) {
            assert.ok(summary.includes(line), line);
        }
        assert.ok(
            summary.some((l) => /^LoadBalancers: 0, NodePorts: 0 over \d+ objects of the program and \d+ that its releases render$/.test(l)),
            summary.join("\n"),
        );
        assert.ok(
            summary.some((l) => /^Rendered releases: 2 \(\d+ objects\)$/.test(l)),
            summary.join("\n"),
        );
        assert.match(
            summary[summary.length - 1],
            /^Monthly cost: \$72\/month: 3 x s-2vcpu-4gb at \$24, HA control plane \$0, 0 LoadBalancers \$0 \(DigitalOcean list prices of 2026-08-21;/,
        );
    });

    it("writes each Kubernetes object and HelmRelease exactly as sent, one file each", () => {
        const objects = plan.run.resources.filter((r) => r.type.startsWith("kubernetes:") && typeof r.inputs.kind === "string");
        assert.equal([...plan.files.keys()].filter((f) => !f.endsWith(".rendered.yaml")).length, objects.length);
        const ingress = objects.find((r) => r.inputs.kind === "HelmRelease" && r.inputs.metadata.name === "ingress")!;
        const file: any = YAML.parse(plan.files.get("haproxy-ingress/helmrelease-ingress.yaml")!);
        assert.deepEqual(readable(ingress.inputs), file);
        assert.equal(file.spec.values.controller.service.enabled, false);
        assert.ok(plan.files.has("_cluster/clusterissuer-letsencrypt-prod.yaml"));
        assert.ok(plan.files.has("kube-system/deployment-tiller-deploy.yaml"));
    });

    it("shows what providers compute as <computed>: the Tiller PEMs and the node addresses", () => {
        assert.equal(YAML.parse(plan.files.get("kube-system/secret-tiller-secret.yaml")!).stringData, COMPUTED);
        const records = plan.run.ofType("digitalocean:index/dnsRecord:DnsRecord");
        assert.equal(records.length, 3);
        assert.deepEqual(
            records.map((r) => readable(r.inputs.value)),
            [COMPUTED, COMPUTED, COMPUTED],
        );
    });
});

describe("the Helm the plan renders with", () => {
    const saved = process.env[HELM_OVERRIDE];
    afterEach(() => {
        if (saved === undefined) delete process.env[HELM_OVERRIDE];
        else process.env[HELM_OVERRIDE] = saved;
    });

    it("takes another Helm of helm-operator's generation from HEPHY_DOKS_HELM, and refuses any other", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-helm-"));
        try {
            const fake = (version: string) => {
                const file = path.join(dir, `helm-${version}`);
                fs.writeFileSync(file, `#!/usr/bin/env bash\necho ${version}\n`, { mode: 0o755 });
                return file;
            };
            process.env[HELM_OVERRIDE] = fake("v3.7.0");
            assert.equal(helmBinary(), path.join(dir, "helm-v3.7.0"));
            process.env[HELM_OVERRIDE] = fake("v3.14.4");
            assert.throws(() => helmBinary(), /^Error: HEPHY_DOKS_HELM=.*helm-v3\.14\.4 is not a Helm 3\.7 or 3\.8 that runs here \(v3\.14\.4\)/);
            process.env[HELM_OVERRIDE] = path.join(dir, "missing");
            assert.throws(() => helmBinary(), /is not a Helm 3\.7 or 3\.8 that runs here \(spawnSync .*missing ENOENT\)/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("says which binary did not start, what it needs, and how to point at another, instead of null", () => {
        const { error } = spawnSync("/nonexistent/helm");
        const message = helmSpawnError("/nonexistent/helm", error!).message;
        assert.match(
            message,
            /^cannot run \/nonexistent\/helm \(spawnSync \/nonexistent\/helm ENOENT\): the pinned Helm v3\.8\.1 is a Linux x86-64 binary, and this is \w+ \w+\. Point HEPHY_DOKS_HELM at a Helm 3\.7 or 3\.8/,
        );
    });
});

describe("plan rendering", () => {
    it("counts a LoadBalancer wherever one is asked for, so `LoadBalancers: 0` can fail", () => {
        const service = recorded("kubernetes:core/v1:Service", "stray", {
            apiVersion: "v1",
            kind: "Service",
            metadata: { name: "stray", namespace: "default" },
            spec: { type: "LoadBalancer" },
        });
        const plan = renderPlan({ resources: [service] }, "n/a");
        assert.deepEqual(plan.loadBalancers, ["kubernetes:core/v1:Service::stray.spec.type"]);
        assert.match(
            plan.summary,
            /^LoadBalancers: 1 \(kubernetes:core\/v1:Service::stray\.spec\.type\), NodePorts: 0 over 1 objects of the program and 0 that its releases render$/m,
        );
        assert.deepEqual([...plan.files.keys()], ["default/service-stray.yaml"]);
    });

    it("counts a NodePort wherever one is asked for, so `NodePorts: 0` can fail", () => {
        const service = recorded("kubernetes:core/v1:Service", "stray", {
            apiVersion: "v1",
            kind: "Service",
            metadata: { name: "stray", namespace: "default" },
            spec: { type: "NodePort" },
        });
        const plan = renderPlan({ resources: [service] }, "n/a");
        assert.deepEqual([plan.loadBalancers, plan.nodePorts], [[], ["kubernetes:core/v1:Service::stray.spec.type"]]);
        assert.match(plan.summary, /^LoadBalancers: 0, NodePorts: 1 \(kubernetes:core\/v1:Service::stray\.spec\.type\) over 1 objects/m);
    });

    it("counts a LoadBalancer that only a chart renders, and says which releases it could not render", () => {
        const service = { apiVersion: "v1", kind: "Service", metadata: { name: "controller", namespace: "edge" }, spec: { type: "LoadBalancer" } };
        const plan = renderPlan({ resources: [] }, "n/a", {
            rendered: [
                { release: "edge/ingress", chart: "some-chart-1.0.0", source: "the published archive", manifest: YAML.stringify(service), objects: [service] },
            ],
            missing: ["deis/hephy: the chart comes from git"],
        });
        assert.deepEqual(plan.loadBalancers, ["edge/ingress Service/controller.spec.type"]);
        assert.match(plan.summary, /^Rendered releases: 1 \(1 objects\); not rendered: deis\/hephy: the chart comes from git$/m);
        assert.match(
            plan.summary,
            /^LoadBalancers: 1 \(edge\/ingress Service\/controller\.spec\.type\), NodePorts: 0 over 0 objects of the program and 1 that its releases render, without 1 release\(s\) that could not be rendered$/m,
        );
        assert.ok(
            plan.files
                .get("edge/helmrelease-ingress.rendered.yaml")!
                .startsWith("# some-chart-1.0.0 (the published archive), rendered by Helm v3.8.1 (go1.17.5)\n"),
        );
    });

    it("masks secrets and marks unknowns", () => {
        const secret = (value: unknown) => ({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", value });
        assert.deepEqual(readable({ a: secret("hunter2"), b: pulumi.unknown, c: secret(pulumi.unknown), d: ["x"] }), {
            a: SECRET,
            b: COMPUTED,
            c: `${COMPUTED} ${SECRET}`,
            d: ["x"],
        });
    });

    it("reads a stack file's settings of this project as the engine passes them, and refuses what it cannot read", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "plan-"));
        fs.writeFileSync(
            path.join(dir, "Pulumi.demo.yaml"),
            'config:\n  digitalocean:token:\n    secure: AAAB\n  hephy-doks:nodeCount: 5\n  hephy-doks:protect: true\n  hephy-doks:builderSshSources: ["203.0.113.0/24"]\n  hephy-doks:domain: example.com\n',
        );
        assert.deepEqual(stackConfig("demo", dir), { nodeCount: "5", protect: "true", builderSshSources: '["203.0.113.0/24"]', domain: "example.com" });
        assert.throws(() => stackConfig("prod", dir), /^Error: no stack file Pulumi\.prod\.yaml in .*; stacks with a file: demo$/);
        fs.writeFileSync(path.join(dir, "Pulumi.bare.yaml"), "config:\n  nodeCount: 2\n  other:key: x\n");
        assert.deepEqual(stackConfig("bare", dir), { nodeCount: "2" }, "a key with no namespace is the project's");
        fs.writeFileSync(path.join(dir, "Pulumi.locked.yaml"), "config:\n  hephy-doks:acmeEmail:\n    secure: AAAB\n");
        assert.throws(() => stackConfig("locked", dir), /hephy-doks:acmeEmail in Pulumi\.locked\.yaml is a secret, which an offline plan cannot decrypt/);
        fs.writeFileSync(
            path.join(dir, "Pulumi.sealed.yaml"),
            "config:\n  hephy-doks:domain: example.com\n  hephy-doks:releaseSecretValues:\n    secure: AAAB\n",
        );
        const encrypted: string[] = [];
        assert.deepEqual(stackConfig("sealed", dir, encrypted), { domain: "example.com" }, "a key secret by declaration is planned without it");
        assert.deepEqual(encrypted, ["hephy-doks:releaseSecretValues"]);
    });
});

describe("stack files against the types Pulumi.yaml declares, as the CLI checks them", () => {
    const declared = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")).config;

    it("passes every stack file of the project and of the tests", () => {
        const files = [...fs.readdirSync(ROOT).map((f) => path.join(ROOT, f)), ...fs.readdirSync(FIXTURES).map((f) => path.join(FIXTURES, f))].filter((f) =>
            /Pulumi\.[^.]+\.yaml$/.test(f),
        );
        assert.ok(files.length >= 3, files.join(", "));
        for (const file of files) {
            assert.deepEqual(typeProblems(path.basename(file), YAML.parse(fs.readFileSync(file, "utf8")).config, declared), [], file);
        }
    });

    it("lets every value through to the program but an unencrypted secret, as the CLI does, and refuses a typed key's mismatch in its words", () => {
        const config = {
            "hephy-doks:nodeCount": [3],
            "hephy-doks:protect": 1,
            "hephy-doks:builderSshSources": '["81.2.69.0/24"]',
            "hephy-doks:kubernetesVersion": 1.35,
            nodeCount: "three",
            "digitalocean:token": { secure: "AAAB" },
        };
        // Pulumi.yaml declares no type but releaseSecretValues': the program reports these, with every other problem.
        assert.deepEqual(typeProblems("demo", config, declared), []);
        assert.deepEqual(typeProblems("demo", { ...config, "hephy-doks:builderSshSources": 22 }, { ...declared, nodeCount: { type: "integer" } }), [
            "Stack 'demo' with configuration key 'nodeCount' must be of type 'integer'",
            "Stack 'demo' with configuration key 'nodeCount' must be of type 'integer'",
        ]);
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "plan-"));
        fs.writeFileSync(path.join(dir, "Pulumi.demo.yaml"), "config:\n  hephy-doks:nodeCount: [3]\n  hephy-doks:protect: 1\n");
        assert.deepEqual(stackConfig("demo", dir), { nodeCount: "[3]", protect: "1" });
    });

    it("names the stack file whose YAML does not parse, with the line", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "plan-"));
        fs.writeFileSync(path.join(dir, "Pulumi.demo.yaml"), "config:\n  hephy-doks:builderSshSources: [81.2.69.0/24\n  hephy-doks:nodeCount: 3\n");
        assert.throws(() => stackConfig("demo", dir), /^Error: Pulumi\.demo\.yaml is not valid YAML \(.*Pulumi\.demo\.yaml\): .* at line 3, column \d+/);
    });
});

describe("npm run plan's command line", () => {
    it("reads its flags strictly and names what is wrong", () => {
        const defaults = { stack: "staging", out: path.join(ROOT, "plan"), stackDir: ROOT, offer: [...OFFERED_VERSIONS], help: false };
        assert.deepEqual(parseArgs([]), defaults);
        assert.deepEqual(parseArgs(["--stack", "production", "--out", "/tmp/x"]), { ...defaults, stack: "production", out: "/tmp/x" });
        assert.deepEqual(parseArgs(["--stack=production", "--offer", "1.37.0-do.0,1.36.2-do.1"]), {
            ...defaults,
            stack: "production",
            offer: ["1.37.0-do.0", "1.36.2-do.1"],
        });
        assert.equal(parseArgs(["--help"]).help, true);
        assert.equal(parseArgs(["-h"]).help, true);
        assert.throws(() => parseArgs(["--stak", "x"]), /^Error: Unknown option '--stak'.*\n\nUsage: npm run plan/s);
        assert.throws(() => parseArgs(["--stack"]), /^Error: Option '--stack <value>' argument missing/);
        assert.throws(() => parseArgs(["--stack", "--out", "x"]), /--stack needs a value, got "--out"|argument is ambiguous/);
        assert.throws(() => parseArgs(["--stack", "a", "--stack", "b"]), /^Error: --stack is given twice/);
        assert.throws(() => parseArgs(["--offer", "1.36"]), /^Error: --offer takes DOKS slugs such as 1\.36\.1-do\.0/);
        // What npm leaves when the -- is forgotten: `npm run plan --stack production` passes only the word.
        assert.throws(
            () => parseArgs(["production"]),
            /^Error: Unexpected argument 'production'.* \(npm passes options to the command only after --: npm run plan -- --stack production\)/s,
        );
    });
});

describe("npm run plan", function () {
    // The one test that starts the command as npm does: a process of its own compiles the program.
    this.timeout(30000);

    const plan = (...args: string[]) =>
        spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "scripts/plan.ts", ...args], { cwd: ROOT, encoding: "utf8" });
    /** The command in this process: what it prints, or the error it ends with. */
    const planHere = async (...args: string[]) => {
        const lines: string[] = [];
        const error = await planMain(args, (text) => lines.push(text)).then(
            () => undefined,
            (e: Error) => e,
        );
        return { stdout: `${lines.join("\n")}\n`, error };
    };

    it("prints the tree and summary and writes the objects under <out>/<stack>, replacing only an earlier plan", async () => {
        const out = fs.mkdtempSync(path.join(os.tmpdir(), "plan-"));
        const result = await planHere("--stack", "example", "--stack-dir", FIXTURES, "--out", out);
        assert.equal(result.error, undefined);
        assert.match(result.stdout, /^Plan of stack example: an offline evaluation under the mock engine/);
        assert.match(result.stdout, /\nKubernetes version: 1\.36\.1-do\.0 \(MOCKED: /);
        assert.match(result.stdout, /\nStack outputs:\n {2}kubeconfig: <computed> <secret>\n/);
        assert.match(result.stdout, /\n {2}monthlyCostUsd: 72\n/);
        assert.match(result.stdout, /\nLoadBalancers: 0, NodePorts: 0 over \d+ objects of the program and \d+ that its releases render\n/);
        assert.ok(fs.existsSync(path.join(out, "example", "haproxy-ingress", "helmrelease-ingress.rendered.yaml")));
        const written = fs.readFileSync(path.join(out, "example", "plan.txt"), "utf8");
        assert.ok(result.stdout.includes(written.trim()), "plan.txt holds what was printed");
        assert.ok(fs.existsSync(path.join(out, "example", "cert-manager", "helmrelease-cert-manager.yaml")));
        assert.match(
            result.stdout,
            /\nAccount: MOCKED: it holds the stack's zone and offers its region with every priced size; pulumi up checks both against yours first\n/,
        );
        // A second plan replaces the first; the mocked account takes a zone and a region of the user's own.
        const own = fs.mkdtempSync(path.join(os.tmpdir(), "plan-stack-"));
        const example = fs.readFileSync(path.join(FIXTURES, "Pulumi.example.yaml"), "utf8");
        fs.writeFileSync(path.join(own, "Pulumi.example.yaml"), `${example.replace(/hephy-demo\.net/g, "my-team.dev")}  hephy-doks:region: sgp1\n`);
        const second = await planHere("--stack", "example", "--stack-dir", own, "--out", out);
        assert.equal(second.error, undefined);
        assert.match(second.stdout, /\n {2}platformDomain: example\.my-team\.dev\n/);
        assert.deepEqual([world.zones, Object.keys(world.regions)], [[...ZONES], ["fra1", "nyc3", "sfo1"]], "the mocked account is as it was");

        fs.mkdirSync(path.join(out, "mine", "example"), { recursive: true });
        const refused = await planHere("--stack", "example", "--stack-dir", FIXTURES, "--out", path.join(out, "mine"));
        assert.match(String(refused.error), /exists and holds no earlier plan \(no plan\.txt\); choose another --out/);
    });

    it("fails with the stacks it knows when the stack has no file", () => {
        const result = plan("--stack", "nope");
        assert.equal(result.status, 1);
        assert.match(result.stderr, /npm run plan: no stack file Pulumi\.nope\.yaml in .*; stacks with a file: production, staging/);
    });
});
