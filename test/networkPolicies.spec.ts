import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CATALOG } from "../catalog";
import { CILIUM_SCHEMAS, kubernetesModel, plain, Run, sharedRun } from "../offline/harness";
import { sha256 } from "../offline/helm";
import { K8sObject, parseManifest } from "../offline/manifests";
import { Cluster, Entity, Peer, Pod, reachable } from "./networkPolicies";
import { chartArchive, helmReleases, renderRelease } from "../offline/renderReleases";

const pod = (namespace: string, name: string, labels: Record<string, string>): Pod => ({ kind: "pod", namespace, name, labels });
const entity = (name: string, kind: Entity["entity"], address?: string): Entity => ({ kind: "entity", name, entity: kind, address });

describe("network isolation, as DOKS's Cilium would enforce the policies the program and its releases declare", () => {
    let run: Run;
    let cluster: Cluster;
    let workflowObjects: K8sObject[];
    const pods = new Map<string, Pod>();
    const peer = (name: string): Peer => {
        const found = pods.get(name) ?? OUTSIDE[name];
        assert.ok(found, name);
        return found;
    };
    const OUTSIDE: Record<string, Entity> = {
        "the ingress controller on another node": entity("remote node", "remote-node"),
        "the pod's own node": entity("own node", "host"),
        // DOKS's control plane is outside the cluster, at a public address.
        "the Kubernetes API": entity("API server", "kube-apiserver", "203.0.113.10"),
        "the internet": entity("a website", "world", "93.184.215.14"),
        "the droplet metadata service": entity("metadata", "world", "169.254.169.254"),
    };

    before(async function () {
        this.timeout(60000);
        run = await sharedRun();
        const release = helmReleases(run).find((r) => r.metadata.name === "hephy");
        const work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-netpol-"));
        try {
            const found = chartArchive(run, release.spec, work);
            assert.ok("archive" in found);
            workflowObjects = parseManifest(renderRelease(release, found.archive, `${CATALOG.workflow.kubernetes.max}.0`));
        } finally {
            fs.rmSync(work, { recursive: true, force: true });
        }
        const declared = run.resources.filter((r) => r.custom && r.type.startsWith("kubernetes:")).map((r) => plain(r.inputs));
        const isPolicy = (o: any) => ["NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"].includes(o.kind);
        cluster = {
            namespaces: {
                ...Object.fromEntries(["deis", "flux", "kube-system", "haproxy-ingress", "cert-manager"].map((n) => [n, { "kubernetes.io/metadata.name": n }])),
                // What the controller makes at `deis create` (rootfs/scheduler/resources/namespace.py).
                myapp: { "kubernetes.io/metadata.name": "myapp", heritage: "deis" },
                otherapp: { "kubernetes.io/metadata.name": "otherapp", heritage: "deis" },
            },
            policies: [
                ...declared.filter(isPolicy),
                ...workflowObjects.filter(isPolicy).map((o) => ({ ...o, metadata: { ...o.metadata, namespace: "deis" } })),
            ],
        };
        // The pods the program and the Workflow release run, as their templates label them.
        const programPods = declared
            .filter((o) => o.kind === "Deployment")
            .map((o) => ({ owner: o.metadata.name, namespace: o.metadata.namespace, labels: o.spec.template.metadata.labels }));
        const workflowPods = workflowObjects
            .filter((o) => ["Deployment", "DaemonSet", "StatefulSet"].includes(o.kind))
            .map((o) => ({ owner: o.metadata.name, namespace: "deis", labels: o.spec.template.metadata.labels }));
        for (const p of [...programPods, ...workflowPods]) {
            pods.set(p.owner, pod(p.namespace, p.owner, p.labels));
        }
        // Pods that others start: apps and `deis run` (controller rootfs/scheduler/resources/pod.py), a
        // build (builder pkg/gitreceive/k8s_util.go), an HTTP-01 solver (cert-manager), DNS, cert-manager.
        pods.set("an app's web pod", pod("myapp", "myapp-web", { app: "myapp", type: "web", version: "v3", heritage: "deis" }));
        pods.set("another app's pod", pod("otherapp", "otherapp-web", { app: "otherapp", type: "web", version: "v1", heritage: "deis" }));
        pods.set("a build pod", pod("deis", "slugbuild-myapp-1a2b3c4d-5e6f7a8b", { heritage: "slugbuild-myapp-1a2b3c4d-5e6f7a8b" }));
        // A Dockerfile build, as the build-pod webhook labels it (files/build/admission.py).
        pods.set(
            "a Dockerfile build pod",
            pod("deis", "dockerbuild-myapp-1a2b3c4d-5e6f7a8b", { heritage: "dockerbuild-myapp-1a2b3c4d-5e6f7a8b", "hephy-doks/build": "dockerfile" }),
        );
        // A buildpack build, as the build-pod webhook labels it (files/build/admission.py cnb_build).
        pods.set(
            "a buildpack build pod",
            pod("deis", "slugbuild-myapp-1f2e3d4c-0f1e2d3c", { heritage: "slugbuild-myapp-1f2e3d4c-0f1e2d3c", "hephy-doks/build": "cnb" }),
        );
        pods.set(
            "an HTTP-01 solver",
            pod("deis", "cm-acme-http-solver-x", { "acme.cert-manager.io/http01-solver": "true", "acme.cert-manager.io/http-domain": "1" }),
        );
        pods.set("CoreDNS", pod("kube-system", "coredns", { "k8s-app": "kube-dns" }));
        pods.set("cert-manager", pod("cert-manager", "cert-manager", { "app.kubernetes.io/name": "cert-manager" }));
    });

    /** Asserts who reaches `target` on `port` and who does not, among every peer named in the two lists. */
    function only(target: string, port: number, admitted: string[], refused: string[], protocol = "TCP") {
        for (const name of admitted) {
            assert.equal(reachable(cluster, peer(name), peer(target), port, protocol), true, `${name} reaches ${target}:${port}`);
        }
        for (const name of refused) {
            assert.equal(reachable(cluster, peer(name), peer(target), port, protocol), false, `${name} must not reach ${target}:${port}`);
        }
    }
    const strangers = ["an app's web pod", "a build pod", "cert-manager", "the ingress controller on another node"];

    it("lets only helm-operator reach Tiller, which acts as cluster-admin", () => {
        // The ingress controller on Tiller's own node too: it reads every Secret, the client key included.
        only("tiller-deploy", 44134, ["flux-helm-operator"], [...strangers, "the pod's own node", "deis-controller", "deis-builder", "hephy-doks-charts"]);
        only("tiller-deploy", 44135, ["the pod's own node"], ["an app's web pod"]);
    });

    it("lets only helm-operator fetch charts from the chart server, and reach helm-operator no one", () => {
        only("hephy-doks-charts", 8080, ["flux-helm-operator"], [...strangers, "deis-controller"]);
        only("flux-helm-operator", 3030, ["the pod's own node"], [...strangers, "tiller-deploy"]);
    });

    it("lets only their users reach Workflow's data services", () => {
        // Not even from the pod's own node, where the ingress controller, which reads their credentials, runs.
        only("deis-database", 5432, ["deis-controller"], [...strangers, "the pod's own node", "deis-builder", "deis-logger", "flux-helm-operator"]);
        only(
            "deis-minio",
            9000,
            // The registry keeps its images there (templates/registry.yaml).
            ["deis-builder", "deis-database", "a build pod", "an app's web pod", "another app's pod", "deis-registry"],
            [
                "cert-manager",
                "deis-logger",
                "deis-controller",
                "flux-helm-operator",
                "an HTTP-01 solver",
                "the ingress controller on another node",
                "the pod's own node",
            ],
        );
        only("deis-minio", 8082, ["the pod's own node"], ["an app's web pod"]);
        only("deis-logger-redis", 6379, ["deis-logger"], [...strangers, "the pod's own node", "deis-controller"]);
        only("deis-nsqd", 4150, ["deis-logger-fluentd", "deis-logger"], [...strangers, "the pod's own node", "deis-controller"]);
        // The logs of every app, and nsqd's HTTP API, not even from the pod's own node.
        only("deis-logger", 8088, ["deis-controller"], [...strangers, "the pod's own node", "deis-builder"]);
        only("deis-logger", 8099, [], [...strangers, "the pod's own node", "deis-controller"]);
        only("deis-nsqd", 4151, [], [...strangers, "the pod's own node", "deis-logger-fluentd", "deis-logger"]);
    });

    it("lets the ingress controller, from any node, reach the API, git push and the HTTP-01 solvers, and no one else but their callers", () => {
        only(
            "deis-controller",
            8000,
            ["the ingress controller on another node", "the pod's own node", "deis-builder"],
            ["an app's web pod", "a build pod", "cert-manager"],
        );
        only("deis-builder", 2223, ["the ingress controller on another node"], ["an app's web pod", "a build pod", "deis-controller"]);
        only("an HTTP-01 solver", 8089, ["the ingress controller on another node"], ["an app's web pod", "a build pod"]);
        only("deis-controller", 5432, [], ["the ingress controller on another node"]);
    });

    it("lets app pods reach each other, DNS, the object store, the internet and the platform's public addresses, and nothing else of the platform", () => {
        only("an app's web pod", 5000, ["the ingress controller on another node", "another app's pod"], ["a build pod", "deis-controller", "cert-manager"]);
        const app = peer("an app's web pod");
        const reaches = (target: string, port: number, protocol = "TCP") => reachable(cluster, app, peer(target), port, protocol);
        assert.equal(reaches("CoreDNS", 53, "UDP"), true);
        assert.equal(reaches("deis-minio", 9000), true);
        assert.equal(reaches("another app's pod", 8080), true);
        assert.equal(reaches("the internet", 443), true);
        assert.equal(reaches("the ingress controller on another node", 443), true, "another app by its public URL");
        for (const [target, port] of [
            ["deis-database", 5432],
            ["deis-controller", 8000],
            ["tiller-deploy", 44134],
            ["hephy-doks-charts", 8080],
            ["deis-logger-redis", 6379],
            ["the Kubernetes API", 443],
            ["the ingress controller on another node", 10250],
            ["the droplet metadata service", 80],
            ["CoreDNS", 9153],
        ] as const) {
            assert.equal(reaches(target, port), false, `an app reaches ${target}:${port}`);
        }
    });

    it("lets build pods, which run the user's buildpacks, reach DNS, the object store, the internet and the platform's public addresses only", () => {
        const build = peer("a build pod");
        const reaches = (target: string, port: number, protocol = "TCP") => reachable(cluster, build, peer(target), port, protocol);
        assert.deepEqual(
            [reaches("CoreDNS", 53, "UDP"), reaches("deis-minio", 9000), reaches("the internet", 443), reaches("the ingress controller on another node", 80)],
            [true, true, true, true],
        );
        for (const [target, port] of [
            ["the Kubernetes API", 443],
            ["the droplet metadata service", 80],
            ["deis-controller", 8000],
            ["tiller-deploy", 44134],
            ["an app's web pod", 5000],
            ["the ingress controller on another node", 10250],
        ] as const) {
            assert.equal(reaches(target, port), false, `a build reaches ${target}:${port}`);
        }
        // Workflow's own components keep the egress they had.
        assert.equal(reachable(cluster, peer("deis-controller"), peer("the Kubernetes API"), 443), true);
    });

    it("lets Dockerfile and buildpack builds push to the stack's registry, the controller and the nodes' proxies read it, and no app or other build", () => {
        only(
            "deis-registry",
            5000,
            ["a Dockerfile build pod", "a buildpack build pod", "deis-controller", "the pod's own node", "the ingress controller on another node"],
            ["a build pod", "an app's web pod", "another app's pod", "cert-manager", "the internet", "deis-routes"],
        );
        assert.equal(reachable(cluster, peer("a Dockerfile build pod"), peer("the internet"), 443), true, "base images from Docker Hub");
        assert.equal(reachable(cluster, peer("a Dockerfile build pod"), peer("the Kubernetes API"), 443), false);
        assert.equal(reachable(cluster, peer("a buildpack build pod"), peer("the internet"), 443), true, "the run image and the runtimes");
        assert.equal(reachable(cluster, peer("a buildpack build pod"), peer("the Kubernetes API"), 443), false);
        assert.equal(reachable(cluster, peer("a buildpack build pod"), peer("deis-minio"), 9000), true, "the source, and the process types for the builder");
        // The API server calls the build-pod webhook; no pod does.
        only("deis-build-admission", 8443, ["the Kubernetes API"], ["an app's web pod", "a build pod", "a Dockerfile build pod", "the internet"]);
    });

    it("judges a connection as Cilium does, so the checks above can fail", () => {
        const open: Cluster = { namespaces: cluster.namespaces, policies: [] };
        assert.equal(reachable(open, peer("an app's web pod"), peer("tiller-deploy"), 44134), true, "with no policy, everything is open");
        const portsOnly: Cluster = {
            namespaces: cluster.namespaces,
            policies: [{ kind: "NetworkPolicy", metadata: { namespace: "kube-system" }, spec: { podSelector: {}, ingress: [{ ports: [{ port: 44134 }] }] } }],
        };
        assert.equal(
            reachable(portsOnly, peer("the ingress controller on another node"), peer("tiller-deploy"), 44134),
            true,
            "a rule without peers takes nodes too",
        );
        assert.equal(reachable(portsOnly, peer("an app's web pod"), peer("tiller-deploy"), 44135), false);
        const byIpBlock: Cluster = {
            namespaces: cluster.namespaces,
            policies: [
                {
                    kind: "NetworkPolicy",
                    metadata: { namespace: "kube-system" },
                    spec: { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "0.0.0.0/0" } }] }] },
                },
            ],
        };
        assert.equal(
            reachable(byIpBlock, peer("the ingress controller on another node"), peer("tiller-deploy"), 44134),
            false,
            "an ipBlock never takes a node",
        );
        const toWorld = (egressDeny?: any[]): Cluster => ({
            namespaces: cluster.namespaces,
            policies: [
                {
                    kind: "CiliumNetworkPolicy",
                    metadata: { namespace: "myapp" },
                    spec: { endpointSelector: {}, egress: [{ toEntities: ["world"] }], ...(egressDeny ? { egressDeny } : {}) },
                },
            ],
        });
        assert.equal(
            reachable(toWorld(), peer("an app's web pod"), peer("the Kubernetes API"), 443),
            true,
            "the world takes an API server outside the cluster",
        );
        assert.equal(reachable(toWorld([{ toEntities: ["kube-apiserver"] }]), peer("an app's web pod"), peer("the Kubernetes API"), 443), false);
        assert.equal(reachable(toWorld([{ toEntities: ["kube-apiserver"] }]), peer("an app's web pod"), peer("the internet"), 443), true);
    });

    it("writes Cilium's policies as Cilium's own schemas accept them, and Kubernetes' as the Kubernetes schema does", async () => {
        const sums = fs
            .readFileSync(path.join(CILIUM_SCHEMAS, "SHA256SUMS"), "utf8")
            .trim()
            .split("\n")
            .map((l) => l.split(/\s+/));
        for (const [digest, file] of sums) {
            assert.equal(sha256(path.join(CILIUM_SCHEMAS, file)), digest, file);
        }
        const cilium = cluster.policies.filter((p) => p.apiVersion === "cilium.io/v2");
        assert.deepEqual(cilium.map((p) => p.metadata.name).sort(), [
            "deis-acme-solvers",
            "deis-build-admission-from-api-server",
            "deis-builds",
            "deis-deny-nodes",
            "deis-from-ingress-controller",
            "deis-registry-from-nodes",
            "hephy-doks-workflow-apps",
            "tiller-deny-nodes",
        ]);
        for (const policy of cluster.policies) {
            const model = await kubernetesModel(policy.apiVersion, policy.kind);
            assert.ok(model, `a schema for ${policy.apiVersion} ${policy.kind}`);
            new model(policy).validate();
        }
        const warned: unknown[] = [];
        const warn = console.warn;
        console.warn = (...args: unknown[]) => warned.push(args);
        const CiliumNetworkPolicy = (await kubernetesModel("cilium.io/v2", "CiliumNetworkPolicy").finally(() => (console.warn = warn)))!;
        assert.deepEqual(warned, [], "every format of Cilium's schema is known, so compiling it prints nothing");
        assert.throws(
            () => new CiliumNetworkPolicy({ ...cilium[0], spec: { ...cilium[0].spec, ingres: [] } }).validate(),
            /must NOT have additional properties/,
        );
        const toCidr = (cidr: string) => ({ ...cilium[0], spec: { ...cilium[0].spec, egress: [{ toCIDR: [cidr] }] } });
        new CiliumNetworkPolicy(toCidr("10.0.0.0/8")).validate();
        assert.throws(() => new CiliumNetworkPolicy(toCidr("10.0.0.0/88")).validate(), /"params":\{"format":"cidr"\}/);
    });
});
