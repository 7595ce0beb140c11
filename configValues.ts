import { isCidr, overlaps, parseCidr, within, withoutHostBits } from "./cidr";
import { FIXED, PROJECT } from "./project";

/** The checks of single config values, and the fixes their messages name; config.ts applies them. */

export const REGION = /^[a-z]+[0-9]$/;
export const KUBERNETES_VERSION = /^[0-9]+\.[0-9]+(\.[0-9]+-do\.[0-9]+)?$/;
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** The command that fixes a key, quoted in error messages. */
export function fix(key: string, example: string): string {
    return `(pulumi config set ${PROJECT}:${key} ${example})`;
}

/**
 * The command that sets a list key, one `--path` item at a time: `pulumi config set KEY '["…"]'` stores a
 * string, which the CLI refuses for a key Pulumi.yaml declares `type: array`.
 */
export function fixList(key: string, items: readonly string[]): string {
    return "(" + items.map((item, i) => `pulumi config set --path '${PROJECT}:${key}[${i}]' ${item}`).join(" && ") + ")";
}

/** The command that replaces a list key whole: the old value goes first, since `--path` cannot write into a string. */
export function replaceList(key: string, items: readonly string[]): string {
    return `(pulumi config rm ${PROJECT}:${key} && ${fixList(key, items).slice(1)}`;
}

/** The command that sets the item at `index` of a list key, leaving the others as they are. */
export function fixItem(key: string, index: number, value: string): string {
    return `(pulumi config set --path '${PROJECT}:${key}[${index}]' ${value})`;
}

/** A value as one shell word, quoted only when it needs to be. */
export function shellWord(value: string): string {
    return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`;
}

/** The Levenshtein distance of two words, ignoring case. */
function distance(a: string, b: string): number {
    const [x, y] = [a.toLowerCase(), b.toLowerCase()];
    let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
    for (let i = 1; i <= x.length; i++) {
        const row = [i];
        for (let j = 1; j <= y.length; j++) {
            row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
        }
        previous = row;
    }
    return previous[y.length];
}

/** The candidate a mistyped word most likely meant: within two edits, case aside (as the Pulumi CLI suggests keys). */
export function closest(word: string, candidates: readonly string[]): string | undefined {
    const ranked = candidates.map((c) => ({ c, d: distance(word, c) })).filter(({ d }) => d <= 2);
    return ranked.sort((a, b) => a.d - b.d)[0]?.c;
}

export function quote(raw: string): string {
    return JSON.stringify(raw);
}

export function isDomainName(value: string): boolean {
    const labels = value.split(".");
    return value.length <= 253 && labels.length >= 2 && labels.every((l) => DNS_LABEL.test(l)) && /^[a-z]{2,63}$/.test(labels[labels.length - 1]);
}

/** Domains RFC 2606 keeps for documentation, and top-level names RFC 2606 and RFC 6761 keep from the DNS. */
const RESERVED_DOMAINS = ["example.com", "example.net", "example.org"];
const RESERVED_TOP_LEVEL = ["example", "test", "invalid", "localhost", "local"];

/** Whether a DNS name is, or is under, a name reserved for examples and tests, which no one's zone can be. */
export function reservedName(name: string): boolean {
    const labels = name.toLowerCase().split(".");
    const within = (reserved: string) => name === reserved || name.endsWith(`.${reserved}`);
    return RESERVED_DOMAINS.some(within) || RESERVED_TOP_LEVEL.includes(labels[labels.length - 1]);
}

/**
 * Address ranges kept for documentation: RFC 5737 (IPv4), RFC 3849 and RFC 9637 (IPv6). Like
 * example.com they are no one's: a firewall open only to them lets no one in.
 */
export const DOCUMENTATION_RANGES: readonly string[] = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"];

/** The documentation range a network lies in, if any. */
export function documentationRange(cidr: string): string | undefined {
    return DOCUMENTATION_RANGES.find((range) => within(cidr, range));
}

/** Where a fix needs the user's own network, which only they know. */
export const YOUR_NETWORK = "<your network, as a CIDR>";

/** Turns a stack name into something DigitalOcean accepts in names and tags. */
export function nameSafe(value: string): string {
    return value.toLowerCase().replace(/[^a-z0-9-]/g, "-");
}

/** What is wrong with a VPC range the config names, as messages; none for an empty one. */
export function vpcRangeProblems(range: string): string[] {
    const key = `${PROJECT}:vpcIpRange`;
    const cidr = parseCidr(range);
    if (range === "") {
        return [];
    }
    if (cidr === undefined || cidr.family !== 4) {
        return [
            `${key} must be an IPv4 network such as 10.120.0.0/20, or empty to let DigitalOcean choose one, got ${quote(range)} ${fix("vpcIpRange", "10.120.0.0/20")}`,
        ];
    }
    const problems: string[] = [];
    const network = withoutHostBits(range);
    if (network !== undefined) {
        // The network it means is the fix only when it passes the other checks too.
        const usable = vpcRangeProblems(network).length === 0 ? network : "10.120.0.0/20";
        problems.push(`${key} must be a network, without host bits: ${quote(range)} means ${network} ${fix("vpcIpRange", usable)}`);
    }
    if (!FIXED.vpcPrivateRanges.some((privateRange) => within(range, privateRange)) || cidr.prefix < FIXED.vpcPrefixMin || cidr.prefix > FIXED.vpcPrefixMax) {
        problems.push(
            `${key} must lie in ${FIXED.vpcPrivateRanges.join(", ")} and be a /${FIXED.vpcPrefixMin} to /${FIXED.vpcPrefixMax}, got ${quote(range)} ${fix("vpcIpRange", "10.120.0.0/20")}`,
        );
    }
    const clashes = FIXED.vpcReservedRanges.filter((reserved) => overlaps(range, reserved));
    if (clashes.length > 0) {
        problems.push(
            `${key} ${quote(range)} overlaps ${clashes.join(", ")}, which DOKS's pods and services or DigitalOcean itself use ${fix("vpcIpRange", "10.120.0.0/20")}`,
        );
    }
    return problems;
}

