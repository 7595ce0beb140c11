import * as net from "node:net";
import { Duplex, PassThrough } from "node:stream";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import * as k8s from "@kubernetes/client-node";
import { CheckResult, errorText, fail, Outcome, pass, runCheck } from "./checks";

/**
 * Names the program gives objects in the cluster. verify does not load the program (or Pulumi) to learn
 * them; test/verify.spec.ts holds them equal to the components' own.
 */
export const CLUSTER_FACTS = {
    /** components/tiller.ts TILLER. */
    tiller: { namespace: "kube-system", labels: "app=helm,name=tiller", port: 44134 },
    /** catalog.ts UPSTREAM.tillerImage's tag: the Helm 2 client version verify announces to Tiller. */
    tillerVersion: "v2.17.0",
    /** catalog.ts UPSTREAM.tillerHostname: the name helm-operator checks Tiller's certificate against (HELM_TLS_HOSTNAME). */
    tillerHostname: "tiller-deploy.kube-system",
    /** components/helmOperator.ts HELM_OPERATOR: the namespace of helm-operator and its client certificate. */
    operator: { namespace: "flux", clientSecret: "helm-client" },
} as const;

/** What the cluster checks need of a stack. */
export interface ClusterTarget {
    /** The stack's kubeconfig (a secret output). */
    kubeconfig: string;
    /** PEM of the stack's Tiller CA, which signed Tiller's certificate. */
    tillerCaCertPem: string;
    /** `namespace/name` of the Services allowed to be LoadBalancer or NodePort (hephy-doks:exposedServices). */
    exposedServices: readonly string[];
    /** Whether Workflow is installed, with its storage claim. */
    workflow: boolean;
}

const API_MS = 30_000;
const HANDSHAKE_MS = 10_000;

export function kubeConfig(kubeconfig: string): k8s.KubeConfig {
    const config = new k8s.KubeConfig();
    config.loadFromString(kubeconfig);
    return config;
}

interface HelmRelease {
    metadata: { name: string; namespace: string; generation?: number };
    spec?: { targetNamespace?: string; releaseName?: string };
    /** fluxcd/helm-operator v1.4.4 HelmReleaseStatus: phase (its steady one Succeeded), Helm's status, conditions by phase. */
    status?: {
        phase?: string;
        releaseStatus?: string;
        releaseName?: string;
        observedGeneration?: number;
        conditions?: { type: string; status: string; reason?: string; message?: string }[];
    };
}

async function helmReleases(config: k8s.KubeConfig): Promise<HelmRelease[]> {
    // fluxcd/helm-operator v1.4.4 pkg/apis/helm.fluxcd.io/v1/types_helmrelease.go: group, version, status fields.
    const list = await config.makeApiClient(k8s.CustomObjectsApi).listClusterCustomObject({ group: "helm.fluxcd.io", version: "v1", plural: "helmreleases" });
    return (list as { items: HelmRelease[] }).items;
}

const nameOf = (o: { metadata?: { namespace?: string; name?: string } }) => `${o.metadata?.namespace}/${o.metadata?.name}`;

/** A cert-manager Certificate: the names it certifies and when its current certificate was issued. */
export interface IssuedCertificate {
    namespace: string;
    name: string;
    dnsNames: string[];
    /** status.notBefore, absent until one is issued. */
    notBefore?: string;
}

/** The cluster's Certificates (cert-manager v1.21.1 pkg/apis/certmanager/v1/types_certificate.go: spec.dnsNames, status.notBefore). */
export async function listCertificates(config: k8s.KubeConfig): Promise<IssuedCertificate[]> {
    const list = (await config
        .makeApiClient(k8s.CustomObjectsApi)
        .listClusterCustomObject({ group: "cert-manager.io", version: "v1", plural: "certificates" })) as {
        items: { metadata: { namespace: string; name: string }; spec?: { dnsNames?: string[] }; status?: { notBefore?: string } }[];
    };
    return list.items.map((c) => ({
        namespace: c.metadata.namespace,
        name: c.metadata.name,
        dnsNames: c.spec?.dnsNames ?? [],
        notBefore: c.status?.notBefore,
    }));
}

