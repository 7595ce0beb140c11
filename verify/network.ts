import * as crypto from "node:crypto";
import { lookup, Resolver } from "node:dns/promises";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as tls from "node:tls";
import { CheckId, CheckResult, fail, Outcome, pass, runCheck } from "./checks";
import { LiveNode, recordsAgainstNodes } from "./nodes";

/** What the front-door checks need of a stack, and where its ports are (the tests move them to loopback). */
export interface FrontDoor {
    /** `<platformSubdomain>.<domain>`, from the stack's outputs. */
    platformDomain: string;
    /** The nodes' public addresses to probe: the live Ready nodes' when the cluster could be read, else the stack's nodeIps output. */
    nodeIps: readonly string[];
    /** The cluster's nodes as they run now, which the DNS records must match; undefined when the API could not be read. */
    liveNodes?: readonly LiveNode[];
    /** The hosts that get certificates by HTTP-01 (deis.<platform domain>, the Certificates' names), whose challenge path is probed. */
    certificateHosts: readonly string[];
    /** Whether Workflow is installed (the controller and the builder's SSH port are checked only then). */
    workflow: boolean;
    /** The ports of the front door: 80, 443 and 2222 on a live stack. */
    ports: { http: number; https: number; ssh: number };
    /** Resolvers to ask, `IP` or `IP:PORT`; the system's when empty. */
    dnsServers: readonly string[];
    /** CA certificates to trust instead of Node's bundle (tests). */
    ca?: readonly string[];
    /** The organisation of the issuer a production certificate comes from. */
    productionIssuer: string;
}

/** Timeouts of single network operations; a check's own bound is a little longer. */
const CONNECT_MS = 5_000;
const REQUEST_MS = 10_000;

/** The controller's host under the platform domain (teamhephy/controller: Ingress `deis.<platform_domain>`). */
export const CONTROLLER_HOST = "deis";

/** A name under the wildcard that no Ingress serves: never cached, never a real app. */
export function randomName(platformDomain: string): string {
    return `hephy-doks-verify-${crypto.randomBytes(4).toString("hex")}.${platformDomain}`;
}

/** A resolver given as `IP`, `IP:PORT`, `[IPv6]:PORT` or a name (ns1.digitalocean.com), as an address setServers takes. */
async function serverAddress(server: string): Promise<string> {
    if (net.isIP(server)) {
        return server;
    }
    const [, host, port] = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(server) ?? [, server];
    if (net.isIP(host ?? "")) {
        return server;
    }
    const { address, family } = await lookup(host ?? server);
    const ip = family === 6 ? `[${address}]` : address;
    return port ? `${ip}:${port}` : address;
}

/** What a random name under the platform domain resolves to now, asked of `dnsServers` (the system's resolvers when empty). */
export async function resolvePlatform(platformDomain: string, dnsServers: readonly string[]): Promise<{ name: string; found: string[] }> {
    const resolver = new Resolver({ timeout: 3_000, tries: 2 });
    if (dnsServers.length > 0) {
        resolver.setServers(await Promise.all(dnsServers.map(serverAddress)));
    }
    const name = randomName(platformDomain);
    return { name, found: (await resolver.resolve4(name)).sort() };
}

export async function checkDns(door: FrontDoor): Promise<CheckResult> {
    return runCheck("dns", "", REQUEST_MS + 2_000, async () => {
        const { name, found } = await resolvePlatform(door.platformDomain, door.dnsServers);
        if (door.liveNodes) {
            const compared = recordsAgainstNodes(found, door.liveNodes);
            return { ok: compared.ok, evidence: `${name} → ${compared.evidence}` };
        }
        // Without the cluster, only the stack's outputs are left to compare with, which go stale with the records.
        const expected = [...door.nodeIps].sort();
        const evidence = `${name} → ${found.join(", ")} (the live nodes could not be read: compared with the stack's nodeIps output)`;
        const missing = expected.filter((ip) => !found.includes(ip));
        const extra = found.filter((ip) => !expected.includes(ip));
        if (missing.length === 0 && extra.length === 0) {
            return pass(evidence);
        }
        return fail(`${evidence}; nodes missing: ${missing.join(", ") || "none"}; not nodes: ${extra.join(", ") || "none"}`);
    });
}

/** Opens a TCP connection and gives it to `use`, which resolves the outcome; the socket is always closed. */
function withSocket(host: string, port: number, use: (socket: net.Socket) => Promise<Outcome>): Promise<Outcome> {
    const socket = net.connect({ host, port });
    return new Promise<Outcome>((resolve, reject) => {
        socket.setTimeout(CONNECT_MS, () => socket.destroy(new Error(`no connection to ${host}:${port} within ${CONNECT_MS / 1000} s`)));
        socket.once("error", reject);
        socket.once("connect", () => {
            socket.setTimeout(0);
            use(socket).then(resolve, reject);
        });
    }).finally(() => socket.destroy());
}

export function checkTcp(id: Extract<CheckId, "tcp-80" | "tcp-443">, ip: string, port: number): Promise<CheckResult> {
    return runCheck(id, ip, CONNECT_MS + 2_000, () => withSocket(ip, port, async () => pass(`connected to ${ip}:${port}`)));
}

