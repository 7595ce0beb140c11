import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { boundServiceAccount, childOf, httpProbe, ingressOnlyFrom, PodPeer, rollOnChange } from "./kube";
import { KeyPair } from "./tillerPki";

/** Names and ports `helm init` uses (helm/helm v2.17.0 `cmd/helm/installer/uninstall.go`, `pkg/tiller/environment`). */
export const TILLER = {
    namespace: "kube-system",
    deployment: "tiller-deploy",
    service: "tiller-deploy",
    secret: "tiller-secret",
    serviceAccount: "tiller",
    port: 44134,
    probePort: 44135,
    certsPath: "/etc/certs",
    /** `generateLabels` in `cmd/helm/installer/install.go`. */
    labels: { app: "helm", name: "tiller" } as Record<string, string>,
} as const;

export interface TillerArgs {
    /** The Kubernetes provider of the cluster. */
    provider: k8s.Provider;
    /** The Tiller image, such as `ghcr.io/helm/tiller:v2.17.0`. */
    image: string;
    /** Release revisions Tiller keeps per release (`--history-max`). */
    historyMax: number;
    /** Tiller's server key pair. */
    serverKeyPair: KeyPair;
    /** PEM of the CA that signed the clients Tiller must accept. */
    caCertPem: pulumi.Input<string>;
    /** The only pods that may reach Tiller's port: helm-operator's. */
    clients: PodPeer[];
}

/**
 * Tiller (Helm v2) in `kube-system`, exactly as `helm init --service-account tiller --tiller-tls
 * --tiller-tls-verify --tiller-tls-cert --tiller-tls-key --tls-ca-cert --history-max N` creates it
 * (helm/helm v2.17.0 `cmd/helm/installer/install.go`), plus release data in Secrets.
 */
export class Tiller extends pulumi.ComponentResource {
    public readonly deployment: k8s.apps.v1.Deployment;
    public readonly service: k8s.core.v1.Service;
    public readonly secret: k8s.core.v1.Secret;
    public readonly networkPolicy: k8s.networking.v1.NetworkPolicy;
    public readonly nodeDenial: k8s.apiextensions.CustomResource;

    constructor(name: string, args: TillerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:tiller:Tiller", name, {}, opts);
        const child = childOf(this, args.provider);
        const metadata = (objectName: string) => ({ name: objectName, namespace: TILLER.namespace, labels: TILLER.labels });

        // As in the article: Tiller acts for helm-operator on every namespace, so it is bound to
        // cluster-admin. Only holders of a certificate from our CA can talk to it (TLS verify below).
        const { serviceAccount } = boundServiceAccount(
            `${name}-tiller`,
            { name: TILLER.serviceAccount, namespace: TILLER.namespace, clusterRole: "cluster-admin", labels: TILLER.labels },
            child,
        );

        // `generateSecret`: ca.crt is written only because verification is on.
        this.secret = new k8s.core.v1.Secret(
            `${name}-tiller-secret`,
            {
                metadata: metadata(TILLER.secret),
                type: "Opaque",
                stringData: {
                    "tls.crt": args.serverKeyPair.certPem,
                    "tls.key": args.serverKeyPair.keyPem,
                    "ca.crt": args.caCertPem,
                },
            },
            child,
        );

        const probeTimings = { initialDelaySeconds: 1, timeoutSeconds: 1 };
        this.deployment = new k8s.apps.v1.Deployment(
            `${name}-tiller-deploy`,
            {
                metadata: metadata(TILLER.deployment),
                spec: {
                    replicas: 1,
                    selector: { matchLabels: TILLER.labels },
                    template: {
                        // A renewed certificate reaches Tiller only through a restart.
                        metadata: { labels: TILLER.labels, annotations: rollOnChange([args.serverKeyPair.certPem, args.caCertPem]) },
                        spec: {
                            serviceAccountName: serviceAccount.metadata.name,
                            automountServiceAccountToken: true,
                            containers: [
                                {
                                    name: "tiller",
                                    image: args.image,
                                    imagePullPolicy: "IfNotPresent",
                                    // Release data holds chart values, which can hold credentials: keep it
                                    // in Secrets, not the default ConfigMaps. This is the override helm/helm
                                    // v2.17.0 docs/securing_installation.md gives for `helm init`.
                                    command: ["/tiller", "--storage=secret"],
                                    env: [
                                        { name: "TILLER_NAMESPACE", value: TILLER.namespace },
                                        { name: "TILLER_HISTORY_MAX", value: String(args.historyMax) },
                                        { name: "TILLER_TLS_VERIFY", value: "1" },
                                        { name: "TILLER_TLS_ENABLE", value: "1" },
                                        { name: "TILLER_TLS_CERTS", value: TILLER.certsPath },
                                    ],
                                    ports: [
                                        { containerPort: TILLER.port, name: "tiller" },
                                        { containerPort: TILLER.probePort, name: "http" },
                                    ],
                                    livenessProbe: httpProbe("/liveness", TILLER.probePort, probeTimings),
                                    readinessProbe: httpProbe("/readiness", TILLER.probePort, probeTimings),
                                    // Not BestEffort, which a node under pressure evicts first: every release goes through Tiller.
                                    resources: { requests: { cpu: "50m", memory: "64Mi" } },
                                    volumeMounts: [{ name: "tiller-certs", mountPath: TILLER.certsPath, readOnly: true }],
                                },
                            ],
                            volumes: [{ name: "tiller-certs", secret: { secretName: this.secret.metadata.name } }],
                        },
                    },
                },
            },
            child,
        );

        this.service = new k8s.core.v1.Service(
            `${name}-tiller-service`,
            {
                metadata: metadata(TILLER.service),
                spec: {
                    type: "ClusterIP",
                    ports: [{ name: "tiller", port: TILLER.port, targetPort: "tiller" }],
                    selector: TILLER.labels,
                },
            },
            child,
        );

        // Tiller acts as cluster-admin for whoever holds a client certificate; the network keeps everyone
        // else from even trying (`helm --tls` through a port-forward enters the pod's own network).
        this.networkPolicy = ingressOnlyFrom(
            `${name}-tiller-ingress`,
            { policyName: "tiller-from-helm-operator", namespace: TILLER.namespace, podLabels: TILLER.labels, ports: [TILLER.port], from: args.clients },
            child,
        );
        // Cilium lets a node reach its own pods whatever allows them (allow-localhost), and the ingress
        // controller, which the internet reaches and which reads every Secret (the client key included), runs
        // on every node's network; a deny outranks that allow (docs.cilium.io, "Deny Policies"). The probes
        // use the other port.
        this.nodeDenial = new k8s.apiextensions.CustomResource(
            `${name}-tiller-deny-nodes`,
            {
                apiVersion: "cilium.io/v2",
                kind: "CiliumNetworkPolicy",
                metadata: { name: "tiller-deny-nodes", namespace: TILLER.namespace },
                spec: {
                    description: "No node, nor anything on a node's network, reaches Tiller's API.",
                    endpointSelector: { matchLabels: TILLER.labels },
                    ingressDeny: [{ fromEntities: ["host", "remote-node"], toPorts: [{ ports: [{ port: String(TILLER.port), protocol: "TCP" }] }] }],
                },
            },
            child,
        );

        this.registerOutputs({ deployment: this.deployment.metadata.name, service: this.service.metadata.name });
    }
}