/** Every HelmRelease is released; `listed` is the pass's one list of them. */
export async function checkHelmReleases(listed: Promise<HelmRelease[]>): Promise<CheckResult[]> {
    let releases: HelmRelease[] = [];
    const found = await runCheck("helmreleases", "", API_MS, async () => {
        releases = await listed;
        return releases.length > 0 ? pass(`${releases.length} listed`) : fail("no HelmRelease in the cluster");
    });
    if (!found.ok) {
        return [found];
    }
    return releases.map((release) => {
        const status = release.status ?? {};
        const released = status.conditions?.find((c) => c.type === "Released");
        const seen = `release ${status.releaseName ?? "?"} ${status.releaseStatus ?? "no status"} (phase ${status.phase ?? "?"}), Released ${released?.status ?? "absent"}, generation ${status.observedGeneration ?? "?"}/${release.metadata.generation ?? "?"}`;
        const ok =
            released?.status === "True" && status.releaseStatus?.toLowerCase() === "deployed" && status.observedGeneration === release.metadata.generation;
        return { id: "helmreleases" as const, target: nameOf(release), ok, evidence: ok ? seen : `${seen}: ${released?.message ?? "not released"}` };
    });
}

/**
 * The revision each release is at, as Helm stores it: Tiller's Secrets (labels OWNER=TILLER, NAME,
 * VERSION: helm/helm v2.17.0 pkg/storage/driver/secrets.go) and Helm 3's (owner=helm, name, version:
 * helm/helm v3 pkg/storage/driver/secrets.go).
 */
export async function releaseRevisions(config: k8s.KubeConfig): Promise<Map<string, number>> {
    const core = config.makeApiClient(k8s.CoreV1Api);
    const [tiller, helm3] = await Promise.all([
        core.listNamespacedSecret({ namespace: CLUSTER_FACTS.tiller.namespace, labelSelector: "OWNER=TILLER" }),
        core.listSecretForAllNamespaces({ labelSelector: "owner=helm" }),
    ]);
    const revisions = new Map<string, number>();
    const count = (release: string | undefined, version: string | undefined) => {
        if (release && version) {
            revisions.set(release, Math.max(revisions.get(release) ?? 0, Number(version)));
        }
    };
    tiller.items.forEach((s) => count(`tiller/${s.metadata?.labels?.NAME}`, s.metadata?.labels?.VERSION));
    helm3.items.forEach((s) => count(`${s.metadata?.namespace}/${s.metadata?.labels?.name}`, s.metadata?.labels?.version));
    return revisions;
}

/** Compares two samples of the releases' revisions taken `minutes` apart. */
export function compareRevisions(before: Map<string, number>, after: Map<string, number>, minutes: number): Outcome {
    const moved = [...after].filter(([release, revision]) => revision !== before.get(release));
    const all = [...after].map(([release, revision]) => `${release} ${revision}`).join(", ");
    if (after.size === 0) {
        return fail("no release revision found (no Secret labelled OWNER=TILLER or owner=helm)");
    }
    if (moved.length === 0) {
        return pass(`no release moved in ${minutes} min: ${all}`);
    }
    const perHour = (n: number) => Math.round((n * 60) / minutes);
    return fail(
        `moved in ${minutes} min: ${moved.map(([release, revision]) => `${release} ${before.get(release) ?? "new"} → ${revision} (about ${perHour(revision - (before.get(release) ?? 0))} an hour)`).join(", ")}`,
    );
}

/**
 * Samples the revisions now and again after `minutes`. Started first, so the window runs while every
 * other check does.
 */
