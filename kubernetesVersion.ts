import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";
import { compareMinor, describeChart, enabledReleases, minorOf } from "./catalog";
import { ConfigError, PROJECT, StackConfig } from "./config";
import { KubernetesRange } from "./types";

/** Which Kubernetes version a stack's cluster runs, and whether its releases support it. */

/** What the choice of the cluster's Kubernetes version depends on. */
export interface VersionChoice {
    /** `hephy-doks:kubernetesVersion`: undefined for `latest`, a minor such as `1.35`, or a DOKS slug. */
    requested: string | undefined;
    /** The slugs DigitalOcean offers now, in any order. */
    offered: readonly string[];
    /** The slug the stack's cluster runs now; undefined when it has none yet. */
    running: string | undefined;
    /** The minors every enabled release supports; undefined when no minor is common to all. */
    supported: KubernetesRange | undefined;
}

export interface ChosenVersion {
    /** The DOKS slug the cluster is declared with. */
    version: string;
    /** Things the user should know, such as a newer minor the releases do not support yet. */
    warnings: string[];
}

/** Orders two DOKS slugs by major, minor, patch and DigitalOcean's `-do.N` revision, as numbers. */
export function compareSlugs(a: string, b: string): number {
    const parts = (slug: string) =>
        slug
            .split(/[.-]/)
            .filter((p) => /^[0-9]+$/.test(p))
            .map(Number);
    const [x, y] = [parts(a), parts(b)];
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
        if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    }
    return 0;
}

/** The newest slug of a list. */
function newest(slugs: readonly string[]): string | undefined {
    return [...slugs].sort(compareSlugs).pop();
}

/** The minors every enabled release of a stack supports, or undefined when they have none in common. */
export function supportedByReleases(config: Pick<StackConfig, "releases" | "workflowEnabled">): KubernetesRange | undefined {
    return commonRange(enabledReleases(config).map((key) => config.releases[key].kubernetes));
}

/** The minors every range includes, or undefined when they have none in common. */
export function commonRange(ranges: readonly KubernetesRange[]): KubernetesRange | undefined {
    const min = ranges.map((r) => r.min).reduce((a, b) => (compareMinor(a, b) >= 0 ? a : b));
    const max = ranges.map((r) => r.max).reduce((a, b) => (compareMinor(a, b) <= 0 ? a : b));
    return compareMinor(min, max) <= 0 ? { min, max } : undefined;
}

/**
 * Chooses the cluster's version so that it changes only when the stack's config asks for it:
 *
 * - a running cluster keeps its version while the config names its slug, its minor, or `latest`.
 *   A patch DigitalOcean releases later is applied by DigitalOcean's own auto-upgrade (the
 *   `autoUpgrade` key), never by an unrelated `pulumi up`, and a version DigitalOcean no longer offers
 *   is never refused for a cluster that runs it;
 * - a running cluster never gets an older version: DOKS cannot downgrade, and the DigitalOcean provider
 *   replaces a cluster whose version decreases (terraform-provider-digitalocean
 *   resource_kubernetes_cluster.go `ForceNewIfChange("version")`). It moves one minor at a time;
 * - a new cluster, or one whose config names a newer minor or slug, gets the newest offered patch of
 *   that minor; `latest` is the newest offered minor that every enabled release supports.
 */
