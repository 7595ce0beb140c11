import * as net from "node:net";
import * as pulumi from "@pulumi/pulumi";

/** The Pulumi project name, which is also the namespace of every config key this program reads. */
export const PROJECT = "hephy-doks";

/**
 * Every default of the program lives here. `Pulumi.yaml` declares the same defaults for the CLI;
 * a test keeps the two in step.
 */
export const DEFAULTS = {
    region: "fra1",
    kubernetesVersion: "latest",
    nodeSize: "s-2vcpu-4gb",
    nodeCount: 3,
    /** Empty means "use the stack name". */
    platformSubdomain: "",
    builderSshSources: ["0.0.0.0/0", "::/0"] as readonly string[],
    protect: false,
    /** DigitalOcean's HA control plane costs extra and cannot be turned off once on (see PRICES). */
    haControlPlane: false,
    /** ECDSA P-256: small, fast, and accepted by Tiller's and helm-operator's Go TLS stacks. */
    tlsKeyAlgorithm: "ECDSA-P256",
    /** The Tiller CA lives ten years; the leaves one year and are renewed by the first `pulumi up` in their last 30 days. */
    tlsCaValidityHours: 87600,
    tlsCertValidityHours: 8760,
    tlsEarlyRenewalHours: 720,
    /** Tiller's release history bound; Helm 2 defaults to 0 (unbounded). */
    tillerHistoryMax: 10,
    workflowEnabled: true,
    /** DigitalOcean applies patch releases (security fixes) itself, in the maintenance window. */
    autoUpgrade: true,
    /** A weekend night in UTC; DigitalOcean's window lasts about four hours. */
    maintenanceDay: "sunday" as MaintenanceDay,
    maintenanceStartTime: "03:00",
    /** JSON object of per-release overrides of the catalog below; empty means the catalog as is. */
    releases: "{}",
} as const;

/** Pinned upstream artefacts outside the release catalog, with where each fact comes from. */
export const UPSTREAM = {
    /** helm/helm v2.17.0 `cmd/helm/installer/install.go` (defaultImage ghcr.io/helm/tiller); 2.17.0 is the last Helm 2 release. */
    tillerImage: "ghcr.io/helm/tiller:v2.17.0",
    /** fluxcd/helm-operator chart-1.4.4 `values.yaml` image; 1.4.4 (2022-09-01) is the last release, the project is archived. */
    helmOperatorImage: "docker.io/fluxcd/helm-operator:1.4.4",
    /** The HelmRelease CRD (helm.fluxcd.io/v1, apiextensions.k8s.io/v1) of the same tag, as the chart README applies it. */
    helmOperatorCrdUrl: "https://raw.githubusercontent.com/fluxcd/helm-operator/v1.4.4/deploy/crds.yaml",
    /** The name helm-operator verifies on Tiller's certificate: the article's HELM_TLS_HOSTNAME. */
    tillerHostname: "tiller-deploy.kube-system",
    /** Names on Tiller's certificate: its Service as dialled from the cluster, and 127.0.0.1 for `helm --tls` through a port-forward. */
    tillerDnsNames: ["tiller-deploy", "tiller-deploy.kube-system", "tiller-deploy.kube-system.svc", "localhost"],
    tillerIpAddresses: ["127.0.0.1"],
    /**
     * Workflow's builder: the Service `git push` reaches through the ingress controller's TCP forward,
     * in Workflow's namespace (charts/hephy-workflow templates/builder.yaml, after teamhephy/builder
     * v2.13.7 charts/builder/templates/builder-service.yaml; the article's `deis/deis-builder:2222`).
     */
    builder: { service: "deis-builder", port: 2222 },
    /** Name of the Service that serves the project's own charts to helm-operator (components/chartServer.ts). */
    chartServerName: "hephy-doks-charts",
    /**
     * nginx/docker-nginx-unprivileged update.sh @ 8b44229 (2026-07-15): stable 1.30.4, past CVE-2026-42945
     * (fixed in 1.30.1); uid 101, port 8080, pid and temp paths in /tmp (stable/alpine-slim/Dockerfile).
     */
    chartServerImage: "docker.io/nginxinc/nginx-unprivileged:1.30.4-alpine-slim",
    /**
     * Chart repositories helm-operator knows, as the article's `configureRepositories`: hephy for
     * Workflow's dependencies, and stable at its new home (helm/helm v2.17.0 commit 62d6e40 retired
     * storage.googleapis.com).
     */
    chartRepositories: [
        { name: "hephy", url: "https://charts.teamhephy.com/" },
        { name: "stable", url: "https://charts.helm.sh/stable" },
    ],
} as const;

/** A Kubernetes minor version range, inclusive: `{ min: "1.31", max: "1.35" }`. */
export interface KubernetesRange {
    readonly min: string;
    readonly max: string;
}

/** A chart in a Helm repository, as `spec.chart` of a HelmRelease names it. */
export interface RepositoryChart {
    readonly repository: string;
    readonly name: string;
    readonly version: string;
}

/**
 * Where helm-operator fetches a chart: a Helm repository, a git repository (`spec.chart.git`), or a
 * chart of this project (`bundled`, a directory relative to the project root) that the program packages
 * and serves to helm-operator from inside the cluster.
 */
