import * as dgram from "node:dgram";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import { AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { WebSocketServer } from "ws";
import { tlsState } from "../offline/tlsMocks";

/**
 * Loopback stand-ins for what `npm run verify` talks to on a live stack: a DNS server, an SSH banner,
 * HTTP and HTTPS servers behind a test CA, Tiller's mutual TLS, and a Kubernetes API that serves
 * recorded JSON and forwards ports. Each records what it was asked, so a test holds verify to the
 * requests a real client makes.
 */

/** Something listening on loopback that a test closes when done. */
export interface Listening {
    port: number;
    close(): Promise<void>;
}

function listening(server: net.Server): Promise<Listening> {
    return new Promise((resolve) => {
        server.listen(0, "127.0.0.1", () =>
            resolve({
                port: (server.address() as AddressInfo).port,
                close: () =>
                    new Promise<void>((done) => {
                        (server as http.Server).closeAllConnections?.();
                        server.close(() => done());
                    }),
            }),
        );
    });
}

/** A DNS server over UDP answering A queries under `zone` with `addresses`, NXDOMAIN otherwise (RFC 1035 §4). */
export function dnsServer(zone: string, addresses: readonly string[]): Promise<Listening & { asked: string[] }> {
    const socket = dgram.createSocket("udp4");
    const asked: string[] = [];
    socket.on("message", (query, peer) => {
        const labels: string[] = [];
        let offset = 12;
        while (query[offset] !== 0) {
            labels.push(query.subarray(offset + 1, offset + 1 + query[offset]).toString("ascii"));
            offset += query[offset] + 1;
        }
        const question = query.subarray(12, offset + 5);
        const name = labels.join(".").toLowerCase();
        const qtype = query.readUInt16BE(offset + 1);
        asked.push(name);
        const found = qtype === 1 && name.endsWith(`.${zone}`) ? addresses : [];
        const header = Buffer.alloc(12);
        query.copy(header, 0, 0, 2);
        header.writeUInt16BE(name.endsWith(`.${zone}`) ? 0x8180 : 0x8183, 2);
        header.writeUInt16BE(1, 4);
        header.writeUInt16BE(found.length, 6);
        const answers = found.map((ip) => {
            const answer = Buffer.alloc(16);
            answer.writeUInt16BE(0xc00c, 0);
            answer.writeUInt16BE(1, 2);
            answer.writeUInt16BE(1, 4);
            answer.writeUInt32BE(60, 6);
            answer.writeUInt16BE(4, 10);
            ip.split(".").forEach((octet, i) => answer.writeUInt8(Number(octet), 12 + i));
            return answer;
        });
        socket.send(Buffer.concat([header, question, ...answers]), peer.port, peer.address);
    });
    return new Promise((resolve) =>
        socket.bind(0, "127.0.0.1", () =>
            resolve({ port: socket.address().port, asked, close: () => new Promise<void>((done) => socket.close(() => done())) }),
        ),
    );
}

/** A TCP server that sends `banner` to each client, as sshd does first. */
export function bannerServer(banner: string): Promise<Listening> {
    return listening(net.createServer((socket) => socket.end(banner)));
}

export type Handler = (request: http.IncomingMessage, response: http.ServerResponse) => void;

export function httpServer(handler: Handler): Promise<Listening> {
    return listening(http.createServer(handler));
}

export function httpsServer(pair: { cert: string; key: string }, handler: Handler): Promise<Listening> {
    return listening(https.createServer(pair, handler));
}

/** grpc.health.v1 HealthCheckRequest {service: "Tiller"}, written out by hand from health.proto (field 1, length-delimited). */
const TILLER_HEALTH_REQUEST = Buffer.from([0x0a, 0x06, ...Buffer.from("Tiller")]);

/** The version a released Tiller 2.17.0 reports (helm/helm v2.17.0 pkg/version: Version set from the tag, no build metadata). */
const TILLER_VERSION = "v2.17.0";

/**
 * Tiller's unary interceptor (helm/helm v2.17.0 pkg/tiller/server.go `newUnaryInterceptor`, which
 * `tiller.NewServer` puts on every method, the health service's too): a call whose `x-helm-api-client`
 * metadata is not compatible with the server's version fails, but GetVersion. Compatible is
 * pkg/version/compatible.go `IsCompatible`: a client version that is not semver (none) never is; else
 * the server must match `^<client major>.<client minor>.x`.
 */
function helmVersionRefusal(metadata: grpc.Metadata, server: string): string | undefined {
    const client = String(metadata.get("x-helm-api-client")[0] ?? "");
    const [c, s] = [client, server].map((v) => /^v?(\d+)\.(\d+)\.\d+/.exec(v)?.slice(1).map(Number));
    const compatible = c !== undefined && s !== undefined && s[0] === c[0] && s[1] >= c[1];
    return compatible ? undefined : `incompatible versions client[${client}] server[${server}]`;
}

/**
 * A gRPC server like Tiller 2.17's (helm/helm v2.17.0 cmd/tiller/tiller.go): TLS with `pair`, asking
 * clients for a certificate of `clientCa` (RequireAndVerifyClientCert), or, when `verifyClients` is off,
 * for none; Tiller's version check on every call (a plain Go error: gRPC code UNKNOWN); and
 * grpc.health.v1 Health/Check, which answers service "Tiller" with `servingStatus` (1 SERVING once
 * started, 2 NOT_SERVING before) and any other service NOT_FOUND, as grpc-go's health server does.
 * The messages are bytes written here, apart from verify's own encoding.
 */
export async function tillerServer(
    pair: { cert: string; key: string },
    clientCa: string,
    verifyClients: boolean,
    servingStatus = 1,
): Promise<Listening & { checks: number }> {
    const server = new grpc.Server();
    const bytes = (b: Buffer) => b;
    const state = { checks: 0 };
    const check: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
        const refusal = helmVersionRefusal(call.metadata, TILLER_VERSION);
        if (refusal) {
            return callback({ code: grpc.status.UNKNOWN, details: refusal });
        }
        state.checks++;
        if (!call.request.equals(TILLER_HEALTH_REQUEST)) {
            return callback({ code: grpc.status.NOT_FOUND, details: "unknown service" });
        }
        callback(null, Buffer.from([0x08, servingStatus]));
    };
    server.addService(
        {
            Check: {
                path: "/grpc.health.v1.Health/Check",
                requestStream: false,
                responseStream: false,
                requestSerialize: bytes,
                requestDeserialize: bytes,
                responseSerialize: bytes,
                responseDeserialize: bytes,
            },
        },
        { Check: check },
    );
    const credentials = grpc.ServerCredentials.createSsl(
        Buffer.from(clientCa),
        [{ private_key: Buffer.from(pair.key), cert_chain: Buffer.from(pair.cert) }],
        verifyClients,
    );
    const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    return {
        port,
        get checks() {
            return state.checks;
        },
        close: async () => server.forceShutdown(),
    };
}