export function chooseKubernetesVersion(choice: VersionChoice): ChosenVersion {
    const { requested, offered, running, supported } = choice;
    const warnings: string[] = [];
    const offeredMinors = [...new Set(offered.map(minorOf))].sort(compareMinor);
    const fix = (value: string) => `pulumi config set ${PROJECT}:kubernetesVersion ${value}`;
    // YAML reads an unquoted 1.30 as the number 1.3.
    const unquoted = (what: string) => {
        const tens = /^([0-9]+)\.([1-9])$/.exec(what);
        return tens && offeredMinors.includes(`${tens[1]}.${tens[2]}0`)
            ? `; if a stack file says ${tens[1]}.${tens[2]}0 unquoted, YAML reads the number ${what}: write "${tens[1]}.${tens[2]}0"`
            : "";
    };
    const notOffered = (what: string) =>
        new Error(
            `${PROJECT}:kubernetesVersion ${what} is not offered by DigitalOcean; offered now: ${[...offered].sort().join(", ") || "none"}${unquoted(what)} ` +
                // The newest offered minor every enabled release supports is one that passes; else latest says why not.
                `(${fix(offeredMinors.filter((m) => supported && compareMinor(m, supported.min) >= 0 && compareMinor(m, supported.max) <= 0).pop() ?? "latest")})`,
        );

    const isSlug = requested !== undefined && requested.split(".").length > 2;
    if (running !== undefined) {
        const runningMinor = minorOf(running);
        const requestedMinor = requested === undefined ? runningMinor : minorOf(requested);
        const older = requested !== undefined && (isSlug ? compareSlugs(requested, running) < 0 : compareMinor(requested, runningMinor) < 0);
        if (older) {
            // DigitalOcean upgrades a cluster itself, for patches with autoUpgrade, and to the next minor when
            // its minor leaves support (docs.digitalocean.com/products/kubernetes/how-to/upgrade-cluster).
            warnings.push(
                `the cluster runs ${running}, newer than the ${requested} the config asks for, and a cluster cannot go back: kept ${running} (${fix(isSlug ? running : runningMinor)})`,
            );
        }
        if (compareMinor(requestedMinor, runningMinor) > 1) {
            const next = `${runningMinor.split(".")[0]}.${Number(runningMinor.split(".")[1]) + 1}`;
            throw new Error(
                `${PROJECT}:kubernetesVersion ${requested} skips a minor: the cluster runs ${running}, and DOKS upgrades one minor at a time (${fix(next)} first)`,
            );
        }
        if (older || requested === undefined || (isSlug ? requested === running : requested === runningMinor)) {
            const newerMinor = offeredMinors.filter((m) => compareMinor(m, runningMinor) > 0 && (!supported || compareMinor(m, supported.max) <= 0)).pop();
            if (newerMinor !== undefined && requested === undefined) {
                warnings.push(
                    `DigitalOcean offers Kubernetes ${newerMinor}, which every release supports; the cluster stays on ${running} until you ask (${fix(newerMinor)})`,
                );
            }
            if (!offered.includes(running)) {
                warnings.push(`DigitalOcean no longer offers ${running}, which the cluster runs; it stays until you upgrade it or DigitalOcean does`);
            }
            return { version: running, warnings };
        }
    }

    if (isSlug) {
        if (!offered.includes(requested)) throw notOffered(requested);
        return { version: requested, warnings };
    }
    if (requested !== undefined) {
        const slug = newest(offered.filter((v) => minorOf(v) === requested));
        if (slug === undefined) throw notOffered(requested);
        return { version: slug, warnings };
    }
    const usable = offeredMinors.filter((m) => supported && compareMinor(m, supported.min) >= 0 && compareMinor(m, supported.max) <= 0);
    const minor = usable.pop();
    if (minor === undefined) {
        throw new Error(
            `${PROJECT}:kubernetesVersion latest: DigitalOcean offers ${offeredMinors.join(", ") || "no minor"}, and the enabled releases ` +
                (supported ? `support only ${supported.min} to ${supported.max}` : "have no minor in common") +
                `; point ${PROJECT}:releases at charts that support an offered minor, or turn Workflow off: pulumi config set ${PROJECT}:workflowEnabled false`,
        );
    }
    const newer = offeredMinors.filter((m) => compareMinor(m, minor) > 0);
    if (newer.length > 0) {
        warnings.push(`DigitalOcean also offers ${newer.join(", ")}, which not every enabled release supports yet; chose ${minor}`);
    }
    return { version: newest(offered.filter((v) => minorOf(v) === minor))!, warnings };
}

/**
 * Refuses a combination known not to work: each enabled release must support the resolved DOKS
 * version. Called before any resource is declared.
 */