export type ChartSource =
    | RepositoryChart
    | { readonly git: string; readonly ref: string; readonly path: string }
    | { readonly bundled: string };

/** One platform release: what to install, with which Helm, where it is known to work, and why we believe so. */
export interface ReleaseEntry {
    /** Helm release name and HelmRelease name (the article's). */
    readonly releaseName: string;
    readonly namespace: string;
    readonly chart: ChartSource;
    /**
     * sha256 of the chart archive a repository chart is pinned to, as the repository's index.yaml
     * records it; `test/fixtures/charts/` holds that archive, and npm test renders it.
     */
    readonly archiveSha256?: string;
    readonly helmVersion: "v2" | "v3";
    /** Kubernetes minors the chart (as configured here) installs and works on. */
    readonly kubernetes: KubernetesRange;
    /** Values merged over the program's own for this release (overrides only). */
    readonly values?: Readonly<Record<string, unknown>>;
    /** Where each fact above comes from. */
    readonly sources: readonly string[];
}

export type ReleaseKey = "ingress" | "certManager" | "workflow";

/**
 * The version catalog: every chart the platform installs, pinned to an exact version (helm-operator
 * cuts a new revision on every sync for a range, fluxcd/helm-operator#469). Overridable per stack with
 * `hephy-doks:releases`.
 */
export const CATALOG: Readonly<Record<ReleaseKey, ReleaseEntry>> = {
    // The front door: HAProxy's controller replaces ingress-nginx, which SIG Network retired in March
    // 2026 (docs/ingress.md has the comparison and the cut-over of running stacks).
    ingress: {
        releaseName: "ingress",
        namespace: "haproxy-ingress",
        chart: { repository: "https://haproxytech.github.io/helm-charts", name: "kubernetes-ingress", version: "1.52.1" },
        archiveSha256: "862ddb3343143289a47d0f749a284b32536495c689a25ae354bbc1ed68851bde",
        helmVersion: "v3",
        kubernetes: { min: "1.33", max: "1.37" },
        sources: [
            "haproxytech/helm-charts kubernetes-ingress/Chart.yaml @ kubernetes-ingress-1.52.1 (controller 3.2.12, kubeVersion >=1.23.0-0); gh-pages index.yaml digest",
            "haproxytech/kubernetes-ingress .gitlab/e2e_k8s.yml @ v3.2 9e4b6b93: end-to-end tests on Kubernetes 1.34.0; 1.33 and 1.35-1.37 by inference: it watches networking.k8s.io/v1 Ingresses and IngressClasses, discovery.k8s.io/v1 EndpointSlices and core v1 objects, all served through 1.37",
            "rendered by Helm 3.8.1 (Go 1.17) for every minor of this range in npm test (test/releaseCharts.spec.ts)",
            "replaces ingress-nginx: retired by SIG Network (kubernetes.io/blog/2025/11/11/ingress-nginx-retirement), repository archived 2026-03-24, last release 4.15.1 ships NGINX 1.27.1, affected by CVE-2026-42945",
        ],
    },
    certManager: {
        releaseName: "cert-manager",
        namespace: "cert-manager",
        chart: { repository: "https://charts.jetstack.io", name: "cert-manager", version: "v1.21.1" },
        // As two third-party repositories that vendor this archive record it; charts.jetstack.io could not
        // be reached to confirm (test/fixtures/charts/README.md).
        archiveSha256: "c27101f3f3e2349fb4a9e704316105bf7b52ad73b8c8257d3498ef7f2f6a4adc",
        helmVersion: "v3",
        kubernetes: { min: "1.33", max: "1.36" },
        sources: [
            "cert-manager/cert-manager tag v1.21.1 (2026-07-29), deploy/charts/cert-manager/Chart.yaml (apiVersion v2 since v1.15.0)",
            "cert-manager.io docs releases/: 1.21 supports Kubernetes 1.33-1.36",
        ],
    },
    workflow: {
        releaseName: "hephy",
        namespace: "deis",
        // The project's own chart for today's Kubernetes (charts/hephy-workflow, docs/workflow.md): no
        // released Workflow chart installs on Kubernetes 1.25 or newer.
        chart: { bundled: "charts/hephy-workflow" },
        // Through Tiller, as the article installs Workflow (chart apiVersion v1).
        helmVersion: "v2",
        kubernetes: { min: "1.33", max: "1.37" },
        sources: [
            "charts/hephy-workflow: only apps/v1, rbac.authorization.k8s.io/v1, networking.k8s.io/v1 and core v1 objects, rendered by Helm 3.8.1 for every minor of this range in npm test (test/workflowChart.spec.ts)",
            "charts/hephy-workflow/files/ingress.py: the controller's Ingress client speaks networking.k8s.io/v1 (served since Kubernetes 1.19)",
            "teamhephy/workflow tag v2.23.0 (2021-05-08) is the last release; its images, pinned there, are the ones the chart runs",
        ],
    },
};

