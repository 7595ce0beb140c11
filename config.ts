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
    /** ECDSA P-256: small, fast, and accepted by Tiller's and helm-operator's Go TLS stacks. */
    tlsKeyAlgorithm: "ECDSA-P256",
    /** The Tiller CA lives ten years; the leaves one year and are renewed by the first `pulumi up` in their last 30 days. */
    tlsCaValidityHours: 87600,
    tlsCertValidityHours: 8760,
    tlsEarlyRenewalHours: 720,
    /** Tiller's release history bound; Helm 2 defaults to 0 (unbounded). */
    tillerHistoryMax: 10,
} as const;

/** Pinned upstream artefacts outside the release catalog, with where each fact comes from. */
export const UPSTREAM = {
    /** helm/helm v2.17.0 `cmd/helm/installer/install.go` (defaultImage ghcr.io/helm/tiller); 2.17.0 is the last Helm 2 release. */
    tillerImage: "ghcr.io/helm/tiller:v2.17.0",
    /** fluxcd/helm-operator chart-1.4.4 `values.yaml` image; 1.4.4 (2022-09-01) is the last release, the project is archived. */
    helmOperatorImage: "docker.io/fluxcd/helm-operator:1.4.4",
    /** The HelmRelease CRD (helm.fluxcd.io/v1, apiextensions.k8s.io/v1) of the same tag, as the chart README applies it. */
    helmOperatorCrdUrl: "https://raw.githubusercontent.com/fluxcd/helm-operator/v1.4.4/deploy/crds.yaml",
    /** The name helm-operator verifies on Tiller's certificate: the article's HELM_TLS_HOSTNAME. */
    tillerHostname: "tiller-deploy.kube-system",
    /** Names on Tiller's certificate: its Service as dialled from the cluster, and 127.0.0.1 for `helm --tls` through a port-forward. */
    tillerDnsNames: ["tiller-deploy", "tiller-deploy.kube-system", "tiller-deploy.kube-system.svc", "localhost"],
    tillerIpAddresses: ["127.0.0.1"],
    /**
     * Chart repositories helm-operator knows, as the article's `configureRepositories`: hephy for
     * Workflow's dependencies, and stable at its new home (helm/helm v2.17.0 commit 62d6e40 retired
     * storage.googleapis.com).
     */
    chartRepositories: [
        { name: "hephy", url: "https://charts.teamhephy.com/" },
        { name: "stable", url: "https://charts.helm.sh/stable" },
    ],
} as const;

/** The private-key algorithms `hephy-doks:tlsKeyAlgorithm` accepts, as @pulumi/tls `PrivateKey` inputs. */
export const KEY_ALGORITHMS = {
    "ECDSA-P256": { algorithm: "ECDSA", ecdsaCurve: "P256" },
    "ECDSA-P384": { algorithm: "ECDSA", ecdsaCurve: "P384" },
    "RSA-2048": { algorithm: "RSA", rsaBits: 2048 },
    "RSA-4096": { algorithm: "RSA", rsaBits: 4096 },
} as const;
export type KeyAlgorithm = keyof typeof KEY_ALGORITHMS;

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
    readonly tls: TlsSettings;
    readonly tillerHistoryMax: number;
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
    "tlsKeyAlgorithm",
    "tlsCaValidityHours",
    "tlsCertValidityHours",
    "tlsEarlyRenewalHours",
    "tillerHistoryMax",
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

    const integer = (key: string, fallback: number, min: number, max: number, example: string): number => {
        const text = raw(key);
        if (text === undefined) {
            return fallback;
        }
        const value = /^[0-9]+$/.test(text) ? Number(text) : NaN;
        if (!(value >= min && value <= max)) {
            problems.push(
                `${PROJECT}:${key} must be an integer from ${min} to ${max}, got ${quote(text)} ${fix(key, example)}`,
            );
            return NaN;
        }
        return value;
    };

    const nodeCount = integer("nodeCount", DEFAULTS.nodeCount, FIXED.nodeCountMin, FIXED.nodeCountMax, "3");

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

    const keyAlgorithm = raw("tlsKeyAlgorithm") ?? DEFAULTS.tlsKeyAlgorithm;
    if (!(keyAlgorithm in KEY_ALGORITHMS)) {
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
        tls: { keyAlgorithm: keyAlgorithm as KeyAlgorithm, caValidityHours, certValidityHours, earlyRenewalHours },
        tillerHistoryMax,
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
