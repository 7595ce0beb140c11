import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { childOf } from "./kube";

export interface NoLoadBalancersArgs {
    /** The Kubernetes provider of the cluster. */
    provider: k8s.Provider;
}

/**
 * An admission policy that keeps every Service off a DigitalOcean load balancer, enforced by the API
 * server itself, so no Service of type LoadBalancer is ever persisted (a DO load balancer is billed
 * from the moment the cloud controller sees one). The platform's own charts render none: the ingress
 * controller serves every node's host ports and Workflow's builder Service is a ClusterIP. This is the
 * guard against any other chart or `kubectl apply` that asks for one.
 */
export class NoLoadBalancers extends pulumi.ComponentResource {
    /** Create these before any release, so a LoadBalancer Service is refused from the start. */
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
                            message: "hephy-doks runs without load balancers: expose Services through the ingress controller on every node (an Ingress, or its TCP forwards), not type LoadBalancer",
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

        this.registerOutputs({});
    }
}