/** The JSON list a config value holds (the engine passes an array key as JSON text), or undefined when it holds none. */
export function jsonList(raw: string): unknown[] | undefined {
    try {
        const value: unknown = JSON.parse(raw);
        return Array.isArray(value) ? value : undefined;
    } catch {
        return undefined;
    }
}

/**
 * The network a fix of a `builderSshSources` entry sets: the entry's own network, without host bits or
 * with /32 or /128 for a bare address, when that is a usable source; else the user's own, which only they know.
 */
function sourceFix(item: unknown): string {
    if (typeof item === "string") {
        const text = item.trim();
        const candidate = isCidr(text) ? (withoutHostBits(text) ?? text) : [`${text}/32`, `${text}/128`].find(isCidr);
        if (candidate !== undefined && documentationRange(candidate) === undefined) {
            return candidate;
        }
    }
    return YOUR_NETWORK;
}

export function parseCidrList(raw: string | undefined, problems: string[], fallback: readonly string[]): readonly string[] {
    const name = "builderSshSources";
    const key = `${PROJECT}:${name}`;
    if (raw === undefined) {
        return fallback;
    }
    const list = jsonList(raw);
    if (list === undefined || list.length === 0) {
        problems.push(`${key} must be a non-empty list of CIDRs, got ${quote(raw)} ${replaceList(name, [sourceFix(list === undefined ? raw : "")])}`);
        return [];
    }
    list.forEach((item, i) => {
        const entry = `${key}[${i}]`;
        if (typeof item !== "string" || !isCidr(item)) {
            problems.push(
                `${entry} must be an IPv4 or IPv6 network in CIDR notation, such as 10.0.0.0/8 or fd00::/8 (an address as /32 or /128), got ${quote(String(item))} ${fixItem(name, i, sourceFix(item))}`,
            );
        } else if (withoutHostBits(item) !== undefined) {
            problems.push(
                `${entry} must be a network, without host bits: ${quote(item)} means ${withoutHostBits(item)} (or write the address as /32 or /128) ${fixItem(name, i, sourceFix(item))}`,
            );
        } else if (documentationRange(item) !== undefined) {
            problems.push(
                `${entry} ${quote(item)} lies in ${documentationRange(item)}, a range kept for documentation (RFC 5737, RFC 3849), no one's network: ` +
                    `the firewall would let no git push in ${fixItem(name, i, YOUR_NETWORK)}`,
            );
        }
    });
    return list as string[];
}

/** Reads `hephy-doks:exposedServices`, a list of `namespace/name` of Services. */
export function parseServiceList(raw: string | undefined, problems: string[], fallback: readonly string[]): readonly string[] {
    const key = `${PROJECT}:exposedServices`;
    if (raw === undefined) {
        return fallback;
    }
    const service = (item: unknown) => {
        const [namespace, name, ...rest] = typeof item === "string" ? item.trim().split("/") : [];
        return typeof item === "string" && rest.length === 0 && DNS_LABEL.test(namespace ?? "") && DNS_LABEL.test(name ?? "");
    };
    const list = jsonList(raw);
    if (list === undefined) {
        const fixed = service(raw) ? raw.trim() : "<namespace>/<service>";
        problems.push(`${key} must be a list of Services as namespace/name, got ${quote(raw)} ${replaceList("exposedServices", [fixed])}`);
        return [];
    }
    list.forEach((item, i) => {
        if (!service(item)) {
            problems.push(
                `${key}[${i}] must be namespace/name of a Service, two DNS labels, got ${quote(String(item))} ${fixItem("exposedServices", i, "<namespace>/<service>")}`,
            );
        }
    });
    return list as string[];
}

/** A Spaces bucket name: 3 to 63 lowercase letters, digits and inner hyphens (docs.digitalocean.com/products/spaces/details/limits). */
export const BUCKET_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** A bucket named as `<bucket>` or `<region>/<bucket>`: its region, when given, and its name; undefined when it is neither. */
export function parseBucketRef(value: string): { region?: string; bucket: string } | undefined {
    const [first, second, ...rest] = value.split("/");
    if (rest.length > 0) {
        return undefined;
    }
    if (second === undefined) {
        return BUCKET_NAME.test(first) ? { bucket: first } : undefined;
    }
    return REGION.test(first) && BUCKET_NAME.test(second) ? { region: first, bucket: second } : undefined;
}
