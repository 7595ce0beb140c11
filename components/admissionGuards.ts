import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { childOf } from "./kube";

export interface AdmissionGuardsArgs {
    /** The Kubernetes provider of the cluster. */
    provider: k8s.Provider;
    /** Services that may be NodePort or LoadBalancer all the same, as `namespace/name` (hephy-doks:exposedServices). */
    exposedServices: readonly string[];
    /**
     * Workflow's ServiceAccounts as users: the controller's and builder's, which start app and build pods,
     * and the route reconciler's, which writes apps' Ingresses.
     */
    workflowUsers: { controller: string; builder: string; routes: string };
    /** The labels the controller gives the namespace of every app it creates. */
    appNamespaceLabels: Readonly<Record<string, string>>;
    /** The ingress controller's user, which reads every Secret and writes none. */
    ingressControllerUser: string;
    /** Namespaces those users may not write in, nor create or delete: the cluster's own and the platform's. */
    protectedNamespaces: readonly string[];
    /** Workflow's own namespace: the builder writes only there, the controller never. */
    workflowNamespace: string;
    /**
     * The Dockerfile build container as the build-pod webhook makes it: the only container of Workflow's
     * pods allowed seccomp and AppArmor Unconfined (rootless buildah makes a user namespace).
     */
    dockerfileBuild: { image: string; podNamePrefix: string; command: readonly string[]; scriptMount: string; scriptConfigMap: string };
    /** The builder's buildpack build pods, which the build-pod webhook makes CNB builds, unprivileged. */
    cnbBuild: { podNamePrefix: string };
}

/** A CEL list literal of strings. */
function celList(items: readonly string[]): string {
    return `[${items.map((item) => `'${item.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`).join(", ")}]`;
}

/** The checks on a pod spec at `path` (`object.spec`, or a workload's `object.spec.template.spec`), as ValidatingAdmissionPolicy validations. */
export function podSpecValidations(path: string): { expression: string; message: string }[] {
    const containers = (check: string) =>
        ["containers", "initContainers", "ephemeralContainers"].map((list) => `(!has(${path}.${list}) || ${path}.${list}.all(c, ${check}))`).join(" && ");
    return [
        {
            expression: ["hostNetwork", "hostPID", "hostIPC"].map((field) => `!(has(${path}.${field}) && ${path}.${field})`).join(" && "),
            message: "Workflow's pods run in their own network, process and IPC namespaces, never the node's",
        },
        {
            expression: `!has(${path}.volumes) || ${path}.volumes.all(v, !has(v.hostPath))`,
            message: "Workflow's pods mount no path of the node (a Dockerfile build needs the node's Docker socket, which DOKS nodes do not have)",
        },
        {
            expression: containers("!has(c.securityContext) || !has(c.securityContext.privileged) || !c.securityContext.privileged"),
            message: "Workflow's pods run no privileged container",
        },
        {
            expression: containers("!has(c.ports) || c.ports.all(p, !has(p.hostPort) || p.hostPort == 0)"),
            message: "Workflow's pods take no port of the node",
        },
        {
            // A pod can only name a ServiceAccount of its own namespace; in Workflow's, another one would be
            // the controller's or the builder's, with their cluster-wide rights.
            expression: ["serviceAccountName", "serviceAccount"].map((field) => `(!has(${path}.${field}) || ${path}.${field} == 'default')`).join(" && "),
            message: "Workflow's pods run as their namespace's default ServiceAccount",
        },
    ];
}

/** CEL: a security context (or undefined field) at `sc` that asks for seccomp or AppArmor Unconfined, or an unmasked /proc. */
function relaxes(sc: string): string {
    return (
        `has(${sc}) && ((has(${sc}.seccompProfile) && ${sc}.seccompProfile.type == 'Unconfined') || ` +
        `(has(${sc}.appArmorProfile) && ${sc}.appArmorProfile.type == 'Unconfined') || (has(${sc}.procMount) && ${sc}.procMount == 'Unmasked'))`
    );
}

