import * as fs from "node:fs";
import * as path from "node:path";
import Ajv from "ajv";
import * as pulumi from "@pulumi/pulumi";
import { isCidr } from "../cidr";
import { PROJECT } from "../config";
import { invokes, previewState, resourceState, world } from "./mocks";

/** One resource the program declared, as the engine would have received it. */
export interface Recorded {
    type: string;
    name: string;
    /** Inputs as sent to the provider (for components: none). */
    inputs: Record<string, any>;
    /** Outputs the mock provider answered with. */
    state: Record<string, any>;
    custom: boolean;
    /** `type::name` of the parent, from the resource options. */
    parent: string | undefined;
    /** `type::name` of each explicit `dependsOn`. */
    dependsOn: string[];
    /** `type::name` of each resource whose outputs flow into this one's inputs (the engine's implicit dependencies). */
    inputDependsOn: string[];
    /** `type::name` of the provider resource passed in the options, if any. */
    provider: string | undefined;
    /** The provider reference the engine was given (`urn::id`), for custom resources. */
    providerRef: string | undefined;
    /** Whether `protect` was set. */
    protect: boolean;
    /** Whether `retainOnDelete` was set: a delete only forgets the resource. */
    retainOnDelete?: boolean;
    /** Whether a replacement deletes the old resource before creating the new one. */
    deleteBeforeReplace: boolean;
    /** Input paths whose change replaces the resource. */
    replaceOnChanges: string[];
    /** Input paths the engine keeps as they are in state. */
    ignoreChanges: string[];
}

/** The resource options a test reads, beside parent and provider. */
type RecordedOptions = Pick<
    Recorded,
    "parent" | "dependsOn" | "provider" | "protect" | "retainOnDelete" | "deleteBeforeReplace" | "replaceOnChanges" | "ignoreChanges"
>;

/** Every Output in a value, however deep. */
function outputsIn(value: unknown, found: pulumi.Output<unknown>[] = []): pulumi.Output<unknown>[] {
    if (pulumi.Output.isInstance(value)) {
        found.push(value);
    } else if (Array.isArray(value)) {
        value.forEach((v) => outputsIn(v, found));
    } else if (typeof value === "object" && value !== null && !pulumi.Resource.isInstance(value)) {
        Object.values(value).forEach((v) => outputsIn(v, found));
    }
    return found;
}

/** The resources an Output carries, as the SDK reports them to the engine. */
async function resourcesOf(outputs: pulumi.Output<unknown>[]): Promise<pulumi.Resource[]> {
    const sets = await Promise.all(outputs.map((o) => (o as unknown as { allResources(): Promise<Set<pulumi.Resource>> }).allResources()));
    return sets.flatMap((set) => [...set]);
}

export interface Invoked {
    token: string;
    inputs: Record<string, any>;
}

export interface Run {
    resources: Recorded[];
    invokes: Invoked[];
    /** What the program warned of (`pulumi.log.warn`), which the engine would show; kept here, not printed. */
    warnings: string[];
    /** The stack outputs as the program returned them (Outputs, so secrecy can be checked). */
    outputs: Record<string, pulumi.Output<any> | any>;
    ofType(type: string): Recorded[];
    /** The one resource of `type` (named `name`, if given); fails when there is not exactly one. */
    one(type: string, name?: string): Recorded;
}

/** Config every test starts from: the two required keys, as a new stack has them. */
export const BASE_CONFIG: Readonly<Record<string, string>> = {
    domain: "hephy-demo.net",
    acmeEmail: "ops@hephy-demo.net",
};

/** A stack that points Workflow at a fork which supports today's Kubernetes, as README describes. */
export const WITH_WORKFLOW_FORK = {
    workflowEnabled: "true",
    platformSubdomain: "paas",
    releases: JSON.stringify({
        workflow: {
            git: "https://github.com/example/workflow",
            ref: "k8s-1.36",
            path: "charts/workflow",
            kubernetes: { min: "1.33", max: "1.36" },
            values: { controller: { org: "example", docker_tag: "git-abc1234" } },
        },
    }),
};

