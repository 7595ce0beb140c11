import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { childOf } from "./kube";

/** The droplet metadata service, which answers any process on the droplet and knows the node's secrets. */
const METADATA_SERVICE = "169.254.169.254/32";

/** Cilium's label for a pod's namespace, and the prefix it puts on its namespace's labels (pkg/k8s/apis/cilium.io const.go). */
const POD_NAMESPACE = "io.kubernetes.pod.namespace";
const NAMESPACE_LABEL = "io.cilium.k8s.namespace.labels";

export interface AppIsolationArgs {
    /** The Kubernetes provider of the cluster. */
    provider: k8s.Provider;
    /** Workflow's own namespace, which is no app's. */
    workflowNamespace: string;
    /** The labels Workflow's controller gives the namespace of every app it creates. */
    appNamespaceLabels: Record<string, string>;
    /** Workflow's object store, whose slugs app pods fetch at start. */
    objectStore: { labels: Record<string, string>; port: number };
    /** The cluster's DNS. */
    dns: { namespace: string; labels: Record<string, string>; port: number };
}

/**
 * What the pods of Workflow's apps reach, and what reaches them. Their namespaces appear whenever a user
 * runs `deis create`, so no policy of a namespace's own can be there first: this is one cluster-wide
 * policy of Cilium's own kind (DOKS's network is Cilium), which selects pods by their namespace's labels.
 * Apps reach each other, DNS, Workflow's object store, the internet and the ingress controller on every
 * node (80 and 443: the platform's public addresses are the nodes'), but not the Kubernetes API, the nodes'
 * other ports, the platform's or Workflow's services, nor the droplet metadata service; they are reached by
 * each other and by the ingress controller, which runs on every node's network.
 */
export class AppIsolation extends pulumi.ComponentResource {
    public readonly policy: k8s.apiextensions.CustomResource;

    constructor(name: string, args: AppIsolationArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:appIsolation:AppIsolation", name, {}, opts);
        const apps = {
            matchLabels: Object.fromEntries(Object.entries(args.appNamespaceLabels).map(([k, v]) => [`${NAMESPACE_LABEL}.${k}`, v])),
            matchExpressions: [{ key: POD_NAMESPACE, operator: "NotIn", values: [args.workflowNamespace] }],
        };
        const port = (number: number, protocol: string) => [{ ports: [{ port: String(number), protocol }] }];

        this.policy = new k8s.apiextensions.CustomResource(
            `${name}-workflow-apps`,
            {
                apiVersion: "cilium.io/v2",
                kind: "CiliumClusterwideNetworkPolicy",
                metadata: { name: "hephy-doks-workflow-apps" },
                spec: {
                    description: "Workflow's apps reach each other, DNS, the object store and the internet; the ingress controller and other apps reach them.",
                    endpointSelector: apps,
                    ingress: [{ fromEndpoints: [apps] }, { fromEntities: ["host", "remote-node"] }],
                    egress: [
                        { toEndpoints: [apps] },
                        { toEndpoints: [{ matchLabels: { [POD_NAMESPACE]: args.dns.namespace, ...args.dns.labels } }], toPorts: port(args.dns.port, "ANY") },
                        {
                            toEndpoints: [{ matchLabels: { [POD_NAMESPACE]: args.workflowNamespace, ...args.objectStore.labels } }],
                            toPorts: port(args.objectStore.port, "TCP"),
                        },
                        { toEntities: ["world"] },
                        // The platform's own addresses are the nodes', which Cilium does not count as the world:
                        // an app calling another by its public URL reaches the ingress controller there.
                        {
                            toEntities: ["host", "remote-node"],
                            toPorts: [
                                {
                                    ports: [
                                        { port: "80", protocol: "TCP" },
                                        { port: "443", protocol: "TCP" },
                                    ],
                                },
                            ],
                        },
                    ],
                    // DOKS's API server is outside the cluster; Cilium gives its address a CIDR identity that
                    // `world` takes too (cilium pkg/labels/cidr/cidr.go, pkg/ipcache/metadata.go): only a deny keeps it.
                    egressDeny: [{ toCIDR: [METADATA_SERVICE] }, { toEntities: ["kube-apiserver"] }],
                },
            },
            childOf(this, args.provider),
        );

        this.registerOutputs({});
    }
}