/**
 * guard-pod-relaxations: a rootless buildah build makes a user namespace, which containerd's default
 * seccomp and AppArmor profiles refuse, so the Dockerfile build container runs with both Unconfined
 * (charts/hephy-workflow files/build/admission.py). That is admitted for exactly that container, as the
 * webhook makes it in the builder's dockerbuild pod, and refused to every other pod of Workflow's
 * namespace, of apps' namespaces, and of Workflow's users anywhere: the controller's, the apps', a
 * slug build's, or a Dockerfile build's own init container.
 */
function relaxationPolicy(args: AdmissionGuardsArgs): Record<string, unknown> {
    const build = args.dockerfileBuild;
    const containers = ["containers", "initContainers", "ephemeralContainers"];
    const anyContainer = (check: string) => containers.map((list) => `(has(object.spec.${list}) && object.spec.${list}.exists(c, ${check}))`).join(" || ");
    const relaxed =
        `${relaxes("object.spec.securityContext")} || ${anyContainer(relaxes("c.securityContext"))} || ` +
        "(has(object.metadata.annotations) && object.metadata.annotations.exists(k, " +
        "k.startsWith('container.apparmor.security.beta.kubernetes.io/') && object.metadata.annotations[k] == 'unconfined'))";
    const users = [args.workflowUsers.controller, args.workflowUsers.builder, args.workflowUsers.routes];
    const inAppNamespace = Object.entries(args.appNamespaceLabels)
        .map(([key, value]) => `'${key}' in namespaceObject.metadata.labels && namespaceObject.metadata.labels['${key}'] == '${value}'`)
        .join(" && ");
    const c = "object.spec.containers[0]";
    const isDockerfileBuild = [
        `request.userInfo.username == '${args.workflowUsers.builder}'`,
        `request.namespace == '${args.workflowNamespace}'`,
        `object.metadata.name.startsWith('${build.podNamePrefix}')`,
        `!(${relaxes("object.spec.securityContext")})`,
        `size(object.spec.containers) == 1`,
        `${c}.image == '${build.image}'`,
        `has(${c}.command) && ${c}.command == ${celList(build.command)} && !has(${c}.args)`,
        `has(${c}.securityContext) && has(${c}.securityContext.runAsNonRoot) && ${c}.securityContext.runAsNonRoot`,
        `has(${c}.securityContext.runAsUser) && ${c}.securityContext.runAsUser != 0`,
        `has(${c}.securityContext.capabilities) && has(${c}.securityContext.capabilities.drop) && ${c}.securityContext.capabilities.drop == ['ALL']`,
        `(!has(${c}.securityContext.capabilities.add) || ${c}.securityContext.capabilities.add.all(cap, cap in ['SETUID', 'SETGID']))`,
        `has(${c}.volumeMounts) && ${c}.volumeMounts.exists(m, m.mountPath == '${build.scriptMount}' && has(m.readOnly) && m.readOnly && ` +
            `object.spec.volumes.exists(v, v.name == m.name && has(v.configMap) && v.configMap.name == '${build.scriptConfigMap}'))`,
        `(!has(object.spec.initContainers) || !object.spec.initContainers.exists(c, ${relaxes("c.securityContext")}))`,
        `!has(object.spec.ephemeralContainers)`,
    ].join(" && ");
    return {
        matchConstraints: {
            resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], resources: ["pods", "pods/ephemeralcontainers"], operations: ["CREATE", "UPDATE"] }],
        },
        matchConditions: [
            {
                name: "workflow-pods",
                expression:
                    `request.userInfo.username in ${celList(users)} || request.namespace == '${args.workflowNamespace}' || ` +
                    `(namespaceObject != null && has(namespaceObject.metadata.labels) && ${inAppNamespace})`,
            },
        ],
        validations: [
            {
                // A pod's security contexts cannot change once it exists; its images can, so an update keeps them.
                expression:
                    `!(${relaxed}) || (request.operation == 'CREATE' && ${isDockerfileBuild}) || ` +
                    "(request.operation == 'UPDATE' && oldObject.spec.containers.map(c, c.image) == object.spec.containers.map(c, c.image) && " +
                    "(!has(object.spec.initContainers) || oldObject.spec.initContainers.map(c, c.image) == object.spec.initContainers.map(c, c.image)) && " +
                    `(!has(object.spec.ephemeralContainers) || !object.spec.ephemeralContainers.exists(c, ${relaxes("c.securityContext")})))`,
                message:
                    "seccomp or AppArmor Unconfined, or an unmasked /proc, is for Workflow's Dockerfile build container only, as the build-pod webhook " +
                    `makes it (${build.image}, its script from ConfigMap ${build.scriptConfigMap}), in the builder's ${build.podNamePrefix}* pods`,
                reason: "Forbidden",
            },
        ],
    };
}