export interface RunOptions {
    /** `hephy-doks:` config keys (without the namespace) and their raw string values. */
    config?: Record<string, string>;
    /** Keys set without the base config's defaults merged in. */
    replaceConfig?: boolean;
    stack?: string;
    preview?: boolean;
    /**
     * Plan mode: a preview in which the mock provider answers with the inputs only, so every value a
     * provider computes (IDs, keys, certificates, IPs, the kubeconfig) stays unknown, as in a first `pulumi preview`.
     */
    unknownOutputs?: boolean;
}

/** The project's root, where index.ts and the stack files are. */
export const ROOT = path.resolve(__dirname, "..");

function key(r: pulumi.Resource, known: Map<pulumi.Resource, string>): string {
    return known.get(r) ?? "pulumi:pulumi:Stack";
}

const sharedRuns = new Map<string, Promise<Run>>();

/**
 * A run that specs only read, evaluated once per test process for the same options, mocked account and
 * environment, and shared: the program is deterministic (foundation.spec.ts proves it), so a second
 * evaluation would record the same. A spec that changes the account or reads what an evaluation does
 * to the mocks calls runProgram.
 */
export function sharedRun(options: RunOptions = {}): Promise<Run> {
    // What the program declared last is a record of the mocks, not their state.
    const account = Object.entries(world).filter(([name]) => name !== "declared");
    const key = JSON.stringify([options, account, process.env.PULUMI_K8S_DELETE_UNREACHABLE ?? null]);
    let run = sharedRuns.get(key);
    if (!run) {
        run = runProgram(options);
        sharedRuns.set(key, run);
        run.catch(() => sharedRuns.delete(key));
    }
    return run;
}

/**
 * Evaluates the real program (index.ts) under Pulumi's mock engine and records every resource
 * registration and invoke. Resolves once all registrations have finished.
 */
