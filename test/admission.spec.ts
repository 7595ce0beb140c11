import * as assert from "node:assert/strict";
import { Admission, AdmissionRequest, admit, evaluate } from "./admission";
import { plain, Run, runProgram, sharedRun } from "../offline/harness";

const VAP = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy";
const BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding";
const CONTROLLER = "system:serviceaccount:deis:deis-controller";
const BUILDER = "system:serviceaccount:deis:deis-builder";
const ROUTES = "system:serviceaccount:deis:deis-routes";

/** A request to the API server; the group, version and resource follow from the kind. */
function request(user: string, operation: AdmissionRequest["operation"], namespace: string, object: any, oldObject?: any): AdmissionRequest {
    const kind = (object ?? oldObject).kind as string;
    const [group, version] = (object ?? oldObject).apiVersion.includes("/")
        ? (object ?? oldObject).apiVersion.split("/")
        : ["", (object ?? oldObject).apiVersion];
    const resource = {
        Namespace: "namespaces",
        Pod: "pods",
        Service: "services",
        Secret: "secrets",
        Deployment: "deployments",
        Ingress: "ingresses",
        ReplicationController: "replicationcontrollers",
    }[kind]!;
    return {
        operation,
        kind: { group, version, kind },
        resource: { group, version, resource },
        namespace,
        name: (object ?? oldObject).metadata.name,
        userInfo: { username: user },
        object: operation === "DELETE" ? null : object,
        oldObject: oldObject ?? null,
    };
}

const service = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name },
    spec: { ports: [{ port: 80 }], ...spec },
});
/** An app pod as controller v2.22.0 writes it (rootfs/scheduler/resources/pod.py): no ServiceAccount, no security context. */
const appPodSpec = { containers: [{ name: "myapp-web", image: "hephy/slugrunner:v2.7.0", ports: [{ containerPort: 5000 }] }] };
const pod = (spec: Record<string, unknown>) => ({ apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { ...appPodSpec, ...spec } });
const deployment = (spec: Record<string, unknown>) => ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "myapp-web" },
    spec: { selector: { matchLabels: { app: "myapp" } }, template: { metadata: { labels: { app: "myapp" } }, spec: { ...appPodSpec, ...spec } } },
});
/**
 * A build pod as the builder writes it (teamhephy/builder v2.13.7 pkg/gitreceive/k8s_util.go), with the
 * token volume the API server's ServiceAccount admission adds before any validating policy runs.
 */
const buildPod = (spec: Record<string, unknown>) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "slugbuild-myapp-1a2b3c4d", labels: { heritage: "slugbuild-myapp-1a2b3c4d" } },
    spec: {
        restartPolicy: "Never",
        containers: [{ name: "deis-slugbuilder", image: "hephy/slugbuilder:v2.8.0", env: [{ name: "TAR_PATH", value: "home/myapp:git-1a2b3c4d/tar" }] }],
        volumes: [
            { name: "objectstorage-keyfile", secret: { secretName: "objectstorage-keyfile" } },
            { name: "myapp-build-env", secret: { secretName: "myapp-build-env" } },
            {
                name: "kube-api-access-abcde",
                projected: { sources: [{ serviceAccountToken: { path: "token" } }, { configMap: { name: "kube-root-ca.crt" } }] },
            },
        ],
        ...spec,
    },
});
const namespace = (name: string) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { heritage: "deis" } } });

