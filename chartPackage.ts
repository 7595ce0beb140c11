import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { parse as parseYaml } from "yaml";

/**
 * Packages a chart directory of this repository into a Helm chart archive and a one-chart repository
 * index, byte for byte the same on every machine for the same files, so `pulumi preview` shows a
 * difference only when the chart itself changed.
 */

/** A packaged chart and the `index.yaml` of a repository that serves it. */
export interface PackagedChart {
    readonly name: string;
    /** Chart.yaml's version with a digest of the chart's files appended, such as `2.23.0-doks.1.g0123456789ab`. */
    readonly version: string;
    /** `<name>-<version>.tgz`, the archive's name in the repository. */
    readonly fileName: string;
    readonly archive: Buffer;
    /** sha256 of the archive, hex, as `index.yaml` records it. */
    readonly digest: string;
    readonly indexYaml: string;
    /** Files in the chart directory that git does not track, and that were therefore left out. */
    readonly untracked: readonly string[];
}

/**
 * Every date in the archive and index: Workflow v2.23.0's release day. A fixed date keeps the bytes
 * stable; nothing reads it.
 */
const FIXED_TIME = new Date("2021-05-08T00:00:00Z");

/**
 * The chart's files: those git tracks under `dir`, relative paths sorted, so the order never depends on
 * the filesystem. Whatever else lies in the directory (bytecode a test left, an editor's backup, a file
 * not yet added) is left out: it would ship and change the version from one machine to the next. A
 * tracked file is read as the work tree has it, so a preview shows an uncommitted change to the chart.
 */
function chartFiles(dir: string): { tracked: string[]; untracked: string[] } {
    const list = (args: string[]): string[] => {
        try {
            return execFileSync("git", ["ls-files", "-z", ...args], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
                .split("\0")
                .filter(Boolean);
        } catch (error) {
            const reason = ((error as { stderr?: string }).stderr || (error as Error).message).trim();
            throw new Error(
                `cannot list the files git tracks in ${dir} (${reason}). The chart is packaged from its tracked files only, ` +
                    `so that every machine serves the same bytes: run the program from a git clone of the project, with git on the PATH`,
            );
        }
    };
    const tracked = list(["--cached"]).filter((relative) => fs.statSync(path.join(dir, relative), { throwIfNoEntry: false })?.isFile());
    return { tracked: tracked.sort(), untracked: list(["--others", "--exclude-standard"]).sort() };
}

/** One ustar header block for a regular file (POSIX.1-1988 `ustar` format). */
function tarHeader(name: string, size: number): Buffer {
    if (Buffer.byteLength(name) > 100) {
        throw new Error(`chart file path longer than 100 bytes, which a plain ustar header cannot hold: ${name}`);
    }
    const header = Buffer.alloc(512);
    const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, "0") + "\0";
    header.write(name, 0);
    header.write(octal(0o644, 8), 100);
    header.write(octal(0, 8), 108);
    header.write(octal(0, 8), 116);
    header.write(octal(size, 12), 124);
    header.write(octal(FIXED_TIME.getTime() / 1000, 12), 136);
    header.write(" ".repeat(8), 148);
    header.write("0", 156);
    header.write("ustar\u000000", 257);
    const checksum = header.reduce((sum, byte) => sum + byte, 0);
    header.write(checksum.toString(8).padStart(6, "0") + "\0 ", 148);
    return header;
}

function tar(entries: { name: string; content: Buffer }[]): Buffer {
    const blocks = entries.flatMap(({ name, content }) => [tarHeader(name, content.length), content, Buffer.alloc((512 - (content.length % 512)) % 512)]);
    return Buffer.concat([...blocks, Buffer.alloc(1024)]);
}

/**
 * gzip with stored (uncompressed) deflate blocks (RFC 1951 §3.2.4, RFC 1952). Compressed output
 * differs between zlib builds, and Node ships different ones; stored blocks are the same everywhere.
 * A chart is tens of kilobytes, far below the ConfigMap limit either way.
 */
function gzipStored(data: Buffer): Buffer {
    const header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    const blocks: Buffer[] = [];
    for (let offset = 0; offset === 0 || offset < data.length; offset += 0xffff) {
        const chunk = data.subarray(offset, offset + 0xffff);
        const block = Buffer.alloc(5);
        block[0] = offset + 0xffff >= data.length ? 1 : 0;
        block.writeUInt16LE(chunk.length, 1);
        block.writeUInt16LE(~chunk.length & 0xffff, 3);
        blocks.push(block, chunk);
    }
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(zlib.crc32(data), 0);
    trailer.writeUInt32LE(data.length % 2 ** 32, 4);
    return Buffer.concat([header, ...blocks, trailer]);
}

/**
 * Packages the chart in `dir` for a repository at `repositoryUrl`. The version served is Chart.yaml's
 * with a digest of every file appended: helm-operator caches a pulled chart by name and version, so
 * changed templates under an unchanged version would never reach the cluster.
 */
export function packageChart(dir: string, repositoryUrl: string): PackagedChart {
    const { tracked, untracked } = chartFiles(dir);
    const files = tracked.map((relative) => ({ relative, content: fs.readFileSync(path.join(dir, relative)) }));
    const chartYaml = files.find((f) => f.relative === "Chart.yaml")?.content.toString("utf8");
    const metadata = (chartYaml ? parseYaml(chartYaml) : {}) as Record<string, unknown>;
    const field = (key: string) => (typeof metadata[key] === "string" && metadata[key] !== "" ? (metadata[key] as string) : undefined);
    const name = field("name");
    const baseVersion = field("version");
    if (!chartYaml || !name || !baseVersion) {
        throw new Error(`${dir} is not a chart: it needs a Chart.yaml with name and version`);
    }
    const contents = crypto.createHash("sha256");
    for (const { relative, content } of files) {
        contents.update(`${relative}\0${content.length}\0`).update(content);
    }
    // A prerelease identifier that cannot be all digits, so it is valid semver whatever the digest.
    const version = `${baseVersion}${baseVersion.includes("-") ? "." : "-"}g${contents.digest("hex").slice(0, 12)}`;
    const entries = files.map(({ relative, content }) => ({
        name: `${name}/${relative}`,
        content: relative === "Chart.yaml" ? Buffer.from(chartYaml.replace(/^version:.*$/m, `version: ${version}`)) : content,
    }));
    const archive = gzipStored(tar(entries));
    const digest = crypto.createHash("sha256").update(archive).digest("hex");
    const fileName = `${name}-${version}.tgz`;
    const created = FIXED_TIME.toISOString();
    const appVersion = field("appVersion");
    const description = field("description");
    // JSON is YAML, and Helm reads index.yaml with a YAML-to-JSON parser.
    const index = {
        apiVersion: "v1",
        entries: {
            [name]: [
                {
                    apiVersion: field("apiVersion") ?? "v1",
                    name,
                    version,
                    ...(appVersion ? { appVersion } : {}),
                    ...(description ? { description } : {}),
                    created,
                    digest,
                    // Absolute, as every Helm generation resolves it without joining it to the repository URL.
                    urls: [new URL(fileName, repositoryUrl.endsWith("/") ? repositoryUrl : `${repositoryUrl}/`).toString()],
                },
            ],
        },
        generated: created,
    };
    return { name, version, fileName, archive, digest, indexYaml: JSON.stringify(index, null, 2) + "\n", untracked };
}