/** The banner an SSH server sends first (RFC 4253 §4.2), read within a bound. */
export function checkSshBanner(ip: string, port: number): Promise<CheckResult> {
    return runCheck("ssh-banner", ip, CONNECT_MS + REQUEST_MS, () =>
        withSocket(
            ip,
            port,
            (socket) =>
                new Promise<Outcome>((resolve) => {
                    let received = "";
                    const done = (outcome: Outcome) => {
                        socket.destroy();
                        resolve(outcome);
                    };
                    socket.setTimeout(REQUEST_MS, () => done(fail(`connected to ${ip}:${port}, no banner within ${REQUEST_MS / 1000} s`)));
                    socket.on("data", (chunk: Buffer) => {
                        received += chunk.toString("latin1");
                        const line = received.split(/\r?\n/)[0];
                        if (received.includes("\n") || received.length > 255) {
                            done(/^SSH-2\.0-/.test(line) ? pass(line) : fail(`not an SSH banner: ${JSON.stringify(line.slice(0, 80))}`));
                        }
                    });
                    socket.on("end", () => done(fail(`connection closed after ${JSON.stringify(received.slice(0, 80))}`)));
                }),
        ),
    );
}

/**
 * The days a certificate may have left before its renewal counts as overdue. cert-manager renews with a
 * third of the lifetime left when renewBefore is unset, as the program leaves it (cert-manager v1.21.1
 * pkg/util/pki/renewaltime.go `desiredRenewalTime`: "Default is 2/3 through certificate's lifetime");
 * Let's Encrypt's lifetime shrinks from 90 days to 64 on 2027-02-10 and to 45 on 2028-02-16
 * (letsencrypt.org/2025/12/02/from-90-to-45). Half of that renewal window gone means renewals have
 * failed for days: a sixth of the certificate's own lifetime.
 */
export function renewalOverdueDays(lifetimeDays: number): number {
    return Math.floor(lifetimeDays / 6);
}

/** A certificate's subject or issuer field as one string. */
function field(value: string | string[] | undefined): string {
    return Array.isArray(value) ? value.join(", ") : (value ?? "");
}

export function checkCertificate(door: FrontDoor, ip: string, now = new Date()): Promise<CheckResult> {
    const host = `${CONTROLLER_HOST}.${door.platformDomain}`;
    return runCheck(
        "certificate",
        ip,
        REQUEST_MS + 2_000,
        () =>
            new Promise<Outcome>((resolve, reject) => {
                const socket = tls.connect({
                    host: ip,
                    port: door.ports.https,
                    servername: host,
                    ca: door.ca ? [...door.ca] : undefined,
                    rejectUnauthorized: false,
                });
                socket.setTimeout(REQUEST_MS, () => socket.destroy(new Error(`no TLS handshake within ${REQUEST_MS / 1000} s`)));
                socket.once("error", reject);
                socket.once("secureConnect", () => {
                    const cert = socket.getPeerCertificate();
                    socket.destroy();
                    const issuer = `${field(cert.issuer?.CN)} (${field(cert.issuer?.O)})`;
                    const notAfter = new Date(cert.valid_to).getTime();
                    const lifetimeDays = Math.round((notAfter - new Date(cert.valid_from).getTime()) / 86_400_000);
                    const daysLeft = Math.floor((notAfter - now.getTime()) / 86_400_000);
                    const minDaysLeft = renewalOverdueDays(lifetimeDays);
                    const seen = `${host}: issuer ${issuer}, valid to ${cert.valid_to}, ${daysLeft} of ${lifetimeDays} days left`;
                    const problems = [
                        socket.authorized ? "" : `not trusted (${String(socket.authorizationError)})`,
                        tls.checkServerIdentity(host, cert) ? `not valid for ${host} (it names ${cert.subjectaltname ?? field(cert.subject?.CN)})` : "",
                        field(cert.issuer?.O) === door.productionIssuer ? "" : `not from ${door.productionIssuer}'s production issuer`,
                        daysLeft >= minDaysLeft
                            ? ""
                            : `less than ${minDaysLeft} days (a sixth of its lifetime) left: cert-manager's renewal, due with ${Math.round(lifetimeDays / 3)} days left, has not happened`,
                    ].filter(Boolean);
                    resolve(problems.length === 0 ? pass(seen) : fail(`${seen}; ${problems.join("; ")}`));
                });
            }),
    );
}

interface Answer {
    status: number;
    location?: string;
    body: string;
}

/**
 * One GET to a node's address with another name, over HTTP or HTTPS (by SNI), bounded in time; `port`
 * where the node's port is reached (the tests move it), the certificate checked against `ca` unless
 * `verify` is off.
 */
