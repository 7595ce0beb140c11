import * as crypto from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as YAML from "yaml";
import { IngressPrerequisites } from "./ingressPrerequisites";
import { childOf } from "./kube";
import { AppIsolation, AppIsolationArgs } from "./appIsolation";
import { WorkflowSecrets } from "./workflowSecrets";
import { DO_CSI_PROVISIONER, WORKFLOW_VOLUME, WorkflowStorage } from "./workflowStorage";
import { spacesEndpoint, WORKFLOW_BACKUP, WorkflowBackup, WorkflowBackupArgs } from "./workflowBackup";
import { VolumeSnapshots, VolumeSnapshotsArgs } from "./volumeSnapshots";
import { INGRESS_CLASS, mergeValues, releaseValues, tcpForwards } from "./releaseValues";
import { ALLOW_UNSAFE_ANNOTATION, ChartSource, KeyAlgorithm, ReleaseEntry, ReleaseKey, RepositoryChart } from "../types";

/** The ACME directories of Let's Encrypt (https://letsencrypt.org/docs/staging-environment/). */
export const ACME_SERVERS = {
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "letsencrypt-prod": "https://acme-v02.api.letsencrypt.org/directory",
} as const;

/** How long `pulumi up` waits for helm-operator to report a release Released. */
const RELEASE_TIMEOUT_SECONDS = 900;

export interface PlatformArgs {
    /** The Kubernetes provider of the cluster. */
    provider: k8s.Provider;
    /** The releases to install, from the catalog with this stack's overrides. */
    releases: Readonly<Record<ReleaseKey, ReleaseEntry>>;
    /** Whether to install Hephy Workflow. */
    workflowEnabled: boolean;
    /** `<platformSubdomain>.<domain>`: Workflow's `controller.platform_domain`. */
    platformDomain: string;
    /** Email of the Let's Encrypt account of both ClusterIssuers. */
    acmeEmail: string;
    /** URL of the cert-manager CRD manifest of the pinned cert-manager release. */
    certManagerCrdUrl: string;
    /** What every HelmRelease waits for: the HelmRelease CRD, helm-operator and Tiller. */
    operatorReady: pulumi.Resource[];
    /** The admission policies that keep Services off node ports and load balancers, and guard Workflow's writes; in force before any release. */
    admissionGuards: pulumi.Resource[];
    /** Where the bundled charts of the catalog are served in the cluster, and what to wait for; required for each bundled release. */
    servedCharts: Partial<Record<ReleaseKey, { chart: RepositoryChart; ready: pulumi.Resource[] }>>;
    /** Revisions helm-operator keeps of each release (`spec.maxHistory`). */
    historyMax: number;
    /** The ingress controller's default certificate: key algorithm and lifetime. */
    ingressCertificate: { keyAlgorithm: KeyAlgorithm; validityHours: number; earlyRenewalHours: number };
    /** Helm values that carry secrets, per release: sent in a Secret the HelmRelease reads, never in its spec. */
    secretValues: Readonly<Partial<Record<ReleaseKey, Readonly<Record<string, unknown>>>>>;
    /** Workflow's volume: its size in GiB, and whether it outlives its claim (a protected stack). */
    workflowVolume: { sizeGib: number; protect: boolean };
    /** Namespaces Workflow must keep out of, which no app may therefore be named after. */
    protectedNamespaces: readonly string[];
    /** Workflow as its chart installs it: the builder's Service and SSH port, the app names it refuses, what its apps reach. */
    workflowFacts: {
        builder: { service: string; port: number };
        reservedNames: readonly string[];
        apps: Pick<AppIsolationArgs, "appNamespaceLabels" | "objectStore" | "dns">;
        /** The pinned images of its registry and Dockerfile builds. */
        buildImages: { registry: string; dockerfileBuild: string; cnbBuild: string };
    };
    /** The ingress controller's ServiceAccount, which the admission policy names. */
    ingressServiceAccount: string;
    /** The off-cluster copy of Workflow's object store, and the bucket a new stack restores from; undefined: no copy. */
    workflowBackup?: Omit<WorkflowBackupArgs, "provider" | "namespace" | "dns" | "objectStore" | "databaseCredentials"> & {
        objectStore: Pick<WorkflowBackupArgs["objectStore"], "service" | "credentialsSecret" | "databaseBucket">;
    };
    /** Scheduled snapshots of Workflow's volume: the schedule, how many to keep, and the operator that takes them; undefined: none. */
    volumeSnapshots?: Pick<VolumeSnapshotsArgs, "schedule" | "keep" | "operator">;
    /** A bucket a new stack fills its object store from before Workflow starts (minio's restore), with the image that copies it. */
    workflowRestore?: {
        region: string;
        bucket: string;
        image: string;
        databaseBucket: string;
        /** The old stack's database user and password, which the restored data needs. */
        databaseCredentials: { user: pulumi.Input<string>; password: pulumi.Input<string> };
    };
}