/**
 * Every chart repository helm-operator is told about: the article's two, and each repository an enabled
 * release pulls from. A release whose repository is listed reads only that repository's index; one whose
 * repository is not listed makes Helm read the cached index of every listed repository and fail when
 * one is missing, as it is on a fresh pod for any repository that is down (fluxcd/helm-operator v1.4.4
 * pkg/helm/v2/pull.go and v3/pull.go `PullWithRepoURL`; helm v2.17.0 and v3.7.0
 * pkg/downloader/chart_downloader.go `scanReposForURL`).
 */
export function chartRepositories(config: Pick<StackConfig, "releases" | "workflowEnabled">, bundledRepository: string): { name: string; url: string }[] {
    const listed: { name: string; url: string }[] = UPSTREAM.chartRepositories.map((r) => ({ ...r }));
    const normal = (url: string) => (url.endsWith("/") ? url : `${url}/`);
    for (const key of enabledReleases(config)) {
        const chart = config.releases[key].chart;
        const url = "bundled" in chart ? bundledRepository : "repository" in chart ? chart.repository : undefined;
        if (url !== undefined && !listed.some((r) => normal(r.url) === normal(url))) {
            listed.push({ name: key.toLowerCase(), url });
        }
    }
    return listed;
}

/** The releases a stack installs: the whole catalog, less Workflow when it is off. */
export function enabledReleases(config: Pick<StackConfig, "releases" | "workflowEnabled">): ReleaseKey[] {
    return (Object.keys(config.releases) as ReleaseKey[]).filter((k) => k !== "workflow" || config.workflowEnabled);
}

/** The CRD manifest cert-manager publishes with each release (cert-manager.io docs, installation/helm). */
export function certManagerCrdUrl(entry: ReleaseEntry): string {
    if ("bundled" in entry.chart) {
        throw new Error("cert-manager's CRDs come from its release; a bundled cert-manager chart has no release to take them from");
    }
    const version = "version" in entry.chart ? entry.chart.version : entry.chart.ref;
    return `https://github.com/cert-manager/cert-manager/releases/download/${version}/cert-manager.crds.yaml`;
}

/** The private-key algorithms `hephy-doks:tlsKeyAlgorithm` accepts, as @pulumi/tls `PrivateKey` inputs. */
export const KEY_ALGORITHMS = {
    "ECDSA-P256": { algorithm: "ECDSA", ecdsaCurve: "P256" },
    "ECDSA-P384": { algorithm: "ECDSA", ecdsaCurve: "P384" },
    "RSA-2048": { algorithm: "RSA", rsaBits: 2048 },
    "RSA-4096": { algorithm: "RSA", rsaBits: 4096 },
} as const;
export type KeyAlgorithm = keyof typeof KEY_ALGORITHMS;

/** The days DigitalOcean's maintenance policy accepts (`maintenance_policy.day`). */
export const MAINTENANCE_DAYS = ["any", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] as const;
export type MaintenanceDay = (typeof MAINTENANCE_DAYS)[number];

/** Values the program fixes rather than reads from config. */
export const FIXED = {
    /**
     * Short, so resolvers drop a record within a minute of the `pulumi up` that changes it. The records
     * change only at a `pulumi up`: a node replaced between runs keeps its stale record until the next one.
     */
    dnsTtlSeconds: 60,
    /**
     * A kubeconfig credential that expires within this many hours is renewed before the run uses it:
     * longer than the longest run (the cluster, then three releases of up to 15 minutes each).
     */
    credentialRenewalHours: 24,
    /** Inbound sources for HTTP and HTTPS: everyone, over IPv4 and IPv6. */
    publicSources: ["0.0.0.0/0", "::/0"] as readonly string[],
    nodeCountMin: 1,
    nodeCountMax: 50,
} as const;

/**
 * Monthly list prices in USD. Worker nodes are billed at droplet prices and the HA control plane at a
 * flat rate (https://docs.digitalocean.com/products/kubernetes/details/pricing/). Droplet prices are
 * DigitalOcean's `GET /v2/sizes` `price_monthly`, as recorded daily in
 * sergeykuzmich/terraform-digitalocean-variables `do_sizes.tf` (commit 97e31f6, 2026-08-21), unchanged
 * since DigitalOcean's repricing of 2022-07-01. To use another size, add its `price_monthly` here.
 */
export const PRICES = {
    asOf: "2026-08-21",
    haControlPlaneUsd: 40,
    nodeUsd: {
        "s-1vcpu-2gb": 12,
        "s-2vcpu-2gb": 18,
        "s-2vcpu-4gb": 24,
        "s-4vcpu-8gb": 48,
        "s-8vcpu-16gb": 96,
        "s-2vcpu-4gb-amd": 28,
        "s-4vcpu-8gb-amd": 56,
        "s-2vcpu-4gb-intel": 28,
        "g-2vcpu-8gb": 63,
        "g-4vcpu-16gb": 126,
        "c-2": 42,
        "c-4": 84,
        "m-2vcpu-16gb": 84,
    } as Readonly<Record<string, number>>,
} as const;

/** What a stack costs a month at list prices. */
export interface CostEstimate {
    readonly monthlyUsd: number;
    /** One line that shows the arithmetic and the date of the prices. */
    readonly summary: string;
}

/**
 * The monthly cost of what the program creates: the nodes, the HA control plane if on, and no load
 * balancer (the program creates none and its admission policy refuses them). Bandwidth overage and
 * volumes that workloads claim are usage-based and not included; DNS records are free.
 */