export async function runProgram(options: RunOptions = {}): Promise<Run> {
    const stack = options.stack ?? "staging";
    const config = { ...(options.replaceConfig ? {} : BASE_CONFIG), ...(options.config ?? {}) };
    pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`${PROJECT}:${k}`, v])));

    world.declared.clear();
    const registered = new Map<string, Omit<Recorded, keyof RecordedOptions | "inputDependsOn">>();
    const calls: Invoked[] = [];
    await pulumi.runtime.setMocks(
        {
            async newResource(args) {
                registered.set(`${args.type}::${args.name}`, {
                    type: args.type,
                    name: args.name,
                    inputs: args.inputs,
                    custom: args.custom ?? true,
                    providerRef: args.provider,
                    state: {},
                });
                try {
                    if (options.unknownOutputs) {
                        return { id: "", state: previewState(args) };
                    }
                    const state = await resourceState(args);
                    registered.get(`${args.type}::${args.name}`)!.state = state;
                    return { id: `${args.name}-id`, state };
                } catch (error) {
                    // The mock engine would otherwise hang on a rejected registration.
                    console.error(`test mocks: cannot compute ${args.type} ${args.name}:`, error);
                    throw error;
                }
            },
            call(args) {
                calls.push({ token: args.token, inputs: args.inputs });
                const answer = invokes[args.token];
                if (!answer) {
                    const message = `test mocks: no answer for invoke ${args.token}`;
                    console.error(message);
                    throw new Error(message);
                }
                return answer(args.inputs);
            },
        },
        PROJECT,
        stack,
        (options.preview || options.unknownOutputs) ?? false,
    );

    // Without an engine the SDK prints warnings with console.warn (@pulumi/pulumi log/index.js `warn`).
    const warnings: string[] = [];
    const consoleWarn = console.warn;
    console.warn = (...args: unknown[]) => {
        const text = args.map(String).join(" ");
        if (text.startsWith(RUNTIME_WARNING)) {
            warnings.push(text.slice(RUNTIME_WARNING.length));
        } else {
            consoleWarn(...args);
        }
    };
    const known = new Map<pulumi.Resource, string>();
    const options_ = new Map<string, RecordedOptions>();
    // Settled at once, so a failing program leaves no unhandled rejection; errors are judged below.
    const inputResources = new Map<string, Promise<pulumi.Resource[] | Error>>();
    let succeeded = false;
    let outputs: Record<string, any> = {};
    // Pulumi takes a full stack trace at each registration and promise (its source positions); ts-node's
    // source-map support would map every frame of each. V8's own traces, while the program runs, cost
    // a fraction; the positions are not what the tests read.
    const prepareStackTrace = Error.prepareStackTrace;
    (Error as { prepareStackTrace?: unknown }).prepareStackTrace = undefined;
    try {
        await pulumi.runtime.runInPulumiStack(async () => {
            pulumi.runtime.registerStackTransformation((args) => {
                const id = `${args.type}::${args.name}`;
                known.set(args.resource, id);
                const deps = args.opts.dependsOn;
                const depList = deps === undefined ? [] : Array.isArray(deps) ? deps : [deps];
                options_.set(id, {
                    parent: args.opts.parent ? key(args.opts.parent, known) : "pulumi:pulumi:Stack",
                    dependsOn: depList.map((d) => (pulumi.Resource.isInstance(d) ? key(d, known) : "<output>")),
                    provider: args.opts.provider ? key(args.opts.provider, known) : undefined,
                    protect: args.opts.protect === true,
                    retainOnDelete: args.opts.retainOnDelete === true,
                    deleteBeforeReplace: (args.opts as pulumi.CustomResourceOptions).deleteBeforeReplace === true,
                    replaceOnChanges: args.opts.replaceOnChanges ?? [],
                    ignoreChanges: args.opts.ignoreChanges ?? [],
                });
                inputResources.set(
                    id,
                    resourcesOf(outputsIn(args.props)).catch((error: Error) => error),
                );
                return undefined;
            });
            // index.ts exports the program (`export =`), which module interop gives as `default`.
            const program: () => Promise<Record<string, any>> = (await import(path.join(ROOT, "index"))).default;
            outputs = await program();
            return outputs;
        });
        succeeded = true;
    } finally {
        Error.prepareStackTrace = prepareStackTrace;
        console.warn = consoleWarn;
        await pulumi.runtime.disconnect();
        const inputDeps = new Map<string, string[]>();
        for (const [id, found] of inputResources) {
            const resources = await found;
            if (resources instanceof Error) {
                if (succeeded) {
                    throw new Error(`test harness: cannot tell what ${id} depends on: ${resources.message}`);
                }
                continue;
            }
            inputDeps.set(id, [...new Set(resources.map((r) => key(r, known)))]);
        }
        lastResources = collect(registered, options_, inputDeps);
        lastInvokes = calls;
        lastWarnings = warnings;
    }

    const resources = lastResources;
    const ofType = (type: string) => resources.filter((r) => r.type === type);
    return {
        resources,
        invokes: calls,
        warnings,
        outputs,
        ofType,
        one(type, name) {
            const found = ofType(type).filter((r) => name === undefined || r.name === name);
            if (found.length !== 1) {
                throw new Error(`expected one ${type}${name ? ` named ${name}` : ""}, found ${found.length}: ${found.map((r) => r.name).join(", ")}`);
            }
            return found[0];
        },
    };
}

function collect(
    registered: Map<string, Omit<Recorded, keyof RecordedOptions | "inputDependsOn">>,
    opts: Map<string, RecordedOptions>,
    inputDeps: Map<string, string[]>,
): Recorded[] {
    const resources: Recorded[] = [];
    for (const [id, o] of opts) {
        const reg = registered.get(id);
        const [type, ...rest] = id.split("::");
        resources.push({
            type,
            name: rest.join("::"),
            inputs: reg?.inputs ?? {},
            state: reg?.state ?? {},
            custom: reg?.custom ?? false,
            providerRef: reg?.providerRef,
            inputDependsOn: inputDeps.get(id) ?? [],
            ...o,
        });
    }
    return resources;
}