export async function checkRevisions(
    config: k8s.KubeConfig,
    minutes: number,
    sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)),
): Promise<CheckResult> {
    const windowMs = minutes * 60_000;
    return runCheck("revisions", "", windowMs + 2 * API_MS, async () => {
        const before = await releaseRevisions(config);
        await sleep(windowMs);
        return compareRevisions(before, await releaseRevisions(config), minutes);
    });
}

export function checkExposedServices(config: k8s.KubeConfig, allowed: readonly string[]): Promise<CheckResult> {
    return runCheck("no-exposed-services", "", API_MS, async () => {
        const services = (await config.makeApiClient(k8s.CoreV1Api).listServiceForAllNamespaces()).items;
        const exposed = services.filter((s) => s.spec?.type === "LoadBalancer" || s.spec?.type === "NodePort");
        const refused = exposed.filter((s) => !allowed.includes(nameOf(s)));
        const listed = (items: typeof services) => items.map((s) => `${nameOf(s)} (${s.spec?.type})`).join(", ");
        if (refused.length > 0) {
            return fail(`exposed: ${listed(refused)}`);
        }
        return pass(`${services.length} Services, none LoadBalancer or NodePort${exposed.length ? ` but those allowed: ${listed(exposed)}` : ""}`);
    });
}

const isReady = (pod: k8s.V1Pod) => pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

/** A pod as one line: name, phase, and why it is not running (a container's reason, the kubelet's, the scheduler's). */
function podLine(pod: k8s.V1Pod): string {
    const containers = pod.status?.containerStatuses?.map((c) => c.state?.waiting?.reason ?? c.state?.terminated?.reason).filter(Boolean) ?? [];
    const unscheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status !== "True")?.message;
    const reasons = [pod.status?.reason, ...containers, unscheduled].filter(Boolean);
    return `${pod.metadata?.name} ${pod.status?.phase ?? "?"}${reasons.length ? ` (${reasons.join(", ")})` : ""}`;
}

/** A workload controller and how many of its pods it wants and has available. */
interface Workload {
    kind: "Deployment" | "DaemonSet" | "StatefulSet";
    namespace: string;
    name: string;
    wanted: number;
    available: number;
    /** Why the controller cannot make pods, when it says (a Deployment's ReplicaFailure condition). */
    failure?: string;
    /** Why a Deployment's pods are not all of its current template yet, when they are not. */
    rollout?: string;
}

const workloadKey = (kind: string, namespace: string | undefined, name: string | undefined) => `${kind} ${namespace}/${name}`;

/**
 * Why a Deployment has not replaced all its pods with its current template, as `kubectl rollout status`
 * reads its status (k8s.io/kubectl pkg/polymorphichelpers/rollout_status.go): its progress deadline
 * exceeded, pods not yet updated, old pods still running. A rolling update keeps old pods available
 * while new ones crash (maxSurge), so availability alone passes an upgrade that never came up.
 */
function unfinishedRollout(d: k8s.V1Deployment): string | undefined {
    const status = d.status ?? {};
    const updated = status.updatedReplicas ?? 0;
    const deadline = status.conditions?.find((c) => c.type === "Progressing" && c.reason === "ProgressDeadlineExceeded");
    if (deadline) return deadline.message ?? "progress deadline exceeded";
    if (updated < (d.spec?.replicas ?? 1)) return `${updated} of ${d.spec?.replicas ?? 1} pods updated`;
    if ((status.replicas ?? 0) > updated) return `pods of an older template still running: ${(status.replicas ?? 0) - updated}`;
    return undefined;
}

/**
 * The workload controllers' own availability (apps/v1 status: a Deployment's and a StatefulSet's
 * availableReplicas against spec.replicas, a DaemonSet's numberAvailable against
 * desiredNumberScheduled).
 */