export function estimateMonthlyCost(config: Pick<StackConfig, "nodeSize" | "nodeCount" | "haControlPlane">): CostEstimate {
    const nodeUsd = PRICES.nodeUsd[config.nodeSize];
    const haUsd = config.haControlPlane ? PRICES.haControlPlaneUsd : 0;
    const monthlyUsd = config.nodeCount * nodeUsd + haUsd;
    return {
        monthlyUsd,
        summary:
            `$${monthlyUsd}/month: ${config.nodeCount} x ${config.nodeSize} at $${nodeUsd}, ` +
            `HA control plane $${haUsd}, 0 LoadBalancers $0 (DigitalOcean list prices of ${PRICES.asOf}; bandwidth overage and volumes not included)`,
    };
}

/** The validated, defaulted configuration of one stack. */
export interface StackConfig {
    readonly stack: string;
    readonly region: string;
    /** `undefined` means `latest`; otherwise a minor such as `1.33` or a DOKS slug (kubernetesVersion.ts has the rules). */
    readonly kubernetesVersionPrefix: string | undefined;
    readonly nodeSize: string;
    readonly nodeCount: number;
    readonly domain: string;
    readonly platformSubdomain: string;
    /** `<platformSubdomain>.<domain>`: Workflow's `controller.platform_domain`. */
    readonly platformDomain: string;
    readonly acmeEmail: string;
    readonly builderSshSources: readonly string[];
    readonly protect: boolean;
    /** Whether the cluster gets DigitalOcean's highly available control plane. */
    readonly haControlPlane: boolean;
    /** The stack name made safe for DigitalOcean names and tags; prefixes our resource names. */
    readonly namePrefix: string;
    /** Our own tag on the worker droplets, which the firewall targets. */
    readonly workerTag: string;
    readonly dnsTtlSeconds: number;
    /** The cluster's name in DigitalOcean: `hephy-doks-<stack>`. */
    readonly clusterName: string;
    /** Whether DigitalOcean applies patch releases itself. */
    readonly autoUpgrade: boolean;
    /** DigitalOcean's weekly maintenance window (UTC). */
    readonly maintenance: { readonly day: MaintenanceDay; readonly startTime: string };
    readonly tls: TlsSettings;
    readonly tillerHistoryMax: number;
    /** Whether to install Hephy Workflow itself (the platform underneath is installed either way). */
    readonly workflowEnabled: boolean;
    /** The catalog with this stack's overrides applied. */
    readonly releases: Readonly<Record<ReleaseKey, ReleaseEntry>>;
    /** Helm values that carry secrets, per release, from the encrypted `releaseSecretValues`; never sent in clear. */
    readonly releaseSecretValues: Readonly<Partial<Record<ReleaseKey, Readonly<Record<string, unknown>>>>>;
}

/** How the Tiller PKI is generated. */
export interface TlsSettings {
    readonly keyAlgorithm: KeyAlgorithm;
    readonly caValidityHours: number;
    readonly certValidityHours: number;
    readonly earlyRenewalHours: number;
}

/** Reads one raw config value of this project's namespace, as the Pulumi engine passes it (a string). */
export type ConfigReader = (key: string) => string | undefined;

/** Every key this program reads, so a typo such as `nodecount` is reported instead of ignored. */
export const CONFIG_KEYS = [
    "region",
    "kubernetesVersion",
    "nodeSize",
    "nodeCount",
    "domain",
    "platformSubdomain",
    "acmeEmail",
    "builderSshSources",
    "protect",
    "haControlPlane",
    "tlsKeyAlgorithm",
    "tlsCaValidityHours",
    "tlsCertValidityHours",
    "tlsEarlyRenewalHours",
    "tillerHistoryMax",
    "workflowEnabled",
    "autoUpgrade",
    "maintenanceDay",
    "maintenanceStartTime",
    "releases",
    "releaseSecretValues",
] as const;

/** A stack configuration the program refuses, with every problem found. */
export class ConfigError extends pulumi.RunError {
    constructor(
        stack: string,
        readonly problems: readonly string[],
        headline = `The configuration of stack "${stack}" has ${problems.length} problem(s):`,
    ) {
        super(`${headline}\n` + problems.map((p) => `  - ${p}`).join("\n"));
        this.name = new.target.name;
    }
}

const REGION = /^[a-z]+[0-9]$/;
const KUBERNETES_VERSION = /^[0-9]+\.[0-9]+(\.[0-9]+(-do\.[0-9]+)?)?$/;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** The command that fixes a key, quoted in error messages. */
function fix(key: string, example: string): string {
    return `(pulumi config set ${PROJECT}:${key} ${example})`;
}

/**
 * The command that sets a list key, one `--path` item at a time: `pulumi config set KEY '["…"]'` stores a
 * string, which the CLI refuses for a key Pulumi.yaml declares `type: array`.
 */
export function fixList(key: string, items: readonly string[]): string {
    return "(" + items.map((item, i) => `pulumi config set --path '${PROJECT}:${key}[${i}]' ${item}`).join(" && ") + ")";
}

