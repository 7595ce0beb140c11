import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

/** A distribution registry on loopback for the build specs: Debian's `docker-registry` (distribution 2.8). */

/** A TCP port nothing listens on, on loopback. */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer().listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
        server.on("error", reject);
    });
}

/** Waits until something accepts connections on 127.0.0.1:port. */
export async function listening(port: number, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const connected = await new Promise<boolean>((resolve) => {
            const socket = net.connect(port, "127.0.0.1", () => resolve(socket.end() !== undefined)).on("error", () => resolve(false));
        });
        if (connected) return;
        if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
        await new Promise((r) => setTimeout(r, 50));
    }
}

/**
 * Starts a registry keeping its data in `dir`/`name`, with `extra` YAML; resolves once it answers. `env`
 * overrides the configuration as the chart's variables do (REGISTRY_STORAGE=s3 replaces the storage);
 * its REGISTRY_HTTP_ADDR, if any, gives way to this loopback port.
 */
export async function serveRegistry(dir: string, name: string, extra = "", env: NodeJS.ProcessEnv = {}): Promise<{ address: string; child: ChildProcess }> {
    const port = await freePort();
    const config = path.join(dir, `${name}.yml`);
    fs.writeFileSync(
        config,
        `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/${name}\nhttp:\n  addr: 127.0.0.1:${port}\n${extra}`,
    );
    const child = spawn("docker-registry", ["serve", config], { stdio: "ignore", env: { ...process.env, ...env, REGISTRY_HTTP_ADDR: `127.0.0.1:${port}` } });
    await listening(port);
    return { address: `127.0.0.1:${port}`, child };
}

/**
 * A self-signed P-256 certificate for one day, made by openssl, as `<dir>/<name>.crt` and `<dir>/<name>.key`;
 * `subjectAltName` as openssl takes it (`DNS:…,IP:…`). Returns the certificate's PEM.
 */
export function selfSignedCertificate(dir: string, name: string, commonName: string, subjectAltName: string): string {
    const cert = path.join(dir, `${name}.crt`);
    execFileSync(
        "openssl",
        [
            ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"],
            ...["-subj", `/CN=${commonName}`, "-addext", `subjectAltName=${subjectAltName}`, "-keyout", path.join(dir, `${name}.key`), "-out", cert],
        ],
        { stdio: "ignore" },
    );
    return fs.readFileSync(cert, "utf8");
}

/**
 * A one-layer OCI image layout in `dir`, tagged `ref` when given: `layer` as it is stored, with its media
 * type, and the digest of its uncompressed tar (`diffId`).
 */
export function ociLayout(dir: string, layer: { data: Buffer; mediaType: string; diffId: string }, ref?: string): void {
    const blobs = path.join(dir, "blobs", "sha256");
    fs.mkdirSync(blobs, { recursive: true });
    const put = (data: Buffer) => {
        const digest = crypto.createHash("sha256").update(data).digest("hex");
        fs.writeFileSync(path.join(blobs, digest), data);
        return { digest: `sha256:${digest}`, size: data.length };
    };
    const config = put(Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [layer.diffId] } })));
    const manifest = put(
        Buffer.from(
            JSON.stringify({
                schemaVersion: 2,
                mediaType: "application/vnd.oci.image.manifest.v1+json",
                config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
                layers: [{ mediaType: layer.mediaType, ...put(layer.data) }],
            }),
        ),
    );
    const annotations = ref ? { annotations: { "org.opencontainers.image.ref.name": ref } } : {};
    fs.writeFileSync(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    fs.writeFileSync(
        path.join(dir, "index.json"),
        JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, ...annotations }] }),
    );
}
