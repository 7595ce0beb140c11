import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import * as path from "node:path";

/**
 * A loopback S3 server for tests, with the part of the API rclone's S3 backend uses (path-style: list
 * buckets and objects, V1 and V2, with or without a delimiter, up to max-keys; get, ranged or whole,
 * head, put, server-side copy, delete, batch delete; list object versions; bucket versioning), and the
 * multipart uploads distribution's s3 storage driver writes every blob with (initiate, upload a part,
 * list uploads and parts, complete, abort). Two kinds of storage:
 * - a directory, as minio's FS mode keeps it (the store's root holds a directory per bucket and a file
 *   per object; names that are no valid bucket, such as ext4's lost+found, are no bucket), unversioned:
 *   Workflow's minio on its volume;
 * - memory with versioning on, as a Spaces bucket with versioning enabled: every write and delete keeps
 *   what it replaced as a noncurrent version.
 * Requests must be signed (AWS4-HMAC-SHA256) with one of the server's access keys; the signature itself
 * is not checked. Every request is recorded.
 */

export interface ObjectVersion {
    key: string;
    versionId: string;
    /** Undefined for a delete marker. */
    body?: Buffer;
    meta: Record<string, string>;
    lastModified: Date;
    isLatest: boolean;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const etag = (body: Buffer) => `"${crypto.createHash("md5").update(body).digest("hex")}"`;
const xml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

interface Store {
    buckets(): string[];
    createBucket(bucket: string): void;
    /** Every version of every key, newest first per key; an unversioned store has one per key. */
    versions(bucket: string): ObjectVersion[];
    put(bucket: string, key: string, body: Buffer, meta: Record<string, string>): ObjectVersion;
    delete(bucket: string, key: string): void;
}

class DirectoryStore implements Store {
    constructor(readonly root: string) {}
    buckets(): string[] {
        return fs
            .readdirSync(this.root, { withFileTypes: true })
            .filter((e) => e.isDirectory() && BUCKET.test(e.name))
            .map((e) => e.name)
            .sort();
    }
    createBucket(bucket: string): void {
        fs.mkdirSync(path.join(this.root, bucket), { recursive: true });
    }
    versions(bucket: string): ObjectVersion[] {
        const dir = path.join(this.root, bucket);
        const files = fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
        return files
            .map((e) => {
                const file = path.join(e.parentPath, e.name);
                return {
                    key: path.relative(dir, file).split(path.sep).join("/"),
                    versionId: "null",
                    body: fs.readFileSync(file),
                    meta: {},
                    lastModified: fs.statSync(file).mtime,
                    isLatest: true,
                };
            })
            .sort((a, b) => (a.key < b.key ? -1 : 1));
    }
    put(bucket: string, key: string, body: Buffer): ObjectVersion {
        const file = path.join(this.root, bucket, key);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, body);
        return { key, versionId: "null", body, meta: {}, lastModified: fs.statSync(file).mtime, isLatest: true };
    }
    delete(bucket: string, key: string): void {
        fs.rmSync(path.join(this.root, bucket, key), { force: true });
    }
}

