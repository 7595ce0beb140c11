import * as http from "node:http";
import { Listening, jsonApi } from "./standIns";

/**
 * Stand-ins for what the node DNS reconciler (incluster/nodedns.py) talks to: DigitalOcean's domain
 * records API and the few Kubernetes reads it makes. Both record what they were asked.
 */

export interface DnsRecord {
    id: number;
    type: string;
    name: string;
    data: string;
    ttl: number;
}

/**
 * DigitalOcean's domain records API for one zone, as docs.digitalocean.com/reference/api ("Domain
 * Records") describes it: `type` and `name` (the full name) filter a list, which comes in pages of at most
 * `pageSize` with `links.pages.next`; a create answers 201 with `domain_record`, or 422 for a name or
 * address DigitalOcean refuses or a TTL under 30; an update 200, a delete 204; 404 for an unknown id.
 * `limit(n)` answers the next n requests 429 with Retry-After, as the API's rate limit does. After every
 * write it notes how many A records the watched name has, so a test can see that it never had none.
 */
export async function digitalOceanApi(
    zone: string,
    watchedName: string,
    pageSize = 2,
): Promise<
    Listening & {
        records: Map<number, DnsRecord>;
        requests: string[];
        counts: number[];
        limit(times: number): void;
        add(record: Omit<DnsRecord, "id">): DnsRecord;
        published(type?: string): string[];
    }
