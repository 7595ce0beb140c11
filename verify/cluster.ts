import { Duplex, PassThrough } from "node:stream";
import * as tls from "node:tls";
import * as k8s from "@kubernetes/client-node";
import { CheckResult, fail, Outcome, pass, runCheck } from "./checks";

/**
 * Names the program gives objects in the cluster. verify does not load the program (or Pulumi) to learn
 * them; test/verify.spec.ts holds them equal to the components' own.
 */
export const CLUSTER_FACTS = {
    /** components/tiller.ts TILLER. */
    tiller: { namespace: "kube-system", labels: "app=helm,name=tiller", port: 44134 },
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
    /** How long a refused client is given to be told so, and an accepted one to stay connected (default 1.5 s). */
    settleMs?: number;
}

const API_MS = 30_000;
const HANDSHAKE_MS = 10_000;
/** Over a port-forward, a TLS 1.3 refusal arrives well within this after the handshake. */
const SETTLE_MS = 1_500;

export function kubeConfig(kubeconfig: string): k8s.KubeConfig {
    const config = new k8s.KubeConfig();
    config.loadFromString(kubeconfig);
    return config;
}

interface HelmRelease {
    metadata: { name: string; namespace: string; generation?: number };
    spec?: { targetNamespace?: string; releaseName?: string };
    status?: { releaseStatus?: string; releaseName?: string; observedGeneration?: number; conditions?: { type: string; status: string; message?: string }[] };
}

async function helmReleases(config: k8s.KubeConfig): Promise<HelmRelease[]> {
    // fluxcd/helm-operator v1.4.4 pkg/apis/helm.fluxcd.io/v1/types_helmrelease.go: group, version, status fields.
    const list = await config.makeApiClient(k8s.CustomObjectsApi).listClusterCustomObject({ group: "helm.fluxcd.io", version: "v1", plural: "helmreleases" });
    return (list as { items: HelmRelease[] }).items;
}

const nameOf = (o: { metadata?: { namespace?: string; name?: string } }) => `${o.metadata?.namespace}/${o.metadata?.name}`;

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
        const seen = `release ${status.releaseName ?? "?"} ${status.releaseStatus ?? "no status"}, Released ${released?.status ?? "absent"}, generation ${status.observedGeneration ?? "?"}/${release.metadata.generation ?? "?"}`;
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

/**
 * A pod is fine when it is Ready or has completed; a failed Job's pod or build pod (Workflow's
 * `slugbuild-`/`dockerbuild-` pods, which the builder leaves behind) is history, not a service down.
 */
function podProblem(pod: k8s.V1Pod): string | undefined {
    if (pod.status?.phase === "Succeeded" || pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) {
        return undefined;
    }
    const finished = pod.metadata?.ownerReferences?.some((o) => o.kind === "Job") || /^(slug|docker)build-/.test(pod.metadata?.name ?? "");
    if (pod.status?.phase === "Failed" && finished) {
        return undefined;
    }
    const waiting = pod.status?.containerStatuses?.map((c) => c.state?.waiting?.reason ?? c.state?.terminated?.reason).filter(Boolean) ?? [];
    const unscheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status !== "True")?.message;
    return `${nameOf(pod)} ${pod.status?.phase ?? "?"}${waiting.length ? ` (${waiting.join(", ")})` : ""}${unscheduled ? ` (${unscheduled})` : ""}`;
}