/** The key helm-operator reads a `valuesFrom` Secret at by default (fluxcd/helm-operator v1.4.4 pkg/release/values.go). */
const SECRET_VALUES_KEY = "values.yaml";

/** The HelmRelease annotation that changes with its secret values. */
export const SECRET_VALUES_DIGEST = "hephy-doks/secret-values-hmac";

/**
 * Resource options of the ingress controller's HelmRelease. Every controller this release has ever
 * installed binds 80 and 443 on every node and owns IngressClass `nginx`, so a new one cannot start
 * while the old one runs: a changed chart or namespace replaces the release, deleting the old one
 * first. helm-operator uninstalls a release inside its informer's delete handler, before the same
 * informer hands it the new release (fluxcd/helm-operator v1.4.4 pkg/operator/operator.go
 * `DeleteFunc`); the new pods wait in Pending until the old ones free the ports. The logical name stays
 * the one the ingress-nginx release had, so an existing stack replaces it in place rather than
 * creating the new one first and deleting the old one at the end. The same run may roll helm-operator
 * (its repositories change); the releases wait for its Deployment, which is ready only after its
 * informer has synced (cmd/helm-operator/main.go @ v1.4.4), so the operator is watching when the
 * delete comes. A delete it misses leaves ingress-nginx installed: docs/ingress.md has the recovery.
 */
export const INGRESS_CUTOVER: Pick<pulumi.CustomResourceOptions, "deleteBeforeReplace" | "replaceOnChanges"> = {
    deleteBeforeReplace: true,
    // A namespace change replaces the object anyway; an in-place upgrade from one chart to another
    // would fail on the IngressClass, whose spec.controller is immutable.
    replaceOnChanges: ["spec.chart.name"],
};

/** `spec.chart` of a HelmRelease; a git source skips helm-operator's dependency update, as the article's fix does. */
function chartSpec(chart: Exclude<ChartSource, { bundled: string }>): Record<string, unknown> {
    return "git" in chart ? { git: chart.git, ref: chart.ref, path: chart.path, skipDepUpdate: true } : { ...chart };
}

/**
 * The article's GitOps repository, as Pulumi resources: the namespaces, the HelmReleases that
 * helm-operator turns into the ingress controller, cert-manager and Hephy Workflow, cert-manager's CRDs and
 * the two Let's Encrypt ClusterIssuers.
 */
