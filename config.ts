import * as pulumi from "@pulumi/pulumi";
import { UPSTREAM } from "./catalog";
import { wholeFamiliesCovered } from "./cidr";
import { CONFIG_KEYS, ConfigKey, DEFAULTS, KEYS, ReadValues } from "./configKeys";
import { closest, fix, fixList, jsonList, nameSafe, parseBucketRef, replaceList, shellWord, YOUR_NETWORK } from "./configValues";
import { FIXED, PROJECT } from "./project";
import { KeyAlgorithm, MaintenanceDay, ReleaseEntry, ReleaseKey } from "./types";

/**
 * The stack configuration, validated: every key read by its entry in the key table (configKeys.ts:
 * default, check, fix), the rules across keys applied, and every problem reported at once. The catalog
 * is in catalog.ts, prices in pricing.ts, the Kubernetes version rules in kubernetesVersion.ts.
 */

export { CONFIG_KEYS, DEFAULTS } from "./configKeys";
export { FIXED, PROJECT } from "./project";

/** The validated, defaulted configuration of one stack. */
export interface StackConfig {
    readonly stack: string;
    readonly region: string;
    /** `undefined` means `latest`; otherwise a minor such as `1.33` or a DOKS slug (kubernetesVersion.ts has the rules). */
    readonly requestedKubernetesVersion: string | undefined;
    readonly nodeSize: string;
    readonly nodeCount: number;
    readonly domain: string;
    readonly platformSubdomain: string;
    /** `<platformSubdomain>.<domain>`: Workflow's `controller.platform_domain`. */
    readonly platformDomain: string;
    readonly acmeEmail: string;
    readonly builderSshSources: readonly string[];
    readonly protect: boolean;
    /** Whether the cluster gets DigitalOcean's highly available control plane. */
    readonly haControlPlane: boolean;
    /** The stack name made safe for DigitalOcean names and tags; prefixes our resource names. */
    readonly namePrefix: string;
    /** Our own tag on the worker droplets, which the firewall targets. */
    readonly workerTag: string;
    readonly dnsTtlSeconds: number;
    /** The cluster's name in DigitalOcean: `hephy-doks-<stack>`. */
    readonly clusterName: string;
    /** Whether DigitalOcean applies patch releases itself. */
    readonly autoUpgrade: boolean;
    /** The DNS-only DigitalOcean token of the in-cluster reconciler that moves the records with the nodes (secret); undefined: only `pulumi up` moves them. */
    readonly dnsToken: string | undefined;
    /** DigitalOcean's weekly maintenance window (UTC). */
    readonly maintenance: { readonly day: MaintenanceDay; readonly startTime: string };
    readonly tls: TlsSettings;
    readonly tillerHistoryMax: number;
    /** Whether to install Hephy Workflow itself (the platform underneath is installed either way). */
    readonly workflowEnabled: boolean;
    /** Size in GiB of the volume that holds Workflow's object store. */
    readonly workflowStorageGib: number;
    /** The catalog with this stack's overrides applied. */
    readonly releases: Readonly<Record<ReleaseKey, ReleaseEntry>>;
    /** Services allowed a node port or a load balancer all the same, as `namespace/name`. */
    readonly exposedServices: readonly string[];
    /** The private range of the stack's VPC; undefined lets DigitalOcean choose one. */
    readonly vpcIpRange: string | undefined;
    /** The name of the stack's VPC in DigitalOcean: `hephy-doks-<stack>`. */
    readonly vpcName: string;
    /** Helm values that carry secrets, per release, from the encrypted `releaseSecretValues`; never sent in clear. */
    readonly releaseSecretValues: Readonly<Partial<Record<ReleaseKey, Readonly<Record<string, unknown>>>>>;
    /** Snapshots kept of Workflow's volume; 0: none. */
    readonly volumeSnapshots: number;
    /** The Spaces region of the off-cluster copy of Workflow's object store; undefined: no copy. */
    readonly backupRegion: string | undefined;
    /** The bucket whose copy fills a new stack's object store before Workflow starts; undefined: start empty. */
    readonly restoreFrom: { readonly region: string; readonly bucket: string } | undefined;
}

