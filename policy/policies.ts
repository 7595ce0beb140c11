import { UPSTREAM } from "../catalog";
import { wholeFamiliesCovered } from "../cidr";
import { PolicyResource, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { ALLOW_UNSAFE_ANNOTATION } from "../types";

/**
 * The guardrails of this project as CrossGuard policies. They live in a plain array so tests can call
 * each `validateResource`/`validateStack` directly; `index.ts` wraps them in the `PolicyPack`, whose
 * constructor starts a policy server and so must not run inside tests.
 */

/** Type tokens the policies look at, as the Pulumi engine reports them. */
export const TYPES = {
    service: "kubernetes:core/v1:Service",
    servicePatch: "kubernetes:core/v1:ServicePatch",
    deployment: "kubernetes:apps/v1:Deployment",
    helmRelease: "kubernetes:helm.fluxcd.io/v1:HelmRelease",
    cluster: "digitalocean:index/kubernetesCluster:KubernetesCluster",
    firewall: "digitalocean:index/firewall:Firewall",
} as const;

/** Workflow's builder listens here; the article opens it on the worker firewall for `git push`. */
export const BUILDER_SSH_PORT = UPSTREAM.builder.port;

/** The Service types that take a port on every node, or a billed DigitalOcean load balancer. */
export type ExposedType = "LoadBalancer" | "NodePort";

/** Every place in a value where a Service type of LoadBalancer or NodePort is set, as an object key or in YAML text. */
export function exposedServicePaths(value: unknown, path = ""): { type: ExposedType; at: string }[] {
    if (typeof value === "string") {
        return [...value.matchAll(/type:\s*["']?(LoadBalancer|NodePort)\b/g)].map((m) => ({ type: m[1] as ExposedType, at: path }));
    }
    if (Array.isArray(value)) {
        return value.flatMap((v, i) => exposedServicePaths(v, `${path}[${i}]`));
    }
    if (typeof value === "object" && value !== null) {
        return Object.entries(value).flatMap(([k, v]) =>
            k === "type" && (v === "LoadBalancer" || v === "NodePort")
                ? [{ type: v as ExposedType, at: `${path}.type` }]
                : exposedServicePaths(v, `${path}.${k}`),
        );
    }
    return [];
}

interface Container {
    name?: string;
    image?: string;
    args?: string[];
    env?: { name: string; value?: string }[];
}

/** What the policies read of a Kubernetes object's inputs. */
interface ObjectProps {
    metadata?: { name?: string; namespace?: string };
    spec?: { template?: { spec?: { containers?: Container[] } } };
}

function containersOf(props: ObjectProps): Container[] {
    return props.spec?.template?.spec?.containers ?? [];
}

function objectName(props: ObjectProps): string {
    const meta = props.metadata ?? {};
    return `${meta.namespace ?? "default"}/${meta.name ?? "<unnamed>"}`;
}

/** A Deployment's containers whose image is `<anything>/<image>:<tag>`, such as Tiller's or helm-operator's. */
function containersRunning(args: ResourceValidationArgs, image: string): Container[] {
    if (args.type !== TYPES.deployment) {
        return [];
    }
    const pattern = new RegExp(`(^|/)${image}(:|@|$)`);
    return containersOf(args.props).filter((c) => typeof c.image === "string" && pattern.test(c.image));
}

/**
 * What of the internet a firewall lets reach a port, as `IPv4`/`IPv6` with the rules' sources, when
 * its rules' sources together hold every address of a family, however they split it.
 */
export function worldOpenRules(
    firewallProps: { inboundRules?: { protocol?: string; portRange?: string; sourceAddresses?: string[] }[] },
    port: number,
): string[] {
    const covers = (range: string): boolean => {
        if (range === "all") {
            return true;
        }
        const [low, high = low] = range.split("-").map(Number);
        return low <= port && port <= high;
    };
    const rules = firewallProps.inboundRules ?? [];
    const open = rules.filter((r) => r.protocol === "tcp" && typeof r.portRange === "string" && covers(r.portRange));
    const sources = open.flatMap((r) => r.sourceAddresses ?? []);
    return wholeFamiliesCovered(sources).map((family) => `all of ${family} on tcp ${open.map((r) => r.portRange).join(", ")} from ${sources.join(", ")}`);
}

/** Whether the stack protects its cluster, which is what `hephy-doks:protect true` sets. */
function isProtectedStack(resources: PolicyResource[]): boolean {
    return resources.some((r) => r.type === TYPES.cluster && r.opts.protect);
}

function reportWorldOpenBuilderSsh(resources: PolicyResource[], reportViolation: ReportViolation, protectedStack: boolean): void {
    for (const firewall of resources.filter((r) => r.type === TYPES.firewall)) {
        const rules = worldOpenRules(firewall.props, BUILDER_SSH_PORT);
        if (rules.length > 0) {
            reportViolation(
                `Firewall ${firewall.name} opens the builder's SSH port ${BUILDER_SSH_PORT} to the whole internet (${rules.join(", ")})${protectedStack ? " in a protected stack" : ""}; ` +
                    `restrict it with: pulumi config set --path 'hephy-doks:builderSshSources[0]' <your CIDR> (one --path item per CIDR: the key is an array)`,
                firewall.urn,
            );
        }
    }
}

export const noExposedServices: ResourceValidationPolicy = {
    name: "no-loadbalancer-or-nodeport-services",
    description: "No Kubernetes Service of type LoadBalancer or NodePort: every node serves traffic itself through the ingress controller on its host network.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        const type = args.props.spec?.type;
        if ((args.type === TYPES.service || args.type === TYPES.servicePatch) && (type === "LoadBalancer" || type === "NodePort")) {
            reportViolation(
                `Service ${objectName(args.props)} is of type ${type}, which ${type === "LoadBalancer" ? "would create a billed DigitalOcean load balancer" : "opens a port on every node, and DigitalOcean's managed firewall opens it to the internet"}; ` +
                    "use ClusterIP and reach it through the ingress controller",
            );
        }
    },
};

export const tillerVerifiesTls: ResourceValidationPolicy = {
    name: "tiller-tls-verify",
    description: "Tiller verifies client certificates (TILLER_TLS_VERIFY=1), so only holders of a certificate from its CA can install releases.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        for (const tiller of containersRunning(args, "tiller")) {
            const verify = tiller.env?.find((e) => e.name === "TILLER_TLS_VERIFY")?.value;
            if (verify !== "1") {
                reportViolation(
                    `Tiller container ${tiller.name ?? ""} in Deployment ${objectName(args.props)} must set TILLER_TLS_VERIFY=1, ` +
                        `found ${verify === undefined ? "it unset" : JSON.stringify(verify)}: without it anyone who reaches port 44134 runs Helm as cluster-admin`,
                );
            }
        }
    },
};

/** helm-operator's own flags (fluxcd/helm-operator v1.4.4 cmd/helm-operator/main.go). */
const OPERATOR_TLS_FLAGS = ["--tiller-tls-enable", "--tiller-tls-verify"];

export const helmOperatorVerifiesTiller: ResourceValidationPolicy = {
    name: "helm-operator-verifies-tiller",
    description: "helm-operator talks to Tiller over TLS and verifies Tiller's certificate against the Tiller CA.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        for (const operator of containersRunning(args, "helm-operator")) {
            const flags = operator.args ?? [];
            const versions = flags.find((f) => f.startsWith("--enabled-helm-versions="));
            if (versions !== undefined && !versions.split("=")[1].split(",").includes("v2")) {
                continue; // no Tiller to talk to
            }
            const missing = OPERATOR_TLS_FLAGS.filter((flag) => !flags.includes(flag) && !flags.includes(`${flag}=true`));
            if (!flags.some((f) => /^--tiller-tls-ca-cert-path=.+/.test(f))) {
                missing.push("--tiller-tls-ca-cert-path=<path of the Tiller CA>");
            }
            if (missing.length > 0) {
                reportViolation(`helm-operator in Deployment ${objectName(args.props)} must verify Tiller's TLS certificate; missing: ${missing.join(", ")}`);
            }
        }
    },
};