function workloads(deployments: k8s.V1Deployment[], daemonSets: k8s.V1DaemonSet[], statefulSets: k8s.V1StatefulSet[]): Workload[] {
    const of = (kind: Workload["kind"], o: { metadata?: k8s.V1ObjectMeta }, wanted: number, available: number, failure?: string): Workload => ({
        kind,
        namespace: o.metadata?.namespace ?? "?",
        name: o.metadata?.name ?? "?",
        wanted,
        available,
        failure,
    });
    return [
        ...deployments.map((d) => ({
            ...of(
                "Deployment",
                d,
                d.spec?.replicas ?? 1,
                d.status?.availableReplicas ?? 0,
                d.status?.conditions?.find((c) => c.type === "ReplicaFailure" && c.status === "True")?.message,
            ),
            rollout: unfinishedRollout(d),
        })),
        ...daemonSets.map((d) => of("DaemonSet", d, d.status?.desiredNumberScheduled ?? 0, d.status?.numberAvailable ?? 0)),
        ...statefulSets.map((s) => of("StatefulSet", s, s.spec?.replicas ?? 1, s.status?.availableReplicas ?? s.status?.readyReplicas ?? 0)),
    ];
}

/**
 * The workload a pod belongs to: its controller, or its ReplicaSet's Deployment; a Job's pod is the Job's.
 */
function ownerOf(pod: k8s.V1Pod, deploymentOfReplicaSet: Map<string, string>): string | undefined {
    const owner = pod.metadata?.ownerReferences?.find((o) => o.controller);
    if (!owner) return undefined;
    if (owner.kind === "ReplicaSet") {
        const deployment = deploymentOfReplicaSet.get(`${pod.metadata?.namespace}/${owner.name}`);
        return deployment ? workloadKey("Deployment", pod.metadata?.namespace, deployment) : undefined;
    }
    return workloadKey(owner.kind, pod.metadata?.namespace, owner.name);
}

/**
 * The platform's workloads judged by their controllers. A controller with every pod it wants
 * available is fine, whatever else it left behind: the kubelet leaves Failed pods in the API after a
 * node-pressure eviction (reason "Evicted", pkg/kubelet/eviction/helpers.go), a graceful node shutdown
 * ("Terminated", pkg/kubelet/nodeshutdown) or an admission rejection ("OutOfcpu", "OutOf" + the
 * resource, pkg/kubelet/lifecycle/predicate.go), and the pod garbage collector removes them only past
 * --terminated-pod-gc-threshold, 12,500 by default (pkg/controller/podgc/config/v1alpha1/defaults.go):
 * they are counted as history. A controller short of pods, or a Deployment whose rollout is not done,
 * is named with its pods that are not Ready, and how many Failed ones it left, by reason.
 * A pod of no controller is fine when Ready or completed; a failed Job's pod, and Workflow's build pods
 * (`slugbuild-`/`dockerbuild-`, which the builder leaves behind), are history too.
 */
