import * as crypto from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

/** Options for a Kubernetes child of a component: parented, and on the cluster's provider. */
export function childOf(parent: pulumi.Resource, provider: k8s.Provider, dependsOn?: pulumi.Input<pulumi.Resource>[]): pulumi.CustomResourceOptions {
    return { parent, provider, dependsOn };
}

/** A ServiceAccount bound cluster-wide to a ClusterRole, as Tiller and helm-operator each need. */
export function boundServiceAccount(
    prefix: string,
    args: { name: string; namespace: pulumi.Input<string>; clusterRole: pulumi.Input<string>; labels: Record<string, string> },
    opts: pulumi.CustomResourceOptions,
): { serviceAccount: k8s.core.v1.ServiceAccount; binding: k8s.rbac.v1.ClusterRoleBinding } {
    const serviceAccount = new k8s.core.v1.ServiceAccount(
        `${prefix}-sa`,
        { metadata: { name: args.name, namespace: args.namespace, labels: args.labels } },
        opts,
    );
    const binding = new k8s.rbac.v1.ClusterRoleBinding(
        `${prefix}-binding`,
        {
            metadata: { name: args.name, labels: args.labels },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: args.clusterRole },
            subjects: [{ kind: "ServiceAccount", name: serviceAccount.metadata.name, namespace: args.namespace }],
        },
        opts,
    );
    return { serviceAccount, binding };
}

/** An HTTP GET probe, with the timings the upstream manifest gives. */
export function httpProbe(path: string, port: number | string, timings: Omit<k8s.types.input.core.v1.Probe, "httpGet">): k8s.types.input.core.v1.Probe {
    return { httpGet: { path, port }, ...timings };
}

/**
 * Pod template annotations that change whenever any of `inputs` changes, so the Deployment rolls.
 * For processes that read mounted certificates or files only when they start (Tiller, helm-operator):
 * Kubernetes updates a mounted Secret in place, and a subPath mount not at all, but neither restarts anyone.
 */
export function rollOnChange(inputs: pulumi.Input<string>[]): pulumi.Output<Record<string, string>> {
    return pulumi.all(inputs).apply((values): Record<string, string> => ({
        "hephy-doks/inputs-sha256": crypto.createHash("sha256").update(values.join("\0")).digest("hex"),
    }));
}

/** Pods of one namespace, by their labels. */
export interface PodPeer {
    /** The pods' namespace. */
    namespace: string;
    /** Labels every one of the pods carries. */
    labels: Record<string, string>;
}

/**
 * A NetworkPolicy that lets only the `from` pods reach the selected pods, on `ports` (TCP): no other
 * pod, and no node (Cilium, DOKS's network, tells nodes apart from pods; the kubelet's probes of a
 * node's own pods are always let through). With no `from`, nothing reaches them.
 */
export function ingressOnlyFrom(
    name: string,
    args: { policyName: string; namespace: pulumi.Input<string>; podLabels: Record<string, string>; ports: number[]; from: PodPeer[] },
    opts: pulumi.CustomResourceOptions,
): k8s.networking.v1.NetworkPolicy {
    return new k8s.networking.v1.NetworkPolicy(
        name,
        {
            metadata: { name: args.policyName, namespace: args.namespace },
            spec: {
                podSelector: { matchLabels: args.podLabels },
                policyTypes: ["Ingress"],
                ingress:
                    args.from.length === 0
                        ? []
                        : [
                              {
                                  from: args.from.map((peer) => ({
                                      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": peer.namespace } },
                                      podSelector: { matchLabels: peer.labels },
                                  })),
                                  ports: args.ports.map((port) => ({ protocol: "TCP", port })),
                              },
                          ],
            },
        },
        opts,
    );
}
