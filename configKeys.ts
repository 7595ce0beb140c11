import {
    DNS_LABEL,
    EMAIL,
    fix,
    isDomainName,
    KUBERNETES_VERSION,
    parseBucketRef,
    parseCidrList,
    parseServiceList,
    quote,
    REGION,
    reservedName,
    vpcRangeProblems,
} from "./configValues";
import { PRICES } from "./pricing";
import { FIXED, PROJECT } from "./project";
import { parseReleases, parseSecretValues } from "./releaseOverrides";
import { KEY_ALGORITHMS, KeyAlgorithm, MAINTENANCE_DAYS, MaintenanceDay, ReleaseEntry, ReleaseKey } from "./types";

/**
 * The stack configuration's keys, described once: for each, in Pulumi.yaml's order, its default (none
 * for what only the user knows) and how its raw text is read, with the problem and the fixing command
 * when it is wrong. The defaults and the list of known keys derive from it; `Pulumi.yaml` declares the
 * same keys and defaults for the CLI, and a test keeps the two in step. Rules across keys are in
 * config.ts.
 */

/** Reads one key's raw text (undefined when unset), adding what is wrong to `problems`. */
type Read<T> = (text: string | undefined, problems: string[], stack: string) => T;

interface KeySpec<D, T> {
    readonly default: D;
    readonly read: Read<T>;
}

function key<D, T = D>(value: D, read: Read<T>): KeySpec<D, T> {
    return { default: value, read };
}

/** A text key: its default when unset, and a problem when `valid` refuses it. */
function text<T extends string>(name: string, fallback: T, valid: (text: string) => boolean, problem: (quoted: string) => string): KeySpec<T, T> {
    return key(fallback, (raw, problems) => {
        const value = raw ?? fallback;
        if (!valid(value)) {
            problems.push(`${PROJECT}:${name} ${problem(quote(value))}`);
        }
        return value as T;
    });
}

/** An integer key from `min` to `max`; a bad one reads as NaN, so the rules across keys skip it. */
function integer(name: string, fallback: number, min: number, max: number, example: string): KeySpec<number, number> {
    return key(fallback, (raw, problems) => {
        if (raw === undefined) {
            return fallback;
        }
        const value = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
        if (!(value >= min && value <= max)) {
            problems.push(`${PROJECT}:${name} must be an integer from ${min} to ${max}, got ${quote(raw)} ${fix(name, example)}`);
            return NaN;
        }
        return value;
    });
}

function boolean(name: string, fallback: boolean): KeySpec<boolean, boolean> {
    return key(fallback, (raw, problems) => {
        if (raw === undefined || raw === "true" || raw === "false") {
            return raw === undefined ? fallback : raw === "true";
        }
        // The fix keeps what a spelling such as 1 or yes means (protect: 1 must not become an unprotected stack);
        // the checks across keys go on with that value, so what it then requires (a protected stack's sources) comes with it.
        const meant = /^(1|y|yes|on|true)$/i.test(raw) ? true : /^(0|n|no|off|false)$/i.test(raw) ? false : fallback;
        problems.push(`${PROJECT}:${name} must be true or false, got ${quote(raw)} ${fix(name, String(meant))}`);
        return meant;
    });
}

const HOURS_MAX = 100 * 8766;
/** Who may reach the builder's SSH port by default: everyone, over IPv4 and IPv6. */
const ANYWHERE: readonly string[] = ["0.0.0.0/0", "::/0"];

