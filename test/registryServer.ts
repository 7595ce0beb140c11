import { ChildProcess, execFileSync, spawn } from "node:child_process";
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