export function judgeWorkloads(
    pods: k8s.V1Pod[],
    controllers: { deployments: k8s.V1Deployment[]; daemonSets: k8s.V1DaemonSet[]; statefulSets: k8s.V1StatefulSet[]; replicaSets: k8s.V1ReplicaSet[] },
): { unavailable: string[]; history: Map<string, number>; workloads: Workload[] } {
    const deploymentOfReplicaSet = new Map(
        controllers.replicaSets.flatMap((rs) => {
            const owner = rs.metadata?.ownerReferences?.find((o) => o.controller && o.kind === "Deployment");
            return owner ? [[`${rs.metadata?.namespace}/${rs.metadata?.name}`, owner.name] as const] : [];
        }),
    );
    const all = workloads(controllers.deployments, controllers.daemonSets, controllers.statefulSets);
    const byKey = new Map(all.map((w) => [workloadKey(w.kind, w.namespace, w.name), w]));
    const podsOf = new Map<string, k8s.V1Pod[]>();
    const history = new Map<string, number>();
    const unavailable: string[] = [];
    const count = (into: Map<string, number>, failed: k8s.V1Pod[]) =>
        failed.forEach((pod) => into.set(pod.status?.reason ?? "Failed", (into.get(pod.status?.reason ?? "Failed") ?? 0) + 1));
    const isFailed = (pod: k8s.V1Pod) => pod.status?.phase === "Failed";
    for (const pod of pods) {
        const owner = ownerOf(pod, deploymentOfReplicaSet);
        if (owner && byKey.has(owner)) {
            const own = podsOf.get(owner) ?? [];
            own.push(pod);
            podsOf.set(owner, own);
            continue;
        }
        const finished = owner?.startsWith("Job ") || /^(slug|docker)build-/.test(pod.metadata?.name ?? "");
        if (pod.status?.phase === "Succeeded" || isReady(pod)) continue;
        if (isFailed(pod) && finished) {
            count(history, [pod]);
            continue;
        }
        unavailable.push(`${pod.metadata?.namespace}/${podLine(pod)}`);
    }
    for (const w of all) {
        const own = podsOf.get(workloadKey(w.kind, w.namespace, w.name)) ?? [];
        if (w.available >= w.wanted && !w.rollout) {
            count(history, own.filter(isFailed));
            continue;
        }
        const earlier = new Map<string, number>();
        count(earlier, own.filter(isFailed));
        const failedEarlier = [...earlier].map(([reason, n]) => `${reason} ${n}`).join(", ");
        const notReady = own.filter((p) => !isFailed(p) && !isReady(p)).map(podLine);
        const why = [w.failure, ...notReady, failedEarlier && `Failed pods: ${failedEarlier}`].filter(Boolean).join("; ") || "no pod";
        const rollout = w.rollout ? `, its rollout not done: ${w.rollout}` : "";
        unavailable.push(`${w.namespace}/${w.name} (${w.kind}, ${w.available} of ${w.wanted} available${rollout}: ${why})`);
    }
    return { unavailable, history, workloads: all };
}

export function checkPodsReady(config: k8s.KubeConfig, listed: Promise<HelmRelease[]>): Promise<CheckResult> {
    return runCheck("pods-ready", "", API_MS, async () => {
        const core = config.makeApiClient(k8s.CoreV1Api);
        const apps = config.makeApiClient(k8s.AppsV1Api);
        const releases = await listed;
        const namespaces = [...new Set([CLUSTER_FACTS.operator.namespace, ...releases.map((r) => r.spec?.targetNamespace ?? r.metadata.namespace)])].sort();
        const tillerLabels = Object.fromEntries(CLUSTER_FACTS.tiller.labels.split(",").map((pair) => pair.split("=")));
        // The releases' namespaces, and Tiller's objects in kube-system, which is DigitalOcean's otherwise.
        const inScope = (o: { metadata?: k8s.V1ObjectMeta }) =>
            namespaces.includes(o.metadata?.namespace ?? "") ||
            (o.metadata?.namespace === CLUSTER_FACTS.tiller.namespace && Object.entries(tillerLabels).every(([k, v]) => o.metadata?.labels?.[k] === v));
        const [pods, deployments, daemonSets, statefulSets, replicaSets] = await Promise.all([
            core.listPodForAllNamespaces(),
            apps.listDeploymentForAllNamespaces(),
            apps.listDaemonSetForAllNamespaces(),
            apps.listStatefulSetForAllNamespaces(),
            apps.listReplicaSetForAllNamespaces(),
        ]);
        const judged = judgeWorkloads(pods.items.filter(inScope), {
            deployments: deployments.items.filter(inScope),
            daemonSets: daemonSets.items.filter(inScope),
            statefulSets: statefulSets.items.filter(inScope),
            replicaSets: replicaSets.items.filter(inScope),
        });
        const history = [...judged.history].map(([reason, n]) => `${reason} ${n}`).join(", ");
        const past = history ? `; history, not faults: Failed pods of available controllers or finished Jobs (${history})` : "";
        if (judged.unavailable.length > 0) {
            return fail(`unavailable: ${judged.unavailable.join("; ")}${past}`);
        }
        if (judged.workloads.length === 0) {
            return fail(`no Deployment, DaemonSet or StatefulSet in ${namespaces.join(", ")}`);
        }
        const counts = (["Deployment", "DaemonSet", "StatefulSet"] as const)
            .map((kind) => [kind, judged.workloads.filter((w) => w.kind === kind).length] as const)
            .filter(([, n]) => n > 0)
            .map(([kind, n]) => `${n} ${kind}${n > 1 ? "s" : ""}`)
            .join(", ");
        return pass(`${counts} available in ${namespaces.join(", ")} and Tiller's${past}`);
    });
}

