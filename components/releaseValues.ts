import { ReleaseKey } from "../types";
import { INGRESS_OBJECTS } from "./ingressPrerequisites";
import { WORKFLOW_VOLUME } from "./workflowStorage";

/** The values the platform gives each release: the article's, in the pinned charts' keys. */

/** The IngressClass the ingress release creates and every ACME solver uses. */
export const INGRESS_CLASS = "nginx";

/** Deep-merges `override` into `base` (objects merge, everything else is replaced). */
export function mergeValues(base: Record<string, unknown>, override: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
    const merged: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(override ?? {})) {
        // Own keys only: a key such as "constructor" must not meet Object.prototype's.
        const current = Object.hasOwn(merged, key) ? merged[key] : undefined;
        const bothObjects = [current, value].every((v) => typeof v === "object" && v !== null && !Array.isArray(v));
        merged[key] = bothObjects ? mergeValues(current as Record<string, unknown>, value as Record<string, unknown>) : value;
    }
    return merged;
}

/** Where the ingress controller forwards raw TCP: the builder's SSH port, while Workflow is installed. */
export function tcpForwards(workflowNamespace: string, builder: { service: string; port: number } | undefined): Record<string, string> {
    return builder ? { [String(builder.port)]: `${workflowNamespace}/${builder.service}:${builder.port}` } : {};
}

/** What the values of each release depend on. */
export interface ReleaseValuesArgs {
    /** `<platformSubdomain>.<domain>`. */
    platformDomain: string;
    /** The ingress controller's namespace, where its prerequisites are. */
    ingressNamespace: string;
    /** Raw TCP forwards of the ingress controller, from `tcpForwards`. */
    tcpServices: Record<string, string>;
    /** App names Workflow refuses: upstream's, and every namespace Workflow must keep out of. */
    reservedAppNames: readonly string[];
    /** The ingress controller's ServiceAccount, in its namespace. */
    ingressServiceAccount: string;
    /** The pinned images of Workflow's registry and Dockerfile builds. */
    workflowBuildImages: { registry: string; dockerfileBuild: string; cnbBuild: string };
}

/** The values the article gives each release, in the pinned charts' keys. */
export function releaseValues(args: ReleaseValuesArgs): Record<ReleaseKey, Record<string, unknown>> {
    return {
        // haproxytech/helm-charts kubernetes-ingress/values.yaml and templates/_podspec.tpl @ kubernetes-ingress-1.52.1:
        // a DaemonSet on every node's host network, HAProxy bound to 80 and 443 there, raw TCP forwarded
        // from the ConfigMap; no Service of any kind, so nothing takes a load balancer or a NodePort.
        ingress: {
            controller: {
                kind: "DaemonSet",
                daemonset: { useHostNetwork: true },
                dnsPolicy: "ClusterFirstWithHostNet",
                // --http-bind-port/--https-bind-port; `null` drops the controller port from the pod's ports.
                containerPort: { http: 80, https: 443, admin: null },
                // As root: on the node's network only root binds below 1024, and the image's file capability
                // sits on haproxy_wrapper, which execs haproxy without it (haproxytech/kubernetes-ingress
                // build/Dockerfile `setcap`, pkg/protection/haproxy_wrapper.c `execv` @ v3.2 9e4b6b93).
                unprivileged: false,
                // Workflow's Ingresses carry no class, so this is the default class; it keeps ingress-nginx's
                // name, which existing Ingresses and the ACME solvers name.
                ingressClass: INGRESS_CLASS,
                ingressClassResource: { name: INGRESS_CLASS, default: true },
                service: {
                    enabled: false,
                    // No HTTP/3 arguments or UDP port: UDP 443 is not open on the firewall.
                    enablePorts: { quic: false },
                    // Declares each forwarded port on the pod, so the scheduler sees it taken on the node.
                    tcpPorts: Object.keys(args.tcpServices).map((port) => ({ name: `tcp-${port}`, port: Number(port), targetPort: Number(port) })),
                },
                publishService: { enabled: false },
                pprof: { enabled: false },
                prometheus: { enabled: false },
                defaultTLSSecret: { enabled: true, secretNamespace: args.ingressNamespace, secret: INGRESS_OBJECTS.defaultTls },
                extraArgs: [
                    `--configmap-tcp-services=${args.ingressNamespace}/${INGRESS_OBJECTS.tcpServices}`,
                    // The controller's data server (pprof, metrics) listens on 6060 unless its port is 0
                    // (pkg/utils/flags.go, pkg/controller/builder.go), and haproxy binds UDP 443 for HTTP/3
                    // unless told not to (pkg/controller/handler.go).
                    "--controller-port=0",
                    "--disable-quic",
                ],
                // An Ingress with TLS redirects plain HTTP to this port, 8443 by default (pkg/annotations/common/main.go);
                // ACME solver Ingresses have no TLS, so HTTP-01 challenges are answered, not redirected.
                config: {
                    "ssl-redirect-port": "443",
                    // The stats listener binds every address of the node, whatever the flags say
                    // (pkg/controller/controller.go, pkg/handler/http-bind.go); its snippet goes into the stats
                    // frontend (documentation/annotations.md `stats-config-snippet`), and a connection rule
                    // runs before any of its HTTP rules, /metrics included.
                    "stats-config-snippet": "tcp-request connection reject unless { src 127.0.0.0/8 ::1 }",
                },
            },
            // A name of the program's, which its admission policy names (guard-ingress-controller-writes).
            serviceAccount: { create: true, name: args.ingressServiceAccount },
        },
        // cert-manager/cert-manager deploy/charts/cert-manager/values.yaml v1.21.1: the program installs the
        // CRDs itself, before the release; Ingresses annotated kubernetes.io/tls-acme get letsencrypt-prod.
        certManager: {
            crds: { enabled: false },
            ingressShim: { defaultIssuerName: "letsencrypt-prod", defaultIssuerKind: "ClusterIssuer", defaultIssuerGroup: "cert-manager.io" },
            // The chart requests nothing (values.yaml `resources: {}` for each): BestEffort pods, evicted first.
            resources: { requests: { cpu: "10m", memory: "64Mi" } },
            webhook: { resources: { requests: { cpu: "10m", memory: "32Mi" } } },
            cainjector: { resources: { requests: { cpu: "10m", memory: "64Mi" } } },
            startupapicheck: { resources: { requests: { cpu: "10m", memory: "32Mi" } } },
        },
        // The article's values, in teamhephy/workflow v2.23.0 charts/workflow/values.yaml keys, which
        // charts/hephy-workflow accepts too; `tls` is the article's cert-manager step on the API Ingress.
        workflow: {
            global: { experimental_native_ingress: true, use_cni: true, use_rbac: true },
            controller: { platform_domain: args.platformDomain, tls: { cluster_issuer: "letsencrypt-prod" }, reserved_names: [...args.reservedAppNames] },
            minio: { data_claim: WORKFLOW_VOLUME.claim },
            registry: { image: args.workflowBuildImages.registry },
            dockerfile_build: { image: args.workflowBuildImages.dockerfileBuild },
            cnb_build: { image: args.workflowBuildImages.cnbBuild },
        },
    };
}
