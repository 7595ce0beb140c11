import * as crypto from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { PRICES } from "../pricing";
import { isTlsType, tlsState } from "./tlsMocks";

/**
 * Provider behaviour for the mock engine: realistic computed outputs for the resources the program
 * declares, and answers for the invokes it makes. Anything else fails loudly, because an error
 * thrown inside `call` would otherwise reach the program with an empty message.
 */

/** The zones of the mocked account: the one the tests' stacks name, and another. */
export const ZONES = ["hephy-demo.net", "another-team.org"];

/** The mocked regions: two open with every priced size, one closed. */
const REGIONS: Record<string, { available: boolean; sizes: string[] }> = {
    fra1: { available: true, sizes: Object.keys(PRICES.nodeUsd) },
    nyc3: { available: true, sizes: Object.keys(PRICES.nodeUsd) },
    sfo1: { available: false, sizes: [] },
};

/** What DigitalOcean offered when these tests were written, newest first (as the API lists them). */
export const OFFERED_VERSIONS = ["1.36.1-do.0", "1.35.3-do.1", "1.34.6-do.2"];

/**
 * The DigitalOcean account the mocks answer for. Tests change it to move the offer, run a stack against a
 * cluster that already exists, or age its credential, and call `resetWorld` afterwards.
 */
export const world = {
    /** The versions DigitalOcean offers. */
    offered: [...OFFERED_VERSIONS],
    /** A cluster the account already runs for the stack: its name, version, worker tag and VPC. */
    running: undefined as { name: string; version: string; workerTag: string; vpc?: { id: string; name: string; ipRange: string } } | undefined,
    /** Hours until the credential in the cluster's state expires. */
    storedCredentialHours: 24 * 7,
    /** Nodes the pool reports beyond `nodeCount`, as during a surge upgrade; they are the newest. */
    surgeNodes: 0,
    /** Whether getKubernetesCluster fails for every name, as for a cluster not yet renamed. */
    unreadable: false,
    /** Whether the region has its default VPC; a fresh account's regions have none. */
    defaultVpc: true,
    /** The DNS zones of the account. */
    zones: [...ZONES],
    /** DigitalOcean's regions: whether each takes new resources, and the sizes it offers. */
    regions: { ...REGIONS } as Record<string, { available: boolean; sizes: string[] }>,
    /** Whether getVpc fails for an id, as on an API error. */
    vpcUnreadable: false,
    /** Spaces buckets of the account, as `<region>/<name>`, with their object keys. */
    buckets: {} as Record<string, string[]>,
    /** The text of objects in those buckets, as `<region>/<bucket>/<key>`. */
    bucketObjects: {} as Record<string, string>,
    /** Names of the clusters the program under test has declared in this run (the harness clears it). */
    declared: new Set<string>(),
    /** How DigitalOcean's API takes the token: refused (401 to every request), or lacking scopes (403 to their reads). */
    token: { refused: false, missingScopes: [] as string[] },
};

/** Answers a read as DigitalOcean's API answers a token it refuses or one without the scope (godo's error text). */
function authorize(scope: string, path: string): void {
    const refusal = world.token.refused
        ? '401 (request "mock") Unable to authenticate you'
        : world.token.missingScopes.includes(scope)
          ? '403 (request "mock") You are not authorized to perform this operation'
          : undefined;
    if (refusal) {
        // The engine's answer to a failed invoke is a gRPC error whose details the SDK raises (@pulumi/pulumi runtime/invoke.js).
        const details = `invoking a data source: 1 error occurred: * GET https://api.digitalocean.com/v2/${path}: ${refusal}`;
        throw Object.assign(new Error(details), { details });
    }
}

export function resetWorld(): void {
    world.offered = [...OFFERED_VERSIONS];
    world.running = undefined;
    world.storedCredentialHours = 24 * 7;
    world.surgeNodes = 0;
    world.unreadable = false;
    world.defaultVpc = true;
    world.vpcUnreadable = false;
    world.zones = [...ZONES];
    world.regions = { ...REGIONS };
    world.buckets = {};
    world.bucketObjects = {};
    world.token = { refused: false, missingScopes: [] };
}

/** The mocks' clock for credential expiry: the hour the tests started, so every run in a process agrees. */
const CLOCK = Math.floor(Date.now() / 3600000) * 3600000;

/** The token a credential read from the DigitalOcean API now carries (getKubernetesCluster mints one). */
export const FRESH_TOKEN = "dop_v1_freshtoken000000000000000000000000000000000000000000000000000";

