import { CATALOG, compareMinor } from "./catalog";
import { ChartSource, ReleaseEntry, ReleaseKey } from "./types";

/**
 * The per-release overrides of the version catalog (`hephy-doks:releases`) and the Helm values that
 * carry secrets (`hephy-doks:releaseSecretValues`): JSON objects keyed by release, read and judged here.
 * Every lookup in them is an own-property lookup, since their keys come from the user.
 */

function quote(raw: string): string {
    return JSON.stringify(raw);
}

/**
 * `__proto__` keys anywhere in Helm values, as messages: JSON.parse keeps one as an own key, and any
 * merge of objects would then set a prototype instead of a value, dropping it silently.
 */
function prototypeKeys(value: unknown, at: string): string[] {
    if (Array.isArray(value)) {
        return value.flatMap((item, i) => prototypeKeys(item, `${at}[${i}]`));
    }
    if (!isObject(value)) {
        return [];
    }
    return Object.keys(value).flatMap((k) =>
        k === "__proto__" ? [`${at}.__proto__ is not a Helm value this program can pass on: rename the key`] : prototypeKeys(value[k], `${at}.${k}`),
    );
}

/** Where values put a Service on a node port or a load balancer, or a pod on the node's network or ports. */
function exposingPaths(value: unknown, path: string, hostNetworkAllowed: boolean): string[] {
    if (Array.isArray(value)) {
        return value.flatMap((item, i) => exposingPaths(item, `${path}[${i}]`, hostNetworkAllowed));
    }
    if (!isObject(value)) {
        return [];
    }
    return Object.entries(value).flatMap(([k, v]) => {
        const at = `${path}.${k}`;
        const exposes =
            (k === "type" && (v === "NodePort" || v === "LoadBalancer")) ||
            ((k === "hostPort" || k === "hostPorts" || k === "nodePort" || k === "nodePorts") && v !== null && v !== undefined && v !== false) ||
            ((k === "useHostPort" || k === "hostPID" || k === "hostIPC") && v === true) ||
            (!hostNetworkAllowed && (k === "hostNetwork" || k === "useHostNetwork") && v === true);
        return exposes ? [`${at} = ${JSON.stringify(v)}`] : exposingPaths(v, at, hostNetworkAllowed);
    });
}

/**
 * Why an override of a release would open more to the network than the program does, as messages:
 * a Service on a node port or a load balancer, a host port, and for the ingress controller (which
 * the program puts on the host network, with no Service) its Service or its controller port.
 * Helm values from a plain-HTTP repository could be changed on the way.
 */
function unsafeOverride(name: ReleaseKey, override: Record<string, unknown>): string[] {
    const reasons: string[] = [];
    for (const field of ["repository", "git"]) {
        const url = override[field];
        if (typeof url === "string" && /^(http|git):\/\//i.test(url)) {
            reasons.push(`.${field} is a plain transport (${quote(url)}): charts would travel unauthenticated; use https:// (or ssh:// for git)`);
        }
    }
    const values = isObject(override.values) ? override.values : {};
    reasons.push(...exposingPaths(values, "values", name === "ingress").map((path) => `.${path} opens a node port, a load balancer or the node's network`));
    if (name === "ingress") {
        const controller = isObject(values.controller) ? values.controller : {};
        const service = isObject(controller.service) ? controller.service : {};
        // Helm reads "true" as true too.
        if (service.enabled === true || service.enabled === "true") {
            reasons.push(".values.controller.service.enabled = true gives the ingress controller a Service (a NodePort by the chart's default)");
        }
        const containerPort = isObject(controller.containerPort) ? controller.containerPort : {};
        if (Object.hasOwn(containerPort, "admin") && containerPort.admin !== null) {
            reasons.push(`.values.controller.containerPort.admin = ${JSON.stringify(containerPort.admin)} opens the controller's port on every node`);
        }
        // The admission policy that keeps the controller from writing Secrets names its ServiceAccount, and
        // without the chart's RBAC its CRD job would run as that ServiceAccount (templates/_helpers.tpl).
        for (const key of ["serviceAccount", "rbac"]) {
            if (Object.hasOwn(values, key)) {
                reasons.push(`.values.${key} changes who the ingress controller runs as, which its admission policy names`);
            }
        }
        const config = isObject(controller.config) ? controller.config : {};
        if (Object.hasOwn(config, "stats-config-snippet")) {
            reasons.push(".values.controller.config.stats-config-snippet replaces the rule that keeps the stats listener to the node itself");
        }
        // Arrays replace the program's, and its list closes the controller port (--controller-port=0).
        if (Array.isArray(controller.extraArgs) && !controller.extraArgs.includes("--controller-port=0")) {
            reasons.push(".values.controller.extraArgs replaces the program's arguments without --controller-port=0, opening port 6060 on every node");
        }
    }
    return reasons;
}