/** How the Tiller PKI is generated. */
export interface TlsSettings {
    readonly keyAlgorithm: KeyAlgorithm;
    readonly caValidityHours: number;
    readonly certValidityHours: number;
    readonly earlyRenewalHours: number;
}

/** Reads one raw config value of this project's namespace, as the Pulumi engine passes it (a string). */
export type ConfigReader = (key: string) => string | undefined;

/**
 * Names the stack in every `pulumi config` command of a problem, so that a fix writes to the stack the
 * run was about and not to whichever one is selected.
 */
export function withStack(problem: string, stack: string): string {
    return problem.replace(/pulumi config (set|rm)(?! --stack )/g, `pulumi config $1 --stack ${stack}`);
}

/** A stack configuration the program refuses, with every problem found. */
export class ConfigError extends pulumi.RunError {
    readonly problems: readonly string[];
    constructor(
        stack: string,
        problems: readonly string[],
        headline = `The configuration of stack "${stack}" has ${problems.length} problem(s); run the command after each, or edit Pulumi.${stack}.yaml:`,
    ) {
        const named = problems.map((p) => withStack(p, stack));
        super(`${headline}\n` + named.map((p) => `  - ${p}`).join("\n"));
        this.problems = named;
        this.name = new.target.name;
    }
}

/**
 * The config namespaces a stack file may use: this project's, the Pulumi engine's, and those of the
 * providers package.json depends on (a test keeps the list in step with it).
 */
export const CONFIG_NAMESPACES: readonly string[] = [PROJECT, "pulumi", "digitalocean", "kubernetes", "random", "tls"];

/** The command that moves a value to a known key, or only removes it when its value cannot be shown. */
function moveTo(from: string, to: ConfigKey, value: string | undefined): string {
    if (value === undefined) {
        return `(pulumi config rm ${from})`;
    }
    // A list key takes the value's items, or the value as its one item.
    const items = jsonList(value);
    const set = Array.isArray(DEFAULTS[to])
        ? fixList(to, (items?.length && items.every((i) => typeof i === "string") ? (items as string[]) : [value]).map(shellWord))
        : fix(to, shellWord(value));
    return `(pulumi config rm ${from} && ${set.slice(1)}`;
}

/**
 * What is wrong with the keys a stack sets beyond the ones this program reads: a key of its namespace it
 * does not know, or a namespace nothing here reads, each with the key it most likely meant and the
 * command that moves the value there. `secret` keys are moved without showing their value.
 */
function unknownKeyProblems(read: ConfigReader, presentKeys: readonly string[], secretKeys: readonly string[]): string[] {
    const problems: string[] = [];
    for (const present of presentKeys) {
        const [namespace, key] = present.includes(":") ? [present.slice(0, present.indexOf(":")), present.slice(present.indexOf(":") + 1)] : [PROJECT, present];
        if (CONFIG_NAMESPACES.includes(namespace) && (namespace !== PROJECT || (CONFIG_KEYS as readonly string[]).includes(key))) {
            continue;
        }
        const full = `${namespace}:${key}`;
        const value = secretKeys.includes(full) ? undefined : read(present);
        const meantNamespace = namespace === PROJECT ? PROJECT : closest(namespace, [PROJECT]);
        const meant = meantNamespace === PROJECT ? (closest(key, CONFIG_KEYS) as ConfigKey | undefined) : undefined;
        const where =
            namespace === PROJECT
                ? `${full} is not a setting of this program`
                : `${full} is in the namespace ${namespace}, which nothing in this program reads (it reads ${CONFIG_NAMESPACES.join(", ")})`;
        problems.push(
            meant
                ? `${where}; did you mean ${PROJECT}:${meant}? ${moveTo(full, meant, value)}` +
                      (value === undefined ? `, then set ${PROJECT}:${meant} again with --secret` : "")
                : `${where}${namespace === PROJECT ? `; known keys: ${CONFIG_KEYS.join(", ")}` : ""} (pulumi config rm ${full})`,
        );
    }
    return problems;
}

