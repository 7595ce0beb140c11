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