export function checkStorageBound(config: k8s.KubeConfig, workflow: boolean): Promise<CheckResult> {
    return runCheck("storage-bound", "", API_MS, async () => {
        const claims = (await config.makeApiClient(k8s.CoreV1Api).listPersistentVolumeClaimForAllNamespaces()).items;
        const unbound = claims.filter((c) => c.status?.phase !== "Bound");
        const listed = claims.map((c) => `${nameOf(c)} ${c.status?.phase ?? "?"} ${c.status?.capacity?.storage ?? ""}`.trim()).join(", ");
        if (unbound.length > 0 || (workflow && claims.length === 0)) {
            return fail(
                claims.length === 0
                    ? "no PersistentVolumeClaim: Workflow's object store has no volume"
                    : `not Bound: ${unbound.map(nameOf).join(", ")} (${listed})`,
            );
        }
        return pass(listed || "no claims (Workflow off)");
    });
}

/**
 * A stream through the API server's port-forward to a pod's port, as a socket TLS can run over, and what
 * the API server said on the error channel (such as a refused connection inside the pod). The
 * WebSocket is closed with the stream.
 */
async function forwardedStream(config: k8s.KubeConfig, namespace: string, pod: string, port: number): Promise<{ stream: Duplex; errors: () => string }> {
    const fromPod = new PassThrough();
    const toPod = new PassThrough();
    const errorChannel = new PassThrough();
    let errors = "";
    errorChannel.on("data", (chunk) => (errors += chunk.toString()));
    const stream = new Duplex({
        read() {},
        write(chunk, _encoding, done) {
            toPod.write(chunk, done);
        },
        final(done) {
            toPod.end();
            done();
        },
    });
    fromPod.on("data", (chunk) => stream.push(chunk));
    const ws = await new k8s.PortForward(config).portForward(namespace, pod, [port], fromPod, errorChannel, toPod);
    const webSocket = typeof ws === "function" ? ws() : ws;
    webSocket?.on("close", () => stream.push(null));
    stream.on("close", () => webSocket?.close());
    return { stream, errors: () => errors.trim() };
}

/** OpenSSL's error as the alert a peer sent ("alert bad certificate"), else its first line. */
function tlsReason(error: Error): string {
    return /alert [a-z ]+/.exec(error.message)?.[0] ?? error.message.split("\n")[0];
}

type Handshake = { accepted: true; authorized: boolean; authorizationError?: string } | { accepted: false; reason: string };

/**
 * A TLS handshake with Tiller over a fresh port-forward, which tells whether Tiller's certificate is
 * the stack CA's. Without a client certificate the client speaks TLS 1.2, where a server that requires
 * one refuses inside the handshake (Tiller 2.17: RequireAndVerifyClientCert, cmd/tiller/tiller.go
 * `tlsOptions`). With one, TLS 1.3 tells a refusal only after the handshake: acceptance is the health
 * check's to prove, not this.
 */