function get(url: URL, ip: string, opts: { port?: number; ca?: readonly string[]; verify?: boolean } = {}): Promise<Answer> {
    const client = url.protocol === "https:" ? https : http;
    return new Promise<Answer>((resolve, reject) => {
        const request = client.request(
            {
                host: ip,
                port: opts.port ?? url.port,
                path: `${url.pathname}${url.search}`,
                headers: { host: url.hostname },
                servername: url.hostname,
                ca: opts.ca ? [...opts.ca] : undefined,
                rejectUnauthorized: opts.verify ?? true,
                timeout: REQUEST_MS,
                agent: false,
            },
            (response) => {
                let body = "";
                response.setEncoding("utf8");
                response.on("data", (chunk: string) => (body = (body + chunk).slice(0, 2_000)));
                response.on("end", () => resolve({ status: response.statusCode ?? 0, location: response.headers.location, body }));
                response.on("close", () => response.complete || reject(new Error(`the answer was cut off after ${body.length} characters`)));
            },
        );
        request.on("timeout", () => request.destroy(new Error(`no answer within ${REQUEST_MS / 1000} s`)));
        request.on("error", reject);
        request.end();
    });
}

/**
 * How Let's Encrypt validates HTTP-01, which it starts on port 80: it follows up to 10 redirects, only to
 * http: or https: on ports 80 or 443, never to an IP address, and does not check certificates on the
 * way (letsencrypt.org/docs/challenge-types; RFC 8555 §8.3). cert-manager's self-check follows them too
 * (cert-manager v1.21.1 pkg/issuer/acme/http/http.go).
 */
const ACME_MAX_REDIRECTS = 10;
const ACME_PORTS: Record<string, number> = { "http:": 80, "https:": 443 };

/** Why Let's Encrypt would not follow a redirect to `to`, or undefined when it would. */
function acmeRefuses(to: URL): string | undefined {
    if (!(to.protocol in ACME_PORTS)) return `not http: or https: (${to.protocol})`;
    const port = Number(to.port || ACME_PORTS[to.protocol]);
    if (port !== 80 && port !== 443) return `port ${port}: Let's Encrypt follows redirects to ports 80 and 443 only`;
    if (net.isIP(to.hostname.replace(/^\[|\]$/g, ""))) return "an IP address: Let's Encrypt follows redirects to names only";
    return undefined;
}

export function checkHttp01(door: FrontDoor, ip: string, host: string): Promise<CheckResult> {
    return runCheck("http01", `${ip} ${host}`, (ACME_MAX_REDIRECTS + 1) * REQUEST_MS, async () => {
        const first = new URL(`http://${host}/.well-known/acme-challenge/${crypto.randomBytes(8).toString("hex")}`);
        const hops = [`GET ${first.href}`];
        // The node's own port for 80 and 443 (loopback ports in tests).
        const nodePort = (url: URL) => (Number(url.port || ACME_PORTS[url.protocol]) === 443 ? door.ports.https : door.ports.http);
        let url = first;
        for (let redirects = 0; ; redirects++) {
            const answer = await get(url, ip, { port: nodePort(url), verify: false });
            if (![301, 302, 303, 307, 308].includes(answer.status) || !answer.location) {
                hops.push(`${answer.status}`);
                return pass(hops.join(" → "));
            }
            const to = new URL(answer.location, url);
            hops.push(`${answer.status} ${to.href}`);
            const refused = redirects === ACME_MAX_REDIRECTS ? `more than ${ACME_MAX_REDIRECTS} redirects` : acmeRefuses(to);
            if (refused) {
                return fail(`${hops.join(" → ")}: Let's Encrypt would not follow it (${refused})`);
            }
            if (to.hostname !== door.platformDomain && !to.hostname.endsWith(`.${door.platformDomain}`)) {
                return pass(`${hops.join(" → ")} (off the platform: not followed here)`);
            }
            url = to;
        }
    });
}

export function checkControllerHealth(door: FrontDoor, ip: string): Promise<CheckResult> {
    return runCheck("controller-health", ip, REQUEST_MS + 2_000, async () => {
        // teamhephy/controller v2.22.0 rootfs/deis/urls.py: /healthz (LivenessCheckView), which the chart's liveness probe reads too.
        const url = new URL(`https://${CONTROLLER_HOST}.${door.platformDomain}:${door.ports.https}/healthz`);
        const answer = await get(url, ip, { ca: door.ca });
        const seen = `GET ${url.href} → ${answer.status}`;
        return answer.status === 200 ? pass(seen) : fail(`${seen}: ${answer.body.trim().slice(0, 120)}`);
    });
}

/** Every front-door check: DNS once, then each port and name on every node, all at once. */
export async function frontDoorChecks(door: FrontDoor): Promise<CheckResult[]> {
    // Without a known certificate host, a random name still shows there is no global redirect.
    const challenged = door.certificateHosts.length > 0 ? door.certificateHosts : [randomName(door.platformDomain)];
    const perNode = door.nodeIps.flatMap((ip) => [
        checkTcp("tcp-80", ip, door.ports.http),
        checkTcp("tcp-443", ip, door.ports.https),
        checkCertificate(door, ip),
        ...challenged.map((host) => checkHttp01(door, ip, host)),
        ...(door.workflow ? [checkSshBanner(ip, door.ports.ssh), checkControllerHealth(door, ip)] : []),
    ]);
    return Promise.all([checkDns(door), ...perNode]);
}
