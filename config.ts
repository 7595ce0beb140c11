import * as pulumi from "@pulumi/pulumi";
import { UPSTREAM } from "./catalog";
import { wholeFamiliesCovered } from "./cidr";
import { CONFIG_KEYS, DEFAULTS, FIXED, PROJECT } from "./configKeys";
import {
    DNS_LABEL,
    EMAIL,
    fix,
    fixList,
    isDomainName,
    KUBERNETES_VERSION,
    nameSafe,
    parseCidrList,
    parseServiceList,
    quote,
    REGION,
    reservedName,
    vpcRangeProblems,
} from "./configValues";
import { PRICES } from "./pricing";
import { parseReleases, parseSecretValues } from "./releaseOverrides";
import { KEY_ALGORITHMS, KeyAlgorithm, MAINTENANCE_DAYS, MaintenanceDay, ReleaseEntry, ReleaseKey } from "./types";

/**
 * The stack configuration, validated: every key's value checked (configValues.ts), defaulted
 * (configKeys.ts), and every problem reported at once. The catalog is in catalog.ts, prices in
 * pricing.ts, the Kubernetes version rules in kubernetesVersion.ts.
 */

export { CONFIG_KEYS, DEFAULTS, FIXED, PROJECT } from "./configKeys";

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

/** A stack configuration the program refuses, with every problem found. */
export class ConfigError extends pulumi.RunError {
    constructor(
        stack: string,
        readonly problems: readonly string[],
        headline = `The configuration of stack "${stack}" has ${problems.length} problem(s):`,
    ) {
        super(`${headline}\n` + problems.map((p) => `  - ${p}`).join("\n"));
        this.name = new.target.name;
    }
}

/**
 * Validates and defaults the raw stack configuration. Pure: it reads only `read`, and throws one
 * `ConfigError` listing every problem so the user fixes them all in one go, before any resource exists.
 */