export interface TestCertificate {
    cert: string;
    key: string;
}

export interface TestPki {
    /** PEM of the root the client trusts. */
    root: string;
    /** Issues a certificate for `names`, chained through an intermediate of organisation `issuerOrg`. */
    issue(names: string[], opts: { issuerOrg: string; validityHours: number; uses?: string[] }): Promise<TestCertificate>;
    /** Issues a certificate directly under the root, as the stack's Tiller CA does. */
    leaf(names: string[], uses: string[]): Promise<TestCertificate>;
}

/** A test PKI, built with the tls provider's stand-in (real X.509 from @peculiar/x509). */
export async function testPki(name: string): Promise<TestPki> {
    const key = async (id: string) =>
        (await tlsState("tls:index/privateKey:PrivateKey", `${name}-${id}`, { algorithm: "ECDSA", ecdsaCurve: "P256" })).privateKeyPem as string;
    const rootKey = await key("root");
    const root = (
        await tlsState("tls:index/selfSignedCert:SelfSignedCert", `${name}-root`, {
            privateKeyPem: rootKey,
            subject: { commonName: `${name} root`, organization: name },
            isCaCertificate: true,
            allowedUses: ["cert_signing", "crl_signing"],
            validityPeriodHours: 24 * 365,
        })
    ).certPem as string;
    const sign = async (
        id: string,
        caCertPem: string,
        caPrivateKeyPem: string,
        subject: Record<string, string>,
        dnsNames: string[],
        inputs: Record<string, unknown>,
    ) => {
        const privateKeyPem = await key(id);
        const names = { dnsNames: dnsNames.filter((n) => !net.isIP(n)), ipAddresses: dnsNames.filter((n) => net.isIP(n)) };
        const { certRequestPem } = await tlsState("tls:index/certRequest:CertRequest", `${name}-${id}`, { privateKeyPem, subject, ...names });
        const { certPem } = await tlsState("tls:index/locallySignedCert:LocallySignedCert", `${name}-${id}`, {
            certRequestPem,
            caCertPem,
            caPrivateKeyPem,
            ...inputs,
        });
        return { cert: certPem as string, key: privateKeyPem };
    };
    return {
        root,
        async issue(names, opts) {
            const intermediate = await sign(`ca-${opts.issuerOrg}`, root, rootKey, { commonName: "R99", organization: opts.issuerOrg }, [], {
                isCaCertificate: true,
                allowedUses: ["cert_signing"],
                validityPeriodHours: 24 * 365,
            });
            const leaf = await sign(
                `${names[0]}-${opts.issuerOrg}-${opts.validityHours}`,
                intermediate.cert,
                intermediate.key,
                { commonName: names[0] },
                names,
                {
                    allowedUses: opts.uses ?? ["digital_signature", "server_auth"],
                    validityPeriodHours: opts.validityHours,
                },
            );
            return { cert: `${leaf.cert.trim()}\n${intermediate.cert.trim()}\n`, key: leaf.key };
        },
        leaf(names, uses) {
            return sign(`${names[0]}-${uses.join("-")}`, root, rootKey, { commonName: names[0] }, names, { allowedUses: uses, validityPeriodHours: 24 * 365 });
        },
    };
}