export class Platform extends pulumi.ComponentResource {
    public readonly helmReleases: Partial<Record<ReleaseKey, k8s.apiextensions.CustomResource>> = {};
    public readonly clusterIssuers: k8s.apiextensions.CustomResource[];
    /** Workflow's first admin, which the project's chart creates; undefined without Workflow or with a chart of the user's own. */
    public readonly workflowAdmin?: { username: pulumi.Output<string>; password: pulumi.Output<string> };
    /** The claim on Workflow's volume, which the project's chart mounts; undefined without Workflow or with a chart of the user's own. */
    public readonly workflowVolume?: k8s.core.v1.PersistentVolumeClaim;
    /** The claim of Workflow's image registry, when the program's own chart installs Workflow. */
    /** The off-cluster copy of Workflow's object store; undefined without one. */
    public readonly workflowBackup?: WorkflowBackup;
    /** Scheduled snapshots of Workflow's volume; undefined without them. */
    public readonly volumeSnapshots?: VolumeSnapshots;

    constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:platform:Platform", name, {}, opts);
        const ingressNamespace = args.releases.ingress.namespace;
        const tcpServices = tcpForwards(args.releases.workflow.namespace, args.workflowEnabled ? args.workflowFacts.builder : undefined);
        const values = releaseValues({
            platformDomain: args.platformDomain,
            ingressNamespace,
            tcpServices,
            reservedAppNames: [...args.workflowFacts.reservedNames, ...args.protectedNamespaces],
            ingressServiceAccount: args.ingressServiceAccount,
            workflowBuildImages: args.workflowFacts.buildImages,
        });

        const release = (key: ReleaseKey, dependsOn: (namespace: k8s.core.v1.Namespace) => pulumi.Resource[], options: pulumi.CustomResourceOptions = {}) => {
            const entry = args.releases[key];
            const served = args.servedCharts[key];
            if ("bundled" in entry.chart && !served) {
                throw new pulumi.ResourceError(`release ${key} uses the bundled chart ${entry.chart.bundled}, but nothing serves it`, this);
            }
            const chart = "bundled" in entry.chart ? served!.chart : entry.chart;
            const labels = key === "certManager" ? { "cert-manager.io/disable-validation": "true" } : undefined;
            // cert-manager's webhook skips namespaces with this label (values.yaml webhook.namespaceSelector),
            // as the article labels its namespace, so cert-manager's own objects never wait on the webhook.
            const namespace = new k8s.core.v1.Namespace(
                `${name}-${entry.namespace}`,
                { metadata: { name: entry.namespace, labels } },
                childOf(this, args.provider),
            );
            // helm-operator merges these under spec.values, which win on the same key (composeValues).
            const secretValues = args.secretValues[key] ? this.secretValues(name, entry, namespace, args.secretValues[key]!, args.provider) : undefined;
            const helmRelease = new k8s.apiextensions.CustomResource(
                `${name}-${entry.releaseName}`,
                {
                    apiVersion: "helm.fluxcd.io/v1",
                    kind: "HelmRelease",
                    metadata: {
                        name: entry.releaseName,
                        namespace: namespace.metadata.name,
                        annotations: {
                            // helm-operator sets Released=True once the release is installed (fluxcd/helm-operator
                            // v1.4.4 pkg/status/conditions.go); without this Pulumi would call the release done as
                            // soon as the API server stored the object.
                            "pulumi.com/waitFor": "condition=Released",
                            "pulumi.com/timeoutSeconds": String(RELEASE_TIMEOUT_SECONDS),
                            ...(secretValues ? { [SECRET_VALUES_DIGEST]: secretValues.digest } : {}),
                            // The policy pack lets this release's values ask for what its override allows.
                            ...(entry.allowUnsafe ? { [ALLOW_UNSAFE_ANNOTATION]: "true" } : {}),
                        },
                    },
                    spec: {
                        releaseName: entry.releaseName,
                        helmVersion: entry.helmVersion,
                        chart: chartSpec(chart),
                        // Helm waits for the pods, so Released means running (the webhook before the issuers).
                        wait: true,
                        timeout: RELEASE_TIMEOUT_SECONDS - 60,
                        maxHistory: args.historyMax,
                        values: mergeValues(values[key], entry.values),
                        ...(secretValues ? { valuesFrom: [{ secretKeyRef: { name: secretValues.secret.metadata.name, key: SECRET_VALUES_KEY } }] } : {}),
                    },
                },
                {
                    ...childOf(this, args.provider, [
                        ...args.operatorReady,
                        ...args.admissionGuards,
                        ...(served?.ready ?? []),
                        ...dependsOn(namespace),
                        ...(secretValues ? [secretValues.secret] : []),
                    ]),
                    ...options,
                },
            );
            this.helmReleases[key] = helmRelease;
            return helmRelease;
        };

