import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import { PROJECT } from "../config";
import { PRICES } from "../pricing";
import { ExposedType, exposedServicePaths } from "../policy/policies";
import { HELM } from "../offline/helm";
import { parseStrict } from "./cliArgs";
import { plain, ROOT, Recorded, Run, runProgram } from "../offline/harness";
import { RenderedRelease, renderReleases } from "../offline/renderReleases";
import { OFFERED_VERSIONS, resetWorld, sentAsSecret, world } from "../offline/mocks";

/**
 * `npm run plan [-- --stack NAME] [--out DIR] [--stack-dir DIR] [--help]`: evaluates the real program with a stack's config file
 * under the mock engine (no cloud, no CLI, no token) and shows what `pulumi up` would declare: the
 * resource tree, counts per type, the LoadBalancer count and the monthly cost, and every Kubernetes
 * object and HelmRelease as YAML under `plan/<stack>/`, beside what each HelmRelease's chart renders
 * with helm-operator's Helm generation. LoadBalancers are counted over all of it. The tests render their runs with the same code.
 */

const STACK_ROOT = "pulumi:pulumi:Stack";
export const COMPUTED = "<computed>";
export const SECRET = "<secret>";

/** What `npm run plan` prints and writes for one evaluation. */
export interface Plan {
    /** The resource tree, one line per resource, children under their parent. */
    tree: string;
    /** Resource counts per type, the LoadBalancer and NodePort counts and the cost. */
    summary: string;
    /**
     * Relative path under `plan/<stack>/` → YAML of one Kubernetes object or HelmRelease, or of what a
     * HelmRelease's chart renders (`<namespace>/helmrelease-<name>.rendered.yaml`).
     */
    files: Map<string, string>;
    /** Every place a Service of type LoadBalancer is asked for: in any object, Helm values or rendered release. */
    loadBalancers: string[];
    /** Every place a Service of type NodePort is asked for, likewise. */
    nodePorts: string[];
}

/** What the HelmReleases of a run render, from renderReleases. */
export interface Releases {
    rendered: RenderedRelease[];
    /** Releases that could not be rendered offline, with the reason. */
    missing: string[];
}

/** A recorded input as a reviewer should read it: unknowns as `<computed>`, secrets masked. */
export function readable(value: unknown): unknown {
    if (pulumi.isUnknown(value)) {
        return COMPUTED;
    }
    if (sentAsSecret(value)) {
        const inner = (value as { value: unknown }).value;
        return inner === undefined || pulumi.isUnknown(inner) ? `${COMPUTED} ${SECRET}` : SECRET;
    }
    if (Array.isArray(value)) {
        return value.map(readable);
    }
    if (typeof value === "object" && value !== null) {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, readable(v)]));
    }
    return value;
}

/** Kubernetes objects among the recorded resources: custom resources with an apiVersion and kind. */
function kubernetesObjects(resources: Recorded[]): Recorded[] {
    return resources.filter((r) => r.custom && r.type.startsWith("kubernetes:") && typeof r.inputs.kind === "string");
}

function fileName(object: Recorded): string {
    const { kind, metadata = {} } = object.inputs;
    const name = typeof metadata.name === "string" ? metadata.name : object.name;
    const namespace = typeof metadata.namespace === "string" ? metadata.namespace : "_cluster";
    return `${namespace}/${String(kind).toLowerCase()}-${name}.yaml`;
}

function renderTree(resources: Recorded[]): string {
    const children = new Map<string, Recorded[]>();
    for (const r of resources) {
        const parent = r.parent ?? STACK_ROOT;
        children.set(parent, [...(children.get(parent) ?? []), r]);
    }
    const lines = [`${STACK_ROOT}`];
    const walk = (parent: string, indent: string) => {
        const list = children.get(parent) ?? [];
        list.forEach((r, i) => {
            const last = i === list.length - 1;
            // A ConfigFile's objects are read from its file by the provider at deploy time; say where from.
            const source = typeof r.inputs.file === "string" ? `  (objects from ${r.inputs.file})` : "";
            lines.push(`${indent}${last ? "└─ " : "├─ "}${r.type}  ${r.name}${source}`);
            walk(`${r.type}::${r.name}`, `${indent}${last ? "   " : "│  "}`);
        });
    };
    walk(STACK_ROOT, "");
    return lines.join("\n");
}