class VersionedStore implements Store {
    private readonly data = new Map<string, Map<string, ObjectVersion[]>>();
    private serial = 0;
    buckets(): string[] {
        return [...this.data.keys()].sort();
    }
    createBucket(bucket: string): void {
        if (!this.data.has(bucket)) this.data.set(bucket, new Map());
    }
    versions(bucket: string): ObjectVersion[] {
        const keys = [...this.data.get(bucket)!.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
        return keys.flatMap(([, list]) => list.map((v, i) => ({ ...v, isLatest: i === 0 })));
    }
    private add(bucket: string, version: Omit<ObjectVersion, "versionId" | "isLatest" | "lastModified">): ObjectVersion {
        const list = this.data.get(bucket)!.get(version.key) ?? [];
        // Distinct, increasing times: rclone compares modification times to the second.
        const stored = { ...version, versionId: `v${String(++this.serial).padStart(6, "0")}`, lastModified: new Date(), isLatest: true };
        this.data.get(bucket)!.set(version.key, [stored, ...list]);
        return stored;
    }
    put(bucket: string, key: string, body: Buffer, meta: Record<string, string>): ObjectVersion {
        return this.add(bucket, { key, body, meta });
    }
    delete(bucket: string, key: string): void {
        const latest = this.data.get(bucket)!.get(key)?.[0];
        if (latest && latest.body !== undefined) this.add(bucket, { key, meta: {} });
    }
}

/** The current objects of a bucket: the newest version of each key, unless that is a delete marker. */
function current(store: Store, bucket: string): ObjectVersion[] {
    return store.versions(bucket).filter((v) => v.isLatest && v.body !== undefined);
}

/** An aws-chunked body (SigV4 streaming) without its chunk headers. */
function unchunk(body: Buffer): Buffer {
    const parts: Buffer[] = [];
    let at = 0;
    while (at < body.length) {
        const eol = body.indexOf("\r\n", at);
        const size = parseInt(body.subarray(at, eol).toString().split(";")[0], 16);
        if (!(size > 0)) break;
        parts.push(body.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
    }
    return Buffer.concat(parts);
}

export interface Request {
    method: string;
    path: string;
    query: string;
}

/** A multipart upload in progress: its parts by number, not yet an object. */
interface Upload {
    bucket: string;
    key: string;
    parts: Map<number, Buffer>;
    initiated: Date;
}

export class S3StandIn {
    readonly requests: Request[] = [];
    private server?: http.Server;
    private readonly store: Store;
    private readonly uploads = new Map<string, Upload>();
    private uploadSerial = 0;

    /**
     * `directory`: minio's FS layout in that directory, unversioned; otherwise memory, versioned. `host`:
     * the name clients address it by, buckets as its subdomains (virtual-host style), through the
     * stand-in as their HTTP proxy; without it, path style on its loopback address.
     */
    constructor(
        /** The access keys whose requests it answers. */
        readonly accessKeys: readonly string[],
        storage: { directory: string } | { versioned: true },
        readonly host?: string,
    ) {
        this.store = "directory" in storage ? new DirectoryStore(storage.directory) : new VersionedStore();
    }

    get endpoint(): string {
        return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    }

    async start(): Promise<this> {
        this.server = http.createServer((req, res) => {
            const chunks: Buffer[] = [];
            req.on("data", (c: Buffer) => chunks.push(c));
            req.on("end", () => {
                try {
                    this.handle(req, Buffer.concat(chunks), res);
                } catch (error) {
                    res.writeHead(500).end(String(error));
                }
            });
        });
        await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
        return this;
    }

    stop(): Promise<void> {
        return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    }

    createBucket(bucket: string): void {
        this.store.createBucket(bucket);
    }

    buckets(): string[] {
        return this.store.buckets();
    }

    /** Writes an object as a client other than the one under test would. */
    put(bucket: string, key: string, body: string): void {
        this.store.put(bucket, key, Buffer.from(body), {});
    }

    /** Every version of every key of `bucket`, newest first per key, delete markers included. */
    versions(bucket: string): ObjectVersion[] {
        return this.store.versions(bucket);
    }

    /** The current objects of `bucket`, by key, as text. */
    objects(bucket: string): Record<string, string> {
        return Object.fromEntries(current(this.store, bucket).map((v) => [v.key, v.body!.toString()]));
    }

    private handle(req: http.IncomingMessage, raw: Buffer, res: http.ServerResponse): void {
        const url = new URL(req.url!, `http://${req.headers.host}`);
        const method = req.method!;
        // Virtual-host style, as rclone addresses Spaces: the bucket is the host's first label.
        const hostBucket = this.host && url.hostname.endsWith(`.${this.host}`) ? url.hostname.slice(0, -this.host.length - 1) : undefined;
        this.requests.push({ method, path: hostBucket ? `/${hostBucket}${url.pathname}` : url.pathname, query: url.search });
        const credential = /Credential=([^/]+)\//.exec(req.headers.authorization ?? "")?.[1];
        const send = (status: number, body = "", headers: Record<string, string> = {}) => {
            res.writeHead(status, { "Content-Type": "application/xml", ...headers });
            res.end(method === "HEAD" ? undefined : body);
        };
        const error = (status: number, code: string) => send(status, `<?xml version="1.0"?><Error><Code>${code}</Code></Error>`);
        if (!this.accessKeys.includes(credential ?? "")) {
            return error(403, "InvalidAccessKeyId");
        }
        const [bucket, ...rest] = (hostBucket ? [hostBucket, ...url.pathname.slice(1).split("/")] : url.pathname.slice(1).split("/")).map(decodeURIComponent);
        const key = rest.join("/");
        const q = url.searchParams;
        if (!bucket) {
            const list = this.store.buckets().map((b) => `<Bucket><Name>${b}</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>`);
            return send(200, `<?xml version="1.0"?><ListAllMyBucketsResult><Buckets>${list.join("")}</Buckets></ListAllMyBucketsResult>`);
        }
        const exists = this.store.buckets().includes(bucket);
        if (!key) {
            if (method === "PUT") {
                this.store.createBucket(bucket);
                return send(200);
            }
            if (!exists) return error(404, "NoSuchBucket");
            if (method === "HEAD") return send(200);
            if (method === "POST" && q.has("delete")) {
                const keys = [...raw.toString().matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
                keys.forEach((k) => this.store.delete(bucket, k));
                return send(200, `<?xml version="1.0"?><DeleteResult>${keys.map((k) => `<Deleted><Key>${xml(k)}</Key></Deleted>`).join("")}</DeleteResult>`);
            }
            if (q.has("versioning")) {
                const on = this.store instanceof VersionedStore ? "<Status>Enabled</Status>" : "";
                return send(200, `<?xml version="1.0"?><VersioningConfiguration>${on}</VersioningConfiguration>`);
            }
            if (q.has("location")) return send(200, `<?xml version="1.0"?><LocationConstraint></LocationConstraint>`);
            if (q.has("uploads")) {
                const uploads = [...this.uploads.entries()].filter(([, u]) => u.bucket === bucket && u.key.startsWith(q.get("prefix") ?? ""));
                const items = uploads.map(
                    ([id, u]) => `<Upload><Key>${xml(u.key)}</Key><UploadId>${id}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`,
                );
                return send(
                    200,
                    `<?xml version="1.0"?><ListMultipartUploadsResult><Bucket>${bucket}</Bucket><IsTruncated>false</IsTruncated>${items.join("")}</ListMultipartUploadsResult>`,
                );
            }
            return this.list(bucket, q, send);
        }
        if (!exists) return error(404, "NoSuchBucket");
        const streaming = String(req.headers["x-amz-content-sha256"] ?? "").startsWith("STREAMING-");
        const body = streaming ? unchunk(raw) : raw;
        if (method === "POST" && q.has("uploads")) {
            const id = `upload-${++this.uploadSerial}`;
            this.uploads.set(id, { bucket, key, parts: new Map(), initiated: new Date() });
            return send(
                200,
                `<?xml version="1.0"?><InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${xml(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
            );
        }
        const uploadId = q.get("uploadId");
        if (uploadId !== null) {
            const upload = this.uploads.get(uploadId);
            if (!upload || upload.bucket !== bucket || upload.key !== key) return error(404, "NoSuchUpload");
            if (method === "PUT") {
                upload.parts.set(Number(q.get("partNumber")), body);
                return send(200, "", { ETag: etag(body) });
            }
            if (method === "GET") {
                const parts = [...upload.parts.entries()].sort(([a], [b]) => a - b);
                const items = parts.map(
                    ([n, part]) =>
                        `<Part><PartNumber>${n}</PartNumber><ETag>${etag(part)}</ETag><Size>${part.length}</Size><LastModified>${upload.initiated.toISOString()}</LastModified></Part>`,
                );
                return send(
                    200,
                    `<?xml version="1.0"?><ListPartsResult><Bucket>${bucket}</Bucket><Key>${xml(key)}</Key><UploadId>${uploadId}</UploadId><IsTruncated>false</IsTruncated>${items.join("")}</ListPartsResult>`,
                );
            }
            this.uploads.delete(uploadId);
            if (method === "DELETE") return send(204);
            // Complete: the parts the request names, in its order.
            const named = [...raw.toString().matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) => upload.parts.get(Number(m[1])));
            if (named.some((part) => part === undefined)) return error(400, "InvalidPart");
            const stored = this.store.put(bucket, key, Buffer.concat(named as Buffer[]), {});
            return send(
                200,
                `<?xml version="1.0"?><CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${xml(key)}</Key><ETag>${etag(stored.body!)}</ETag></CompleteMultipartUploadResult>`,
            );
        }
        if (method === "PUT") {
            const copySource = req.headers["x-amz-copy-source"] as string | undefined;
            if (copySource) {
                const [sourceBucket, ...sourceKey] = decodeURIComponent(copySource.replace(/^\//, "")).split("/");
                const source = current(this.store, sourceBucket).find((v) => v.key === sourceKey.join("/"));
                if (!source) return error(404, "NoSuchKey");
                const replace = req.headers["x-amz-metadata-directive"] === "REPLACE";
                const stored = this.store.put(bucket, key, source.body!, replace ? metaOf(req) : source.meta);
                return send(200, `<?xml version="1.0"?><CopyObjectResult><ETag>${etag(stored.body!)}</ETag></CopyObjectResult>`);
            }
            const stored = this.store.put(bucket, key, body, metaOf(req));
            return send(200, "", { ETag: etag(body), ...(stored.versionId !== "null" ? { "x-amz-version-id": stored.versionId } : {}) });
        }
        if (method === "DELETE") {
            this.store.delete(bucket, key);
            return send(204);
        }
        const versionId = q.get("versionId");
        const found = versionId
            ? this.store.versions(bucket).find((v) => v.key === key && v.versionId === versionId)
            : current(this.store, bucket).find((v) => v.key === key);
        if (!found || found.body === undefined) return error(404, "NoSuchKey");
        // `bytes=<first>-` or `bytes=<first>-<last>`, as a reader that starts part way asks.
        const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ""));
        const first = range ? Number(range[1]) : 0;
        if (range && first >= found.body.length) return error(416, "InvalidRange");
        const content = range ? found.body.subarray(first, range[2] ? Number(range[2]) + 1 : undefined) : found.body;
        res.writeHead(range ? 206 : 200, {
            "Content-Type": "application/octet-stream",
            "Content-Length": String(content.length),
            ...(range ? { "Content-Range": `bytes ${first}-${first + content.length - 1}/${found.body.length}` } : {}),
            ETag: etag(found.body),
            "Last-Modified": found.lastModified.toUTCString(),
            "x-amz-version-id": found.versionId,
            ...Object.fromEntries(Object.entries(found.meta).map(([k, v]) => [`x-amz-meta-${k}`, v])),
        });
        res.end(method === "HEAD" ? undefined : content);
    }

    private list(bucket: string, q: URLSearchParams, send: (status: number, body: string) => void): void {
        const prefix = q.get("prefix") ?? "";
        // rclone asks for keys URL-encoded (encoding-type=url), as AWS gives them, and decodes them.
        const encoded = q.get("encoding-type") === "url";
        const name = (key: string) => (encoded ? key.split("/").map(encodeURIComponent).join("/") : xml(key));
        const delimiter = q.get("delimiter") ?? "";
        const withVersions = q.has("versions");
        const all = withVersions ? this.store.versions(bucket) : current(this.store, bucket);
        const matching = all.filter((v) => v.key.startsWith(prefix));
        const prefixes = new Set<string>();
        const unlimited = matching.filter((v) => {
            const cut = delimiter ? v.key.indexOf(delimiter, prefix.length) : -1;
            if (cut >= 0) {
                prefixes.add(v.key.slice(0, cut + delimiter.length));
                return false;
            }
            return true;
        });
        // Only a client's max-keys below what it holds cuts the listing (distribution's Stat asks for 1).
        const maxKeys = Number(q.get("max-keys") ?? Infinity);
        const entries = unlimited.slice(0, maxKeys);
        const truncated = unlimited.length > entries.length;
        const common = [...prefixes].map((p) => `<CommonPrefixes><Prefix>${name(p)}</Prefix></CommonPrefixes>`).join("");
        const time = (v: ObjectVersion) => v.lastModified.toISOString();
        if (withVersions) {
            const items = entries.map((v) =>
                v.body === undefined
                    ? `<DeleteMarker><Key>${name(v.key)}</Key><VersionId>${v.versionId}</VersionId><IsLatest>${v.isLatest}</IsLatest><LastModified>${time(v)}</LastModified></DeleteMarker>`
                    : `<Version><Key>${name(v.key)}</Key><VersionId>${v.versionId}</VersionId><IsLatest>${v.isLatest}</IsLatest><LastModified>${time(v)}</LastModified><ETag>${etag(v.body)}</ETag><Size>${v.body.length}</Size><StorageClass>STANDARD</StorageClass></Version>`,
            );
            return send(
                200,
                `<?xml version="1.0"?><ListVersionsResult><Name>${bucket}</Name><Prefix>${name(prefix)}</Prefix>${encoded ? "<EncodingType>url</EncodingType>" : ""}<IsTruncated>false</IsTruncated>${items.join("")}${common}</ListVersionsResult>`,
            );
        }
        const contents = entries
            .map(
                (v) =>
                    `<Contents><Key>${name(v.key)}</Key><LastModified>${time(v)}</LastModified><ETag>${etag(v.body!)}</ETag><Size>${v.body!.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
            )
            .join("");
        const v2 = q.get("list-type") === "2" ? `<KeyCount>${entries.length + prefixes.size}</KeyCount>` : "";
        send(
            200,
            `<?xml version="1.0"?><ListBucketResult><Name>${bucket}</Name><Prefix>${name(prefix)}</Prefix>${encoded ? "<EncodingType>url</EncodingType>" : ""}${v2}<IsTruncated>${truncated}</IsTruncated>${truncated ? `<NextMarker>${name(entries[entries.length - 1].key)}</NextMarker>` : ""}${contents}${common}</ListBucketResult>`,
        );
    }
}

function metaOf(req: http.IncomingMessage): Record<string, string> {
    return Object.fromEntries(
        Object.entries(req.headers)
            .filter(([k]) => k.startsWith("x-amz-meta-"))
            .map(([k, v]) => [k.slice("x-amz-meta-".length), String(v)]),
    );
}
