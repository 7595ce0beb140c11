import * as fs from "node:fs";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { childOf, rollOnChange } from "./kube";

export interface NodeDnsReconcilerArgs {
    provider: k8s.Provider;
    /** The namespace it runs in: the ingress controller's, whose pods it watches. */
    namespace: pulumi.Input<string>;
    /** The DNS zone in the DigitalOcean account, such as `example.com`. */
    domain: string;
    /** Record name relative to the zone, such as `*.staging`: the one `NodeDns` writes at `pulumi up` without a token. */
    recordName: string;
    /** The TTL of its records, which also marks them as its own (incluster/nodedns.py). */
    ttl: number;
    /** A label selector of the ingress controller's pods in `namespace`. */
    ingressSelector: string;
    /** Whether to publish the nodes' IPv6 addresses as AAAA records too. */
    ipv6: boolean;
    /** The DNS-only DigitalOcean token (domain:read, create, update, delete). */
    token: pulumi.Input<string>;
    /** An image with Python 3.6 or later and its standard library: Workflow's controller's, pinned in the catalog. */
    image: string;
    /** Seconds between full passes; nodes and pods are watched in between. */
    resyncSeconds: number;
    /** The reconciler's code, and the shared Kubernetes client it imports, as files on disk. */
    code: { program: string; kubeclient: string };
    /** What must exist first: the namespace. */
    dependsOn?: pulumi.Input<pulumi.Resource>[];
}

const NAME = "hephy-doks-node-dns";
const READY_FILE = "/tmp/hephy-doks-node-dns-ready";

/**
 * The in-cluster reconciler that keeps the platform's wildcard records on the nodes that serve, between
 * `pulumi up`s (incluster/nodedns.py says how). It reads nodes and the ingress controller's pods, and
 * its Deployment (to tell a teardown from a restart), and writes DNS through DigitalOcean's API with a
 * token that can do nothing else. It is Ready once it alone publishes the name, which is what makes the
 * cut-over from `pulumi up`'s records gap-free: Pulumi deletes the records it leaves behind only at the
 * end of the update, after it has waited for this Deployment.
 */
export class NodeDnsReconciler extends pulumi.ComponentResource {
    public readonly deployment: k8s.apps.v1.Deployment;

    constructor(name: string, args: NodeDnsReconcilerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:nodeDnsReconciler:NodeDnsReconciler", name, {}, opts);
        const child = childOf(this, args.provider, args.dependsOn);
        const labels = { app: NAME };
        const metadata = (objectName: string) => ({ name: objectName, namespace: args.namespace, labels });
        const code = {
            "nodedns.py": fs.readFileSync(args.code.program, "utf8"),
            "kubeclient.py": fs.readFileSync(args.code.kubeclient, "utf8"),
        };

        const token = new k8s.core.v1.Secret(`${name}-node-dns-token`, { metadata: metadata(`${NAME}-token`), stringData: { token: args.token } }, child);
        const codeMap = new k8s.core.v1.ConfigMap(`${name}-node-dns-code`, { metadata: metadata(`${NAME}-code`), data: code }, child);
        const serviceAccount = new k8s.core.v1.ServiceAccount(`${name}-node-dns`, { metadata: metadata(NAME) }, child);
        const nodeReader = new k8s.rbac.v1.ClusterRole(
            `${name}-node-dns`,
            { metadata: { name: NAME, labels }, rules: [{ apiGroups: [""], resources: ["nodes"], verbs: ["list", "watch"] }] },
            child,
        );
        const nodeBinding = new k8s.rbac.v1.ClusterRoleBinding(
            `${name}-node-dns`,
            {
                metadata: { name: NAME, labels },
                roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: nodeReader.metadata.name },
                subjects: [{ kind: "ServiceAccount", name: serviceAccount.metadata.name, namespace: args.namespace }],
            },
            child,
        );
        const podReader = new k8s.rbac.v1.Role(
            `${name}-node-dns`,
            {
                metadata: metadata(NAME),
                rules: [
                    { apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"] },
                    { apiGroups: ["apps"], resources: ["deployments"], resourceNames: [NAME], verbs: ["get"] },
                ],
            },
            child,
        );
        const podBinding = new k8s.rbac.v1.RoleBinding(
            `${name}-node-dns`,
            {
                metadata: metadata(NAME),
                roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: podReader.metadata.name },
                subjects: [{ kind: "ServiceAccount", name: serviceAccount.metadata.name, namespace: args.namespace }],
            },
            child,
        );

        const env: Record<string, pulumi.Input<string>> = {
            DOMAIN: args.domain,
            RECORD_NAME: args.recordName,
            TTL_SECONDS: String(args.ttl),
            INGRESS_NAMESPACE: args.namespace,
            INGRESS_SELECTOR: args.ingressSelector,
            PUBLISH_IPV6: String(args.ipv6),
            RESYNC_SECONDS: String(args.resyncSeconds),
            POD_NAMESPACE: args.namespace,
            DEPLOYMENT_NAME: NAME,
            READY_FILE,
            PYTHONDONTWRITEBYTECODE: "1",
        };
        this.deployment = new k8s.apps.v1.Deployment(
            `${name}-node-dns`,
            {
                metadata: metadata(NAME),
                spec: {
                    replicas: 1,
                    // One writer at a time: the old pod stops before the new one starts.
                    strategy: { type: "Recreate" },
                    selector: { matchLabels: labels },
                    template: {
                        metadata: { labels, annotations: rollOnChange([code["nodedns.py"], code["kubeclient.py"]]) },
                        spec: {
                            serviceAccountName: serviceAccount.metadata.name,
                            // Time to delete its records when the stack is torn down (at SIGTERM, its Deployment gone).
                            terminationGracePeriodSeconds: 60,
                            containers: [
                                {
                                    name: "node-dns",
                                    image: args.image,
                                    imagePullPolicy: "IfNotPresent",
                                    command: ["python", "/opt/hephy-doks/node-dns/nodedns.py"],
                                    env: [
                                        ...Object.entries(env).map(([envName, value]) => ({ name: envName, value })),
                                        { name: "DIGITALOCEAN_TOKEN", valueFrom: { secretKeyRef: { name: token.metadata.name, key: "token" } } },
                                    ],
                                    // Ready once it alone publishes the name: `pulumi up` waits for that before it
                                    // deletes the records it wrote without a token.
                                    readinessProbe: { exec: { command: ["test", "-f", READY_FILE] }, periodSeconds: 5 },
                                    resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } },
                                    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: false },
                                    volumeMounts: [{ name: "code", mountPath: "/opt/hephy-doks/node-dns", readOnly: true }],
                                },
                            ],
                            volumes: [{ name: "code", configMap: { name: codeMap.metadata.name } }],
                        },
                    },
                },
            },
            // Its rights go after it at teardown, so it can still read its Deployment when it is stopped.
            { ...child, dependsOn: [...(args.dependsOn ?? []), nodeBinding, podBinding] },
        );

        this.registerOutputs({});
    }
}