export function checkPodsReady(config: k8s.KubeConfig, listed: Promise<HelmRelease[]>): Promise<CheckResult> {
    return runCheck("pods-ready", "", API_MS, async () => {
        const core = config.makeApiClient(k8s.CoreV1Api);
        const releases = await listed;
        const namespaces = [...new Set([CLUSTER_FACTS.operator.namespace, ...releases.map((r) => r.spec?.targetNamespace ?? r.metadata.namespace)])].sort();
        const lists = await Promise.all([
            ...namespaces.map((namespace) => core.listNamespacedPod({ namespace })),
            core.listNamespacedPod({ namespace: CLUSTER_FACTS.tiller.namespace, labelSelector: CLUSTER_FACTS.tiller.labels }),
        ]);
        const pods = lists.flatMap((l) => l.items);
        const problems = pods.map(podProblem).filter((p): p is string => p !== undefined);
        if (problems.length > 0) {
            return fail(`not ready: ${problems.join("; ")}`);
        }
        return pods.length > 0 ? pass(`${pods.length} pods ready in ${namespaces.join(", ")} and Tiller's`) : fail(`no pod in ${namespaces.join(", ")}`);
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
 * A TLS handshake with Tiller over a fresh port-forward. Without a certificate the client speaks TLS
 * 1.2, where a server that requires one refuses inside the handshake (Tiller 2.17:
 * RequireAndVerifyClientCert, pkg/tlsutil/cfg.go). With one, TLS 1.3 may tell a refusal only after the
 * handshake, so the client counts as accepted once Tiller's gRPC server speaks first (its HTTP/2
 * settings), or is still connected a moment later.
 */
async function tillerHandshake(
    config: k8s.KubeConfig,
    pod: string,
    caPem: string,
    settleMs: number,
    client?: { cert: string; key: string },
): Promise<Handshake> {
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
        socket.once("secureConnect", () => {
            clearTimeout(timer);
            // node:tls gives the verification failure's code, such as UNABLE_TO_VERIFY_LEAF_SIGNATURE.
            const accepted = { accepted: true as const, authorized: socket.authorized, authorizationError: String(socket.authorizationError) };
            if (!client) {
                finish(accepted);
                return;
            }
            socket.once("data", () => finish(accepted));
            setTimeout(() => finish(accepted), settleMs);
        });
    });
}

export function checkTillerMtls(config: k8s.KubeConfig, tillerCaCertPem: string, settleMs = SETTLE_MS): Promise<CheckResult> {
    return runCheck("tiller-mtls", "", API_MS + 2 * HANDSHAKE_MS, async () => {
        const core = config.makeApiClient(k8s.CoreV1Api);
        const pods = await core.listNamespacedPod({ namespace: CLUSTER_FACTS.tiller.namespace, labelSelector: CLUSTER_FACTS.tiller.labels });
        const pod = pods.items.find((p) => p.status?.phase === "Running")?.metadata?.name;
        if (!pod) {
            return fail(`no running Tiller pod (${CLUSTER_FACTS.tiller.labels}) in ${CLUSTER_FACTS.tiller.namespace}`);
        }
        const secret = await core.readNamespacedSecret({ namespace: CLUSTER_FACTS.operator.namespace, name: CLUSTER_FACTS.operator.clientSecret });
        const decode = (key: string) => Buffer.from(secret.data?.[key] ?? "", "base64").toString("utf8");
        const [withCertificate, without] = await Promise.all([
            tillerHandshake(config, pod, tillerCaCertPem, settleMs, { cert: decode("tls.crt"), key: decode("tls.key") }),
            tillerHandshake(config, pod, tillerCaCertPem, settleMs),
        ]);
        const problems = [
            !withCertificate.accepted ? `refused helm-operator's certificate: ${withCertificate.reason}` : "",
            withCertificate.accepted && !withCertificate.authorized
                ? `its certificate is not the stack CA's for ${CLUSTER_FACTS.tillerHostname}: ${withCertificate.authorizationError}`
                : "",
            without.accepted ? "accepted a client without a certificate" : "",
        ].filter(Boolean);
        const seen = `pod ${pod}: helm-operator's certificate ${withCertificate.accepted ? "accepted" : "refused"}, no certificate ${without.accepted ? "accepted" : `refused (${without.reason})`}`;
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
        checkTillerMtls(config, target.tillerCaCertPem, target.settleMs),
        checkPodsReady(config, releases),
        checkStorageBound(config, target.workflow),
    ]);
    return results.flat();
}