export function checkCompatibility(config: StackConfig, doksVersion: string): void {
    const minor = minorOf(doksVersion);
    const problems: string[] = [];
    for (const key of enabledReleases(config)) {
        const entry = config.releases[key];
        const { min, max } = entry.kubernetes;
        if (compareMinor(minor, min) < 0 || compareMinor(minor, max) > 0) {
            const chart = describeChart(entry.chart);
            problems.push(
                `release ${key} (${chart}) supports Kubernetes ${min} to ${max}, not ${doksVersion}. ` +
                    `Why: ${entry.sources.join("; ")}. ` +
                    `Fix: pulumi config set ${PROJECT}:kubernetesVersion <a minor from ${min} to ${max} that DigitalOcean offers>, ` +
                    `or point ${PROJECT}:releases.${key} at a chart that supports ${minor} (with its "kubernetes" range)` +
                    (key === "workflow" ? `, or pulumi config set ${PROJECT}:workflowEnabled false to install the platform without Workflow` : ""),
            );
        }
    }
    if (problems.length > 0) {
        throw new CompatibilityError(config.stack, problems);
    }
}

/** A release catalog that does not fit the cluster's Kubernetes version. */
export class CompatibilityError extends ConfigError {
    constructor(stack: string, problems: readonly string[]) {
        super(stack, problems, `Stack "${stack}" would deploy releases known not to work on its Kubernetes version; nothing was deployed:`);
    }
}

/** The DigitalOcean cluster this stack already runs, if any: what the version and VPC choices must not disturb. */
export interface RunningCluster {
    /** The DOKS slug it runs; undefined when it could not be read. */
    version: string | undefined;
    /** The VPC it is in, when it could be read. */
    vpc?: { id: string; name: string; ipRange: string };
}

/**
 * Finds the stack's running cluster by its name, once its workers (our tag) show that it exists. When
 * the workers exist but the name finds nothing (a cluster created before the program named clusters,
 * which this run renames; or an account whose first page of clusters does not hold it, as the data
 * source reads only one), its version is unknown, and the run leaves it as it is.
 */
export async function findRunningCluster(name: string, workerTag: string): Promise<RunningCluster | undefined> {
    const workers = await digitalocean.getDroplets({ filters: [{ key: "tags", values: [workerTag] }] });
    if (workers.droplets.length === 0) {
        return undefined;
    }
    let cluster: digitalocean.GetKubernetesClusterResult;
    try {
        cluster = await digitalocean.getKubernetesCluster({ name });
    } catch (error) {
        pulumi.log.warn(
            `droplets tagged ${workerTag} exist, but the cluster named ${name} cannot be read (${(error as Error).message || "not found"}); ` +
                `this run keeps the cluster's version as it is (a version change in the config waits until the cluster is found by name), ` +
                `and names it ${name} if it has another name`,
        );
        return { version: undefined };
    }
    // Guessing here would drop the stack's own VPC from the program, and Pulumi would try to delete it.
    let vpc: digitalocean.GetVpcResult | undefined;
    try {
        vpc = cluster.vpcUuid ? await digitalocean.getVpc({ id: cluster.vpcUuid }) : undefined;
    } catch (error) {
        throw new Error(
            `cannot read the VPC ${cluster.vpcUuid} of cluster ${name} (${(error as Error).message}); the run stops rather than guess whether it is the stack's own`,
        );
    }
    return { version: cluster.version, vpc: vpc && { id: vpc.id, name: vpc.name, ipRange: vpc.ipRange } };
}

/** The version to declare the cluster with, and whether the running cluster keeps its own instead. */
export interface ResolvedVersion {
    /** The DOKS slug the releases are checked against, and a new cluster is created with. */
    version: string;
    /** The cluster exists but its version is unknown: leave it unchanged (`ignoreChanges`). */
    keepRunningVersion: boolean;
}

/**
 * Resolves `hephy-doks:kubernetesVersion` against what DigitalOcean offers now and what the cluster
 * runs (kubernetesVersion.ts has the rules). The program awaits this before declaring any resource.
 */
export async function resolveKubernetesVersion(args: {
    stack: string;
    requested: string | undefined;
    running: RunningCluster | undefined;
    supported: KubernetesRange | undefined;
}): Promise<ResolvedVersion> {
    const offered = (await digitalocean.getKubernetesVersions({})).validVersions;
    try {
        const chosen = chooseKubernetesVersion({ requested: args.requested, offered, running: args.running?.version, supported: args.supported });
        chosen.warnings.forEach((w) => pulumi.log.warn(w));
        return { version: chosen.version, keepRunningVersion: args.running !== undefined && args.running.version === undefined };
    } catch (error) {
        throw new ConfigError(args.stack, [(error as Error).message]);
    }
}