/** A kubeconfig for the API server at `server`, with a bearer token, trusting `caPem` when given. */
export function kubeconfigFor(server: string, caPem?: string, token = STAND_IN_TOKEN): string {
    const ca = caPem ? `\n    certificate-authority-data: ${Buffer.from(caPem).toString("base64")}` : "";
    return [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        `- name: stand-in\n  cluster:\n    server: ${server}${ca}`,
        "users:",
        `- name: admin\n  user:\n    token: ${token}`,
        "contexts:",
        "- name: stand-in\n  context:\n    cluster: stand-in\n    user: admin",
        "current-context: stand-in",
    ].join("\n");
}

/** The token of the stand-in API's kubeconfig, which it accepts until a test says otherwise. */
export const STAND_IN_TOKEN = "stand-in-token";

/** A Kubernetes API error, as the API server answers one. */
function statusBody(code: number, reason: string, message: string) {
    return { kind: "Status", apiVersion: "v1", status: "Failure", reason, message, code };
}

/** What a stand-in Kubernetes API was asked: method, path with query, and whether it had an answer. */
export interface ApiRequest {
    method: string;
    url: string;
    answered: boolean;
}

/**
 * A Kubernetes API on loopback: GETs answered from `responses` (path with query → JSON body),
 * everything else 404 and recorded as unanswered; pods/portforward WebSockets (v4.channel.k8s.io:
 * each frame starts with its channel, each channel's first frame with the port) piped to `forwardTo`.
 * A bearer token not in `tokens` (an expired one) gets what the API server's authentication filter
 * answers: 401 with Status reason Unauthorized (k8s.io/apiserver pkg/endpoints/filters/authentication.go).
 */