/** Renders one evaluation of the program, with what its HelmReleases render. */
export function renderPlan(run: Pick<Run, "resources">, cost: string, releases: Releases = { rendered: [], missing: [] }): Plan {
    const objects = kubernetesObjects(run.resources);
    const files = new Map<string, string>();
    for (const object of objects) {
        files.set(fileName(object), YAML.stringify(readable(object.inputs), { lineWidth: 0 }));
    }
    for (const release of releases.rendered) {
        const [namespace, name] = release.release.split("/");
        files.set(
            `${namespace}/helmrelease-${name}.rendered.yaml`,
            `# ${release.chart} (${release.source}), rendered by Helm ${HELM.version} (${HELM.goVersion})\n${release.manifest}`,
        );
    }
    const renderedObjects = releases.rendered.flatMap((r) => r.objects.map((o) => ({ o, at: `${r.release} ${o.kind}/${o.metadata.name}` })));
    const exposed = [
        ...run.resources.flatMap((r) => exposedServicePaths(readable(r.inputs), `${r.type}::${r.name}`)),
        ...renderedObjects.flatMap(({ o, at }) => exposedServicePaths(o, at)),
    ];
    const ofType = (type: ExposedType) => exposed.filter((e) => e.type === type).map((e) => e.at);
    const [loadBalancers, nodePorts] = [ofType("LoadBalancer"), ofType("NodePort")];
    const listed = (name: string, places: string[]) => `${name}: ${places.length}${places.length > 0 ? ` (${places.join(", ")})` : ""}`;
    const counts = new Map<string, number>();
    for (const r of run.resources) {
        counts.set(r.type, (counts.get(r.type) ?? 0) + 1);
    }
    const summary = [
        `Resources: ${run.resources.length}`,
        ...[...counts.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([type, n]) => `  ${String(n).padStart(3)}  ${type}`),
        `Rendered releases: ${releases.rendered.length} (${renderedObjects.length} objects)` +
            (releases.missing.length > 0 ? `; not rendered: ${releases.missing.join("; ")}` : ""),
        `${listed("LoadBalancers", loadBalancers)}, ${listed("NodePorts", nodePorts)}` +
            ` over ${objects.length} objects of the program and ${renderedObjects.length} that its releases render` +
            (releases.missing.length > 0 ? `, without ${releases.missing.length} release(s) that could not be rendered` : ""),
        `Monthly cost: ${cost}`,
    ].join("\n");
    return { tree: renderTree(run.resources), summary, files, loadBalancers, nodePorts };
}

/** A key's declaration in Pulumi.yaml's `config:` block. */
export interface DeclaredType {
    type?: "string" | "integer" | "boolean" | "array";
    items?: { type: "string" | "integer" | "boolean" };
    /** The CLI refuses the key unencrypted. */
    secret?: boolean;
}

/**
 * Whether a value, as a stack file or `pulumi config set` gives it, passes the CLI's check against a
 * declared type (pulumi/pulumi 1b59498 sdk/go/common/workspace/project.go `ValidateConfigValue`): a
 * scalar is checked as its text, so `3` and `"3"` are both integers, a list item by its own YAML type.
 */
export function passesDeclaredType(declared: DeclaredType, value: unknown): boolean {
    const scalar = typeof value === "string" || typeof value === "number" || typeof value === "boolean";
    const text = scalar ? String(value) : undefined;
    switch (declared.type) {
        case undefined:
            return true;
        case "string":
            return text !== undefined;
        case "integer":
            return text !== undefined && /^[+-]?[0-9]+$/.test(text);
        case "boolean":
            return text === "true" || text === "false";
        case "array":
            return (
                Array.isArray(value) &&
                value.every((item) => (declared.items?.type === "string" ? typeof item === "string" : passesDeclaredType(declared.items ?? {}, item)))
            );
    }
}

/** The CLI's complaints about a stack file's `config:` (pkg/workspace/config.go `validateStackConfigValue`), in its words. */
export function typeProblems(stack: string, config: Record<string, unknown>, declared: Record<string, DeclaredType>): string[] {
    const problems: string[] = [];
    for (const [key, value] of Object.entries(config)) {
        const name = key.startsWith(`${PROJECT}:`) ? key.slice(PROJECT.length + 1) : key.includes(":") ? undefined : key;
        const declaration = name === undefined ? undefined : declared[name];
        const secure = typeof value === "object" && value !== null && "secure" in value;
        if (declaration && !secure && !passesDeclaredType(declaration, value)) {
            const type = declaration.type === "array" ? `array<${declaration.items?.type}>` : declaration.type;
            problems.push(`Stack '${stack}' with configuration key '${name}' must be of type '${type}'`);
        }
    }
    return problems;
}

/** A YAML file's content; a syntax error names the file, with the line and column YAML gives. */
export function parseYamlFile(file: string): { config?: Record<string, unknown> } | null {
    try {
        return YAML.parse(fs.readFileSync(file, "utf8"));
    } catch (error) {
        if (error instanceof YAML.YAMLError) {
            throw new Error(`${path.basename(file)} is not valid YAML (${file}): ${error.message.split("\n")[0]}`);
        }
        throw error;
    }
}