async function tillerHandshake(config: k8s.KubeConfig, pod: string, caPem: string, client?: { cert: string; key: string }): Promise<Handshake> {
    const { stream, errors } = await forwardedStream(config, CLUSTER_FACTS.tiller.namespace, pod, CLUSTER_FACTS.tiller.port);
    return new Promise<Handshake>((resolve) => {
        const socket = tls.connect({
            socket: stream,
            servername: CLUSTER_FACTS.tillerHostname,
            ca: [caPem],
            rejectUnauthorized: false,
            ...(client ?? { maxVersion: "TLSv1.2" as const }),
        });
        let settled = false;
        const finish = (result: Handshake) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            socket.destroy();
            stream.destroy();
            resolve(result);
        };
        const refused = (reason: string) => finish({ accepted: false, reason: errors() ? `${reason}; port-forward: ${errors()}` : reason });
        const timer = setTimeout(() => refused(`no handshake within ${HANDSHAKE_MS / 1000} s`), HANDSHAKE_MS);
        socket.once("error", (error: Error) => refused(tlsReason(error)));
        socket.once("close", () => refused("connection closed"));
        // node:tls gives the verification failure's code, such as UNABLE_TO_VERIFY_LEAF_SIGNATURE.
        socket.once("secureConnect", () => finish({ accepted: true, authorized: socket.authorized, authorizationError: String(socket.authorizationError) }));
    });
}

/**
 * grpc.health.v1 (grpc/grpc-proto grpc/health/v1/health.proto): Check takes HealthCheckRequest
 * {string service = 1} and answers HealthCheckResponse {ServingStatus status = 1}, in protobuf's wire
 * format: the request is field 1 length-delimited (tag 0x0a), the answer field 1 varint (tag 0x08),
 * left out when 0.
 */
const HEALTH_CHECK = "/grpc.health.v1.Health/Check";
const SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];
/** helm/helm v2.17.0 cmd/tiller/tiller.go: the health server's service, set SERVING once Tiller has started. */
const TILLER_HEALTH_SERVICE = "Tiller";

const encodeHealthRequest = (service: string) => Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(service)]), Buffer.from(service)]);
const decodeHealthResponse = (answer: Buffer) => SERVING_STATUS[answer[0] === 0x08 ? answer[1] : 0] ?? `status ${answer[1]}`;

/**
 * A loopback port whose every connection is a fresh port-forward to the pod's port, as `kubectl
 * port-forward` serves one, for a client (gRPC's) that dials an address itself.
 */
async function forwardedPort(config: k8s.KubeConfig, namespace: string, pod: string, port: number): Promise<{ port: number; close(): void; errors(): string }> {
    const sockets = new Set<net.Socket>();
    const errors: string[] = [];
    const server = net.createServer((socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        socket.on("error", () => undefined);
        forwardedStream(config, namespace, pod, port).then(
            ({ stream, errors: said }) => {
                socket.pipe(stream).pipe(socket);
                stream.on("error", () => socket.destroy());
                stream.on("close", () => {
                    if (said()) errors.push(said());
                    socket.destroy();
                });
                socket.on("close", () => stream.destroy());
            },
            (error: Error) => {
                errors.push(errorText(error));
                socket.destroy();
            },
        );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
        port: (server.address() as net.AddressInfo).port,
        close: () => {
            sockets.forEach((s) => s.destroy());
            server.close();
        },
        errors: () => errors.join("; "),
    };
}

type Health = { answered: true; status: string } | { answered: false; reason: string };

/**
 * The metadata a Helm 2 client sends with every call (helm/helm v2.17.0 pkg/helm/option.go
 * `FromContext`). Tiller's interceptor refuses any call without a compatible version, the health
 * check's too, but GetVersion (pkg/tiller/server.go `newUnaryInterceptor`, pkg/version/compatible.go).
 */
function helmClientMetadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set("x-helm-api-client", CLUSTER_FACTS.tillerVersion);
    return metadata;
}