        const ingress = release(
            "ingress",
            (namespace) =>
                new IngressPrerequisites(
                    `${name}-ingress`,
                    {
                        provider: args.provider,
                        namespace: namespace.metadata.name,
                        tcpServices,
                        keyAlgorithm: args.ingressCertificate.keyAlgorithm,
                        certValidityHours: args.ingressCertificate.validityHours,
                        earlyRenewalHours: args.ingressCertificate.earlyRenewalHours,
                        commonName: `*.${args.platformDomain}`,
                    },
                    { parent: this },
                ).ready,
            INGRESS_CUTOVER,
        );

        // The article's "kubectl apply the CRDs before installing the chart", automated.
        const certManagerCrds = new k8s.yaml.v2.ConfigFile(`${name}-cert-manager-crds`, { file: args.certManagerCrdUrl }, childOf(this, args.provider));
        const certManager = release("certManager", () => [certManagerCrds]);

        this.clusterIssuers = (Object.keys(ACME_SERVERS) as (keyof typeof ACME_SERVERS)[]).map(
            (issuer) =>
                new k8s.apiextensions.CustomResource(
                    `${name}-${issuer}`,
                    {
                        apiVersion: "cert-manager.io/v1",
                        kind: "ClusterIssuer",
                        metadata: { name: issuer },
                        spec: {
                            acme: {
                                server: ACME_SERVERS[issuer],
                                email: args.acmeEmail,
                                privateKeySecretRef: { name: `${issuer}-account-key` },
                                // cert-manager gives a solver a NodePort Service unless told otherwise
                                // (cert-manager.io/v1 ACMEChallengeSolverHTTP01Ingress `serviceType`), which
                                // deny-exposed-services refuses: the ingress controller reaches a ClusterIP all the same.
                                solvers: [{ http01: { ingress: { ingressClassName: INGRESS_CLASS, serviceType: "ClusterIP" } } }],
                            },
                        },
                    },
                    childOf(this, args.provider, [certManagerCrds, certManager]),
                ),
        );