/**
 * This project's settings in `Pulumi.<stack>.yaml`, as the engine hands them to the program: keys in
 * the `hephy-doks:` namespace, or with no namespace (which Pulumi puts in the project's).
 */
export function stackConfig(stack: string, root = ROOT, encrypted: string[] = []): Record<string, string> {
    const file = path.join(root, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(file)) {
        const known = fs.readdirSync(root).flatMap((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1] ?? []);
        throw new Error(`no stack file Pulumi.${stack}.yaml in ${root}; stacks with a file: ${known.join(", ") || "none"}`);
    }
    const config: Record<string, unknown> = parseYamlFile(file)?.config ?? {};
    const declared = (parseYamlFile(path.join(ROOT, "Pulumi.yaml"))?.config ?? {}) as Record<string, DeclaredType>;
    const mistyped = typeProblems(stack, config, declared);
    if (mistyped.length > 0) {
        throw new Error(`Pulumi.${stack}.yaml does not pass the CLI's config validation:\n${mistyped.map((p) => `  - ${p}`).join("\n")}`);
    }
    const prefix = `${PROJECT}:`;
    const values: Record<string, string> = {};
    for (const [key, value] of Object.entries(config).filter(([k]) => k.startsWith(prefix) || !k.includes(":"))) {
        if (typeof value === "object" && value !== null && "secure" in value) {
            // A key that is secret by declaration is planned without its value; any other must be readable.
            if (declared[key.replace(prefix, "")]?.secret === true) {
                encrypted.push(key);
                continue;
            }
            throw new Error(`${key} in Pulumi.${stack}.yaml is a secret, which an offline plan cannot decrypt`);
        }
        values[key.startsWith(prefix) ? key.slice(prefix.length) : key] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return values;
}

/** Evaluates the program for a stack file in plan mode and renders it. */
export async function planStack(stack: string, stackDir = ROOT): Promise<Plan & { run: Run; encrypted: string[] }> {
    const encrypted: string[] = [];
    const config = stackConfig(stack, stackDir, encrypted);
    playAccount(config);
    const run = await runProgram({ stack, config, replaceConfig: true, unknownOutputs: true });
    // The version the cluster is declared with, which the releases will meet.
    const declared = run.resources.find((r) => r.type === "digitalocean:index/kubernetesCluster:KubernetesCluster");
    const releases = renderReleases(run, String(plain(declared?.inputs ?? {}).version).split("-")[0]);
    return { ...renderPlan(run, String(run.outputs.monthlyCostEstimate), releases), run, encrypted };
}

/**
 * The plan cannot see the account, so the mocked one holds the stack's zone, and offers its region with
 * every priced size: the preflight's checks of both are left to pulumi up (the version line says the
 * same of DigitalOcean's offer).
 */
export function playAccount(config: Record<string, unknown>): void {
    if (typeof config.domain === "string" && !world.zones.includes(config.domain)) {
        world.zones.push(config.domain);
    }
    if (typeof config.region === "string" && !(config.region in world.regions)) {
        world.regions[config.region] = { available: true, sizes: Object.keys(PRICES.nodeUsd) };
    }
}

/** Writes a plan's files under `dir`, replacing what an earlier plan left there (and nothing else). */
export function writePlan(plan: Plan, dir: string): void {
    if (fs.existsSync(dir) && !fs.existsSync(path.join(dir, "plan.txt"))) {
        throw new Error(`${dir} exists and holds no earlier plan (no plan.txt); choose another --out`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
    for (const [file, text] of plan.files) {
        fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        fs.writeFileSync(path.join(dir, file), text);
    }
    fs.writeFileSync(path.join(dir, "plan.txt"), `${plan.tree}\n\n${plan.summary}\n`);
}

export const USAGE = [
    "Usage: npm run plan -- [--stack NAME] [--out DIR] [--stack-dir DIR] [--offer SLUG,SLUG,...]",
    "",
    "Evaluates the program for the stack file Pulumi.<NAME>.yaml under Pulumi's mock engine (no cloud, no CLI,",
    "no token), renders every HelmRelease with helm-operator's Helm generation, and writes it all under DIR/<NAME>/.",
    "npm passes options to the plan only after --: npm run plan -- --stack production.",
    "",
    "  --stack NAME      the stack to plan (default: staging)",
    "  --out DIR         where to write (default: plan/); DIR/<NAME> must be new or hold an earlier plan, which it replaces",
    "  --stack-dir DIR   where Pulumi.<NAME>.yaml is (default: the project root)",
    `  --offer SLUGS     the DOKS versions to pretend DigitalOcean offers, newest first (default, a sample: ${OFFERED_VERSIONS.join(",")})`,
    "  --help            print this and exit",
    "",
    "Environment: HEPHY_DOKS_HELM, a Helm 3.7 or 3.8 binary (helm-operator's generation) for machines the bundled one",
    "(Linux x86-64) does not run on.",
].join("\n");

export interface PlanArgs {
    stack: string;
    out: string;
    stackDir: string;
    /** The DOKS versions the mocked account offers, newest first. */
    offer: string[];
    help: boolean;
}

/** Parses the command line strictly: every option known, each value present, none twice, no positional word. */
export function parseArgs(args: readonly string[]): PlanArgs {
    const options = {
        stack: { type: "string" },
        out: { type: "string" },
        "stack-dir": { type: "string" },
        offer: { type: "string" },
        help: { type: "boolean", short: "h" },
    } as const;
    let values;
    try {
        values = parseStrict("plan", args, options);
    } catch (error) {
        throw new Error(`${(error as Error).message}\n\n${USAGE}`);
    }
    const offer = values.offer === undefined ? [...OFFERED_VERSIONS] : values.offer.split(",").map((v) => v.trim());
    if (offer.some((v) => !/^[0-9]+\.[0-9]+\.[0-9]+-do\.[0-9]+$/.test(v))) {
        throw new Error(`--offer takes DOKS slugs such as 1.36.1-do.0, separated by commas, got ${JSON.stringify(values.offer)}\n\n${USAGE}`);
    }
    return {
        stack: values.stack ?? "staging",
        out: path.resolve(values.out ?? path.join(ROOT, "plan")),
        stackDir: path.resolve(values["stack-dir"] ?? ROOT),
        offer,
        help: values.help ?? false,
    };
}

/** The stack outputs as a reviewer should read them: unknowns as `<computed>`, secrets masked. */
export async function readableOutputs(outputs: Record<string, unknown>): Promise<Record<string, unknown>> {
    const entries = await Promise.all(
        Object.entries(outputs).map(async ([key, value]): Promise<[string, unknown]> => {
            if (!pulumi.Output.isInstance(value)) {
                return [key, value];
            }
            const output = value as unknown as { isKnown: Promise<boolean>; isSecret: Promise<boolean>; promise(): Promise<unknown> };
            if (await output.isSecret) {
                return [key, (await output.isKnown) ? SECRET : `${COMPUTED} ${SECRET}`];
            }
            return [key, (await output.isKnown) ? await output.promise() : COMPUTED];
        }),
    );
    return Object.fromEntries(entries);
}

/** The command; what it prints goes to `out`, and a plan it refuses (bad config, a LoadBalancer) throws. */
export async function main(argv: string[], out: (text: string) => void = console.log): Promise<void> {
    const args = parseArgs(argv);
    if (args.help) {
        out(USAGE);
        return;
    }
    const dir = path.join(args.out, args.stack);
    world.offered = args.offer;
    const plan = await planStack(args.stack, args.stackDir).finally(resetWorld);
    writePlan(plan, dir);
    const outputs = await readableOutputs(plan.run.outputs);
    out(
        [
            `Plan of stack ${args.stack}: an offline evaluation under the mock engine. Values a provider computes show as ${COMPUTED}.`,
            ...plan.encrypted.map((key) => `Left out: ${key}, which is encrypted; the plan shows nothing of it, and no object made from it.`),
            `Kubernetes version: ${String(outputs.kubernetesVersion)} (MOCKED: chosen, as for a new cluster, from a sample offer, ${args.offer.join(", ")}` +
                `${args.offer.join() === OFFERED_VERSIONS.join() ? " (the default; --offer sets another)" : " (from --offer)"}; ` +
                "DigitalOcean's offer and a running cluster's version decide on a real run)",
            "Account: MOCKED: it holds the stack's zone and offers its region with every priced size; pulumi up checks both against yours first",
            ...plan.run.warnings.map((w) => `Warning: ${w}`),
            "",
            plan.tree,
            "",
            plan.summary,
            "",
            "Stack outputs:",
            YAML.stringify(outputs, { lineWidth: 0 }).trimEnd().replace(/^/gm, "  "),
            "",
            `Wrote ${[...plan.files.keys()].filter((f) => !f.endsWith(".rendered.yaml")).length} Kubernetes objects, ` +
                `${[...plan.files.keys()].filter((f) => f.endsWith(".rendered.yaml")).length} rendered releases and plan.txt under ${path.relative(process.cwd(), dir) || "."}`,
        ].join("\n"),
    );
    if (plan.loadBalancers.length + plan.nodePorts.length > 0) {
        throw new Error(
            `the plan asks for ${plan.loadBalancers.length} LoadBalancer and ${plan.nodePorts.length} NodePort Service(s) (listed above); ` +
                "the cluster's admission policy would refuse them outside hephy-doks:exposedServices",
        );
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).catch((error: Error) => {
        console.error(`npm run plan: ${error.message}`);
        process.exit(1);
    });
}