/**
 * Admission policies the API server enforces itself, whoever asks (ValidatingAdmissionPolicy, GA since
 * Kubernetes 1.30):
 * - no Service on a node port or a load balancer (a DigitalOcean load balancer is billed from the
 *   moment the cloud controller sees one, and DigitalOcean's managed firewall opens node ports to the
 *   internet), nor with external IPs, except the Services the stack names;
 * - Workflow's controller and builder, which the internet reaches (the API, git push) and which create
 *   pods and Secrets cluster-wide by design, write nothing in the cluster's or the platform's
 *   namespaces, create or delete none of them, and start no pod with host access, privileges or
 *   another ServiceAccount: each is otherwise one step from cluster-admin (docs/design.md, "Threat model").
 */
export class AdmissionGuards extends pulumi.ComponentResource {
    /** Create these before any release, so what they refuse is refused from the start. */
    public readonly ready: pulumi.Resource[];

    constructor(name: string, args: AdmissionGuardsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:admissionGuards:AdmissionGuards", name, {}, opts);
        const child = childOf(this, args.provider);
        const writes = ["CREATE", "UPDATE"];
        const byUsers = (name: string, users: string[]) => [{ name, expression: `request.userInfo.username in ${celList(users)}` }];
        const byWorkflow = byUsers("workflow-service-accounts", [args.workflowUsers.controller, args.workflowUsers.builder, args.workflowUsers.routes]);
        const inAppNamespace = Object.entries(args.appNamespaceLabels)
            .map(([key, value]) => `'${key}' in namespaceObject.metadata.labels && namespaceObject.metadata.labels['${key}'] == '${value}'`)
            .join(" && ");

        const policy = (policyName: string, spec: Record<string, unknown>) => {
            const vap = new k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                `${name}-${policyName}`,
                { metadata: { name: policyName }, spec: { failurePolicy: "Fail", ...spec } },
                child,
            );
            const binding = new k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                `${name}-${policyName}`,
                { metadata: { name: policyName }, spec: { policyName: vap.metadata.name, validationActions: ["Deny"] } },
                child,
            );
            return [vap, binding];
        };

        this.ready = [
            ...policy("deny-exposed-services", {
                matchConstraints: { resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], resources: ["services"], operations: writes }] },
                validations: [
                    {
                        // An update that keeps the type passes: a Service dropped from exposedServices keeps its
                        // load balancer until deleted, and the cloud controller's finalizer removal must go through
                        // or the Service and its namespace hang in Terminating.
                        expression:
                            "!has(object.spec.type) || !(object.spec.type in ['NodePort', 'LoadBalancer']) || " +
                            `(request.operation == 'UPDATE' && oldObject != null && has(oldObject.spec.type) && oldObject.spec.type == object.spec.type) || ` +
                            `(request.namespace + '/' + object.metadata.name) in ${celList(args.exposedServices)}`,
                        message:
                            "hephy-doks runs without node ports or load balancers: expose Services through the ingress controller on every node " +
                            "(an Ingress, or its TCP forwards), or name the Service in hephy-doks:exposedServices",
                        reason: "Forbidden",
                    },
                    {
                        expression:
                            "!has(object.spec.externalIPs) || " +
                            "object.spec.externalIPs.all(ip, request.operation == 'UPDATE' && oldObject != null && has(oldObject.spec.externalIPs) && ip in oldObject.spec.externalIPs)",
                        message: "a Service's externalIPs would capture traffic to those addresses from every pod (CVE-2020-8554); hephy-doks refuses them",
                        reason: "Forbidden",
                    },
                ],
            }),
            ...policy("guard-workflow-namespaces", {
                matchConstraints: {
                    resourceRules: [
                        { apiGroups: ["*"], apiVersions: ["*"], resources: ["*"], operations: ["CREATE", "UPDATE", "DELETE"], scope: "Namespaced" },
                        { apiGroups: [""], apiVersions: ["v1"], resources: ["namespaces"], operations: ["CREATE", "UPDATE", "DELETE"] },
                    ],
                },
                matchConditions: byWorkflow,
                validations: [
                    {
                        expression: `!(request.namespace in ${celList(args.protectedNamespaces)}) && !(request.kind.kind == 'Namespace' && request.name in ${celList(args.protectedNamespaces)})`,
                        message: `Workflow's controller, builder and route reconciler keep out of ${args.protectedNamespaces.join(", ")}: an app may not be named after one of them`,
                        reason: "Forbidden",
                    },
                    {
                        // Workflow's namespace holds the database's and the admin's Secrets, and its pods pass
                        // Workflow's network policies by their labels; the controller writes only in apps'.
                        expression:
                            `request.userInfo.username != '${args.workflowUsers.controller}' || ` +
                            `(request.namespace != '${args.workflowNamespace}' && !(request.kind.kind == 'Namespace' && request.name == '${args.workflowNamespace}'))`,
                        message: `Workflow's controller writes in apps' namespaces only, never in Workflow's own (${args.workflowNamespace})`,
                        reason: "Forbidden",
                    },
                    {
                        expression: `request.userInfo.username != '${args.workflowUsers.builder}' || request.namespace == '${args.workflowNamespace}'`,
                        message: `Workflow's builder writes in Workflow's namespace (${args.workflowNamespace}) only`,
                        reason: "Forbidden",
                    },
                ],
            }),
            // The route reconciler may write Ingresses anywhere by its RBAC (an app's namespace appears when
            // the app does); it writes them only where the controller put an app.
            ...policy("guard-workflow-routes", {
                matchConstraints: {
                    resourceRules: [
                        { apiGroups: ["networking.k8s.io"], apiVersions: ["v1"], resources: ["ingresses"], operations: ["CREATE", "UPDATE", "DELETE"] },
                    ],
                },
                matchConditions: byUsers("workflow-routes", [args.workflowUsers.routes]),
                validations: [
                    {
                        expression: `namespaceObject != null && has(namespaceObject.metadata.labels) && ${inAppNamespace} && request.namespace != '${args.workflowNamespace}'`,
                        message: "Workflow's route reconciler writes Ingresses in apps' namespaces only",
                        reason: "Forbidden",
                    },
                ],
            }),
            // A build pod as the builder writes it (teamhephy/builder v2.13.7 pkg/gitreceive/k8s_util.go
            // buildPod, slugbuilderPod): labelled `heritage` only, mounting the object store's keys and its
            // build's environment, with plain values in its own. Anything else in Workflow's namespace would
            // take another component's labels past its network policies, or its Secrets.
            ...policy("guard-builder-pods", {
                matchConstraints: { resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], operations: writes }] },
                matchConditions: byUsers("workflow-builder", [args.workflowUsers.builder]),
                validations: [
                    {
                        // The build-pod webhook labels the builds it makes, Dockerfile and CNB, which the registry admits.
                        expression:
                            "!has(object.metadata.labels) || object.metadata.labels.all(key, key == 'heritage' || (key == 'hephy-doks/build' && (" +
                            `(object.metadata.name.startsWith('${args.dockerfileBuild.podNamePrefix}') && object.metadata.labels[key] == 'dockerfile') || ` +
                            `(object.metadata.name.startsWith('${args.cnbBuild.podNamePrefix}') && object.metadata.labels[key] == 'cnb'))))`,
                        message:
                            "a build pod carries the label heritage only (and hephy-doks/build: dockerfile on a Dockerfile build, cnb on a buildpack build)",
                    },
                    {
                        expression:
                            "!has(object.spec.volumes) || object.spec.volumes.all(v, " +
                            "(!has(v.secret) || v.secret.secretName == 'objectstorage-keyfile' || v.secret.secretName.endsWith('-build-env')) && " +
                            "(!has(v.projected) || !has(v.projected.sources) || v.projected.sources.all(source, !has(source.secret))))",
                        message:
                            "a build pod mounts no Secret but the object store's keys (objectstorage-keyfile) and its build's environment (<app>-build-env)",
                    },
                    {
                        expression: ["containers", "initContainers"]
                            .map(
                                (list) =>
                                    `(!has(object.spec.${list}) || object.spec.${list}.all(c, ` +
                                    "(!has(c.env) || c.env.all(e, !has(e.valueFrom) || !has(e.valueFrom.secretKeyRef))) && " +
                                    "(!has(c.envFrom) || c.envFrom.all(f, !has(f.secretRef)))))",
                            )
                            .join(" && "),
                        message: "a build pod reads no Secret into its environment",
                    },
                ].map((v) => ({ ...v, reason: "Forbidden" })),
            }),
            ...policy("guard-pod-relaxations", relaxationPolicy(args)),
            ...policy("guard-workflow-pods", {
                matchConstraints: { resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], operations: writes }] },
                matchConditions: byWorkflow,
                validations: podSpecValidations("object.spec").map((v) => ({ ...v, reason: "Forbidden" })),
            }),
            ...policy("guard-workflow-pod-templates", {
                matchConstraints: {
                    resourceRules: [
                        {
                            apiGroups: ["apps"],
                            apiVersions: ["v1"],
                            resources: ["deployments", "replicasets", "statefulsets", "daemonsets"],
                            operations: writes,
                        },
                        { apiGroups: [""], apiVersions: ["v1"], resources: ["replicationcontrollers"], operations: writes },
                        { apiGroups: ["batch"], apiVersions: ["v1"], resources: ["jobs"], operations: writes },
                    ],
                },
                matchConditions: byWorkflow,
                validations: podSpecValidations("object.spec.template.spec").map((v) => ({ ...v, reason: "Forbidden" })),
            }),
            // The builder writes one kind of Secret, a build's environment, `<app>-build-env` in its namespace
            // (teamhephy/builder v2.13.7 pkg/gitreceive/build.go); RBAC cannot name them, so its Role lets it
            // write every Secret of Workflow's namespace, the database's and the admin's included.
            ...policy("guard-builder-secrets", {
                matchConstraints: {
                    resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], resources: ["secrets"], operations: ["CREATE", "UPDATE", "DELETE"] }],
                },
                matchConditions: byUsers("workflow-builder", [args.workflowUsers.builder]),
                validations: [
                    {
                        expression: "request.name.endsWith('-build-env')",
                        message: "Workflow's builder writes only builds' environments (<app>-build-env)",
                        reason: "Forbidden",
                    },
                ],
            }),
            // HAProxy's chart grants its controller Secret writes it never makes (haproxytech/kubernetes-ingress
            // v3.2: its only writes are Ingress statuses, pkg/ingress/status.go), and CRD writes that only its
            // CRD job makes, under a ServiceAccount of its own.
            ...policy("guard-ingress-controller-writes", {
                matchConstraints: {
                    resourceRules: [
                        { apiGroups: [""], apiVersions: ["v1"], resources: ["secrets"], operations: ["CREATE", "UPDATE", "DELETE"] },
                        {
                            apiGroups: ["apiextensions.k8s.io"],
                            apiVersions: ["v1"],
                            resources: ["customresourcedefinitions"],
                            operations: ["CREATE", "UPDATE", "DELETE"],
                        },
                    ],
                },
                matchConditions: byUsers("ingress-controller", [args.ingressControllerUser]),
                validations: [
                    {
                        expression: "false",
                        message: "the ingress controller, which the internet reaches, writes no Secret and no CustomResourceDefinition",
                        reason: "Forbidden",
                    },
                ],
            }),
        ];

        this.registerOutputs({});
    }
}