/** Droplet IDs of the first mock node; node i gets FIRST_DROPLET_ID + i. */
export const FIRST_DROPLET_ID = 510000001;

/** The public IPv4 the mock reports for a droplet (TEST-NET-3, RFC 5737). */
export function dropletIp(dropletId: number): string {
    return `203.0.113.${(dropletId - FIRST_DROPLET_ID + 10) % 250}`;
}

export const MOCK_TOKEN = "dop_v1_mocktoken0000000000000000000000000000000000000000000000000000";

function kubeconfigFor(clusterName: string, endpoint: string, token = MOCK_TOKEN): string {
    return [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- cluster:",
        "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
        `    server: ${endpoint}`,
        `  name: do-${clusterName}`,
        "contexts:",
        "- context:",
        `    cluster: do-${clusterName}`,
        `    user: do-${clusterName}-admin`,
        `  name: do-${clusterName}`,
        `current-context: do-${clusterName}`,
        "users:",
        `- name: do-${clusterName}-admin`,
        "  user:",
        `    token: ${token}`,
        "",
    ].join("\n");
}

/** Computed outputs per resource type, given the inputs the program sent. */
export type StateFn = (args: pulumi.runtime.MockResourceArgs) => Record<string, unknown>;

export const computedState: Record<string, StateFn> = {
    "digitalocean:index/kubernetesCluster:KubernetesCluster": ({ name, inputs }) => {
        world.declared.add(inputs.name);
        const id = `${name}-0000-4000-8000-000000000000`;
        const endpoint = `https://${id}.k8s.ondigitalocean.com`;
        const count = Number(inputs.nodePool?.nodeCount ?? 0) + world.surgeNodes;
        const nodes = Array.from({ length: count }, (_, i) => ({
            id: `node-${i}`,
            name: `${inputs.nodePool.name}-${i}`,
            status: "running",
            dropletId: String(FIRST_DROPLET_ID + i),
            // Go's time.String(), as the provider sets it (terraform-provider-digitalocean kubernetes.go).
            createdAt: new Date(Date.UTC(2026, 10, 1) + i * 3600 * 1000)
                .toISOString()
                .replace("T", " ")
                .replace(/\.\d+Z$/, " +0000 UTC"),
        }));
        return {
            name: inputs.name ?? `${name}-1a2b3c4`,
            endpoint,
            status: "running",
            clusterUrn: `do:kubernetes:${id}`,
            kubeConfigs: [
                {
                    rawConfig: kubeconfigFor(name, endpoint),
                    host: endpoint,
                    token: MOCK_TOKEN,
                    expiresAt: new Date(CLOCK + world.storedCredentialHours * 3600 * 1000).toISOString(),
                },
            ],
            nodePool: { ...inputs.nodePool, id: "pool-0", actualNodeCount: count, nodes },
            vpcUuid: inputs.vpcUuid ?? DEFAULT_VPC.id,
        };
    },
    // DigitalOcean picks a free /20 when no range is given.
    "digitalocean:index/vpc:Vpc": ({ name, inputs }) => ({ ipRange: inputs.ipRange ?? "10.114.0.0/20", urn: `do:vpc:${name}-uuid` }),
    "digitalocean:index/firewall:Firewall": () => ({ status: "succeeded" }),
    "digitalocean:index/dnsRecord:DnsRecord": ({ inputs }) => ({ fqdn: `${inputs.name}.${inputs.domain}` }),
    // Spaces keys as DigitalOcean makes them: an access key id and a secret, both its own.
    "digitalocean:index/spacesKey:SpacesKey": ({ name }) => ({
        accessKey: `DO00${crypto.createHash("sha256").update(`${name}-id`).digest("hex").slice(0, 16).toUpperCase()}`,
        secretKey: crypto.createHash("sha256").update(`${name}-secret`).digest("base64").slice(0, 43),
        createdAt: "2026-11-01T00:00:00Z",
    }),
    "digitalocean:index/spacesBucket:SpacesBucket": ({ inputs }) => ({
        bucketDomainName: `${inputs.name}.${inputs.region}.digitaloceanspaces.com`,
        endpoint: `${inputs.region}.digitaloceanspaces.com`,
        bucketUrn: `do:space:${inputs.name}`,
    }),
    "random:index/randomPassword:RandomPassword": ({ name, inputs }) => ({ result: randomResult(name, inputs) }),
    "random:index/randomString:RandomString": ({ name, inputs }) => ({ result: randomResult(name, inputs) }),
};