/**
 * Reads `hephy-doks:releaseSecretValues`, a JSON object keyed by release of Helm values that carry
 * secrets. Pulumi.yaml declares it `secret: true`, so the CLI refuses it unencrypted; messages here never
 * repeat the value.
 */
export function parseSecretValues(raw: string | undefined, key: string, problems: string[]): Partial<Record<ReleaseKey, Record<string, unknown>>> {
    if (raw === undefined) {
        return {};
    }
    const parsed = jsonObject(raw);
    if (parsed === undefined) {
        problems.push(
            `${key} must be a JSON object keyed by ${Object.keys(CATALOG).join(", ")} (its value is not shown: it is a secret) (pulumi config set --secret ${key} '{"workflow": {...}}')`,
        );
        return {};
    }
    for (const [name, values] of Object.entries(parsed)) {
        if (!Object.hasOwn(CATALOG, name)) {
            problems.push(`${key} has no release ${quote(name)}; releases: ${Object.keys(CATALOG).join(", ")}`);
        } else if (!isObject(values)) {
            problems.push(`${key}.${name} must be an object of Helm values (its value is not shown: it is a secret)`);
        } else {
            problems.push(...prototypeKeys(values, `${key}.${name}`));
        }
    }
    return parsed as Partial<Record<ReleaseKey, Record<string, unknown>>>;
}

const EXACT_VERSION = /^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$/;
const MINOR = /^[0-9]+\.[0-9]+$/;
/** Workflow's registration modes that keep strangers out (charts/hephy-workflow values.yaml `controller.registration_mode`). */
const REGISTRATION_MODES = ["admin_only", "disabled"] as const;
const OVERRIDE_KEYS = ["repository", "name", "version", "git", "ref", "path", "helmVersion", "kubernetes", "values", "allowUnsafe"];

function isObject(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The JSON object a config value holds, or undefined when it holds none. */
function jsonObject(raw: string): Record<string, unknown> | undefined {
    try {
        const value: unknown = JSON.parse(raw);
        return isObject(value) ? value : undefined;
    } catch {
        return undefined;
    }
}

/** Applies `hephy-doks:releases` (a JSON object keyed by release) over the catalog. */
export function parseReleases(raw: string, key: string, problems: string[]): Record<ReleaseKey, ReleaseEntry> {
    const releases = { ...CATALOG };
    const overrides = jsonObject(raw);
    if (overrides === undefined) {
        problems.push(`${key} must be a JSON object keyed by ${Object.keys(CATALOG).join(", ")}, got ${quote(raw)}`);
        return releases;
    }
    for (const [name, override] of Object.entries(overrides)) {
        const at = `${key}.${name}`;
        if (!Object.hasOwn(CATALOG, name)) {
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
        const registration = isObject(override.values) && isObject(override.values.controller) ? override.values.controller.registration_mode : undefined;
        if (name === "workflow" && registration !== undefined && !(REGISTRATION_MODES as readonly unknown[]).includes(registration)) {
            problems.push(
                `${at}.values.controller.registration_mode must be ${REGISTRATION_MODES.join(" or ")}, got ${quote(JSON.stringify(registration))}: ` +
                    `"enabled" lets anyone who finds the platform's URL register (the program creates the admin, who registers the others)`,
            );
        }
        if (override.allowUnsafe !== undefined && typeof override.allowUnsafe !== "boolean") {
            problems.push(`${at}.allowUnsafe must be true or false, got ${quote(JSON.stringify(override.allowUnsafe))}`);
        }
        if (override.allowUnsafe !== true) {
            for (const reason of unsafeOverride(name as ReleaseKey, override)) {
                problems.push(
                    `${at}${reason}. Set ${at}.allowUnsafe to true only if you mean it (docs/design.md, "Threat model"); ` +
                        `the admission policy still refuses NodePort and LoadBalancer Services outside hephy-doks:exposedServices`,
                );
            }
        }
        if (isObject(override.values)) {
            problems.push(...prototypeKeys(override.values, `${at}.values`));
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
            if (
                !isObject(range) ||
                typeof range.min !== "string" ||
                typeof range.max !== "string" ||
                !MINOR.test(range.min) ||
                !MINOR.test(range.max) ||
                compareMinor(range.min, range.max) > 0
            ) {
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
                allowUnsafe: override.allowUnsafe === true,
                sources: [...base.sources, `overridden by ${key} in this stack`],
            };
        }
    }
    return releases;
}
