import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";
import { concerns, PROJECT, StackConfig } from "./config";
import { PRICES } from "./pricing";
import { UPSTREAM } from "./catalog";

const BACKUP_LAYOUT = UPSTREAM.workflowObjectStore;

/**
 * What the DigitalOcean account must have before the program declares anything: the zone the platform's
 * names go into, a region that is open for new resources, and the node size there. A wrong value would
 * otherwise cost a cluster's creation, then fail. Each problem names the key, the value, what the
 * account has and the fix; a key whose value the config already refused is not looked up. A look-up the
 * API refuses says so, not that the account lacks the thing.
 */

/** The start of the problem that says DigitalOcean refused the token outright; after it, nothing is looked up. */
const REFUSED = "digitalocean:token is refused by DigitalOcean";

/**
 * The problem a failed look-up of `what` is, when DigitalOcean refused it for the token: 401, the token
 * itself (revoked, expired, mistyped); 403, a scope the token lacks. Undefined for any other failure.
 * godo, which the provider uses, writes an API error as `GET <url>: <status> (request "<id>") <message>`.
 */
export function tokenProblem(error: unknown, what: string, scope: string): string | undefined {
    const message = error instanceof Error ? error.message : String(error);
    const status = /: (401|403) /.exec(message)?.[1];
    const said = /: 40[13] (?:\(request "[^"]*"\) )?([^\n]*)/.exec(message)?.[1]?.trim() ?? "";
    if (status === "401") {
        return (
            `${REFUSED} (401 ${said}) when the program reads ${what}: it is revoked, expired or mistyped. Set a valid one ` +
            `(pulumi config set --secret digitalocean:token <token>); the DIGITALOCEAN_TOKEN variable serves only a stack that sets no digitalocean:token`
        );
    }
    if (status === "403") {
        return (
            `digitalocean:token lacks the scope ${scope} (403 ${said}), so the program cannot read ${what}: give the token ${scope} ` +
            `(docs/configuration.md lists every scope it needs) or full access, then set it (pulumi config set --secret digitalocean:token <token>)`
        );
    }
    return undefined;
}

/** Whether the token was refused outright, so further look-ups would only say so again. */
export function tokenRefused(problems: readonly string[]): boolean {
    return problems.some((problem) => problem.startsWith(REFUSED));
}

/** What a look-up found, and whether DigitalOcean refused it for the token (then `problems` says so). */
interface Looked<T> {
    value: T | undefined;
    refused: boolean;
}

/** A look-up whose refusal for the token becomes a problem; any other failure finds nothing. */
async function lookUp<T>(problems: string[], what: string, scope: string, read: () => Promise<T>): Promise<Looked<T>> {
    try {
        return { value: await read(), refused: false };
    } catch (error) {
        const refused = tokenProblem(error, what, scope);
        if (refused !== undefined) {
            problems.push(refused);
        }
        return { value: undefined, refused: refused !== undefined };
    }
}

export async function accountProblems(config: Pick<StackConfig, "domain" | "region" | "nodeSize">, known: readonly string[]): Promise<string[]> {
    const problems: string[] = [];
    if (tokenRefused(known)) {
        return problems;
    }
    if (!concerns(known, "domain")) {
        const zone = await lookUp(problems, `the zone ${config.domain}`, "domain:read", () => digitalocean.getDomain({ name: config.domain }));
        if (!zone.refused && zone.value === undefined) {
            const zones = await lookUp(problems, "the account's zones", "domain:read", () =>
                digitalocean.getDomains({}).then((r) => r.domains.map((d) => d.name)),
            );
            if (!zones.refused) {
                problems.push(
                    `${PROJECT}:domain ${config.domain} is not a DNS zone of this DigitalOcean account (its zones: ${zones.value?.join(", ") || "none"}): ` +
                        `add it (doctl compute domain create ${config.domain}) and point the domain's NS records at ns1, ns2 and ns3.digitalocean.com, ` +
                        `or name one of those (pulumi config set ${PROJECT}:domain <zone>)`,
                );
            }
        }
    }
    if (!concerns(known, "region") && !tokenRefused(problems)) {
        const region = await lookUp(problems, `the region ${config.region}`, "regions:read", () => digitalocean.getRegion({ slug: config.region }));
        if (!region.refused && (region.value === undefined || !region.value.available)) {
            const open = await lookUp(problems, "DigitalOcean's regions", "regions:read", () =>
                digitalocean.getRegions({ filters: [{ key: "available", values: ["true"] }] }).then((r) => r.regions.map((g) => g.slug).sort()),
            );
            if (!open.refused) {
                const slugs = open.value ?? [];
                problems.push(
                    `${PROJECT}:region ${config.region} is ${region.value === undefined ? "no region of DigitalOcean's" : "closed to new resources"} ` +
                        `(open regions: ${slugs.join(", ") || "unknown"}) (pulumi config set ${PROJECT}:region ${slugs[0] ?? "fra1"})`,
                );
            }
        } else if (region.value !== undefined && !concerns(known, "nodeSize") && !region.value.sizes.includes(config.nodeSize)) {
            const offered = region.value.sizes.filter((size) => Object.hasOwn(PRICES.nodeUsd, size));
            problems.push(
                `${PROJECT}:nodeSize ${config.nodeSize} is not offered in ${config.region} (sizes there with a price here: ${offered.join(", ") || "none"}) ` +
                    `(pulumi config set ${PROJECT}:nodeSize ${offered[0] ?? "<size>"})`,
            );
        }
    }
    return problems;
}

/** What a restore needs of its bucket: the database's credentials kept beside the copy; the password a secret. */
export type RestoreSource = { problems: string[]; credentials?: undefined } | { problems: []; credentials: { user: string; password: pulumi.Output<string> } };

/**
 * The bucket a stack restores from, read once before anything is declared: refused when it is missing,
 * holds no finished base backup of the database (WAL-E lists a base backup by its stop sentinel,
 * `basebackups_005/*_backup_stop_sentinel.json`, wal-e/wal-e wal_e/storage/base.py), whose restore would
 * bring back an empty database, or holds no credentials that database opens with.
 */
export async function readRestoreSource(source: { region: string; bucket: string }): Promise<RestoreSource> {
    const refused = (problem: string) => ({ problems: [problem] });
    const key = `${PROJECT}:restoreFrom ${source.region}/${source.bucket}`;
    const fixIt = `(pulumi config set ${PROJECT}:restoreFrom <region>/<bucket>, a stack's backupBucket output; or pulumi config rm ${PROJECT}:restoreFrom)`;
    const bucket = await digitalocean.getSpacesBucket({ name: source.bucket, region: source.region }).catch((error: Error) => error);
    if (bucket instanceof Error) {
        return refused(
            `${key} is no Spaces bucket this account can read (${bucket.message || "not found"}); the provider reads Spaces with the keys in ` +
                `SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY ${fixIt}`,
        );
    }
    const prefix = `${BACKUP_LAYOUT.databaseBucket}/basebackups_005/`;
    const listed = await digitalocean
        .getSpacesBucketObjects({ bucket: source.bucket, region: source.region, prefix, delimiter: "/" })
        .catch((error: Error) => error);
    if (listed instanceof Error) {
        return refused(`${key} cannot be listed (${listed.message || "no reason given"}) ${fixIt}`);
    }
    if (!listed.keys.some((k) => k.endsWith("_backup_stop_sentinel.json"))) {
        return refused(`${key} holds no finished base backup of the database (nothing under ${prefix}): a restore would start Workflow empty ${fixIt}`);
    }
    const credentials = await restoredDatabaseCredentials(source).catch((error: Error) => error);
    if (credentials instanceof Error) {
        return refused(
            `${key} holds no readable ${CREDENTIALS_OBJECT} (${credentials.message || "not found"}), the user and password its database opens with: ` +
                `the stack that made it must have run this program's copy ${fixIt}`,
        );
    }
    return { problems: [], credentials };
}

/** Where the copy keeps the database's credentials (components/workflowBackup.ts WORKFLOW_BACKUP.credentialsObject). */
export const CREDENTIALS_OBJECT = "hephy-doks/database-creds.json";

/** The database user and password the stack that made a backup kept beside it; the password a secret. */
async function restoredDatabaseCredentials(source: { region: string; bucket: string }): Promise<{ user: string; password: pulumi.Output<string> }> {
    const object = await digitalocean.getSpacesBucketObject({ bucket: source.bucket, region: source.region, key: CREDENTIALS_OBJECT });
    const parsed = JSON.parse(object.body) as { user?: unknown; password?: unknown };
    if (typeof parsed.user !== "string" || typeof parsed.password !== "string" || parsed.user === "" || parsed.password === "") {
        throw new Error("it holds no user and password");
    }
    return { user: parsed.user, password: pulumi.secret(parsed.password) };
}