function quote(raw: string): string {
    return JSON.stringify(raw);
}

export function isDomainName(value: string): boolean {
    const labels = value.split(".");
    return (
        value.length <= 253 &&
        labels.length >= 2 &&
        labels.every((l) => DNS_LABEL.test(l)) &&
        /^[a-z]{2,63}$/.test(labels[labels.length - 1])
    );
}

/** True for an IPv4 or IPv6 network in CIDR notation, such as `203.0.113.0/24` or `2001:db8::/32`. */
export function isCidr(value: string): boolean {
    const slash = value.indexOf("/");
    if (slash < 0 || slash !== value.lastIndexOf("/")) {
        return false;
    }
    const address = value.slice(0, slash);
    const prefix = value.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(prefix)) {
        return false;
    }
    const bits = net.isIPv4(address) ? 32 : net.isIPv6(address) ? 128 : -1;
    return bits > 0 && Number(prefix) <= bits;
}

/** Turns a stack name into something DigitalOcean accepts in names and tags. */
function nameSafe(value: string): string {
    return value.toLowerCase().replace(/[^a-z0-9-]/g, "-");
}

/**
 * Validates and defaults the raw stack configuration. Pure: it reads only `read`, and throws one
 * `ConfigError` listing every problem so the user fixes them all in one go, before any resource exists.
 */