export function parseConfig(read: ConfigReader, stack: string, presentKeys: readonly string[] = []): StackConfig {
    const { config, problems } = checkConfig(read, stack, presentKeys);
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
export function checkConfig(read: ConfigReader, stack: string, presentKeys: readonly string[] = []): { config: StackConfig; problems: string[] } {
    const problems: string[] = [];
    const raw = (key: string): string | undefined => {
        const value = read(key);
        return value === undefined ? undefined : value.trim();
    };

    for (const key of presentKeys) {
        if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
            problems.push(`${PROJECT}:${key} is not a setting of this program; known keys: ${CONFIG_KEYS.join(", ")}`);
        }
    }

    const region = raw("region") ?? DEFAULTS.region;
    if (!REGION.test(region)) {
        problems.push(
            `${PROJECT}:region must be a DigitalOcean region slug (lowercase letters then one digit, such as fra1 or nyc3), got ${quote(region)} ${fix("region", "fra1")}`,
        );
    }

    const version = raw("kubernetesVersion") ?? DEFAULTS.kubernetesVersion;
    if (version !== "latest" && !KUBERNETES_VERSION.test(version)) {
        problems.push(
            `${PROJECT}:kubernetesVersion must be "latest", a minor version such as 1.33, or a DOKS slug such as 1.33.1-do.0, got ${quote(version)} ${fix("kubernetesVersion", "1.33")}`,
        );
    }

    const nodeSize = raw("nodeSize") ?? DEFAULTS.nodeSize;
    if (!Object.hasOwn(PRICES.nodeUsd, nodeSize)) {
        problems.push(
            `${PROJECT}:nodeSize must be a droplet size whose price the program knows, got ${quote(nodeSize)}; known sizes: ` +
                `${Object.keys(PRICES.nodeUsd).join(", ")} ${fix("nodeSize", DEFAULTS.nodeSize)}. ` +
                `For another size, add its price_monthly (doctl compute size list) to PRICES.nodeUsd in pricing.ts`,
        );
    }

    const integer = (key: string, fallback: number, min: number, max: number, example: string): number => {
        const text = raw(key);
        if (text === undefined) {
            return fallback;
        }
        const value = /^[0-9]+$/.test(text) ? Number(text) : NaN;
        if (!(value >= min && value <= max)) {
            problems.push(`${PROJECT}:${key} must be an integer from ${min} to ${max}, got ${quote(text)} ${fix(key, example)}`);
            return NaN;
        }
        return value;
    };

    const nodeCount = integer("nodeCount", DEFAULTS.nodeCount, FIXED.nodeCountMin, FIXED.nodeCountMax, "3");

    const domain = raw("domain");
    if (domain !== undefined && isDomainName(domain) && reservedName(domain)) {
        problems.push(
            `${PROJECT}:domain ${quote(domain)} is a name reserved for examples and tests (RFC 2606, RFC 6761), no one's zone: ` +
                `set a zone of your DigitalOcean account ${fix("domain", "<your zone>")}`,
        );
    } else if (domain === undefined || domain === "") {
        problems.push(`${PROJECT}:domain is required: a DNS zone that already exists in your DigitalOcean account ${fix("domain", "<your zone>")}`);
    } else if (!isDomainName(domain)) {
        problems.push(
            `${PROJECT}:domain must be a lowercase DNS name with at least two labels and no trailing dot, such as paas.yourcompany.com, got ${quote(domain)} ${fix("domain", "<your zone>")}`,
        );
    }

    const subdomainRaw = raw("platformSubdomain") ?? DEFAULTS.platformSubdomain;
    const platformSubdomain = subdomainRaw === "" ? stack : subdomainRaw;
    if (!DNS_LABEL.test(platformSubdomain)) {
        problems.push(
            subdomainRaw === ""
                ? `${PROJECT}:platformSubdomain defaults to the stack name, and ${quote(stack)} is not a DNS label (lowercase letters, digits and inner hyphens, at most 63); set it ${fix("platformSubdomain", "paas")}`
                : `${PROJECT}:platformSubdomain must be one DNS label (lowercase letters, digits and inner hyphens, at most 63), got ${quote(platformSubdomain)} ${fix("platformSubdomain", "paas")}`,
        );
    }

    const acmeEmail = raw("acmeEmail");
    if (acmeEmail === undefined || acmeEmail === "") {
        problems.push(`${PROJECT}:acmeEmail is required: Let's Encrypt sends certificate expiry warnings there ${fix("acmeEmail", "<your address>")}`);
    } else if (!EMAIL.test(acmeEmail)) {
        problems.push(`${PROJECT}:acmeEmail must be an email address, got ${quote(acmeEmail)} ${fix("acmeEmail", "<your address>")}`);
    } else if (reservedName(acmeEmail.split("@")[1].toLowerCase()) || /^example\./i.test(acmeEmail.split("@")[1])) {
        problems.push(
            `${PROJECT}:acmeEmail ${quote(acmeEmail)} is at a domain reserved for examples, where Let's Encrypt's expiry warnings would reach no one ` +
                `${fix("acmeEmail", "<your address>")}`,
        );
    }

    const builderSshSources = parseCidrList(raw("builderSshSources"), problems);
    const exposedServices = parseServiceList(raw("exposedServices"), problems);
    const vpcIpRange = raw("vpcIpRange") ?? DEFAULTS.vpcIpRange;
    problems.push(...vpcRangeProblems(vpcIpRange));

    const boolean = (key: string, fallback: boolean): boolean => {
        const text = raw(key);
        if (text === undefined || text === "true" || text === "false") {
            return text === undefined ? fallback : text === "true";
        }
        problems.push(`${PROJECT}:${key} must be true or false, got ${quote(text)} ${fix(key, String(!fallback))}`);
        return fallback;
    };
    const protect = boolean("protect", DEFAULTS.protect);
    const haControlPlane = boolean("haControlPlane", DEFAULTS.haControlPlane);
    const workflowEnabled = boolean("workflowEnabled", DEFAULTS.workflowEnabled);
    const autoUpgrade = boolean("autoUpgrade", DEFAULTS.autoUpgrade);
    const worldOpen = wholeFamiliesCovered(builderSshSources);
    if (protect && workflowEnabled && worldOpen.length > 0) {
        // The policy pack refuses the same; a local `pulumi up` runs without it.
        problems.push(
            `${PROJECT}:builderSshSources opens the builder's SSH port ${UPSTREAM.builder.port} to all of ${worldOpen.join(" and ")} ` +
                `(${builderSshSources.join(", ")}) in a protected stack; list only the networks git push comes from ${fixList("builderSshSources", ["203.0.113.0/24"])}`,
        );
    }
    const maintenanceDay = raw("maintenanceDay") ?? DEFAULTS.maintenanceDay;
    if (!(MAINTENANCE_DAYS as readonly string[]).includes(maintenanceDay)) {
        problems.push(
            `${PROJECT}:maintenanceDay must be one of ${MAINTENANCE_DAYS.join(", ")}, got ${quote(maintenanceDay)} ${fix("maintenanceDay", "sunday")}`,
        );
    }
    const maintenanceStartTime = raw("maintenanceStartTime") ?? DEFAULTS.maintenanceStartTime;
    if (!/^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(maintenanceStartTime)) {
        problems.push(
            `${PROJECT}:maintenanceStartTime must be a UTC time of day as HH:MM, from 00:00 to 23:59, got ${quote(maintenanceStartTime)} ${fix("maintenanceStartTime", "03:00")}`,
        );
    }
    const releases = parseReleases(raw("releases") ?? DEFAULTS.releases, `${PROJECT}:releases`, problems);
    const releaseSecretValues = parseSecretValues(raw("releaseSecretValues"), `${PROJECT}:releaseSecretValues`, problems);

    const keyAlgorithm = raw("tlsKeyAlgorithm") ?? DEFAULTS.tlsKeyAlgorithm;
    if (!Object.hasOwn(KEY_ALGORITHMS, keyAlgorithm)) {
        problems.push(
            `${PROJECT}:tlsKeyAlgorithm must be one of ${Object.keys(KEY_ALGORITHMS).join(", ")}, got ${quote(keyAlgorithm)} ${fix("tlsKeyAlgorithm", "ECDSA-P256")}`,
        );
    }
    const hoursMax = 100 * 8766;
    const caValidityHours = integer("tlsCaValidityHours", DEFAULTS.tlsCaValidityHours, 1, hoursMax, "87600");
    const certValidityHours = integer("tlsCertValidityHours", DEFAULTS.tlsCertValidityHours, 1, hoursMax, "8760");
    const earlyRenewalHours = integer("tlsEarlyRenewalHours", DEFAULTS.tlsEarlyRenewalHours, 0, hoursMax, "720");
    const lifetimesValid = [caValidityHours, certValidityHours, earlyRenewalHours].every(Number.isFinite);
    if (lifetimesValid && certValidityHours > caValidityHours) {
        problems.push(
            `${PROJECT}:tlsCertValidityHours (${certValidityHours}) must not exceed ${PROJECT}:tlsCaValidityHours (${caValidityHours}): a certificate cannot outlive its CA`,
        );
    }
    if (lifetimesValid && earlyRenewalHours >= certValidityHours) {
        problems.push(
            `${PROJECT}:tlsEarlyRenewalHours (${earlyRenewalHours}) must be less than ${PROJECT}:tlsCertValidityHours (${certValidityHours}), or every pulumi up would rotate the certificates`,
        );
    }
    const tillerHistoryMax = integer("tillerHistoryMax", DEFAULTS.tillerHistoryMax, 1, 1000, "10");
    const workflowStorageGib = integer("workflowStorageGib", DEFAULTS.workflowStorageGib, FIXED.workflowStorageGibMin, FIXED.workflowStorageGibMax, "20");

    const config: StackConfig = {
        stack,
        region,
        requestedKubernetesVersion: version === "latest" ? undefined : version,
        nodeSize,
        nodeCount,
        domain: domain as string,
        platformSubdomain,
        platformDomain: `${platformSubdomain}.${domain}`,
        acmeEmail: acmeEmail as string,
        builderSshSources,
        protect,
        haControlPlane,
        namePrefix: nameSafe(stack),
        workerTag: `${PROJECT}-${nameSafe(stack)}-workers`,
        dnsTtlSeconds: FIXED.dnsTtlSeconds,
        clusterName: `${PROJECT}-${nameSafe(stack)}`,
        autoUpgrade,
        maintenance: { day: maintenanceDay as MaintenanceDay, startTime: maintenanceStartTime },
        tls: { keyAlgorithm: keyAlgorithm as KeyAlgorithm, caValidityHours, certValidityHours, earlyRenewalHours },
        tillerHistoryMax,
        workflowEnabled,
        workflowStorageGib,
        releases,
        releaseSecretValues,
        exposedServices,
        vpcIpRange: vpcIpRange === "" ? undefined : vpcIpRange,
        vpcName: `${PROJECT}-${nameSafe(stack)}`,
    };
    return { config, problems };
}

/** Whether one of `problems` is about `key`, so a look-up of its value would only repeat it. */
export function concerns(problems: readonly string[], key: string): boolean {
    return problems.some((problem) => problem.startsWith(`${PROJECT}:${key} `));
}

/** Reads the stack's config through the Pulumi runtime and checks it, with every problem it finds. */
export function readConfig(): { config: StackConfig; problems: string[] } {
    const config = new pulumi.Config(PROJECT);
    const prefix = `${PROJECT}:`;
    const present = Object.keys(pulumi.runtime.allConfig())
        .filter((k) => k.startsWith(prefix))
        .map((k) => k.slice(prefix.length));
    return checkConfig((key) => config.get(key), pulumi.getStack(), present);
}
