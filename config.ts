import * as net from "node:net";
import * as pulumi from "@pulumi/pulumi";

/** The Pulumi project name, which is also the namespace of every config key this program reads. */
export const PROJECT = "hephy-doks";

/**
 * Every default of the program lives here. `Pulumi.yaml` declares the same defaults for the CLI;
 * a test keeps the two in step.
 */
export const DEFAULTS = {
    region: "fra1",
    kubernetesVersion: "latest",
    nodeSize: "s-2vcpu-4gb",
    nodeCount: 3,
    /** Empty means "use the stack name". */
    platformSubdomain: "",
    builderSshSources: ["0.0.0.0/0", "::/0"] as readonly string[],
    protect: false,
} as const;

/** Values the program fixes rather than reads from config. */
export const FIXED = {
    /** Short, so a replaced node drops out of the round-robin within a minute. */
    dnsTtlSeconds: 60,
    /** Inbound sources for HTTP and HTTPS: everyone, over IPv4 and IPv6. */
    publicSources: ["0.0.0.0/0", "::/0"] as readonly string[],
    nodeCountMin: 1,
    nodeCountMax: 50,
} as const;

/** The validated, defaulted configuration of one stack. */
export interface StackConfig {
    readonly stack: string;
    readonly region: string;
    /** `undefined` means the newest version DigitalOcean offers; otherwise a prefix such as `1.33`. */
    readonly kubernetesVersionPrefix: string | undefined;
    readonly nodeSize: string;
    readonly nodeCount: number;
    readonly domain: string;
    readonly platformSubdomain: string;
    /** `<platformSubdomain>.<domain>`: Workflow's `controller.platform_domain`. */
    readonly platformDomain: string;
    readonly acmeEmail: string;
    readonly builderSshSources: readonly string[];
    readonly protect: boolean;
    /** The stack name made safe for DigitalOcean names and tags; prefixes our resource names. */
    readonly namePrefix: string;
    /** Our own tag on the worker droplets, which the firewall targets. */
    readonly workerTag: string;
    readonly dnsTtlSeconds: number;
}

/** Reads one raw config value of this project's namespace, as the Pulumi engine passes it (a string). */
export type ConfigReader = (key: string) => string | undefined;

/** Every key this program reads, so a typo such as `nodecount` is reported instead of ignored. */
export const CONFIG_KEYS = [
    "region",
    "kubernetesVersion",
    "nodeSize",
    "nodeCount",
    "domain",
    "platformSubdomain",
    "acmeEmail",
    "builderSshSources",
    "protect",
] as const;

