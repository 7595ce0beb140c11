import * as crypto from "node:crypto";
import { lookup, Resolver } from "node:dns/promises";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as tls from "node:tls";
import { CheckId, CheckResult, fail, Outcome, pass, runCheck } from "./checks";

/** What the front-door checks need of a stack, and where its ports are (the tests move them to loopback). */
export interface FrontDoor {
    /** `<platformSubdomain>.<domain>`, from the stack's outputs. */
    platformDomain: string;
    /** The nodes' public addresses, from the stack's outputs. */
    nodeIps: readonly string[];
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
    /** A certificate expiring within this many days fails. */
    minDaysLeft: number;
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

export async function checkDns(door: FrontDoor): Promise<CheckResult> {
    return runCheck("dns", "", REQUEST_MS + 2_000, async () => {
        const resolver = new Resolver({ timeout: 3_000, tries: 2 });
        if (door.dnsServers.length > 0) {
            resolver.setServers(await Promise.all(door.dnsServers.map(serverAddress)));
        }
        const name = randomName(door.platformDomain);
        const found = (await resolver.resolve4(name)).sort();
        const expected = [...door.nodeIps].sort();
        const evidence = `${name} → ${found.join(", ")}`;
        if (found.join() === expected.join()) {
            return pass(evidence);
        }
        const missing = expected.filter((ip) => !found.includes(ip));
        const extra = found.filter((ip) => !expected.includes(ip));
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
                    const daysLeft = Math.floor((new Date(cert.valid_to).getTime() - now.getTime()) / 86_400_000);
                    const seen = `${host}: issuer ${issuer}, valid to ${cert.valid_to}, ${daysLeft} days left`;
                    const problems = [
                        socket.authorized ? "" : `not trusted (${String(socket.authorizationError)})`,
                        tls.checkServerIdentity(host, cert) ? `not valid for ${host} (it names ${cert.subjectaltname ?? field(cert.subject?.CN)})` : "",
                        field(cert.issuer?.O) === door.productionIssuer ? "" : `not from ${door.productionIssuer}'s production issuer`,
                        daysLeft >= door.minDaysLeft ? "" : `expires within ${door.minDaysLeft} days`,
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

/** One GET to a node's address with another name, over HTTP or HTTPS (by SNI), bounded in time. */
function get(url: URL, ip: string, ca?: readonly string[]): Promise<Answer> {
    const client = url.protocol === "https:" ? https : http;
    return new Promise<Answer>((resolve, reject) => {
        const request = client.request(
            {
                host: ip,
                port: url.port,
                path: url.pathname,
                headers: { host: url.hostname },
                servername: url.hostname,
                ca: ca ? [...ca] : undefined,
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

export function checkHttp01(door: FrontDoor, ip: string): Promise<CheckResult> {
    return runCheck("http01", ip, REQUEST_MS + 2_000, async () => {
        const url = new URL(`http://${randomName(door.platformDomain)}:${door.ports.http}/.well-known/acme-challenge/${crypto.randomBytes(8).toString("hex")}`);
        const answer = await get(url, ip);
        const seen = `GET ${url.href} → ${answer.status}`;
        return answer.status >= 300 && answer.status < 400 ? fail(`${seen}, redirected to ${answer.location}`) : pass(seen);
    });
}

export function checkControllerHealth(door: FrontDoor, ip: string): Promise<CheckResult> {
    return runCheck("controller-health", ip, REQUEST_MS + 2_000, async () => {
        // teamhephy/controller rootfs/api/urls.py: /healthz, which the chart's liveness probe reads too.
        const url = new URL(`https://${CONTROLLER_HOST}.${door.platformDomain}:${door.ports.https}/healthz`);
        const answer = await get(url, ip, door.ca);
        const seen = `GET ${url.href} → ${answer.status}`;
        return answer.status === 200 ? pass(seen) : fail(`${seen}: ${answer.body.trim().slice(0, 120)}`);
    });
}

/** Every front-door check: DNS once, then each port and name on every node, all at once. */
export async function frontDoorChecks(door: FrontDoor): Promise<CheckResult[]> {
    const perNode = door.nodeIps.flatMap((ip) => [
        checkTcp("tcp-80", ip, door.ports.http),
        checkTcp("tcp-443", ip, door.ports.https),
        checkCertificate(door, ip),
        checkHttp01(door, ip),
        ...(door.workflow ? [checkSshBanner(ip, door.ports.ssh), checkControllerHealth(door, ip)] : []),
    ]);
    return Promise.all([checkDns(door), ...perNode]);
}
