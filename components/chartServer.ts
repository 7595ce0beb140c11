import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { packageChart } from "../chartPackage";
import { childOf, httpProbe, ingressOnlyFrom, PodPeer } from "./kube";
import { RepositoryChart } from "../types";

/**
 * A ConfigMap's data and binaryData together hold at most 1 MiB (kubernetes
 * pkg/apis/core/validation/validation.go `ValidateConfigMap`, `core.MaxSecretSize`).
 */
export const CONFIGMAP_MAX_BYTES = 1024 * 1024;

const PORT = 8080;

/** The repository URL of a chart server: its Service's in-cluster name, which helm-operator resolves. */
export function chartServerUrl(serviceName: string, namespace: string): string {
    return `http://${serviceName}.${namespace}.svc.cluster.local:${PORT}/`;
}

export interface ChartServerArgs {
    /** The Kubernetes provider of the cluster. */
    provider: k8s.Provider;
    /** The namespace to serve from, already created (helm-operator's own). */
    namespace: string;
    /** What waits for the namespace to exist. */
    namespaceReady: pulumi.Resource[];
    /** Name of the ConfigMap, Deployment and Service; the repository's host name is derived from it. */
    serviceName: string;
    /** The chart directory to package and serve, absolute. */
    chartDirectory: string;
    /** An unprivileged static web server image that serves `/usr/share/nginx/html` on 8080. */
    image: string;
    /** The only pods that may fetch charts: helm-operator's. */
    clients: PodPeer[];
}

/**
 * A Helm chart repository inside the cluster, serving one of the project's own charts to helm-operator:
 * the packaged chart and its `index.yaml` in a ConfigMap, behind a ClusterIP Service. The user needs
 * no chart hosting, git server or deploy key, and the chart travels with `pulumi up`.
 */
export class ChartServer extends pulumi.ComponentResource {
    /** `spec.chart` for a HelmRelease that installs the served chart. */
    public readonly chart: RepositoryChart;
    /** The objects a HelmRelease waits for: the index and archive are served once these are ready. */
    public readonly ready: pulumi.Resource[];

    constructor(name: string, args: ChartServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:chartServer:ChartServer", name, {}, opts);
        const repository = chartServerUrl(args.serviceName, args.namespace);
        const packaged = packageChart(args.chartDirectory, repository);
        const size = packaged.archive.length + Buffer.byteLength(packaged.indexYaml);
        if (size > CONFIGMAP_MAX_BYTES) {
            throw new pulumi.ResourceError(
                `the packaged chart ${path.basename(args.chartDirectory)} and its index take ${size} bytes, more than a ConfigMap holds (${CONFIGMAP_MAX_BYTES})`,
                this,
            );
        }
        if (packaged.untracked.length > 0) {
            pulumi.log.warn(
                `${path.basename(args.chartDirectory)}: ${packaged.untracked.join(", ")} not packaged, as git does not track them (git add them to ship them)`,
                this,
            );
        }
        this.chart = { repository, name: packaged.name, version: packaged.version };

        const labels = { app: args.serviceName };
        const metadata = { name: args.serviceName, namespace: args.namespace, labels };
        const child = childOf(this, args.provider, args.namespaceReady);
        const content = new k8s.core.v1.ConfigMap(
            `${name}-content`,
            {
                metadata,
                data: { "index.yaml": packaged.indexYaml },
                binaryData: { [packaged.fileName]: packaged.archive.toString("base64") },
            },
            child,
        );

        const probe = httpProbe("/index.yaml", PORT, { periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 });
        const deployment = new k8s.apps.v1.Deployment(
            `${name}-deployment`,
            {
                metadata,
                spec: {
                    replicas: 1,
                    selector: { matchLabels: labels },
                    template: {
                        // A new chart rolls the pod, so Pulumi's wait for the rollout is a wait for the new index.
                        metadata: { labels, annotations: { "hephy-doks/chart-digest": packaged.digest } },
                        spec: {
                            automountServiceAccountToken: false,
                            securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
                            containers: [
                                {
                                    name: "web",
                                    image: args.image,
                                    imagePullPolicy: "IfNotPresent",
                                    ports: [{ name: "http", containerPort: PORT }],
                                    readinessProbe: probe,
                                    livenessProbe: probe,
                                    resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } },
                                    securityContext: {
                                        allowPrivilegeEscalation: false,
                                        readOnlyRootFilesystem: true,
                                        capabilities: { drop: ["ALL"] },
                                    },
                                    volumeMounts: [
                                        { name: "charts", mountPath: "/usr/share/nginx/html", readOnly: true },
                                        { name: "tmp", mountPath: "/tmp" },
                                    ],
                                },
                            ],
                            volumes: [
                                { name: "charts", configMap: { name: content.metadata.name } },
                                { name: "tmp", emptyDir: {} },
                            ],
                        },
                    },
                },
            },
            child,
        );
        const service = new k8s.core.v1.Service(
            `${name}-service`,
            {
                metadata,
                spec: { type: "ClusterIP", selector: labels, ports: [{ name: "http", port: PORT, targetPort: "http" }] },
            },
            child,
        );
        const networkPolicy = ingressOnlyFrom(
            `${name}-ingress`,
            { policyName: `${args.serviceName}-from-helm-operator`, namespace: args.namespace, podLabels: labels, ports: [PORT], from: args.clients },
            child,
        );
        this.ready = [content, deployment, service, networkPolicy];

        this.registerOutputs({ repository, version: packaged.version });
    }
}
