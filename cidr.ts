import * as net from "node:net";

/**
 * IPv4 and IPv6 networks in CIDR notation, as the config and the policy pack judge them: whether a
 * network is written with host bits set, and whether a set of networks opens a port to the whole
 * address space however it is split (`0.0.0.0/1` and `128.0.0.0/1` are the whole of IPv4).
 */

/** A network in CIDR notation, parsed. */
export interface Cidr {
    readonly family: 4 | 6;
    /** The address as written, host bits included. */
    readonly address: bigint;
    readonly prefix: number;
}

const BITS = { 4: 32, 6: 128 } as const;

function ipv4ToBigint(address: string): bigint {
    return address.split(".").reduce((value, octet) => (value << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6ToBigint(address: string): bigint {
    // An IPv4 tail (::ffff:192.0.2.1) counts as two 16-bit groups.
    const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
    const v4 = tail ? ipv4ToBigint(tail[1]) : 0n;
    const text = tail ? `${address.slice(0, tail.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}` : address;
    const [head, rest] = text.includes("::") ? text.split("::") : [text, undefined];
    const groups = (part: string | undefined) => (part ? part.split(":") : []);
    const missing = 8 - groups(head).length - groups(rest).length;
    const all = rest === undefined ? groups(head) : [...groups(head), ...Array(missing).fill("0"), ...groups(rest)];
    return all.reduce((value, group) => (value << 16n) | BigInt(parseInt(group, 16)), 0n);
}

/** The network `text` names, or undefined when it is no IPv4 or IPv6 CIDR. */
export function parseCidr(text: string): Cidr | undefined {
    const parts = text.split("/");
    if (parts.length !== 2 || !/^[0-9]{1,3}$/.test(parts[1])) {
        return undefined;
    }
    const family = net.isIPv4(parts[0]) ? 4 : net.isIPv6(parts[0]) ? 6 : undefined;
    const prefix = Number(parts[1]);
    if (family === undefined || prefix > BITS[family]) {
        return undefined;
    }
    return { family, address: family === 4 ? ipv4ToBigint(parts[0]) : ipv6ToBigint(parts[0]), prefix };
}

/** True for an IPv4 or IPv6 network in CIDR notation, such as `203.0.113.0/24` or `2001:db8::/32`. */
export function isCidr(text: string): boolean {
    return parseCidr(text) !== undefined;
}

function hostMask(cidr: Cidr): bigint {
    return (1n << BigInt(BITS[cidr.family] - cidr.prefix)) - 1n;
}

/** The first and last address of a network. */
function range(cidr: Cidr): [bigint, bigint] {
    const first = cidr.address & ~hostMask(cidr) & ((1n << BigInt(BITS[cidr.family])) - 1n);
    return [first, first | hostMask(cidr)];
}

function format(family: 4 | 6, value: bigint): string {
    if (family === 4) {
        return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
    }
    const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => ((value >> shift) & 0xffffn).toString(16));
    // RFC 5952: the longest run of two or more zero groups becomes "::".
    let best = { start: -1, length: 1 };
    for (let start = 0; start < 8; start++) {
        let length = 0;
        while (start + length < 8 && groups[start + length] === "0") length++;
        if (length > best.length) best = { start, length };
    }
    if (best.start < 0) {
        return groups.join(":");
    }
    return `${groups.slice(0, best.start).join(":")}::${groups.slice(best.start + best.length).join(":")}`;
}

/** The network written with its host bits cleared, when `text` has any set (`10.0.0.1/8` → `10.0.0.0/8`). */
export function withoutHostBits(text: string): string | undefined {
    const cidr = parseCidr(text);
    if (cidr === undefined || (cidr.address & hostMask(cidr)) === 0n) {
        return undefined;
    }
    return `${format(cidr.family, range(cidr)[0])}/${cidr.prefix}`;
}

/** The address families (`IPv4`, `IPv6`) whose every address some network of `texts` holds. */
export function wholeFamiliesCovered(texts: readonly string[]): ("IPv4" | "IPv6")[] {
    const cidrs = texts.map(parseCidr).filter((c): c is Cidr => c !== undefined);
    return ([4, 6] as const)
        .filter((family) => {
            const ranges = cidrs
                .filter((c) => c.family === family)
                .map(range)
                .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
            let next = 0n;
            for (const [first, last] of ranges) {
                if (first > next) {
                    return false;
                }
                next = last + 1n > next ? last + 1n : next;
            }
            return next === 1n << BigInt(BITS[family]);
        })
        .map((family) => (family === 4 ? "IPv4" : "IPv6"));
}

/** The first and last addresses of two networks of one family, or undefined when they are of two. */
function rangesOf(a: string, b: string): [[bigint, bigint], [bigint, bigint]] | undefined {
    const [x, y] = [parseCidr(a), parseCidr(b)];
    return x === undefined || y === undefined || x.family !== y.family ? undefined : [range(x), range(y)];
}

/** Whether two networks share any address. */
export function overlaps(a: string, b: string): boolean {
    const ranges = rangesOf(a, b);
    return ranges !== undefined && ranges[0][0] <= ranges[1][1] && ranges[1][0] <= ranges[0][1];
}

/** Whether `inner` lies wholly inside `outer`. */
export function within(inner: string, outer: string): boolean {
    const ranges = rangesOf(inner, outer);
    return ranges !== undefined && ranges[1][0] <= ranges[0][0] && ranges[0][1] <= ranges[1][1];
}