export async function kubernetesApi(
    responses: Record<string, unknown>,
    serving: { pair: TestCertificate; ca: string },
    forwardTo?: number,
): Promise<Listening & { requests: ApiRequest[]; kubeconfig: string; tokens: Set<string> }> {
    const requests: ApiRequest[] = [];
    const tokens = new Set([STAND_IN_TOKEN]);
    const authenticated = (request: http.IncomingMessage) => tokens.has((request.headers.authorization ?? "").replace(/^Bearer /, ""));
    const server = https.createServer(serving.pair, (request, response) => {
        if (!authenticated(request)) {
            requests.push({ method: request.method ?? "", url: request.url ?? "", answered: true });
            response.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify(statusBody(401, "Unauthorized", "Unauthorized")));
            return;
        }
        const body = responses[request.url ?? ""];
        const answered = request.method === "GET" && body !== undefined;
        requests.push({ method: request.method ?? "", url: request.url ?? "", answered });
        response.writeHead(answered ? 200 : 404, { "content-type": "application/json" });
        response.end(JSON.stringify(answered ? body : statusBody(404, "NotFound", `no recorded answer for ${request.url}`)));
    });
    const sockets = new WebSocketServer({
        server,
        verifyClient: (info: { req: http.IncomingMessage }) => authenticated(info.req),
        handleProtocols: (protocols) => (protocols.has("v4.channel.k8s.io") ? "v4.channel.k8s.io" : false),
    });
    sockets.on("connection", (ws, request) => {
        const url = new URL(request.url ?? "", "http://stand-in");
        const port = Number(url.searchParams.get("ports"));
        requests.push({ method: "WEBSOCKET", url: request.url ?? "", answered: url.pathname.endsWith("/portforward") && forwardTo !== undefined });
        if (!url.pathname.endsWith("/portforward") || forwardTo === undefined) {
            ws.close();
            return;
        }
        const portBytes = Buffer.alloc(2);
        portBytes.writeUInt16LE(port);
        ws.send(Buffer.concat([Buffer.from([0]), portBytes]));
        ws.send(Buffer.concat([Buffer.from([1]), portBytes]));
        const upstream = net.connect({ host: "127.0.0.1", port: forwardTo });
        upstream.on("data", (chunk: Buffer) => ws.send(Buffer.concat([Buffer.from([0]), chunk])));
        upstream.on("close", () => ws.close());
        upstream.on("error", () => ws.close());
        ws.on("message", (data: Buffer) => {
            if (data[0] === 0 && data.length > 1) {
                upstream.write(data.subarray(1));
            }
        });
        ws.on("close", () => upstream.destroy());
    });
    const listen = await listening(server);
    const kubeconfig = kubeconfigFor(`https://127.0.0.1:${listen.port}`, serving.ca);
    return {
        ...listen,
        requests,
        kubeconfig,
        tokens,
        close: async () => {
            sockets.clients.forEach((c) => c.terminate());
            sockets.close();
            await listen.close();
        },
    };
}

/** How a JSON stand-in answers: a status, a body sent as JSON (none when undefined), and extra headers. */
export type JsonAnswer = (code: number, body?: unknown, headers?: Record<string, string>) => void;

/**
 * A loopback JSON API: each request, its body read, goes to `handle` with its method, URL and text, and
 * a function that answers JSON; `requests` records each as `METHOD /path?query`.
 */
export async function jsonApi(
    handle: (call: { method: string; url: URL; text: string; request: http.IncomingMessage; response: http.ServerResponse }, answer: JsonAnswer) => void,
): Promise<Listening & { requests: string[] }> {
    const requests: string[] = [];
    const server = await httpServer((request, response) => {
        let text = "";
        request.on("data", (chunk) => (text += chunk));
        request.on("end", () => {
            const url = new URL(request.url ?? "", "http://stand-in");
            const method = request.method ?? "";
            requests.push(`${method} ${url.pathname}${url.search}`);
            const answer: JsonAnswer = (code, body, headers = {}) =>
                response.writeHead(code, { "content-type": "application/json", ...headers }).end(body === undefined ? "" : JSON.stringify(body));
            handle({ method, url, text, request, response }, answer);
        });
    });
    return { ...server, requests };
}

/** What a stand-in API holds: Services by `namespace/name` (the test's), Ingresses (the client's writes). */
export interface ClusterState {
    services: Map<string, any>;
    ingresses: Map<string, any>;
    /** The IngressClass marked default, which the API server gives a class-less Ingress at creation. */
    defaultIngressClass: string;
}

/**
 * A Kubernetes API for Services and Ingresses that answers as a 1.35 server would: lists with a
 * resourceVersion, creates that assign uid, resourceVersion and creationTimestamp and refuse a name
 * taken (409 AlreadyExists), updates that refuse a stale resourceVersion (409 Conflict), deletes, 404
 * for what is not there, and 422 Invalid for an Ingress its networking/v1 schema refuses. `fail` makes
 * the next answers to a method and path prefix an error, as a flaky server's.
 */