/** Evaluates the program and returns the error it fails with, or throws if it does not fail. */
export async function programError(options: RunOptions): Promise<{ error: Error; declared: Recorded[]; invoked: Invoked[]; warnings: string[] }> {
    try {
        await runProgram(options);
    } catch (error) {
        return { error: error as Error, declared: lastResources, invoked: lastInvokes, warnings: lastWarnings };
    }
    throw new Error(`expected the program to fail, but it declared ${lastResources.length} resources`);
}

/** What the last evaluation declared, kept even when it failed. */
let lastResources: Recorded[] = [];
let lastInvokes: Invoked[] = [];
let lastWarnings: string[] = [];

/** How the SDK prefixes a warning it prints itself, with no engine to send it to. */
const RUNTIME_WARNING = "warning: [runtime] ";

/** Resolves an Output (or plain value) for assertions. */
export function valueOf<T>(output: pulumi.Input<T>): Promise<T> {
    return new Promise((resolve) => pulumi.output(output).apply((v) => resolve(v as T)));
}

/** Whether an Output is marked secret. */
export function isSecret(output: pulumi.Output<unknown>): Promise<boolean> {
    return pulumi.isSecret(output);
}

export { plain, sentAsSecret } from "./mocks";

/** Imports an ES module (kubernetes-models) from this CommonJS test code. */
export const esmImport = new Function("specifier", "return import(specifier)") as (specifier: string) => Promise<any>;

/**
 * Cilium's own policy kinds as JSON Schemas, generated from Cilium 1.18.2's CRDs by
 * datreeio/CRDs-catalog (commit ea03cc2a, "Update cilium to 1.18.2"), unmodified and pinned in SHA256SUMS.
 */
export const CILIUM_SCHEMAS = path.join(ROOT, "test", "fixtures", "schemas", "cilium.io");

/** The OpenAPI formats Cilium's schemas use, checked as the API server checks them (a format it does not know passes). */
const CILIUM_FORMATS = {
    cidr: (text: string) => isCidr(text),
    int32: { type: "number" as const, validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 },
    int64: { type: "number" as const, validate: (n: number) => Number.isInteger(n) },
    "date-time": (text: string) => !Number.isNaN(Date.parse(text)),
    "idn-hostname": (text: string) => text.length > 0 && text.length <= 253,
};

/** A model class, as kubernetes-models makes them, for a kind of Cilium's whose schema is a fixture. */
function ciliumModel(kind: string): (new (object: unknown) => { validate(): void }) | undefined {
    const file = path.join(CILIUM_SCHEMAS, `${kind.toLowerCase()}_v2.json`);
    if (!fs.existsSync(file)) {
        return undefined;
    }
    // Go's `\PC` (spec.log.value) is no JavaScript Unicode escape; no policy here sets that field.
    const validate = new Ajv({ strict: false, allErrors: true, unicodeRegExp: false, formats: CILIUM_FORMATS }).compile(
        JSON.parse(fs.readFileSync(file, "utf8")),
    );
    return class {
        constructor(private readonly object: unknown) {}
        validate(): void {
            if (!validate(this.object)) {
                throw new Error(`not a valid cilium.io/v2 ${kind}: ${JSON.stringify(validate.errors)}`);
            }
        }
    };
}

/**
 * The model class of a built-in Kubernetes kind (`v1`, `apps/v1`, …) from kubernetes-models, or of one of
 * Cilium's policy kinds, to validate an object against the real schema; undefined for a kind it has no
 * schema for (other custom resources).
 */
export async function kubernetesModel(apiVersion: string, kind: string): Promise<(new (object: unknown) => { validate(): void }) | undefined> {
    if (apiVersion === "cilium.io/v2") {
        return ciliumModel(kind);
    }
    try {
        // cert-manager's kinds are in its own package of the same project.
        const module = apiVersion.endsWith("cert-manager.io/v1") ? `@kubernetes-models/cert-manager/${apiVersion}` : `kubernetes-models/${apiVersion}`;
        return (await esmImport(module))[kind];
    } catch {
        return undefined;
    }
}