        if (args.workflowEnabled) {
            // Only the project's chart creates the admin from its Secret (files/controller/start.sh) and
            // mounts the claim; set by the callback, which release() runs before it returns.
            const ownChart = "bundled" in args.releases.workflow.chart;
            let workflowAdmin: WorkflowSecrets["admin"] | undefined;
            let workflowVolume: k8s.core.v1.PersistentVolumeClaim | undefined;
            let workflowBackup: WorkflowBackup | undefined;
            let volumeSnapshots: VolumeSnapshots | undefined;
            // minio's restore (charts/hephy-workflow templates/minio.yaml) fills a new volume from the bucket first.
            if (ownChart && args.workflowRestore) {
                const { region, bucket, image, databaseBucket } = args.workflowRestore;
                values.workflow = mergeValues(values.workflow, {
                    minio: {
                        restore_from: {
                            endpoint: spacesEndpoint(region),
                            bucket,
                            secret: WORKFLOW_BACKUP.restoreSecret,
                            image,
                            database_bucket: databaseBucket,
                        },
                    },
                });
            }
            release("workflow", (namespace) => {
                const secrets = new WorkflowSecrets(
                    `${name}-workflow`,
                    {
                        provider: args.provider,
                        namespace: namespace.metadata.name,
                        databaseCredentials: ownChart ? args.workflowRestore?.databaseCredentials : undefined,
                    },
                    { parent: this },
                );
                workflowAdmin = ownChart ? secrets.admin : undefined;
                const storage = ownChart
                    ? new WorkflowStorage(
                          `${name}-workflow`,
                          { provider: args.provider, namespace: namespace.metadata.name, ...args.workflowVolume },
                          { parent: this },
                      )
                    : undefined;
                workflowVolume = storage?.claim;
                workflowBackup =
                    ownChart && args.workflowBackup
                        ? new WorkflowBackup(
                              `${name}-workflow`,
                              {
                                  provider: args.provider,
                                  namespace: namespace.metadata.name,
                                  ...args.workflowBackup,
                                  objectStore: {
                                      ...args.workflowBackup.objectStore,
                                      labels: args.workflowFacts.apps.objectStore.labels,
                                      port: args.workflowFacts.apps.objectStore.port,
                                  },
                                  dns: args.workflowFacts.apps.dns,
                                  databaseCredentials: secrets.database,
                              },
                              { parent: this },
                          )
                        : undefined;
                volumeSnapshots =
                    storage && args.volumeSnapshots
                        ? new VolumeSnapshots(
                              `${name}-workflow`,
                              {
                                  provider: args.provider,
                                  namespace: namespace.metadata.name,
                                  claimLabels: WORKFLOW_VOLUME.labels,
                                  driver: DO_CSI_PROVISIONER,
                                  ...args.volumeSnapshots,
                                  operatorReady: [...args.operatorReady, ...args.admissionGuards],
                                  releaseTimeoutSeconds: RELEASE_TIMEOUT_SECONDS,
                              },
                              { parent: this, dependsOn: [storage.claim] },
                          )
                        : undefined;
                // App pods are isolated from their first start.
                const isolation = new AppIsolation(
                    `${name}-workflow`,
                    {
                        provider: args.provider,
                        workflowNamespace: args.releases.workflow.namespace,
                        ...args.workflowFacts.apps,
                    },
                    { parent: this },
                );
                // The API Ingress asks letsencrypt-prod for its certificate, so the issuers come first.
                return [
                    ingress,
                    ...this.clusterIssuers,
                    ...secrets.secrets,
                    ...(storage ? [storage.claim] : []),
                    ...(workflowBackup?.ready ?? []),
                    isolation.policy,
                ];
            });
            this.workflowAdmin = workflowAdmin;
            this.workflowVolume = workflowVolume;
            this.workflowBackup = workflowBackup;
            this.volumeSnapshots = volumeSnapshots;
        }

        this.registerOutputs({});
    }

    /**
     * A release's secret values as a Secret, and a keyed digest of them for the HelmRelease: a changed
     * Secret alone would reach the release only at helm-operator's next sync, while a changed annotation
     * makes it reconcile at once (fluxcd/helm-operator v1.4.4 pkg/operator/operator.go `enqueueUpdateJob`).
     * Keyed with a random key in state, the digest tells nothing of the values.
     */
    private secretValues(
        name: string,
        entry: ReleaseEntry,
        namespace: k8s.core.v1.Namespace,
        values: Readonly<Record<string, unknown>>,
        provider: k8s.Provider,
    ): { secret: k8s.core.v1.Secret; digest: pulumi.Output<string> } {
        const text = YAML.stringify(values);
        const secret = new k8s.core.v1.Secret(
            `${name}-${entry.releaseName}-secret-values`,
            {
                metadata: { name: `${entry.releaseName}-secret-values`, namespace: namespace.metadata.name },
                type: "Opaque",
                stringData: { [SECRET_VALUES_KEY]: pulumi.secret(text) },
            },
            childOf(this, provider),
        );
        const key = new random.RandomPassword(`${name}-${entry.releaseName}-secret-values-key`, { length: 32, special: false }, { parent: this });
        const digest = pulumi.unsecret(key.result.apply((k) => crypto.createHmac("sha256", k).update(text).digest("hex")));
        return { secret, digest };
    }
}