export async function clusterApi(
    state: ClusterState,
    validateIngress: (ingress: any) => void,
): Promise<Listening & { requests: string[]; fail(method: string, prefix: string, status: number, times?: number): void }> {
    const failures: { method: string; prefix: string; status: number; times: number }[] = [];
    let version = 1000;
    const server = await jsonApi(({ method, url, text }, answer) => {
        const failure = failures.find((f) => f.method === method && url.pathname.startsWith(f.prefix) && f.times > 0);
        if (failure) {
            failure.times--;
            return answer(failure.status, statusBody(failure.status, "InternalError", "stand-in failure"));
        }
        const list = (kind: string, items: Map<string, any>) => ({
            kind,
            apiVersion: "v1",
            metadata: { resourceVersion: String(version) },
            items: [...items.values()],
        });
        if (method === "GET" && url.pathname === "/api/v1/services") return answer(200, list("ServiceList", state.services));
        if (method === "GET" && url.pathname === "/apis/networking.k8s.io/v1/ingresses") return answer(200, list("IngressList", state.ingresses));
        const match = /^\/apis\/networking\.k8s\.io\/v1\/namespaces\/([^/]+)\/ingresses(?:\/([^/]+))?$/.exec(url.pathname);
        if (!match) return answer(404, statusBody(404, "NotFound", `no route ${url.pathname}`));
        const [, namespace, name] = match;
        const body = text ? JSON.parse(text) : undefined;
        const key = `${namespace}/${name ?? body?.metadata?.name}`;
        const current = state.ingresses.get(key);
        const store = (ingress: any, code: number) => {
            try {
                validateIngress(ingress);
            } catch (error) {
                return answer(422, statusBody(422, "Invalid", String(error)));
            }
            const stored = { ...ingress, metadata: { ...ingress.metadata, namespace, resourceVersion: String(++version) } };
            state.ingresses.set(key, stored);
            return answer(code, stored);
        };
        if (method === "POST" && !name) {
            if (current) return answer(409, statusBody(409, "AlreadyExists", `ingresses "${body.metadata.name}" already exists`));
            // Admission plugin DefaultIngressClass: a class-less Ingress gets the default class, on create only.
            const spec = { ingressClassName: state.defaultIngressClass, ...body.spec };
            return store({ ...body, spec, metadata: { ...body.metadata, uid: `uid-${key}`, creationTimestamp: "2026-11-29T12:00:00Z" } }, 201);
        }
        if (!current) return answer(404, statusBody(404, "NotFound", `ingresses "${name}" not found`));
        if (method === "PUT") {
            if (body.metadata.resourceVersion !== current.metadata.resourceVersion) {
                return answer(409, statusBody(409, "Conflict", "the object has been modified; please apply your changes to the latest version and try again"));
            }
            return store({ ...body, metadata: { ...body.metadata, uid: current.metadata.uid, creationTimestamp: current.metadata.creationTimestamp } }, 200);
        }
        if (method === "DELETE") {
            state.ingresses.delete(key);
            return answer(200, { kind: "Status", apiVersion: "v1", status: "Success" });
        }
        if (method === "GET") return answer(200, current);
        return answer(405, statusBody(405, "MethodNotAllowed", method));
    });
    return { ...server, fail: (method, prefix, code, times = 1) => failures.push({ method, prefix, status: code, times }) };
}

/**
 * DigitalOcean's API for one cluster's kubeconfig: GET /v2/kubernetes/clusters/{id}/kubeconfig with
 * `Authorization: Bearer <token>` answers a kubeconfig in YAML whose token `mint` makes (one per call,
 * as DigitalOcean issues a new credential each time); a wrong token 401 and an unknown cluster 404, with
 * DigitalOcean's error body {id, message} (docs.digitalocean.com/reference/api, "Retrieve the kubeconfig
 * for a Kubernetes Cluster" and "Errors").
 */
export async function digitalOceanApi(
    cluster: { id: string; token: string },
    mint: (expirySeconds: number) => string,
): Promise<Listening & { url: string; requests: string[] }> {
    const requests: string[] = [];
    const server = http.createServer((request, response) => {
        const url = new URL(request.url ?? "", "http://stand-in");
        requests.push(`${request.method} ${url.pathname}${url.search}`);
        const error = (status: number, id: string, message: string) =>
            response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ id, message }));
        if (request.headers.authorization !== `Bearer ${cluster.token}`) {
            error(401, "Unauthorized", "Unable to authenticate you");
        } else if (request.method !== "GET" || url.pathname !== `/v2/kubernetes/clusters/${cluster.id}/kubeconfig`) {
            error(404, "not_found", "The resource you were accessing could not be found.");
        } else {
            response.writeHead(200, { "content-type": "application/yaml" }).end(mint(Number(url.searchParams.get("expiry_seconds") ?? 0) || 7 * 86_400));
        }
    });
    const listen = await listening(server);
    return { ...listen, url: `http://127.0.0.1:${listen.port}`, requests };
}