describe("admission guards, their CEL evaluated as the API server would", () => {
    let run: Run;
    let exposedRun: Run;
    const policy = (r: Run, name: string) => {
        const found = r
            .ofType(VAP)
            .map((v) => plain(v.inputs))
            .find((v) => v.metadata.name === name);
        assert.ok(found, name);
        return found.spec;
    };
    /** What all of the program's policies together do with a request. */
    const admitAll = (r: Run, req: AdmissionRequest): Admission => {
        const results = r.ofType(VAP).map((v) => admit(plain(v.inputs).spec, req));
        return { matched: results.some((x) => x.matched), denied: results.flatMap((x) => x.denied) };
    };

    before(async () => {
        run = await sharedRun();
        exposedRun = await runProgram({ config: { exposedServices: '["edge/ssh-gateway"]' } });
    });

    it("binds each policy, denying, and fails closed", () => {
        const names = run
            .ofType(VAP)
            .map((v) => plain(v.inputs).metadata.name)
            .sort();
        assert.deepEqual(names, [
            "deny-exposed-services",
            "guard-builder-pods",
            "guard-builder-secrets",
            "guard-ingress-controller-writes",
            "guard-pod-relaxations",
            "guard-workflow-namespaces",
            "guard-workflow-pod-templates",
            "guard-workflow-pods",
            "guard-workflow-routes",
        ]);
        for (const v of run.ofType(VAP)) {
            assert.equal(plain(v.inputs).spec.failurePolicy, "Fail");
        }
        assert.deepEqual(
            run
                .ofType(BINDING)
                .map((b) => plain(b.inputs).spec)
                .sort((a, b) => a.policyName.localeCompare(b.policyName)),
            names.map((policyName) => ({ policyName, validationActions: ["Deny"] })),
        );
        assert.equal(run.resources.filter((r) => r.type.includes("MutatingAdmissionPolicy")).length, 0);
    });

    it("refuses NodePort and LoadBalancer Services and external IPs, from anyone", () => {
        const spec = policy(run, "deny-exposed-services");
        for (const type of ["NodePort", "LoadBalancer"]) {
            const result = admit(spec, request("system:admin", "CREATE", "edge", service("ssh-gateway", { type })));
            assert.deepEqual(result.denied, [
                "hephy-doks runs without node ports or load balancers: expose Services through the ingress controller on every node (an Ingress, or its TCP forwards), or name the Service in hephy-doks:exposedServices",
            ]);
        }
        assert.match(admit(spec, request("system:admin", "UPDATE", "edge", service("x", { externalIPs: ["203.0.113.9"] }))).denied.join(), /CVE-2020-8554/);
        for (const allowed of [{}, { type: "ClusterIP" }, { clusterIP: "None" }, { type: "ExternalName", externalName: "example.org" }, { externalIPs: [] }]) {
            assert.deepEqual(
                admit(spec, request("system:admin", "CREATE", "edge", service("x", allowed))),
                { matched: true, denied: [] },
                JSON.stringify(allowed),
            );
        }
        assert.equal(admit(spec, request("system:admin", "CREATE", "edge", pod({}))).matched, false, "only Services");
    });

    it("admits cert-manager's HTTP-01 solver Service, which the issuers ask to be a ClusterIP", () => {
        const spec = policy(run, "deny-exposed-services");
        const issuers = run.resources.map((r) => plain(r.inputs)).filter((o) => o.kind === "ClusterIssuer");
        assert.equal(issuers.length, 2);
        for (const issuer of issuers) {
            // cert-manager makes the solver's Service of this type (pkg/issuer/acme/http/service.go); unset, a NodePort.
            const type = issuer.spec.acme.solvers[0].http01.ingress.serviceType ?? "NodePort";
            const solverService = service("cm-acme-http-solver-abcde", { type, selector: { "acme.cert-manager.io/http01-solver": "true" } });
            assert.deepEqual(
                admit(spec, request("system:serviceaccount:cert-manager:cert-manager", "CREATE", "deis", solverService)).denied,
                [],
                issuer.metadata.name,
            );
        }
        assert.equal(
            admit(spec, request("system:serviceaccount:cert-manager:cert-manager", "CREATE", "deis", service("cm-acme-http-solver-x", { type: "NodePort" })))
                .denied.length,
            1,
        );
    });

    it("lets a Service dropped from exposedServices be deleted, and updated without a new type or address; refuses it turning exposed again", () => {
        const spec = policy(run, "deny-exposed-services");
        // ssh-gateway was named in exposedServices, then dropped: the LoadBalancer stays until it is deleted.
        const exposed = service("ssh-gateway", { type: "LoadBalancer", externalIPs: ["203.0.113.9"] });
        const withFinalizer = { ...exposed, metadata: { ...exposed.metadata, finalizers: ["service.kubernetes.io/load-balancer-cleanup"] } };
        const deleting = { ...withFinalizer, metadata: { ...withFinalizer.metadata, deletionTimestamp: "2026-12-07T17:00:00Z" } };
        // The cloud controller removes its finalizer once the load balancer is gone (an UPDATE), and the Service is deleted.
        const released = { ...deleting, metadata: { ...deleting.metadata, finalizers: [] } };
        assert.deepEqual(admit(spec, request("system:serviceaccount:kube-system:cloud-controller-manager", "UPDATE", "edge", released, deleting)).denied, []);
        assert.equal(admit(spec, request("system:admin", "DELETE", "edge", null, withFinalizer)).matched, false, "deletions are not checked");
        const relabelled = { ...withFinalizer, metadata: { ...withFinalizer.metadata, labels: { tier: "edge" } } };
        assert.deepEqual(admit(spec, request("system:admin", "UPDATE", "edge", relabelled, withFinalizer)).denied, [], "the type and addresses it had");
        // What the guard is for, on UPDATE too: a ClusterIP Service turned exposed, or given a new external address.
        const plainService = service("ssh-gateway", { type: "ClusterIP" });
        assert.equal(admit(spec, request("system:admin", "UPDATE", "edge", service("ssh-gateway", { type: "NodePort" }), plainService)).denied.length, 1);
        const moreAddresses = service("ssh-gateway", { type: "LoadBalancer", externalIPs: ["203.0.113.9", "203.0.113.10"] });
        assert.match(admit(spec, request("system:admin", "UPDATE", "edge", moreAddresses, withFinalizer)).denied.join(), /CVE-2020-8554/);
        const toNodePort = service("ssh-gateway", { type: "NodePort", externalIPs: ["203.0.113.9"] });
        assert.equal(admit(spec, request("system:admin", "UPDATE", "edge", toNodePort, withFinalizer)).denied.length, 1, "another exposed type");
    });

    it("lets the Services the stack names be exposed, and no other", () => {
        const spec = policy(exposedRun, "deny-exposed-services");
        assert.deepEqual(admit(spec, request("system:admin", "CREATE", "edge", service("ssh-gateway", { type: "LoadBalancer" }))).denied, []);
        assert.equal(admit(spec, request("system:admin", "CREATE", "edge", service("other", { type: "NodePort" }))).denied.length, 1);
        assert.equal(admit(spec, request("system:admin", "CREATE", "other", service("ssh-gateway", { type: "NodePort" }))).denied.length, 1);
    });

    it("keeps Workflow's controller and builder out of the cluster's and the platform's namespaces", () => {
        for (const protectedNamespace of ["kube-system", "default", "flux", "haproxy-ingress", "cert-manager", "kube-public", "kube-node-lease"]) {
            const keepOut =
                "Workflow's controller, builder and route reconciler keep out of default, kube-system, kube-public, kube-node-lease, flux, haproxy-ingress, cert-manager: an app may not be named after one of them";
            assert.deepEqual(
                admitAll(run, request(CONTROLLER, "CREATE", protectedNamespace, pod({}))).denied,
                [keepOut],
                `the controller in ${protectedNamespace}`,
            );
            assert.deepEqual(
                admitAll(run, request(BUILDER, "CREATE", protectedNamespace, pod({}))).denied,
                [keepOut, "Workflow's builder writes in Workflow's namespace (deis) only"],
                `the builder in ${protectedNamespace}`,
            );
            assert.equal(
                admitAll(run, request(CONTROLLER, "DELETE", "", null, namespace(protectedNamespace))).denied.length,
                1,
                `deleting ${protectedNamespace}`,
            );
            assert.equal(
                admitAll(run, request(CONTROLLER, "CREATE", protectedNamespace, { apiVersion: "v1", kind: "Secret", metadata: { name: "s" } })).denied.length,
                1,
            );
        }
        assert.deepEqual(admitAll(run, request(CONTROLLER, "CREATE", "", namespace("myapp"))).denied, []);
        assert.deepEqual(admitAll(run, request(CONTROLLER, "DELETE", "", null, namespace("myapp"))).denied, []);
        assert.deepEqual(admitAll(run, request(CONTROLLER, "CREATE", "myapp", deployment({}))).denied, [], "an app's Deployment as the controller writes it");
        assert.deepEqual(admitAll(run, request(CONTROLLER, "CREATE", "myapp", pod({ restartPolicy: "Never" }))).denied, [], "a deis run pod");
        assert.deepEqual(admitAll(run, request(BUILDER, "CREATE", "deis", buildPod({}))).denied, [], "a slugbuilder pod, in Workflow's namespace");
    });

    it("keeps the route reconciler's Ingress writes to apps' namespaces, as the controller labels them", () => {
        const ingress = { apiVersion: "networking.k8s.io/v1", kind: "Ingress", metadata: { name: "myapp" }, spec: { rules: [{ host: "myapp.x.net" }] } };
        const inNamespace = (name: string, labels?: Record<string, string>) => ({
            ...request(ROUTES, "UPDATE", name, ingress),
            namespaceObject: { apiVersion: "v1", kind: "Namespace", metadata: { name, ...(labels ? { labels } : {}) } },
        });
        const refused = ["Workflow's route reconciler writes Ingresses in apps' namespaces only"];
        assert.deepEqual(admitAll(run, inNamespace("myapp", { heritage: "deis" })).denied, [], "an app's namespace");
        assert.deepEqual(admitAll(run, { ...inNamespace("myapp", { heritage: "deis" }), operation: "DELETE", object: null, oldObject: ingress }).denied, []);
        assert.deepEqual(admitAll(run, inNamespace("deis")).denied, refused, "Workflow's own, with its API Ingress");
        assert.deepEqual(admitAll(run, inNamespace("shop", { team: "web" })).denied, refused, "a namespace of someone else's");
        assert.deepEqual(admitAll(run, inNamespace("edge", { heritage: "other" })).denied, refused);
        assert.equal(admitAll(run, inNamespace("kube-system", { heritage: "deis" })).denied.length, 1, "never a protected namespace, whatever its labels");
        assert.equal(admitAll(run, { ...inNamespace("shop"), userInfo: { username: "system:admin" } }).matched, false, "only the reconciler");
    });

    it("keeps the controller out of Workflow's own namespace, and the builder in it", () => {
        const controllerOut = "Workflow's controller writes in apps' namespaces only, never in Workflow's own (deis)";
        assert.deepEqual(admitAll(run, request(CONTROLLER, "CREATE", "deis", pod({}))).denied, [controllerOut]);
        assert.deepEqual(
            admitAll(run, request(CONTROLLER, "UPDATE", "deis", { apiVersion: "v1", kind: "Secret", metadata: { name: "database-creds" } })).denied,
            [controllerOut],
        );
        assert.deepEqual(admitAll(run, request(CONTROLLER, "DELETE", "", null, namespace("deis"))).denied, [controllerOut]);
        assert.deepEqual(admitAll(run, request(BUILDER, "CREATE", "myapp", buildPod({}))).denied, [
            "Workflow's builder writes in Workflow's namespace (deis) only",
        ]);
    });

    it("lets the builder start build pods as it writes them, and no pod that takes another component's labels or Secrets", () => {
        const hostile: [string, any, RegExp][] = [
            [
                "the controller's label, which passes the database's network policy",
                { metadata: { name: "b", labels: { heritage: "x", app: "deis-controller" } } },
                /carries the label heritage only/,
            ],
            ["the database's credentials", { spec: { volumes: [{ name: "creds", secret: { secretName: "database-creds" } }] } }, /mounts no Secret but/],
            [
                "the admin's credentials, projected",
                { spec: { volumes: [{ name: "p", projected: { sources: [{ secret: { name: "workflow-admin" } }] } }] } },
                /mounts no Secret but/,
            ],
            [
                "a Secret in its environment",
                {
                    spec: {
                        containers: [{ name: "c", image: "i", env: [{ name: "P", valueFrom: { secretKeyRef: { name: "database-creds", key: "password" } } }] }],
                    },
                },
                /reads no Secret into its environment/,
            ],
            [
                "a Secret as its whole environment",
                { spec: { containers: [{ name: "c", image: "i", envFrom: [{ secretRef: { name: "django-secret-key" } }] }] } },
                /reads no Secret into its environment/,
            ],
        ];
        for (const [what, change, message] of hostile) {
            const built = buildPod({});
            const hostilePod = { ...built, metadata: change.metadata ?? built.metadata, spec: { ...built.spec, ...(change.spec ?? {}) } };
            const denied = admitAll(run, request(BUILDER, "CREATE", "deis", hostilePod)).denied;
            assert.equal(denied.length, 1, `${what}: ${denied.join("; ")}`);
            assert.match(denied[0], message, what);
        }
    });

    it("refuses pods and pod templates with host access, privileges or another ServiceAccount from them", () => {
        const hostile: [string, Record<string, unknown>, RegExp][] = [
            ["the node's network", { hostNetwork: true }, /never the node's/],
            ["the node's processes", { hostPID: true }, /never the node's/],
            [
                "the dockerbuilder's Docker socket",
                { volumes: [{ name: "docker-socket", hostPath: { path: "/var/run/docker.sock" } }] },
                /mount no path of the node/,
            ],
            ["a privileged container", { containers: [{ name: "c", image: "i", securityContext: { privileged: true } }] }, /no privileged container/],
            ["a privileged init container", { initContainers: [{ name: "c", image: "i", securityContext: { privileged: true } }] }, /no privileged container/],
            ["a host port", { containers: [{ name: "c", image: "i", ports: [{ containerPort: 22, hostPort: 22 }] }] }, /no port of the node/],
            ["Tiller's ServiceAccount", { serviceAccountName: "tiller" }, /default ServiceAccount/],
            ["the controller's ServiceAccount, by the deprecated field", { serviceAccount: "deis-controller" }, /default ServiceAccount/],
        ];
        for (const [what, spec, message] of hostile) {
            for (const [object, ns, user] of [
                [pod(spec), "deis", BUILDER],
                [deployment(spec), "myapp", CONTROLLER],
            ] as const) {
                const denied = admitAll(run, request(user, "CREATE", ns, object)).denied;
                assert.equal(denied.length, 1, `${what} in a ${object.kind}: ${denied.join("; ")}`);
                assert.match(denied[0], message);
            }
        }
        const allowed = [
            { hostNetwork: false },
            { serviceAccountName: "default" },
            { containers: [{ name: "c", image: "i", securityContext: { privileged: false }, ports: [{ containerPort: 80, hostPort: 0 }] }] },
        ];
        for (const spec of allowed) {
            assert.deepEqual(admitAll(run, request(CONTROLLER, "CREATE", "myapp", deployment(spec))).denied, [], JSON.stringify(spec));
        }
    });

    it("keeps the builder's Secret writes to builds' environments, and the ingress controller's to none", () => {
        const secret = (name: string) => ({ apiVersion: "v1", kind: "Secret", metadata: { name } });
        assert.deepEqual(admitAll(run, request(BUILDER, "CREATE", "deis", secret("myapp-build-env"))).denied, []);
        assert.deepEqual(admitAll(run, request(BUILDER, "DELETE", "deis", null, secret("myapp-build-env"))).denied, []);
        for (const name of ["database-creds", "workflow-admin", "minio-user"]) {
            assert.deepEqual(
                admitAll(run, request(BUILDER, "UPDATE", "deis", secret(name))).denied,
                ["Workflow's builder writes only builds' environments (<app>-build-env)"],
                name,
            );
        }
        assert.deepEqual(admitAll(run, request(CONTROLLER, "CREATE", "myapp", secret("myapp-v3-env"))).denied, [], "the controller writes apps' Secrets");
        const ingress = "system:serviceaccount:haproxy-ingress:haproxy-ingress-controller";
        assert.deepEqual(admitAll(run, request(ingress, "CREATE", "deis", secret("x"))).denied, [
            "the ingress controller, which the internet reaches, writes no Secret and no CustomResourceDefinition",
        ]);
        const crd = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name: "backends.ingress.v3.haproxy.org" } };
        const crdRequest = {
            ...request(ingress, "UPDATE", "", { ...crd, kind: "Secret" }),
            kind: { group: "apiextensions.k8s.io", version: "v1", kind: "CustomResourceDefinition" },
            resource: { group: "apiextensions.k8s.io", version: "v1", resource: "customresourcedefinitions" },
            object: crd,
        };
        assert.equal(admitAll(run, crdRequest).denied.length, 1);
        assert.equal(
            admitAll(run, request("system:serviceaccount:cert-manager:cert-manager", "CREATE", "deis", secret("controller-api-server-tls"))).matched,
            false,
        );
    });

    it("leaves everyone else to Kubernetes' own rules: the platform's operators and controllers are not Workflow", () => {
        for (const user of [
            "system:serviceaccount:kube-system:replicaset-controller",
            "system:serviceaccount:flux:flux-helm-operator",
            "system:serviceaccount:kube-system:tiller",
        ]) {
            const result = admitAll(run, request(user, "CREATE", "kube-system", pod({ hostNetwork: true })));
            assert.deepEqual(result, { matched: false, denied: [] }, user);
        }
    });

    it("evaluates CEL as the API server does, so the checks above can fail", () => {
        const req = request(CONTROLLER, "CREATE", "myapp", pod({ hostNetwork: true }));
        assert.equal(evaluate("object.spec.hostNetwork", req), true);
        assert.equal(evaluate("!has(object.spec.hostPID)", req), true);
        assert.equal(evaluate("object.spec.containers.all(c, c.ports.all(p, p.containerPort == 5000))", req), true, "integers are CEL ints");
        assert.throws(() => evaluate("object.spec.missing.field", req), /CEL error/);
    });
});
