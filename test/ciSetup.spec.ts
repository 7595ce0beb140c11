import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { ROOT } from "../offline/harness";

/** The workflows' first look at their settings: one line naming the first that is missing. */
describe("the workflows' settings check (.github/scripts/require-settings.sh)", () => {
    const script = path.join(ROOT, ".github", "scripts", "require-settings.sh");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "settings-"));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, "Pulumi.staging.yaml"), "config:\n  hephy-doks:domain: yourcompany.com\n  hephy-doks:acmeEmail: ops@yourcompany.com\n");
    fs.writeFileSync(path.join(dir, "Pulumi.bare.yaml"), 'config:\n  hephy-doks:nodeCount: "3"\n  hephy-doks:domain: # set me\n');

    const run = (env: Record<string, string>, ...args: string[]) => {
        const result = spawnSync("bash", [script, ...args], { cwd: dir, encoding: "utf8", env: { PATH: process.env.PATH!, ...env } });
        return { status: result.status, stderr: result.stderr.trim() };
    };
    const SELF_MANAGED = {
        PULUMI_BACKEND_URL: "s3://state?endpoint=fra1.digitaloceanspaces.com",
        PULUMI_CONFIG_PASSPHRASE: "p",
        AWS_ACCESS_KEY_ID: "k",
        AWS_SECRET_ACCESS_KEY: "s",
    };

    it("passes a backend with its secrets and a stack file with domain and acmeEmail", () => {
        assert.deepEqual(run(SELF_MANAGED, "staging"), { status: 0, stderr: "" });
        assert.deepEqual(run({ PULUMI_ACCESS_TOKEN: "pul-x" }, "staging"), { status: 0, stderr: "" });
        assert.deepEqual(run({ PULUMI_BACKEND_URL: "file:///state", PULUMI_CONFIG_PASSPHRASE_FILE: "/p" }), { status: 0, stderr: "" });
    });

    it("stops with one line naming the missing setting", () => {
        const cases: [Record<string, string>, string[], RegExp][] = [
            [{}, [], /^::error::set the secret PULUMI_ACCESS_TOKEN for Pulumi Cloud, or the variable PULUMI_BACKEND_URL/],
            [{ ...SELF_MANAGED, PULUMI_CONFIG_PASSPHRASE: "" }, [], /^::error::set the secret PULUMI_CONFIG_PASSPHRASE/],
            [{ ...SELF_MANAGED, AWS_SECRET_ACCESS_KEY: "" }, [], /^::error::set the secrets AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/],
            [SELF_MANAGED, ["pr-7"], /^::error::commit Pulumi\.pr-7\.yaml, the stack's settings/],
            [SELF_MANAGED, ["bare"], /^::error::commit hephy-doks:domain in Pulumi\.bare\.yaml \(pulumi config set --stack bare hephy-doks:domain <value>\)/],
        ];
        for (const [env, args, message] of cases) {
            const result = run(env, ...args);
            assert.equal(result.status, 1, JSON.stringify(env));
            assert.equal(result.stderr.split("\n").length, 1, result.stderr);
            assert.match(result.stderr, message);
            assert.match(result.stderr, /\(docs\/delivery\.md, "Set up once"\)$/);
        }
    });

    it("runs first in every job that operates on stacks: before install in pulumi.yml (with the stack unless destroying), and in teardown's selection", () => {
        const steps = (file: string, job: string) => parseYaml(fs.readFileSync(path.join(ROOT, ".github", "workflows", file), "utf8")).jobs[job].steps as any[];
        const pulumi = steps("pulumi.yml", "pulumi");
        const check = pulumi.findIndex((s) => String(s.run ?? "").includes("require-settings.sh"));
        assert.ok(check > 0 && check < pulumi.findIndex((s) => s.run === "npm ci --no-audit --no-fund"), "after checkout, before the install");
        assert.match(
            pulumi[check].run,
            /if \[ "\$COMMAND" = destroy \]; then bash \.github\/scripts\/require-settings\.sh; else bash \.github\/scripts\/require-settings\.sh "\$STACK"; fi/,
        );
        const select = steps("teardown.yml", "select");
        assert.equal(
            select.findIndex((s) => s.run === "bash .github/scripts/require-settings.sh"),
            1,
        );
    });
});