export const KEYS = {
    region: text(
        "region",
        "fra1",
        (v) => REGION.test(v),
        (q) => `must be a DigitalOcean region slug (lowercase letters then one digit, such as fra1 or nyc3), got ${q} ${fix("region", "fra1")}`,
    ),
    kubernetesVersion: text(
        "kubernetesVersion",
        "latest",
        (v) => v === "latest" || KUBERNETES_VERSION.test(v),
        // "latest" passes wherever a named minor could be one DigitalOcean no longer offers.
        (q) => `must be "latest", a minor version such as 1.33, or a DOKS slug such as 1.33.1-do.0, got ${q} ${fix("kubernetesVersion", "latest")}`,
    ),
    nodeSize: text(
        "nodeSize",
        "s-2vcpu-4gb",
        (v) => Object.hasOwn(PRICES.nodeUsd, v),
        (q) =>
            `must be a droplet size whose price the program knows, got ${q}; known sizes: ${Object.keys(PRICES.nodeUsd).join(", ")} ` +
            `${fix("nodeSize", "s-2vcpu-4gb")}. For another size, add its price_monthly (doctl compute size list) to PRICES.nodeUsd in pricing.ts`,
    ),
    nodeCount: integer("nodeCount", 3, FIXED.nodeCountMin, FIXED.nodeCountMax, "3"),
    domain: key(undefined, (domain, problems): string => {
        if (domain !== undefined && isDomainName(domain) && reservedName(domain)) {
            problems.push(
                `${PROJECT}:domain ${quote(domain)} is a name reserved for examples and tests (RFC 2606, RFC 6761), no one's zone: ` +
                    `set a zone of your DigitalOcean account ${fix("domain", "<your zone>")}`,
            );
        } else if (domain === undefined || domain === "") {
            problems.push(`${PROJECT}:domain is required: a DNS zone that already exists in your DigitalOcean account ${fix("domain", "<your zone>")}`);
        } else if (!isDomainName(domain)) {
            // A trailing dot or capitals are the name the user meant, written otherwise.
            const meant = domain.replace(/\.$/, "").toLowerCase();
            const fixed = isDomainName(meant) && !reservedName(meant) ? meant : "<your zone>";
            problems.push(
                `${PROJECT}:domain must be a lowercase DNS name with at least two labels and no trailing dot, such as yourcompany.com (the zone, not the platform domain under it), got ${quote(domain)} ${fix("domain", fixed)}`,
            );
        }
        return domain as string;
    }),
    /** Empty means "use the stack name". */
    platformSubdomain: key("", (raw, problems, stack): string => {
        const subdomain = raw ?? "";
        const label = subdomain === "" ? stack : subdomain;
        if (!DNS_LABEL.test(label)) {
            problems.push(
                subdomain === ""
                    ? `${PROJECT}:platformSubdomain defaults to the stack name, and ${quote(stack)} is not a DNS label (lowercase letters, digits and inner hyphens, at most 63); set it ${fix("platformSubdomain", "paas")}`
                    : `${PROJECT}:platformSubdomain must be one DNS label (lowercase letters, digits and inner hyphens, at most 63), got ${quote(label)} ${fix("platformSubdomain", "paas")}`,
            );
        }
        return label;
    }),
    acmeEmail: key(undefined, (email, problems): string => {
        if (email === undefined || email === "") {
            problems.push(`${PROJECT}:acmeEmail is required: Let's Encrypt sends certificate expiry warnings there ${fix("acmeEmail", "<your address>")}`);
        } else if (!EMAIL.test(email)) {
            problems.push(`${PROJECT}:acmeEmail must be an email address, got ${quote(email)} ${fix("acmeEmail", "<your address>")}`);
        } else if (reservedName(email.split("@")[1].toLowerCase()) || /^example\./i.test(email.split("@")[1])) {
            problems.push(
                `${PROJECT}:acmeEmail ${quote(email)} is at a domain reserved for examples, where Let's Encrypt's expiry warnings would reach no one ` +
                    `${fix("acmeEmail", "<your address>")}`,
            );
        }
        return email as string;
    }),
    builderSshSources: key(ANYWHERE, (raw, problems) => parseCidrList(raw, problems, ANYWHERE)),
    protect: boolean("protect", false),
    /** DigitalOcean's HA control plane costs extra and cannot be turned off once on (see PRICES). */
    haControlPlane: boolean("haControlPlane", false),
    /** ECDSA P-256: small, fast, and accepted by Tiller's and helm-operator's Go TLS stacks. */
    tlsKeyAlgorithm: text<KeyAlgorithm>(
        "tlsKeyAlgorithm",
        "ECDSA-P256",
        (v) => Object.hasOwn(KEY_ALGORITHMS, v),
        (q) => `must be one of ${Object.keys(KEY_ALGORITHMS).join(", ")}, got ${q} ${fix("tlsKeyAlgorithm", "ECDSA-P256")}`,
    ),
    /** The Tiller CA lives ten years; the leaves one year and are renewed by the first `pulumi up` in their last 30 days. */
    tlsCaValidityHours: integer("tlsCaValidityHours", 87600, 1, HOURS_MAX, "87600"),
    tlsCertValidityHours: integer("tlsCertValidityHours", 8760, 1, HOURS_MAX, "8760"),
    tlsEarlyRenewalHours: integer("tlsEarlyRenewalHours", 720, 0, HOURS_MAX, "720"),
    /** Tiller's release history bound; Helm 2 defaults to 0 (unbounded). */
    tillerHistoryMax: integer("tillerHistoryMax", 10, 1, 1000, "10"),
    workflowEnabled: boolean("workflowEnabled", true),
    /** Workflow's object store (slugs, the registry's images, database backups) on a block-storage volume: $2 a month at 20 GiB. */
    workflowStorageGib: integer("workflowStorageGib", 20, FIXED.workflowStorageGibMin, FIXED.workflowStorageGibMax, "20"),
    /**
     * DigitalOcean applies patch releases (security fixes) itself, in the maintenance window. Unset, it
     * follows dnsToken (config.ts): on when DNS follows the nodes, off when only `pulumi up` moves it.
     */
    autoUpgrade: key(undefined as boolean | undefined, (raw, problems) =>
        raw === undefined ? undefined : boolean("autoUpgrade", true).read(raw, problems, ""),
    ),
    /** A weekend night, UTC. */
    maintenanceDay: text<MaintenanceDay>(
        "maintenanceDay",
        "sunday",
        (v) => (MAINTENANCE_DAYS as readonly string[]).includes(v),
        (q) => `must be one of ${MAINTENANCE_DAYS.join(", ")}, got ${q} ${fix("maintenanceDay", "sunday")}`,
    ),
    maintenanceStartTime: text(
        "maintenanceStartTime",
        "03:00",
        (v) => /^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(v),
        (q) => `must be a UTC time of day as HH:MM, from 00:00 to 23:59, got ${q} ${fix("maintenanceStartTime", "03:00")}`,
    ),
    /** JSON object of per-release overrides of the catalog; empty means the catalog as is. */
    releases: key("{}", (raw, problems): Readonly<Record<ReleaseKey, ReleaseEntry>> => parseReleases(raw ?? "{}", `${PROJECT}:releases`, problems)),
    /** Secret Helm values per release: none. */
    releaseSecretValues: key(undefined, (raw, problems) => parseSecretValues(raw, `${PROJECT}:releaseSecretValues`, problems)),
    /** Services the admission policy lets be NodePort or LoadBalancer: none. */
    exposedServices: key([] as readonly string[], (raw, problems) => parseServiceList(raw, problems, [])),
    /**
     * A DigitalOcean token with the `domain` scopes only, for the in-cluster reconciler that moves the
     * platform's records with the nodes; unset, they move only at `pulumi up`. Its value is never shown.
     */
    dnsToken: key(undefined as string | undefined, (raw, problems): string | undefined => {
        if (raw !== undefined && !/^dop_v1_[0-9a-f]{64}$/.test(raw)) {
            problems.push(
                `${PROJECT}:dnsToken must be a DigitalOcean personal access token (dop_v1_ and 64 hex digits) with the domain:read, domain:create, domain:update and domain:delete scopes only (its value is not shown: it is a secret) ${fix("dnsToken", "<token>").replace("config set", "config set --secret")}`,
            );
            return undefined;
        }
        return raw;
    }),
    /** Empty: DigitalOcean gives the stack's VPC a /20 that overlaps no other network of the account. */
    vpcIpRange: key("", (raw, problems): string => {
        const range = raw ?? "";
        problems.push(...vpcRangeProblems(range));
        return range;
    }),
    /** Empty: no off-cluster copy. A Spaces region turns on the bucket, its key and the scheduled copy (docs/operations.md, "Backups"). */
    backupRegion: text(
        "backupRegion",
        "",
        (v) => v === "" || REGION.test(v),
        (q) => `must be a Spaces region slug (such as fra1, ams3 or nyc3), or empty for no off-cluster copy, got ${q} ${fix("backupRegion", "fra1")}`,
    ),
    /** 0: no snapshots. Otherwise how many snapshots of Workflow's volume to keep, one every 6 hours. */
    volumeSnapshots: integer("volumeSnapshots", 0, 0, FIXED.volumeSnapshotsMax, "8"),
    /** Empty: a new stack starts with an empty object store. Otherwise `<bucket>` in backupRegion, or `<region>/<bucket>`. */
    restoreFrom: key("", (raw, problems): string => {
        const value = raw ?? "";
        if (value !== "" && parseBucketRef(value) === undefined) {
            problems.push(
                `${PROJECT}:restoreFrom must name a Spaces bucket as <bucket> (in backupRegion) or <region>/<bucket>, got ${quote(value)} ` +
                    `${fix("restoreFrom", "fra1/hephy-doks-production-backup-1a2b3c")}`,
            );
        }
        return value;
    }),
};

export type ConfigKey = keyof typeof KEYS;

/** Every key's value as read: what config.ts builds the stack's configuration from. */
export type ReadValues = { [K in ConfigKey]: ReturnType<(typeof KEYS)[K]["read"]> };

/** The defaults, by key; undefined for what only the user knows. */
export const DEFAULTS = Object.fromEntries(Object.entries(KEYS).map(([name, spec]) => [name, spec.default])) as {
    readonly [K in ConfigKey]: (typeof KEYS)[K]["default"];
};

/** Every key this program reads, so a typo such as `nodecount` is reported instead of ignored. */
export const CONFIG_KEYS = Object.keys(KEYS) as readonly ConfigKey[];