/**
 * Validates and defaults the raw stack configuration. Pure: it reads only `read`, and throws one
 * `ConfigError` listing every problem so the user fixes them all in one go, before any resource exists.
 */
export function parseConfig(read: ConfigReader, stack: string, presentKeys: readonly string[] = [], secretKeys: readonly string[] = []): StackConfig {
    const { config, problems } = checkConfig(read, stack, presentKeys, secretKeys);
    if (problems.length > 0) {
        throw new ConfigError(stack, problems);
    }
    return config;
}

/**
 * Validates and defaults the raw stack configuration, and says every problem it finds instead of
 * throwing, so the program can add what the account's look-ups find before it refuses them all at once.
 * The configuration is complete only when there is no problem.
 */
export function checkConfig(
    read: ConfigReader,
    stack: string,
    presentKeys: readonly string[] = [],
    secretKeys: readonly string[] = [],
): { config: StackConfig; problems: string[] } {
    const problems = unknownKeyProblems(read, presentKeys, secretKeys);
    const values = Object.fromEntries(
        CONFIG_KEYS.map((key) => {
            const text = read(key);
            return [key, KEYS[key].read(text === undefined ? undefined : text.trim(), problems, stack)];
        }),
    ) as ReadValues;
    problems.push(...crossKeyProblems(values));

    const { domain, platformSubdomain, tlsCaValidityHours, tlsCertValidityHours, tlsEarlyRenewalHours } = values;
    const config: StackConfig = {
        stack,
        region: values.region,
        requestedKubernetesVersion: values.kubernetesVersion === "latest" ? undefined : values.kubernetesVersion,
        nodeSize: values.nodeSize,
        nodeCount: values.nodeCount,
        domain,
        platformSubdomain,
        platformDomain: `${platformSubdomain}.${domain}`,
        acmeEmail: values.acmeEmail,
        builderSshSources: values.builderSshSources,
        protect: values.protect,
        haControlPlane: values.haControlPlane,
        namePrefix: nameSafe(stack),
        workerTag: `${PROJECT}-${nameSafe(stack)}-workers`,
        dnsTtlSeconds: FIXED.dnsTtlSeconds,
        clusterName: `${PROJECT}-${nameSafe(stack)}`,
        // Without the reconciler a node DigitalOcean replaces in the night keeps its record until the next
        // `pulumi up`: then the upgrade waits for a run too, unless the stack says otherwise.
        autoUpgrade: values.autoUpgrade ?? values.dnsToken !== undefined,
        dnsToken: values.dnsToken,
        maintenance: { day: values.maintenanceDay, startTime: values.maintenanceStartTime },
        tls: {
            keyAlgorithm: values.tlsKeyAlgorithm,
            caValidityHours: tlsCaValidityHours,
            certValidityHours: tlsCertValidityHours,
            earlyRenewalHours: tlsEarlyRenewalHours,
        },
        tillerHistoryMax: values.tillerHistoryMax,
        workflowEnabled: values.workflowEnabled,
        workflowStorageGib: values.workflowStorageGib,
        releases: values.releases,
        releaseSecretValues: values.releaseSecretValues,
        exposedServices: values.exposedServices,
        vpcIpRange: values.vpcIpRange === "" ? undefined : values.vpcIpRange,
        vpcName: `${PROJECT}-${nameSafe(stack)}`,
        backupRegion: values.backupRegion === "" ? undefined : values.backupRegion,
        volumeSnapshots: values.volumeSnapshots,
        restoreFrom: restoreSource(values),
    };
    return { config, problems };
}

