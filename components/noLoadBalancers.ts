import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { childOf } from "./kube";

export interface NoLoadBalancersArgs {
    /** The Kubernetes provider of the cluster. */
    provider: k8s.Provider;
    /** The Service to turn from LoadBalancer into ClusterIP, as `namespace/name`; omit when Workflow is off. */
    builderService?: { namespace: string; name: string };
}

/**
 * Admission policies that keep every Service off a DigitalOcean load balancer, enforced by the API
 * server itself, so no Service of type LoadBalancer is ever persisted (a DO load balancer is billed
 * from the moment the cloud controller sees one).
 *
 * - A MutatingAdmissionPolicy rewrites Workflow's `deis-builder` Service to ClusterIP on the way in.
 *   In native-ingress mode the builder chart hard-codes `type: "LoadBalancer"` with no value to change
 *   it (teamhephy/builder v2.13.7 charts/builder/templates/builder-service.yaml), and Helm 2 lets no
 *   subchart value override the parent's global switch. Both Tiller's two-way merge and helm-operator's
 *   dry-run compare look at rendered manifests, not the live object, so the release stays equal to its
 *   chart and the operator does not loop as it did in the article. nginx reaches the builder through
 *   its ClusterIP (`tcp: {2222: deis/deis-builder:2222}`).
 * - A ValidatingAdmissionPolicy denies any other Service of type LoadBalancer, whatever chart renders it.
 */
export class NoLoadBalancers extends pulumi.ComponentResource {
    /** Create these before any release that could render a LoadBalancer Service. */
    public readonly ready: pulumi.Resource[];

    constructor(name: string, args: NoLoadBalancersArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:noLoadBalancers:NoLoadBalancers", name, {}, opts);
        const child = childOf(this, args.provider);
        const services = { apiGroups: [""], apiVersions: ["v1"], resources: ["services"], operations: ["CREATE", "UPDATE"] };

        const deny = new k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            `${name}-deny-loadbalancers`,
            {
                metadata: { name: "deny-loadbalancer-services" },
                spec: {
                    failurePolicy: "Fail",
                    matchConstraints: { resourceRules: [services] },
                    validations: [
                        {
                            expression: "object.spec.type != 'LoadBalancer'",
                            message: "hephy-doks runs without load balancers: expose Services through the nginx DaemonSet (Ingress or its tcp map), not type LoadBalancer",
                            reason: "Forbidden",
                        },
                    ],
                },
            },
            child,
        );
        const denyBinding = new k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            `${name}-deny-loadbalancers`,
            { metadata: { name: "deny-loadbalancer-services" }, spec: { policyName: deny.metadata.name, validationActions: ["Deny"] } },
            child,
        );
        this.ready = [deny, denyBinding];

        if (args.builderService) {
            const { namespace, name: service } = args.builderService;
            // JSONPatch, not ApplyConfiguration: the API server has already defaulted
            // allocateLoadBalancerNodePorts and externalTrafficPolicy for a LoadBalancer, and validation
            // rejects both on a ClusterIP Service, so they must be removed (kubernetes/api
            // admissionregistration/v1/types.go @v0.36.0; pkg/apis/core/v1/defaults.go SetDefaults_Service).
            const toClusterIp = [
                '[JSONPatch{op: "replace", path: "/spec/type", value: "ClusterIP"}]',
                '(has(object.spec.allocateLoadBalancerNodePorts) ? [JSONPatch{op: "remove", path: "/spec/allocateLoadBalancerNodePorts"}] : [])',
                '(has(object.spec.externalTrafficPolicy) ? [JSONPatch{op: "remove", path: "/spec/externalTrafficPolicy"}] : [])',
                '(has(object.spec.loadBalancerClass) ? [JSONPatch{op: "remove", path: "/spec/loadBalancerClass"}] : [])',
            ].join(" + ");
            const mutate = new k8s.admissionregistration.v1.MutatingAdmissionPolicy(
                `${name}-builder-clusterip`,
                {
                    metadata: { name: "deis-builder-clusterip" },
                    spec: {
                        failurePolicy: "Fail",
                        reinvocationPolicy: "IfNeeded",
                        matchConstraints: {
                            resourceRules: [{ ...services, resourceNames: [service] }],
                            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
                        },
                        matchConditions: [{ name: "only-when-loadbalancer", expression: "object.spec.type == 'LoadBalancer'" }],
                        mutations: [{ patchType: "JSONPatch", jsonPatch: { expression: toClusterIp } }],
                    },
                },
                child,
            );
            const mutateBinding = new k8s.admissionregistration.v1.MutatingAdmissionPolicyBinding(
                `${name}-builder-clusterip`,
                { metadata: { name: "deis-builder-clusterip" }, spec: { policyName: mutate.metadata.name } },
                child,
            );
            this.ready.push(mutate, mutateBinding);
        }

        this.registerOutputs({});
    }
}