/** The region's default VPC, where clusters made by earlier versions of the program run. */
export const DEFAULT_VPC = { id: "default-fra1-vpc-uuid", name: "default-fra1", ipRange: "10.135.0.0/16" };

/** A stand-in for @pulumi/random's result: `length` letters and digits, fixed per resource name. */
function randomResult(name: string, inputs: Record<string, any>): string {
    const alphabet = inputs.upper === false ? "abcdefghijklmnopqrstuvwxyz" : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const bytes = crypto.createHash("sha512").update(name).digest();
    return Array.from({ length: Number(inputs.length) }, (_, i) => alphabet[bytes[i % bytes.length] % alphabet.length]).join("");
}

export type CallFn = (inputs: Record<string, any>) => Record<string, unknown>;

export const invokes: Record<string, CallFn> = {
    "digitalocean:index/getKubernetesVersions:getKubernetesVersions": (inputs) => {
        authorize("kubernetes:read", "kubernetes/options");
        const prefix: string = inputs.versionPrefix ?? "";
        const valid = world.offered.filter((v) => v.startsWith(prefix));
        return { id: "versions", versionPrefix: inputs.versionPrefix, latestVersion: valid[0] ?? "", validVersions: valid };
    },
    "digitalocean:index/getDroplets:getDroplets": (inputs) => {
        authorize("droplet:read", "droplets");
        const tags: string[] = inputs.filters?.find((f: { key: string }) => f.key === "tags")?.values ?? [];
        const running = world.running && tags.includes(world.running.workerTag);
        return { id: "droplets", droplets: running ? [{ id: FIRST_DROPLET_ID, name: "node-0", tags: [world.running!.workerTag] }] : [] };
    },
    // Any cluster the stack declared exists by the time the program reads it back; a running one has its version.
    "digitalocean:index/getKubernetesCluster:getKubernetesCluster": (inputs) => {
        const endpoint = `https://${inputs.name}.k8s.ondigitalocean.com`;
        const running = world.running?.name === inputs.name ? world.running : undefined;
        if (world.unreadable || (!running && !world.declared.has(inputs.name))) {
            throw new Error(`mock getKubernetesCluster: no cluster named ${inputs.name}`);
        }
        const version = running?.version ?? OFFERED_VERSIONS[0];
        const expiresAt = new Date(CLOCK + 7 * 24 * 3600 * 1000).toISOString();
        const vpcUuid = running?.vpc?.id ?? DEFAULT_VPC.id;
        return {
            id: `${inputs.name}-id`,
            name: inputs.name,
            version,
            vpcUuid,
            kubeConfigs: [{ rawConfig: kubeconfigFor(inputs.name, endpoint, FRESH_TOKEN), host: endpoint, token: FRESH_TOKEN, expiresAt }],
        };
    },
    // By id, or the region's default VPC by region.
    "digitalocean:index/getVpc:getVpc": (inputs) => {
        if (inputs.region !== undefined && inputs.id === undefined) {
            if (!world.defaultVpc) {
                throw new Error(`mock getVpc: region ${inputs.region} has no default VPC`);
            }
            return { ...DEFAULT_VPC, region: inputs.region, default: true, urn: `do:vpc:${DEFAULT_VPC.id}` };
        }
        if (world.vpcUnreadable) {
            throw new Error("mock getVpc: 503 Service Unavailable");
        }
        const vpc = [DEFAULT_VPC, world.running?.vpc].find((v) => v?.id === inputs.id);
        if (vpc === undefined) {
            throw new Error(`mock getVpc: no VPC with id ${JSON.stringify(inputs.id)}`);
        }
        return { ...vpc, region: "fra1", urn: `do:vpc:${vpc.id}` };
    },
    "digitalocean:index/getDomain:getDomain": (inputs) => {
        authorize("domain:read", `domains/${inputs.name}`);
        if (!world.zones.includes(inputs.name)) {
            throw new Error(`mock getDomain: no zone ${inputs.name}`);
        }
        return { id: inputs.name, name: inputs.name, ttl: 1800, urn: `do:domain:${inputs.name}`, zoneFile: "" };
    },
    "digitalocean:index/getDomains:getDomains": () => {
        authorize("domain:read", "domains");
        return { id: "domains", domains: world.zones.map((name) => ({ name, ttl: 1800, urn: `do:domain:${name}` })) };
    },
    "digitalocean:index/getRegion:getRegion": (inputs) => {
        authorize("regions:read", "regions");
        const region = world.regions[inputs.slug];
        if (!region) {
            throw new Error(`mock getRegion: no region ${inputs.slug}`);
        }
        return { id: inputs.slug, slug: inputs.slug, name: inputs.slug, features: [], ...region };
    },
    "digitalocean:index/getRegions:getRegions": (inputs) => {
        authorize("regions:read", "regions");
        const openOnly = (inputs.filters ?? []).some((f: { key: string; values: string[] }) => f.key === "available" && f.values.includes("true"));
        const regions = Object.entries(world.regions).filter(([, r]) => !openOnly || r.available);
        return { id: "regions", regions: regions.map(([slug, r]) => ({ slug, name: slug, features: [], ...r })) };
    },
    "digitalocean:index/getSpacesBucket:getSpacesBucket": (inputs) => {
        if (!world.buckets[`${inputs.region}/${inputs.name}`]) {
            throw new Error(`mock getSpacesBucket: no bucket ${inputs.name} in ${inputs.region}`);
        }
        return { id: inputs.name, name: inputs.name, region: inputs.region, bucketDomainName: "", endpoint: "", urn: `do:space:${inputs.name}` };
    },
    // Keys under the prefix; with a delimiter, those below it as common prefixes, as S3 lists them.
    "digitalocean:index/getSpacesBucketObjects:getSpacesBucketObjects": (inputs) => {
        const keys = (world.buckets[`${inputs.region}/${inputs.bucket}`] ?? []).filter((k) => k.startsWith(inputs.prefix ?? ""));
        const prefix: string = inputs.prefix ?? "";
        const below = (k: string) => inputs.delimiter && k.slice(prefix.length).includes(inputs.delimiter);
        const direct = keys.filter((k) => !below(k));
        const prefixes = [...new Set(keys.filter(below).map((k) => prefix + k.slice(prefix.length).split(inputs.delimiter)[0] + inputs.delimiter))];
        return { id: inputs.bucket, bucket: inputs.bucket, region: inputs.region, keys: direct, commonPrefixes: prefixes, owners: [] };
    },
    "digitalocean:index/getSpacesBucketObject:getSpacesBucketObject": (inputs) => {
        const body = world.bucketObjects[`${inputs.region}/${inputs.bucket}/${inputs.key}`];
        if (body === undefined) {
            throw new Error(`mock getSpacesBucketObject: no object ${inputs.key} in ${inputs.bucket}`);
        }
        return { id: inputs.key, bucket: inputs.bucket, region: inputs.region, key: inputs.key, body, contentType: "application/json", metadata: {} };
    },
    "digitalocean:index/getDroplet:getDroplet": (inputs) => {
        const id = Number(inputs.id);
        if (!Number.isInteger(id) || id < FIRST_DROPLET_ID) {
            throw new Error(`mock getDroplet: no droplet with id ${JSON.stringify(inputs.id)}`);
        }
        return { id, name: `node-${id}`, ipv4Address: dropletIp(id), status: "active" };
    },
};