> {
    const records = new Map<number, DnsRecord>();
    const counts: number[] = [];
    let nextId = 1000;
    let limited = 0;
    const add = (record: Omit<DnsRecord, "id">) => {
        const made = { id: nextId++, ...record };
        records.set(made.id, made);
        return made;
    };
    const published = (type = "A") =>
        [...records.values()]
            .filter((r) => r.type === type && r.name === watchedName)
            .map((r) => r.data)
            .sort();
    const note = () => counts.push(published().length);
    const fullName = (name: string) => (name === "@" ? zone : `${name}.${zone}`);
    const refusal = (record: any): string | undefined => {
        if (typeof record.name !== "string" || !/^(@|(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)$/.test(record.name)) {
            return "Name Only valid hostname characters are allowed";
        }
        if (record.type === "A" && !/^(\d{1,3}\.){3}\d{1,3}$/.test(record.data)) return "Data needs to end with a dot (.) or be an IP address";
        if (record.type === "AAAA" && !/^[0-9a-f:]+$/i.test(record.data)) return "Data needs to be an IPv6 address";
        if (typeof record.ttl !== "number" || record.ttl < 30) return "Ttl must be at least 30";
        return undefined;
    };
    let port = 0;
    const server = await jsonApi(({ method, url, text, request }, answer) => {
        if (request.headers.authorization !== "Bearer dop_v1_dns-only") return answer(401, { id: "unauthorized", message: "Unable to authenticate you" });
        if (limited > 0) {
            limited--;
            return answer(429, { id: "too_many_requests", message: "API Rate limit exceeded." }, { "retry-after": "0", "ratelimit-remaining": "0" });
        }
        const match = new RegExp(`^/v2/domains/${zone.replace(/\./g, "\\.")}/records(?:/(\\d+))?$`).exec(url.pathname);
        if (!match) return answer(404, { id: "not_found", message: "The resource you were accessing could not be found." });
        const id = match[1] === undefined ? undefined : Number(match[1]);
        if (method === "GET" && id === undefined) {
            const type = url.searchParams.get("type");
            const name = url.searchParams.get("name");
            const all = [...records.values()].filter((r) => (!type || r.type === type) && (!name || fullName(r.name) === name));
            const perPage = Math.min(Number(url.searchParams.get("per_page") ?? 20), pageSize);
            const page = Number(url.searchParams.get("page") ?? 1);
            const next = new URL(`http://127.0.0.1:${port}${url.pathname}${url.search}`);
            next.searchParams.set("page", String(page + 1));
            return answer(200, {
                domain_records: all.slice((page - 1) * perPage, page * perPage),
                links: page * perPage < all.length ? { pages: { next: next.toString() } } : {},
                meta: { total: all.length },
            });
        }
        const body = text ? JSON.parse(text) : {};
        if (method === "POST" && id === undefined) {
            const refused = refusal(body);
            if (refused) return answer(422, { id: "unprocessable_entity", message: refused });
            const made = add({ type: body.type, name: body.name, data: body.data, ttl: body.ttl });
            note();
            return answer(201, { domain_record: made });
        }
        const current = id === undefined ? undefined : records.get(id);
        if (!current) return answer(404, { id: "not_found", message: "The resource you were accessing could not be found." });
        if (method === "PUT") {
            const updated = { ...current, ...body, id: current.id };
            const refused = refusal(updated);
            if (refused) return answer(422, { id: "unprocessable_entity", message: refused });
            records.set(current.id, updated);
            note();
            return answer(200, { domain_record: updated });
        }
        if (method === "DELETE") {
            records.delete(current.id);
            note();
            return answer(204);
        }
        return answer(405, { id: "method_not_allowed", message: method });
    });
    port = server.port;
    return { ...server, records, counts, limit: (times) => (limited += times), add, published };
}

export interface NodeState {
    name: string;
    ready: boolean;
    unschedulable?: boolean;
    addresses: string[];
    /** Whether the ingress controller's pod on it is ready. */
    ingressReady: boolean;
}

/**
 * The Kubernetes reads of the reconciler: nodes, the ingress controller's pods (by label selector),
 * and its own Deployment; lists carry a resourceVersion, and a watch from it answers at the next
 * `changed()` (or its timeoutSeconds). `fail` answers the next requests to a path prefix with an error.
 */
export async function nodesApi(
    ingressNamespace: string,
    selector: string,
): Promise<
    Listening & {
        nodes: Map<string, NodeState>;
        deployment: { exists: boolean };
        requests: string[];
        changed(): void;
        fail(prefix: string, status: number, times?: number): void;
    }
> {
    const nodes = new Map<string, NodeState>();
    const deployment = { exists: true };
    const failures: { prefix: string; status: number; times: number }[] = [];
    let version = 500;
    let watchers: http.ServerResponse[] = [];
    const server = await jsonApi(({ url, response }, answer) => {
        const failure = failures.find((f) => url.pathname.startsWith(f.prefix) && f.times > 0);
        if (failure) {
            failure.times--;
            return answer(failure.status, { kind: "Status", code: failure.status, message: "stand-in failure" });
        }
        if (url.searchParams.get("watch") === "true") {
            response.writeHead(200, { "content-type": "application/json" }).flushHeaders();
            watchers.push(response);
            return;
        }
        const list = (kind: string, items: unknown[]) => answer(200, { kind, apiVersion: "v1", metadata: { resourceVersion: String(version) }, items });
        if (url.pathname === "/api/v1/nodes") {
            return list(
                "NodeList",
                [...nodes.values()].map((n) => ({
                    metadata: { name: n.name },
                    spec: n.unschedulable ? { unschedulable: true } : {},
                    status: {
                        conditions: [{ type: "Ready", status: n.ready ? "True" : "Unknown" }],
                        addresses: [{ type: "InternalIP", address: "10.110.0.9" }, ...n.addresses.map((address) => ({ type: "ExternalIP", address }))],
                    },
                })),
            );
        }
        if (url.pathname === `/api/v1/namespaces/${ingressNamespace}/pods`) {
            if (url.searchParams.get("labelSelector") !== selector) return list("PodList", []);
            return list(
                "PodList",
                [...nodes.values()].map((n) => ({
                    metadata: { name: `haproxy-${n.name}`, namespace: ingressNamespace },
                    spec: { nodeName: n.name },
                    status: { phase: "Running", conditions: [{ type: "Ready", status: n.ingressReady ? "True" : "False" }] },
                })),
            );
        }
        if (/^\/apis\/apps\/v1\/namespaces\/[^/]+\/deployments\/[^/]+$/.test(url.pathname)) {
            return deployment.exists
                ? answer(200, { kind: "Deployment", metadata: { name: url.pathname.split("/").pop() } })
                : answer(404, { kind: "Status", code: 404, message: "not found" });
        }
        return answer(404, { kind: "Status", code: 404, message: `no route ${url.pathname}` });
    });
    return {
        ...server,
        nodes,
        deployment,
        changed: () => {
            version++;
            watchers.forEach((w) => w.end('{"type":"MODIFIED","object":{}}\n'));
            watchers = [];
        },
        fail: (prefix, status, times = 1) => failures.push({ prefix, status, times }),
        close: async () => {
            watchers.forEach((w) => w.end());
            await server.close();
        },
    };
}
