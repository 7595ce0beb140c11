import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { boundServiceAccount, childOf, ingressOnlyFrom, httpProbe, rollOnChange } from "./kube";
import { TILLER } from "./tiller";
import { KeyPair } from "./tillerPki";

/** A chart repository helm-operator resolves chart dependencies from. */
export interface ChartRepository {
    /** The alias charts refer to, such as `hephy`. */
    name: string;
    /** The repository URL. */
    url: string;
}

/**
 * Paths and names as fluxcd/helm-operator chart-1.4.4 renders them
 * (`chart/helm-operator/templates/deployment.yaml`, `helm-tls.yaml`, `helm-repositories.yaml`).
 */
export const HELM_OPERATOR = {
    namespace: "flux",
    /** The chart's fullname for release `flux`; the article's `deploy/flux-helm-operator`. */
    name: "flux-helm-operator",
    clientSecret: "helm-client",
    caConfigMap: "flux-helm-operator-helm-tls-ca-config",
    repositoriesSecret: "flux-helm-repositories",
    tlsDir: "/etc/fluxd/helm",
    caDir: "/etc/fluxd/helm-ca",
    repositoriesFile: "/root/.helm/repository/repositories.yaml",
    port: 3030,
    labels: { app: "helm-operator", release: "flux" } as Record<string, string>,
} as const;

export interface HelmOperatorArgs {
    /** The Kubernetes provider of the cluster. */
    provider: k8s.Provider;
    /** The helm-operator image, such as `docker.io/fluxcd/helm-operator:1.4.4`. */
    image: string;
    /** URL of the HelmRelease CRD manifest of the same release. */
    crdUrl: string;
    /** Helm versions the operator runs (`--enabled-helm-versions`). */
    helmVersions: ("v2" | "v3")[];
    /** The client key pair Tiller accepts. */
    clientKeyPair: KeyPair;
    /** PEM of the CA that signed Tiller's certificate. */
    caCertPem: pulumi.Input<string>;
    /** The name helm-operator expects on Tiller's certificate. */
    tillerHostname: string;
    /** Chart repositories to configure, as `helm repo add` would. */
    repositories: ChartRepository[];
    /** Tiller's Deployment and Service; the operator starts once they are ready. */
    tiller: pulumi.Resource[];
}

/** The Helm `repositories.yaml` the chart's `helm-operator.customRepositories` helper renders. */
export function repositoriesYaml(repositories: ChartRepository[]): string {
    const entries = repositories.map((r) =>
        [
            `- name: ${r.name}`,
            `  url: ${r.url}`,
            `  cache: /var/fluxd/helm/repository/cache/${r.name}-index.yaml`,
            '  caFile: ""',
            '  certFile: ""',
            '  keyFile: ""',
            '  password: ""',
            '  username: ""',
        ].join("\n"),
    );
    return ["apiVersion: v1", "generated: 0001-01-01T00:00:00Z", "repositories:", ...entries, ""].join("\n");
}

/**
 * The Flux helm-operator (1.x, end of life) as its own chart renders it with TLS to Tiller verified
 * both ways: it reconciles `HelmRelease` objects into Helm releases, through Tiller for `helmVersion: v2`.
 */
export class HelmOperator extends pulumi.ComponentResource {
    /** The HelmRelease CRD; every HelmRelease must depend on it. */
    public readonly crds: k8s.yaml.v2.ConfigFile;
    public readonly deployment: k8s.apps.v1.Deployment;
    public readonly namespace: k8s.core.v1.Namespace;