export function parseConfig(read: ConfigReader, stack: string, presentKeys: readonly string[] = []): StackConfig {
    const problems: string[] = [];
    const raw = (key: string): string | undefined => {
        const value = read(key);
        return value === undefined ? undefined : value.trim();
    };

    for (const key of presentKeys) {
        if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
            problems.push(`${PROJECT}:${key} is not a setting of this program; known keys: ${CONFIG_KEYS.join(", ")}`);
        }
    }

    const region = raw("region") ?? DEFAULTS.region;
    if (!REGION.test(region)) {
        problems.push(
            `${PROJECT}:region must be a DigitalOcean region slug (lowercase letters then one digit, such as fra1 or nyc3), got ${quote(region)} ${fix("region", "fra1")}`,
        );
    }

    const version = raw("kubernetesVersion") ?? DEFAULTS.kubernetesVersion;
    if (version !== "latest" && !KUBERNETES_VERSION.test(version)) {
        problems.push(
            `${PROJECT}:kubernetesVersion must be "latest", a minor version such as 1.33, or a DOKS slug such as 1.33.1-do.0, got ${quote(version)} ${fix("kubernetesVersion", "1.33")}`,
        );
    }

    const nodeSize = raw("nodeSize") ?? DEFAULTS.nodeSize;
    if (!Object.hasOwn(PRICES.nodeUsd, nodeSize)) {
        problems.push(
            `${PROJECT}:nodeSize must be a droplet size whose price the program knows, got ${quote(nodeSize)}; known sizes: ` +
                `${Object.keys(PRICES.nodeUsd).join(", ")} ${fix("nodeSize", DEFAULTS.nodeSize)}. ` +
                `For another size, add its price_monthly (doctl compute size list) to PRICES.nodeUsd in config.ts`,
        );
    }

    const integer = (key: string, fallback: number, min: number, max: number, example: string): number => {
        const text = raw(key);
        if (text === undefined) {
            return fallback;
        }
        const value = /^[0-9]+$/.test(text) ? Number(text) : NaN;
        if (!(value >= min && value <= max)) {
            problems.push(
                `${PROJECT}:${key} must be an integer from ${min} to ${max}, got ${quote(text)} ${fix(key, example)}`,
            );
            return NaN;
        }
        return value;
    };

    const nodeCount = integer("nodeCount", DEFAULTS.nodeCount, FIXED.nodeCountMin, FIXED.nodeCountMax, "3");

    const domain = raw("domain");
    if (domain === undefined || domain === "") {
        problems.push(
            `${PROJECT}:domain is required: a DNS zone that already exists in your DigitalOcean account ${fix("domain", "example.com")}`,
        );
    } else if (!isDomainName(domain)) {
        problems.push(
            `${PROJECT}:domain must be a lowercase DNS name with at least two labels and no trailing dot, such as example.com, got ${quote(domain)} ${fix("domain", "example.com")}`,
        );
    }

    const subdomainRaw = raw("platformSubdomain") ?? DEFAULTS.platformSubdomain;
    const platformSubdomain = subdomainRaw === "" ? stack : subdomainRaw;
    if (!DNS_LABEL.test(platformSubdomain)) {
        problems.push(
            subdomainRaw === ""
                ? `${PROJECT}:platformSubdomain defaults to the stack name, and ${quote(stack)} is not a DNS label (lowercase letters, digits and inner hyphens, at most 63); set it ${fix("platformSubdomain", "paas")}`
                : `${PROJECT}:platformSubdomain must be one DNS label (lowercase letters, digits and inner hyphens, at most 63), got ${quote(platformSubdomain)} ${fix("platformSubdomain", "paas")}`,
        );
    }

    const acmeEmail = raw("acmeEmail");
    if (acmeEmail === undefined || acmeEmail === "") {
        problems.push(
            `${PROJECT}:acmeEmail is required: Let's Encrypt sends certificate expiry warnings there ${fix("acmeEmail", "ops@yourcompany.com")}`,
        );
    } else if (!EMAIL.test(acmeEmail)) {
        problems.push(
            `${PROJECT}:acmeEmail must be an email address, got ${quote(acmeEmail)} ${fix("acmeEmail", "ops@yourcompany.com")}`,
        );
    }

    const builderSshSources = parseCidrList(raw("builderSshSources"), problems);

    const boolean = (key: string, fallback: boolean): boolean => {
        const text = raw(key);
        if (text === undefined || text === "true" || text === "false") {
            return text === undefined ? fallback : text === "true";
        }
        problems.push(`${PROJECT}:${key} must be true or false, got ${quote(text)} ${fix(key, String(!fallback))}`);
        return fallback;
    };
    const protect = boolean("protect", DEFAULTS.protect);
    const haControlPlane = boolean("haControlPlane", DEFAULTS.haControlPlane);
    const workflowEnabled = boolean("workflowEnabled", DEFAULTS.workflowEnabled);
    const autoUpgrade = boolean("autoUpgrade", DEFAULTS.autoUpgrade);
    const maintenanceDay = raw("maintenanceDay") ?? DEFAULTS.maintenanceDay;
    if (!(MAINTENANCE_DAYS as readonly string[]).includes(maintenanceDay)) {
        problems.push(`${PROJECT}:maintenanceDay must be one of ${MAINTENANCE_DAYS.join(", ")}, got ${quote(maintenanceDay)} ${fix("maintenanceDay", "sunday")}`);
    }
    const maintenanceStartTime = raw("maintenanceStartTime") ?? DEFAULTS.maintenanceStartTime;
    if (!/^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(maintenanceStartTime)) {
        problems.push(
            `${PROJECT}:maintenanceStartTime must be a UTC time of day as HH:MM, from 00:00 to 23:59, got ${quote(maintenanceStartTime)} ${fix("maintenanceStartTime", "03:00")}`,
        );
    }
    const releases = parseReleases(raw("releases") ?? DEFAULTS.releases, problems);
    const releaseSecretValues = parseSecretValues(raw("releaseSecretValues"), problems);

    const keyAlgorithm = raw("tlsKeyAlgorithm") ?? DEFAULTS.tlsKeyAlgorithm;
    if (!(keyAlgorithm in KEY_ALGORITHMS)) {
        problems.push(
            `${PROJECT}:tlsKeyAlgorithm must be one of ${Object.keys(KEY_ALGORITHMS).join(", ")}, got ${quote(keyAlgorithm)} ${fix("tlsKeyAlgorithm", "ECDSA-P256")}`,
        );
    }
    const hoursMax = 100 * 8766;
    const caValidityHours = integer("tlsCaValidityHours", DEFAULTS.tlsCaValidityHours, 1, hoursMax, "87600");
    const certValidityHours = integer("tlsCertValidityHours", DEFAULTS.tlsCertValidityHours, 1, hoursMax, "8760");
    const earlyRenewalHours = integer("tlsEarlyRenewalHours", DEFAULTS.tlsEarlyRenewalHours, 0, hoursMax, "720");
    const lifetimesValid = [caValidityHours, certValidityHours, earlyRenewalHours].every(Number.isFinite);
    if (lifetimesValid && certValidityHours > caValidityHours) {
        problems.push(
            `${PROJECT}:tlsCertValidityHours (${certValidityHours}) must not exceed ${PROJECT}:tlsCaValidityHours (${caValidityHours}): a certificate cannot outlive its CA`,
        );
    }
    if (lifetimesValid && earlyRenewalHours >= certValidityHours) {
        problems.push(
            `${PROJECT}:tlsEarlyRenewalHours (${earlyRenewalHours}) must be less than ${PROJECT}:tlsCertValidityHours (${certValidityHours}), or every pulumi up would rotate the certificates`,
        );
    }
    const tillerHistoryMax = integer("tillerHistoryMax", DEFAULTS.tillerHistoryMax, 1, 1000, "10");

    if (problems.length > 0) {
        throw new ConfigError(stack, problems);
    }
    return {
        stack,
        region,
        kubernetesVersionPrefix: version === "latest" ? undefined : version,
        nodeSize,
        nodeCount,
        domain: domain as string,
        platformSubdomain,
        platformDomain: `${platformSubdomain}.${domain}`,
        acmeEmail: acmeEmail as string,
        builderSshSources,
        protect,
        haControlPlane,
        namePrefix: nameSafe(stack),
        workerTag: `${PROJECT}-${nameSafe(stack)}-workers`,
        dnsTtlSeconds: FIXED.dnsTtlSeconds,
        clusterName: `${PROJECT}-${nameSafe(stack)}`,
        autoUpgrade,
        maintenance: { day: maintenanceDay as MaintenanceDay, startTime: maintenanceStartTime },
        tls: { keyAlgorithm: keyAlgorithm as KeyAlgorithm, caValidityHours, certValidityHours, earlyRenewalHours },
        tillerHistoryMax,
        workflowEnabled,
        releases,
        releaseSecretValues,
    };
}