export const noExposedServiceValues: ResourceValidationPolicy = {
    name: "no-loadbalancer-or-nodeport-helm-values",
    description: `No HelmRelease sets a Service type of LoadBalancer or NodePort in its values, unless its override allows it (annotation ${ALLOW_UNSAFE_ANNOTATION}).`,
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        const isHelmRelease = args.type === TYPES.helmRelease || (args.props.apiVersion === "helm.fluxcd.io/v1" && args.props.kind === "HelmRelease");
        if (!isHelmRelease || args.props.metadata?.annotations?.[ALLOW_UNSAFE_ANNOTATION] === "true") {
            return;
        }
        const paths = exposedServicePaths(args.props.spec?.values, "spec.values");
        if (paths.length > 0) {
            reportViolation(
                `HelmRelease ${objectName(args.props)} asks for ${paths.map((p) => `a ${p.type} Service at ${p.at}`).join(", ")}; use ClusterIP and reach it through the ingress controller`,
            );
        }
    },
};

export const builderSshClosedWhenProtected: StackValidationPolicy = {
    name: "builder-ssh-not-world-open-in-protected-stacks",
    description: `A stack that protects its cluster (hephy-doks:protect true) must not open TCP ${BUILDER_SSH_PORT} to the whole internet.`,
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => {
        if (isProtectedStack(args.resources)) {
            reportWorldOpenBuilderSsh(args.resources, reportViolation, true);
        }
    },
};

export const builderSshClosed: StackValidationPolicy = {
    name: "builder-ssh-not-world-open",
    description: `Advice for unprotected stacks: restrict TCP ${BUILDER_SSH_PORT} (git push to the builder) to known networks.`,
    enforcementLevel: "advisory",
    validateStack: (args, reportViolation) => {
        if (!isProtectedStack(args.resources)) {
            reportWorldOpenBuilderSsh(args.resources, reportViolation, false);
        }
    },
};

export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
    noExposedServices,
    tillerVerifiesTls,
    helmOperatorVerifiesTiller,
    noExposedServiceValues,
    builderSshClosedWhenProtected,
    builderSshClosed,
];
