import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { parseArgs as parsePlanArgs } from "../scripts/plan";
import { parseOptions as parseVerifyOptions } from "../verify/main";
import { ROOT, sharedRun } from "../offline/harness";

/**
 * Every `pulumi …` and `npm run …` command the README and docs/ print, as a reader would copy it: held
 * to the CLI's subcommands and flags as this project uses them, to Pulumi.yaml's keys, and to the
 * flags the plan and verify read.
 */

const DOCS = ["README.md", ...fs.readdirSync(path.join(ROOT, "docs")).map((f) => path.join("docs", f))];

/** Words of a shell command, quotes removed; placeholders such as `<stack>` become a plain name. */
function words(command: string): string[] {
    const found = command.match(/'[^']*'|"[^"]*"|\S+/g) ?? [];
    return found.map((w) => w.replace(/^(['"])(.*)\1$/, "$2").replace(/<[^>]+>/g, "name"));
}

/** The commands in a text: code spans and code block lines, split at && ; | and stripped of comments and env assignments. */
export function commandsIn(text: string): string[] {
    const blocks = [...text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1].replace(/\\\n/g, " "));
    const outside = text.replace(/```[a-z]*\n[\s\S]*?```/g, "");
    const spans = [...outside.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]);
    return [...blocks.flatMap((b) => b.split("\n")), ...spans]
        .map((line) => line.replace(/\s#\s.*$/, ""))
        .flatMap((line) => line.split(/&&|;|\|(?!\|)/))
        .map((c) => c.trim().replace(/^([A-Z_]+=\S+\s+)+/, ""))
        .filter((c) => /^(pulumi|npm run) \S/.test(c));
}

/** The subcommands and flags of the Pulumi CLI that the docs may print (pulumi --help of CLI 3). */
const PULUMI: Record<string, string[]> = {
    up: ["--stack", "--refresh", "--refresh=false", "--replace", "--yes", "--skip-preview", "--target", "--policy-pack"],
    preview: ["--stack", "--refresh", "--diff", "--policy-pack"],
    destroy: ["--stack", "--run-program", "--yes", "--target"],
    refresh: ["--stack", "--yes"],
    login: ["--local"],
    "stack init": ["--stack", "--secrets-provider"],
    "stack select": ["--create", "--stack"],
    "stack rm": ["--stack", "--yes", "--force", "--preserve-config"],
    "stack output": ["--stack", "--json", "--show-secrets"],
    stack: ["--show-urns", "--stack"],
    "state delete": ["--stack", "--target-dependents"],
    "state unprotect": ["--stack"],
    "config set": ["--secret", "--path", "--stack"],
    "config get": ["--stack", "--path"],
    "config rm": ["--stack", "--path"],
    config: ["--stack", "--show-secrets"],
    "plugin install": [],
};

/** The flags above that take a value as the next word. */
const VALUED = ["--stack", "--target", "--policy-pack", "--secrets-provider", "--replace"];

const DECLARED = Object.keys(YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")).config);
const SCRIPTS = Object.keys(JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts);

interface Printed {
    file: string;
    command: string;
}

/** What is wrong with printed `pulumi` commands: an unknown subcommand or flag, an undeclared key. */
function pulumiProblems(commands: readonly Printed[]): string[] {
    const problems: string[] = [];
    for (const { file, command } of commands.filter((c) => c.command.startsWith("pulumi "))) {
        const [, ...rest] = words(command);
        // A flag that takes a value (`--stack staging`) is followed by that value, not by a positional word.
        const positional = rest.filter((w, i) => !w.startsWith("-") && !VALUED.includes(rest[i - 1]));
        const sub = [`${positional[0]} ${positional[1]}`, positional[0] ?? ""].find((s) => s in PULUMI && rest.join(" ").startsWith(s.split(" ")[0]));
        if (sub === undefined) {
            problems.push(`${file}: ${command}: no subcommand of this project's`);
            continue;
        }
        const flags = rest.filter((w) => w.startsWith("-")).map((w) => (w.includes("=") && !PULUMI[sub].includes(w) ? w.split("=")[0] : w));
        problems.push(...flags.filter((f) => !PULUMI[sub].includes(f)).map((f) => `${file}: ${command}: ${f} is not a flag of pulumi ${sub} here`));
        if (sub === "config set" || sub === "config get" || sub === "config rm") {
            const key = positional[2] ?? "";
            const own = /^hephy-doks:(\w+)(\[\d+\])?$/.exec(key);
            const known = own ? DECLARED.includes(own[1]) : /^(digitalocean:token|pulumi:[\w-]+)$/.test(key) || key === "name";
            if (!known) problems.push(`${file}: ${command}: ${key} is not a key Pulumi.yaml declares`);
            if (own?.[2] && !rest.includes("--path")) problems.push(`${file}: ${command}: a list item needs --path`);
        }
    }
    return problems;
}

const PARSERS: Record<string, (args: string[]) => unknown> = { plan: parsePlanArgs, verify: parseVerifyOptions };

/** What is wrong with printed `npm run` commands: an unknown script, flags before `--`, flags the command refuses. */
function npmProblems(commands: readonly Printed[]): { problems: string[]; parsed: number } {
    const problems: string[] = [];
    let parsed = 0;
    for (const { file, command } of commands.filter((c) => c.command.startsWith("npm run "))) {
        const [, , script, ...rest] = words(command);
        if (!SCRIPTS.includes(script)) {
            problems.push(`${file}: ${command}: no npm script ${script}`);
            continue;
        }
        if (rest.length > 0 && rest[0] !== "--") {
            problems.push(`${file}: ${command}: npm passes flags only after --`);
            continue;
        }
        if (PARSERS[script]) {
            try {
                PARSERS[script](rest.slice(1));
                parsed++;
            } catch (error) {
                problems.push(`${file}: ${command}: ${(error as Error).message.split("\n")[0]}`);
            }
        }
    }
    return { problems, parsed };
}

describe("the commands the README and docs print", () => {
    const commands = DOCS.flatMap((file) => commandsIn(fs.readFileSync(path.join(ROOT, file), "utf8")).map((command) => ({ file, command })));

    it("finds them: the README's first commands among them", () => {
        const readme = commands.filter((c) => c.file === "README.md").map((c) => c.command);
        for (const expected of ["pulumi login --local", "pulumi stack select --create staging", "pulumi up", "npm run verify -- --stack staging"]) {
            assert.ok(readme.includes(expected), `${expected} in ${readme.join(" | ")}`);
        }
        assert.ok(commands.length >= 40, `${commands.length} commands`);
    });

    it("tells a newcomer, in the README's first 40 lines, the status and risks, what to install, both commands, time, cost, verify and teardown", () => {
        const first = fs.readFileSync(path.join(ROOT, "README.md"), "utf8").split("\n").slice(0, 40).join("\n");
        const engines = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).engines.node;
        for (const needed of [
            /\[\*Deploying Workflow with the Helm Operator\*\]\(https:\/\/\S+\)/,
            /Hephy Workflow, an open-source Heroku-style PaaS/,
            /\*\*Status: not yet run on a live cluster\.\*\*/,
            /Helm\s+2\/Tiller, helm-operator v1 and Workflow's images are end of life upstream/,
            /Unverified until then: /,
            /Pulumi CLI 3/,
            new RegExp(`Node\\.js ${engines.replace(/^>=/, "")} \\(LTS\\) or newer`),
            /Linux x86-64 binary: on macOS or ARM, set\s+`HEPHY_DOKS_HELM`/,
            /pulumi stack rm staging --preserve-config/,
            /DNS zone/,
            /npm ci && npm test/,
            /pulumi up/,
            /npm run verify/,
            /pulumi destroy/,
            /\d+ to \d+ minutes/,
            /\$\d+ a month/,
        ]) {
            assert.match(first, needed);
        }
        const wide = fs
            .readFileSync(path.join(ROOT, "README.md"), "utf8")
            .split("\n")
            .filter((l) => l.startsWith("|") && l.length > 100);
        assert.deepEqual(wide, [], "no table row a reader must scroll sideways for");
    });

    it("links only to files that exist, relative to the page that links", () => {
        const broken = DOCS.flatMap((file) =>
            [...fs.readFileSync(path.join(ROOT, file), "utf8").matchAll(/\]\(([^)\s]+)\)/g)]
                .map((m) => m[1].split("#")[0])
                .filter((target) => target !== "" && !/^[a-z]+:/.test(target))
                .filter((target) => !fs.existsSync(path.join(ROOT, path.dirname(file), target)))
                .map((target) => `${file}: ${target}`),
        );
        assert.deepEqual(broken, []);
        assert.ok(
            fs.existsSync(path.join(ROOT, "docs", "workflow.md")) && !fs.existsSync(path.join(ROOT, "docs", "docs", "workflow.md")),
            "the check can fail",
        );
    });

    it("counts Workflow's Secrets as the program declares them, and lists every stack output it exports", async () => {
        const run = await sharedRun();
        const NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen"];
        const secrets = run.ofType("kubernetes:core/v1:Secret").filter((s) => s.parent?.startsWith("hephy-doks:workflowSecrets:WorkflowSecrets::")).length;
        const said = DOCS.flatMap((file) =>
            [...fs.readFileSync(path.join(ROOT, file), "utf8").matchAll(/(?:Workflow's (\w+) Secrets|the (\w+) Secrets that hold Workflow's)/g)].map(
                (m) => `${file}: ${m[1] ?? m[2]}`,
            ),
        );
        assert.ok(said.length >= 2, said.join("\n"));
        assert.deepEqual(
            said.filter((s) => !s.endsWith(`: ${NUMBERS[secrets]}`)),
            [],
            `the program declares ${secrets} Secrets of Workflow's`,
        );
        const configuration = fs.readFileSync(path.join(ROOT, "docs", "configuration.md"), "utf8");
        const section = configuration.slice(configuration.indexOf("## Outputs"));
        const listed = [...section.matchAll(/^- (`\w+`(?:, `\w+`)*):/gm)].flatMap((m) => [...m[1].matchAll(/`(\w+)`/g)].map((n) => n[1]));
        // With an off-cluster copy and snapshots, the stack also outputs its bucket and how many snapshots it keeps.
        const withBackup = await sharedRun({ config: { backupRegion: "fra1", volumeSnapshots: "8" } });
        const outputs = new Set([...Object.keys(run.outputs), ...Object.keys(withBackup.outputs)]);
        assert.deepEqual([...listed].sort(), [...outputs].sort(), "docs/configuration.md's Outputs are the program's");
    });

    it("uses only subcommands and flags of the Pulumi CLI, and only keys Pulumi.yaml declares", () => {
        assert.deepEqual(pulumiProblems(commands), []);
    });

    it("runs only npm scripts that exist, with flags the plan and verify read", () => {
        const { problems, parsed } = npmProblems(commands);
        assert.deepEqual(problems, []);
        assert.ok(parsed >= 6, `${parsed} plan and verify commands parsed`);
    });

    it("can fail: a key, a flag, a flag before -- and an npm script that do not exist are caught", () => {
        const printed = commandsIn(
            "Run `pulumi config set hephy-doks:nodecount 3` and\n```bash\nX=1 npm run verify --stack s && pulumi up --yolo # no\nnpm run deploy\nnpm run plan -- --stak x\n```\n",
        ).map((command) => ({ file: "f", command }));
        assert.deepEqual(pulumiProblems(printed), [
            "f: pulumi up --yolo: --yolo is not a flag of pulumi up here",
            "f: pulumi config set hephy-doks:nodecount 3: hephy-doks:nodecount is not a key Pulumi.yaml declares",
        ]);
        assert.deepEqual(npmProblems(printed).problems, [
            "f: npm run verify --stack s: npm passes flags only after --",
            "f: npm run deploy: no npm script deploy",
            "f: npm run plan -- --stak x: Unknown option '--stak'",
        ]);
    });
});
