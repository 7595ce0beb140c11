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
    if (withoutHostBits(range) !== undefined) {
        problems.push(
            `${key} must be a network, without host bits: ${quote(range)} means ${withoutHostBits(range)} ${fix("vpcIpRange", withoutHostBits(range)!)}`,
        );
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
function jsonList(raw: string): unknown[] | undefined {
    try {
        const value: unknown = JSON.parse(raw);
        return Array.isArray(value) ? value : undefined;
    } catch {
        return undefined;
    }
}

export function parseCidrList(raw: string | undefined, problems: string[], fallback: readonly string[]): readonly string[] {
    const key = `${PROJECT}:builderSshSources`;
    const example = fixList("builderSshSources", ["203.0.113.0/24"]);
    if (raw === undefined) {
        return fallback;
    }
    const list = jsonList(raw);
    if (list === undefined) {
        problems.push(`${key} must be a JSON list of CIDRs, got ${quote(raw)} ${example}`);
        return [];
    }
    if (list.length === 0) {
        problems.push(`${key} must be a non-empty list of CIDRs, got ${quote(raw)} ${example}`);
        return [];
    }
    for (const item of list) {
        if (typeof item !== "string" || !isCidr(item)) {
            problems.push(`${key} entries must be IPv4 or IPv6 CIDRs such as 203.0.113.0/24 or 2001:db8::/32, got ${quote(String(item))}`);
        } else if (withoutHostBits(item) !== undefined) {
            problems.push(
                `${key} entries must be networks, without host bits: ${quote(item)} means ${withoutHostBits(item)} (or write the address as /32 or /128) ${example}`,
            );
        }
    }
    return list as string[];
}

/** Reads `hephy-doks:exposedServices`, a list of `namespace/name` of Services. */
export function parseServiceList(raw: string | undefined, problems: string[], fallback: readonly string[]): readonly string[] {
    const key = `${PROJECT}:exposedServices`;
    if (raw === undefined) {
        return fallback;
    }
    const list = jsonList(raw);
    if (list === undefined) {
        problems.push(`${key} must be a list of Services as namespace/name, got ${quote(raw)} ${fixList("exposedServices", ["edge/my-service"])}`);
        return [];
    }
    for (const item of list) {
        const [namespace, name, ...rest] = typeof item === "string" ? item.split("/") : [];
        if (!(typeof item === "string" && rest.length === 0 && DNS_LABEL.test(namespace ?? "") && DNS_LABEL.test(name ?? ""))) {
            problems.push(`${key} entries must be namespace/name of a Service, two DNS labels, got ${quote(String(item))}`);
        }
    }
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