/** A stack configuration the program refuses, with every problem found. */
export class ConfigError extends pulumi.RunError {
    constructor(
        stack: string,
        readonly problems: readonly string[],
    ) {
        super(
            `The configuration of stack "${stack}" has ${problems.length} problem(s):\n` +
                problems.map((p) => `  - ${p}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

const REGION = /^[a-z]+[0-9]$/;
const KUBERNETES_VERSION = /^[0-9]+\.[0-9]+(\.[0-9]+(-do\.[0-9]+)?)?$/;
const SIZE_SLUG = /^[a-z0-9]+(-[a-z0-9]+)+$/;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** The command that fixes a key, quoted in error messages. */
function fix(key: string, example: string): string {
    return `(pulumi config set ${PROJECT}:${key} ${example})`;
}

function quote(raw: string): string {
    return JSON.stringify(raw);
}

export function isDomainName(value: string): boolean {
    const labels = value.split(".");
    return (
        value.length <= 253 &&
        labels.length >= 2 &&
        labels.every((l) => DNS_LABEL.test(l)) &&
        /^[a-z]{2,63}$/.test(labels[labels.length - 1])
    );
}

/** True for an IPv4 or IPv6 network in CIDR notation, such as `203.0.113.0/24` or `2001:db8::/32`. */
export function isCidr(value: string): boolean {
    const slash = value.indexOf("/");
    if (slash < 0 || slash !== value.lastIndexOf("/")) {
        return false;
    }
    const address = value.slice(0, slash);
    const prefix = value.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(prefix)) {
        return false;
    }
    const bits = net.isIPv4(address) ? 32 : net.isIPv6(address) ? 128 : -1;
    return bits > 0 && Number(prefix) <= bits;
}

/** Turns a stack name into something DigitalOcean accepts in names and tags. */
function nameSafe(value: string): string {
    return value.toLowerCase().replace(/[^a-z0-9-]/g, "-");
}

/**
 * Validates and defaults the raw stack configuration. Pure: it reads only `read`, and throws one
 * `ConfigError` listing every problem so the user fixes them all in one go, before any resource exists.
 */
export function parseConfig(read: ConfigReader, stack: string, presentKeys: readonly string[] = []): StackConfig {
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
    if (!SIZE_SLUG.test(nodeSize)) {
        problems.push(
            `${PROJECT}:nodeSize must be a droplet size slug such as s-2vcpu-4gb, got ${quote(nodeSize)} ${fix("nodeSize", "s-2vcpu-4gb")}`,
        );
    }

    const nodeCountRaw = raw("nodeCount");
    let nodeCount: number = DEFAULTS.nodeCount;
    if (nodeCountRaw !== undefined) {
        nodeCount = /^[0-9]+$/.test(nodeCountRaw) ? Number(nodeCountRaw) : NaN;
        if (!(nodeCount >= FIXED.nodeCountMin && nodeCount <= FIXED.nodeCountMax)) {
            problems.push(
                `${PROJECT}:nodeCount must be an integer from ${FIXED.nodeCountMin} to ${FIXED.nodeCountMax}, got ${quote(nodeCountRaw)} ${fix("nodeCount", "3")}`,
            );
        }
    }

    const domain = raw("domain");
    if (domain === undefined || domain === "") {
        problems.push(
            `${PROJECT}:domain is required: a DNS zone that already exists in your DigitalOcean account ${fix("domain", "example.com")}`,
        );
    } else if (!isDomainName(domain)) {
        problems.push(
            `${PROJECT}:domain must be a lowercase DNS name with at least two labels and no trailing dot, such as example.com, got ${quote(domain)} ${fix("domain", "example.com")}`,
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
        problems.push(
            `${PROJECT}:acmeEmail is required: Let's Encrypt sends certificate expiry warnings there ${fix("acmeEmail", "ops@yourcompany.com")}`,
        );
    } else if (!EMAIL.test(acmeEmail)) {
        problems.push(
            `${PROJECT}:acmeEmail must be an email address, got ${quote(acmeEmail)} ${fix("acmeEmail", "ops@yourcompany.com")}`,
        );
    }

    const builderSshSources = parseCidrList(raw("builderSshSources"), problems);

    const protectRaw = raw("protect");
    let protect: boolean = DEFAULTS.protect;
    if (protectRaw !== undefined) {
        if (protectRaw === "true" || protectRaw === "false") {
            protect = protectRaw === "true";
        } else {
            problems.push(`${PROJECT}:protect must be true or false, got ${quote(protectRaw)} ${fix("protect", "true")}`);
        }
    }

    if (problems.length > 0) {
        throw new ConfigError(stack, problems);
    }
    return {
        stack,
        region,
        kubernetesVersionPrefix: version === "latest" ? undefined : version,
        nodeSize,
        nodeCount,
        domain: domain as string,
        platformSubdomain,
        platformDomain: `${platformSubdomain}.${domain}`,
        acmeEmail: acmeEmail as string,
        builderSshSources,
        protect,
        namePrefix: nameSafe(stack),
        workerTag: `${PROJECT}-${nameSafe(stack)}-workers`,
        dnsTtlSeconds: FIXED.dnsTtlSeconds,
    };
}

function parseCidrList(raw: string | undefined, problems: string[]): readonly string[] {
    const key = `${PROJECT}:builderSshSources`;
    const example = `'["203.0.113.0/24"]'`;
    if (raw === undefined) {
        return DEFAULTS.builderSshSources;
    }
    let list: unknown;
    try {
        list = JSON.parse(raw);
    } catch {
        problems.push(`${key} must be a JSON list of CIDRs, got ${quote(raw)} ${fix("builderSshSources", example)}`);
        return [];
    }
    if (!Array.isArray(list) || list.length === 0) {
        problems.push(`${key} must be a non-empty list of CIDRs, got ${quote(raw)} ${fix("builderSshSources", example)}`);
        return [];
    }
    for (const item of list) {
        if (typeof item !== "string" || !isCidr(item)) {
            problems.push(
                `${key} entries must be IPv4 or IPv6 CIDRs such as 203.0.113.0/24 or 2001:db8::/32, got ${quote(String(item))}`,
            );
        }
    }
    return list as string[];
}

/** Reads the stack's config through the Pulumi runtime and validates it. */
export function loadConfig(): StackConfig {
    const config = new pulumi.Config(PROJECT);
    const prefix = `${PROJECT}:`;
    const present = Object.keys(pulumi.runtime.allConfig())
        .filter((k) => k.startsWith(prefix))
        .map((k) => k.slice(prefix.length));
    return parseConfig((key) => config.get(key), pulumi.getStack(), present);
}