/** The rules across keys, on values each of which passed its own check (a bad integer reads as NaN). */
function crossKeyProblems(values: ReadValues): string[] {
    const problems: string[] = [];
    const worldOpen = wholeFamiliesCovered(values.builderSshSources);
    if (values.protect && values.workflowEnabled && worldOpen.length > 0) {
        // The policy pack refuses the same; a local `pulumi up` runs without it.
        problems.push(
            `${PROJECT}:builderSshSources opens the builder's SSH port ${UPSTREAM.builder.port} to all of ${worldOpen.join(" and ")} ` +
                `(${values.builderSshSources.join(", ")}) in a protected stack; list only the networks git push comes from ${replaceList("builderSshSources", [YOUR_NETWORK])}`,
        );
    }
    const { tlsCaValidityHours: ca, tlsCertValidityHours: cert, tlsEarlyRenewalHours: early } = values;
    const lifetimesValid = [ca, cert, early].every(Number.isFinite);
    // A twelfth of the lifetime is the defaults' ratio (30 days of a year), and always less than it.
    const renewal = (lifetime: number) => String(Math.floor(lifetime / 12));
    if (lifetimesValid && cert > ca) {
        const alsoEarly = early >= ca ? ` && ${fix("tlsEarlyRenewalHours", renewal(ca)).slice(1, -1)}` : "";
        problems.push(
            `${PROJECT}:tlsCertValidityHours (${cert}) must not exceed ${PROJECT}:tlsCaValidityHours (${ca}): a certificate cannot outlive its CA ` +
                `(${fix("tlsCertValidityHours", String(ca)).slice(1, -1)}${alsoEarly})`,
        );
    } else if (lifetimesValid && early >= cert) {
        problems.push(
            `${PROJECT}:tlsEarlyRenewalHours (${early}) must be less than ${PROJECT}:tlsCertValidityHours (${cert}), or every pulumi up would rotate the certificates ` +
                fix("tlsEarlyRenewalHours", renewal(cert)),
        );
    }
    if (values.restoreFrom !== "" && values.backupRegion === "") {
        problems.push(
            `${PROJECT}:restoreFrom needs backupRegion: a restored stack keeps an off-cluster copy of its own, and reads the bucket with a key made beside it ` +
                `${fix("backupRegion", parseBucketRef(values.restoreFrom)?.region ?? "fra1")}`,
        );
    }
    if (values.restoreFrom !== "" && !values.workflowEnabled) {
        problems.push(`${PROJECT}:restoreFrom fills Workflow's object store, and workflowEnabled is false ${fix("workflowEnabled", "true")}`);
    }
    return problems;
}

/** The bucket restoreFrom names, with its region (its own, or backupRegion's); undefined when it names none. */
function restoreSource(values: ReadValues): StackConfig["restoreFrom"] {
    const ref = values.restoreFrom === "" ? undefined : parseBucketRef(values.restoreFrom);
    const region = ref?.region ?? (values.backupRegion || undefined);
    return ref && region ? { region, bucket: ref.bucket } : undefined;
}

/** Whether one of `problems` is about `key`, so a look-up of its value would only repeat it. */
export function concerns(problems: readonly string[], key: string): boolean {
    return problems.some((problem) => problem.startsWith(`${PROJECT}:${key} `));
}

/** Reads the stack's config through the Pulumi runtime and checks it, with every problem it finds. */
export function readConfig(): { config: StackConfig; problems: string[] } {
    const config = new pulumi.Config(PROJECT);
    const all = pulumi.runtime.allConfig();
    const prefix = `${PROJECT}:`;
    // This project's keys without their namespace, every other key with its own.
    const present = Object.keys(all).map((k) => (k.startsWith(prefix) ? k.slice(prefix.length) : k));
    // The SDK's own test of a secret key is not in its typings; without it, no unknown key's value is shown.
    const isSecret = (pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean }).isConfigSecret ?? (() => true);
    const secret = Object.keys(all).filter((k) => isSecret(k));
    return checkConfig((key) => (key.includes(":") ? all[key] : config.get(key)), pulumi.getStack(), present, secret);
}