/** A gRPC health check of Tiller, with helm-operator's certificate and the stack's CA, over a port-forward. */
async function tillerHealth(config: k8s.KubeConfig, pod: string, caPem: string, client: { cert: string; key: string }): Promise<Health> {
    const forwarded = await forwardedPort(config, CLUSTER_FACTS.tiller.namespace, pod, CLUSTER_FACTS.tiller.port);
    const channel = new grpc.Client(
        `127.0.0.1:${forwarded.port}`,
        grpc.credentials.createSsl(Buffer.from(caPem), Buffer.from(client.key), Buffer.from(client.cert)),
        {
            // The name helm-operator checks Tiller's certificate against (HELM_TLS_HOSTNAME), as the request's authority too.
            "grpc.ssl_target_name_override": CLUSTER_FACTS.tillerHostname,
            "grpc.default_authority": CLUSTER_FACTS.tillerHostname,
            "grpc.enable_http_proxy": 0,
        },
    );
    try {
        return await new Promise<Health>((resolve) =>
            channel.makeUnaryRequest(
                HEALTH_CHECK,
                encodeHealthRequest,
                decodeHealthResponse,
                TILLER_HEALTH_SERVICE,
                helmClientMetadata(),
                { deadline: Date.now() + HANDSHAKE_MS },
                (error, status) => {
                    if (error || status === undefined) {
                        const reason = tlsReason(new Error(error?.details || error?.message || "no answer"));
                        resolve({ answered: false, reason: forwarded.errors() ? `${reason}; port-forward: ${forwarded.errors()}` : reason });
                    } else {
                        resolve({ answered: true, status });
                    }
                },
            ),
        );
    } finally {
        channel.close();
        forwarded.close();
    }
}

export function checkTillerMtls(config: k8s.KubeConfig, tillerCaCertPem: string): Promise<CheckResult> {
    return runCheck("tiller-mtls", "", API_MS + 2 * HANDSHAKE_MS, async () => {
        const core = config.makeApiClient(k8s.CoreV1Api);
        const pods = await core.listNamespacedPod({ namespace: CLUSTER_FACTS.tiller.namespace, labelSelector: CLUSTER_FACTS.tiller.labels });
        const pod = pods.items.find((p) => p.status?.phase === "Running")?.metadata?.name;
        if (!pod) {
            return fail(`no running Tiller pod (${CLUSTER_FACTS.tiller.labels}) in ${CLUSTER_FACTS.tiller.namespace}`);
        }
        const secret = await core.readNamespacedSecret({ namespace: CLUSTER_FACTS.operator.namespace, name: CLUSTER_FACTS.operator.clientSecret });
        const decode = (key: string) => Buffer.from(secret.data?.[key] ?? "", "base64").toString("utf8");
        const client = { cert: decode("tls.crt"), key: decode("tls.key") };
        const [server, health, without] = await Promise.all([
            tillerHandshake(config, pod, tillerCaCertPem, client),
            tillerHealth(config, pod, tillerCaCertPem, client),
            tillerHandshake(config, pod, tillerCaCertPem),
        ]);
        const problems = [
            server.accepted && !server.authorized
                ? `its certificate is not the stack CA's for ${CLUSTER_FACTS.tillerHostname}: ${server.authorizationError}`
                : "",
            !health.answered ? `no health answer with helm-operator's certificate: ${health.reason}` : "",
            health.answered && health.status !== "SERVING" ? `Tiller reports ${health.status}` : "",
            without.accepted ? "accepted a client without a certificate" : "",
        ].filter(Boolean);
        const seen = `pod ${pod}: with helm-operator's certificate, health ${health.answered ? health.status : "not answered"}; no certificate ${without.accepted ? "accepted" : `refused (${without.reason})`}`;
        return problems.length === 0 ? pass(seen) : fail(`${seen}; ${problems.join("; ")}`);
    });
}

/** Every check through the Kubernetes API but the revision window, which verify runs alongside. */
export async function clusterChecks(target: ClusterTarget): Promise<CheckResult[]> {
    const config = kubeConfig(target.kubeconfig);
    // Listed once for both checks that read them; each reports a failed list as its own.
    const releases = helmReleases(config);
    releases.catch(() => undefined);
    const results = await Promise.all([
        checkHelmReleases(releases),
        checkExposedServices(config, target.exposedServices),
        checkTillerMtls(config, target.tillerCaCertPem),
        checkPodsReady(config, releases),
        checkStorageBound(config, target.workflow),
    ]);
    return results.flat();
}