/**
 * Reads `hephy-doks:releaseSecretValues`, a JSON object keyed by release of Helm values that carry
 * secrets. Pulumi.yaml declares it `secret: true`, so the CLI refuses it unencrypted; messages here never
 * repeat the value.
 */
function parseSecretValues(raw: string | undefined, problems: string[]): Partial<Record<ReleaseKey, Record<string, unknown>>> {
    const key = `${PROJECT}:releaseSecretValues`;
    if (raw === undefined) {
        return {};
    }
    let parsed: unknown;
    try {
        parsed = JSON.parse(raw);
    } catch {
        parsed = undefined;
    }
    if (!isObject(parsed)) {
        problems.push(`${key} must be a JSON object keyed by ${Object.keys(CATALOG).join(", ")} (its value is not shown: it is a secret) (pulumi config set --secret ${key} '{"workflow": {...}}')`);
        return {};
    }
    for (const [name, values] of Object.entries(parsed)) {
        if (!(name in CATALOG)) {
            problems.push(`${key} has no release ${quote(name)}; releases: ${Object.keys(CATALOG).join(", ")}`);
        } else if (!isObject(values)) {
            problems.push(`${key}.${name} must be an object of Helm values (its value is not shown: it is a secret)`);
        }
    }
    return parsed as Partial<Record<ReleaseKey, Record<string, unknown>>>;
}

const EXACT_VERSION = /^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$/;
const MINOR = /^[0-9]+\.[0-9]+$/;
const OVERRIDE_KEYS = ["repository", "name", "version", "git", "ref", "path", "helmVersion", "kubernetes", "values"];