    constructor(name: string, args: HelmOperatorArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:helmOperator:HelmOperator", name, {}, opts);
        const child = childOf(this, args.provider);
        const ns = HELM_OPERATOR.namespace;
        const prefix = `${name}-helm-operator`;

        // Installed from the pinned release's own manifest (apiextensions.k8s.io/v1 since 1.4.0), not copied here.
        this.crds = new k8s.yaml.v2.ConfigFile(`${prefix}-crds`, { file: args.crdUrl }, child);

        this.namespace = new k8s.core.v1.Namespace(`${prefix}-namespace`, { metadata: { name: ns } }, child);
        const inNamespace = childOf(this, args.provider, [this.namespace]);
        const metadata = (objectName: string) => ({ name: objectName, namespace: this.namespace.metadata.name, labels: HELM_OPERATOR.labels });

        // `templates/rbac.yaml`: the operator installs arbitrary charts, so it may do anything.
        const role = new k8s.rbac.v1.ClusterRole(
            `${prefix}-role`,
            {
                metadata: { name: HELM_OPERATOR.name, labels: HELM_OPERATOR.labels },
                rules: [
                    { apiGroups: ["*"], resources: ["*"], verbs: ["*"] },
                    { nonResourceURLs: ["*"], verbs: ["*"] },
                ],
            },
            child,
        );
        const { serviceAccount } = boundServiceAccount(
            prefix,
            { name: HELM_OPERATOR.name, namespace: this.namespace.metadata.name, clusterRole: role.metadata.name, labels: HELM_OPERATOR.labels },
            inNamespace,
        );

        const clientSecret = new k8s.core.v1.Secret(
            `${prefix}-client-secret`,
            {
                metadata: metadata(HELM_OPERATOR.clientSecret),
                type: "kubernetes.io/tls",
                stringData: { "tls.crt": args.clientKeyPair.certPem, "tls.key": args.clientKeyPair.keyPem },
            },
            inNamespace,
        );
        // Upstream mounts the CA from a ConfigMap (`templates/helm-tls.yaml`), not from the client Secret.
        const caConfigMap = new k8s.core.v1.ConfigMap(
            `${prefix}-ca`,
            { metadata: metadata(HELM_OPERATOR.caConfigMap), data: { "ca.crt": args.caCertPem } },
            inNamespace,
        );
        const repositories = new k8s.core.v1.Secret(
            `${prefix}-repositories`,
            {
                metadata: metadata(HELM_OPERATOR.repositoriesSecret),
                type: "Opaque",
                stringData: { "repositories.yaml": repositoriesYaml(args.repositories) },
            },
            inNamespace,
        );

        const probe = httpProbe("/healthz", HELM_OPERATOR.port, {
            initialDelaySeconds: 1,
            periodSeconds: 10,
            timeoutSeconds: 5,
            successThreshold: 1,
            failureThreshold: 3,
        });
        this.deployment = new k8s.apps.v1.Deployment(
            `${prefix}-deployment`,
            {
                metadata: metadata(HELM_OPERATOR.name),
                spec: {
                    replicas: 1,
                    // Two operators must never reconcile the same releases at once.
                    strategy: { type: "Recreate" },
                    selector: { matchLabels: HELM_OPERATOR.labels },
                    template: {
                        // It reads its certificate at start, and its repositories.yaml through a subPath mount.
                        metadata: {
                            labels: HELM_OPERATOR.labels,
                            annotations: rollOnChange([args.clientKeyPair.certPem, args.caCertPem, repositoriesYaml(args.repositories)]),
                        },
                        spec: {
                            serviceAccountName: serviceAccount.metadata.name,
                            terminationGracePeriodSeconds: 300,
                            containers: [
                                {
                                    name: "flux-helm-operator",
                                    image: args.image,
                                    imagePullPolicy: "IfNotPresent",
                                    args: helmOperatorArgs(args.helmVersions, args.tillerHostname),
                                    ports: [{ name: "http", containerPort: HELM_OPERATOR.port }],
                                    livenessProbe: probe,
                                    readinessProbe: probe,
                                    resources: { requests: { cpu: "50m", memory: "64Mi" } },
                                    volumeMounts: [
                                        { name: "helm-tls-certs", mountPath: HELM_OPERATOR.tlsDir, readOnly: true },
                                        { name: "helm-tls-ca", mountPath: HELM_OPERATOR.caDir, readOnly: true },
                                        { name: "repositories-yaml", mountPath: HELM_OPERATOR.repositoriesFile, subPath: "repositories.yaml" },
                                        { name: "repositories-cache", mountPath: "/var/fluxd/helm/repository/cache", subPath: "v2" },
                                        { name: "repositories-cache", mountPath: "/root/.cache/helm/repository", subPath: "v3" },
                                    ],
                                },
                            ],
                            volumes: [
                                { name: "helm-tls-certs", secret: { secretName: clientSecret.metadata.name, defaultMode: 0o400 } },
                                { name: "helm-tls-ca", configMap: { name: caConfigMap.metadata.name, defaultMode: 0o600 } },
                                { name: "repositories-yaml", secret: { secretName: repositories.metadata.name } },
                                { name: "repositories-cache", emptyDir: {} },
                            ],
                        },
                    },
                },
            },
            // Pulumi waits for Tiller's Deployment to be ready before the operator starts dialling it.
            childOf(this, args.provider, [this.namespace, this.crds, ...args.tiller]),
        );

        // It listens only for its own probes and metrics (port 3030), which nothing outside its node needs;
        // a pod that reached it could not make it install anything, but has no reason to try.
        ingressOnlyFrom(
            `${prefix}-ingress`,
            { policyName: `${HELM_OPERATOR.name}-no-ingress`, namespace: this.namespace.metadata.name, podLabels: HELM_OPERATOR.labels, ports: [], from: [] },
            inNamespace,
        );

        this.registerOutputs({ deployment: this.deployment.metadata.name });
    }
}

/** The container arguments, in the order chart-1.4.4's `templates/deployment.yaml` renders them. */
export function helmOperatorArgs(helmVersions: ("v2" | "v3")[], tillerHostname: string): string[] {
    return [
        `--enabled-helm-versions=${helmVersions.join(",")}`,
        ...helmVersions.map((v) => `--helm-repository-import=${v}:${HELM_OPERATOR.repositoriesFile}`),
        "--log-format=fmt",
        "--charts-sync-interval=3m",
        "--status-update-interval=30s",
        "--update-chart-deps=true",
        "--log-release-diffs=false",
        "--workers=4",
        `--tiller-namespace=${TILLER.namespace}`,
        "--tiller-tls-enable=true",
        `--tiller-tls-key-path=${HELM_OPERATOR.tlsDir}/tls.key`,
        `--tiller-tls-cert-path=${HELM_OPERATOR.tlsDir}/tls.crt`,
        "--tiller-tls-verify=true",
        `--tiller-tls-ca-cert-path=${HELM_OPERATOR.caDir}/ca.crt`,
        `--tiller-tls-hostname=${tillerHostname}`,
    ];
}