/** Outputs the mock engine reports for a registered resource: its inputs plus what the provider computes. */
export async function resourceState(args: pulumi.runtime.MockResourceArgs): Promise<Record<string, unknown>> {
    const computed = isTlsType(args.type) ? await tlsState(args.type, args.name, plain(args.inputs)) : (computedState[args.type]?.(args) ?? {});
    return { ...args.inputs, ...computed };
}

/**
 * Outputs a provider reports when previewing a create: the inputs, with every value it computes left
 * unknown. Top-level computed outputs are unknown simply by being absent; nested ones are listed here.
 */
export function previewState(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
    if (args.type === "digitalocean:index/kubernetesCluster:KubernetesCluster") {
        world.declared.add(args.inputs.name);
        return { ...args.inputs, nodePool: { ...args.inputs.nodePool, nodes: pulumi.runtime.unknownValue } };
    }
    return args.inputs;
}

/** The signature key Pulumi uses to mark a secret value in serialized inputs. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Whether a recorded input value was sent to the provider as a secret. */
export function sentAsSecret(value: unknown): boolean {
    return typeof value === "object" && value !== null && SECRET_SIG in value;
}

/** A recorded input value with any secret wrappers removed, for comparisons. */
export function plain(value: any): any {
    if (sentAsSecret(value)) {
        return plain(value.value);
    }
    if (Array.isArray(value)) {
        return value.map(plain);
    }
    if (typeof value === "object" && value !== null) {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
    }
    return value;
}