function isObject(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Applies `hephy-doks:releases` (a JSON object keyed by release) over the catalog. */
function parseReleases(raw: string, problems: string[]): Record<ReleaseKey, ReleaseEntry> {
    const key = `${PROJECT}:releases`;
    const releases = { ...CATALOG };
    let overrides: unknown;
    try {
        overrides = JSON.parse(raw);
    } catch {
        overrides = undefined;
    }
    if (!isObject(overrides)) {
        problems.push(`${key} must be a JSON object keyed by ${Object.keys(CATALOG).join(", ")}, got ${quote(raw)}`);
        return releases;
    }
    for (const [name, override] of Object.entries(overrides)) {
        const at = `${key}.${name}`;
        if (!(name in CATALOG)) {
            problems.push(
                `${key} has no release ${quote(name)}; releases: ${Object.keys(CATALOG).join(", ")}` +
                    (name === "nginx"
                        ? `. The retired ingress-nginx is no longer installed: the front door is releases.ingress, HAProxy's kubernetes-ingress chart, whose values differ (docs/ingress.md)`
                        : ""),
            );
            continue;
        }
        if (!isObject(override)) {
            problems.push(`${at} must be an object, got ${quote(JSON.stringify(override))}`);
            continue;
        }
        const before = problems.length;
        for (const field of Object.keys(override).filter((f) => !OVERRIDE_KEYS.includes(f))) {
            problems.push(`${at}.${field} is not an override; allowed: ${OVERRIDE_KEYS.join(", ")}`);
        }
        const base = CATALOG[name as ReleaseKey];
        const text = (field: string): string | undefined => {
            const value = override[field];
            if (value !== undefined && (typeof value !== "string" || value === "")) {
                problems.push(`${at}.${field} must be a non-empty string, got ${quote(JSON.stringify(value))}`);
            }
            return value as string | undefined;
        };
        const [repository, chartName, version, git, ref, path] = ["repository", "name", "version", "git", "ref", "path"].map(text);
        let chart: ChartSource = base.chart;
        if (git !== undefined || ref !== undefined || path !== undefined) {
            if (git === undefined || ref === undefined || path === undefined) {
                problems.push(`${at}: a git chart source needs all of git, ref and path`);
            }
            chart = { git: git ?? "", ref: ref ?? "", path: path ?? "" };
        } else if (repository !== undefined || chartName !== undefined || version !== undefined) {
            if ("repository" in base.chart) {
                chart = { repository: repository ?? base.chart.repository, name: chartName ?? base.chart.name, version: version ?? base.chart.version };
            } else if (repository === undefined || chartName === undefined || version === undefined) {
                problems.push(`${at}: the catalog serves this chart from the project, so a repository source needs all of repository, name and version`);
            } else {
                chart = { repository, name: chartName, version };
            }
        }
        if (name === "ingress" && "name" in chart && chart.name === "ingress-nginx") {
            problems.push(
                `${at} points at ingress-nginx, which is not selectable: SIG Network retired it (no security fixes since March 2026; ` +
                    `its last NGINX is affected by CVE-2026-42945), and the program's values are those of HAProxy's kubernetes-ingress chart (docs/ingress.md)`,
            );
        }
        if (version !== undefined && !EXACT_VERSION.test(version)) {
            problems.push(
                `${at}.version must be one exact chart version such as 1.2.3 (a range makes helm-operator upgrade on every sync), got ${quote(version)}`,
            );
        }
        const helmVersion = override.helmVersion ?? base.helmVersion;
        if (helmVersion !== "v2" && helmVersion !== "v3") {
            problems.push(`${at}.helmVersion must be v2 or v3, got ${quote(String(helmVersion))}`);
        }
        let kubernetes = base.kubernetes;
        if (override.kubernetes !== undefined) {
            const range = override.kubernetes;
            if (!isObject(range) || typeof range.min !== "string" || typeof range.max !== "string" || !MINOR.test(range.min) || !MINOR.test(range.max) || compareMinor(range.min, range.max) > 0) {
                problems.push(`${at}.kubernetes must be {"min": "1.x", "max": "1.y"} with min <= max, got ${quote(JSON.stringify(range))}`);
            } else {
                kubernetes = { min: range.min, max: range.max };
            }
        } else if (chart !== base.chart) {
            problems.push(
                `${at}.kubernetes is required when the chart changes: say which Kubernetes minors your chart supports, e.g. {"min": "1.33", "max": "1.36"}`,
            );
        }
        if (override.values !== undefined && !isObject(override.values)) {
            problems.push(`${at}.values must be an object of Helm values, got ${quote(JSON.stringify(override.values))}`);
        }
        if (problems.length === before) {
            releases[name as ReleaseKey] = {
                ...base,
                chart,
                archiveSha256: chart === base.chart ? base.archiveSha256 : undefined,
                helmVersion: helmVersion as "v2" | "v3",
                kubernetes,
                values: override.values as Record<string, unknown> | undefined,
                sources: [...base.sources, `overridden by ${key} in this stack`],
            };
        }
    }
    return releases;
}

/** A chart source in one line, for messages. */
export function describeChart(chart: ChartSource): string {
    if ("bundled" in chart) {
        return `${chart.bundled} (this project)`;
    }
    return "version" in chart ? `${chart.name} ${chart.version}` : `${chart.git}//${chart.path}@${chart.ref}`;
}

/** Compares two `major.minor` versions (a DOKS slug's patch and suffix are ignored). */
export function compareMinor(a: string, b: string): number {
    const [aMajor, aMinor] = a.split(".").map(Number);
    const [bMajor, bMinor] = b.split(".").map(Number);
    return aMajor - bMajor || aMinor - bMinor;
}

/** The `major.minor` of a DOKS slug such as `1.35.2-do.0`. */
export function minorOf(slug: string): string {
    return slug.split(".").slice(0, 2).join(".");
}

/**
 * Refuses a combination known not to work: each enabled release must support the resolved DOKS
 * version. Called before any resource is declared.
 */
export function checkCompatibility(config: StackConfig, doksVersion: string): void {
    const minor = minorOf(doksVersion);
    const problems: string[] = [];
    for (const key of enabledReleases(config)) {
        const entry = config.releases[key];
        const { min, max } = entry.kubernetes;
        if (compareMinor(minor, min) < 0 || compareMinor(minor, max) > 0) {
            const chart = describeChart(entry.chart);
            problems.push(
                `release ${key} (${chart}) supports Kubernetes ${min} to ${max}, not ${doksVersion}. ` +
                    `Why: ${entry.sources.join("; ")}. ` +
                    `Fix: pulumi config set ${PROJECT}:kubernetesVersion <a minor from ${min} to ${max} that DigitalOcean offers>, ` +
                    `or point ${PROJECT}:releases.${key} at a chart that supports ${minor} (with its "kubernetes" range)` +
                    (key === "workflow" ? `, or pulumi config set ${PROJECT}:workflowEnabled false to install the platform without Workflow` : ""),
            );
        }
    }
    if (problems.length > 0) {
        throw new CompatibilityError(config.stack, problems);
    }
}

/** A release catalog that does not fit the cluster's Kubernetes version. */
export class CompatibilityError extends ConfigError {
    constructor(stack: string, problems: readonly string[]) {
        super(stack, problems, `Stack "${stack}" would deploy releases known not to work on its Kubernetes version; nothing was deployed:`);
    }
}

function parseCidrList(raw: string | undefined, problems: string[]): readonly string[] {
    const key = `${PROJECT}:builderSshSources`;
    const example = fixList("builderSshSources", ["203.0.113.0/24"]);
    if (raw === undefined) {
        return DEFAULTS.builderSshSources;
    }
    let list: unknown;
    try {
        list = JSON.parse(raw);
    } catch {
        problems.push(`${key} must be a JSON list of CIDRs, got ${quote(raw)} ${example}`);
        return [];
    }
    if (!Array.isArray(list) || list.length === 0) {
        problems.push(`${key} must be a non-empty list of CIDRs, got ${quote(raw)} ${example}`);
        return [];
    }
    for (const item of list) {
        if (typeof item !== "string" || !isCidr(item)) {
            problems.push(
                `${key} entries must be IPv4 or IPv6 CIDRs such as 203.0.113.0/24 or 2001:db8::/32, got ${quote(String(item))}`,
            );
        }
    }
    return list as string[];
}

/** Reads the stack's config through the Pulumi runtime and validates it. */
export function loadConfig(): StackConfig {
    const config = new pulumi.Config(PROJECT);
    const prefix = `${PROJECT}:`;
    const present = Object.keys(pulumi.runtime.allConfig())
        .filter((k) => k.startsWith(prefix))
        .map((k) => k.slice(prefix.length));
    return parseConfig((key) => config.get(key), pulumi.getStack(), present);
}
