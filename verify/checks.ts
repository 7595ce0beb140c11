/**
 * The checks of `npm run verify`, each with what it proves and where to look when it fails. The help,
 * the printed lines and the JSON report all read this one table.
 */
export const CHECKS = {
    dns: {
        proves: "a random name under *.<platform domain> resolves to exactly the live Ready nodes' ExternalIP addresses (the round-robin records follow the nodes DigitalOcean runs now, not the stack's outputs)",
        lookAt: "kubectl get nodes -o wide (the EXTERNAL-IP column), the A records of *.<platform domain> in the DigitalOcean zone (pulumi up points them at the running nodes), the zone's NS records at the registrar, or a resolver's cache (--dns-server ns1.digitalocean.com asks DigitalOcean's own)",
    },
    "tcp-80": {
        proves: "every node answers on TCP 80 (the ingress controller on the host network)",
        lookAt: "the worker firewall (DigitalOcean console, Networking > Firewalls) and the ingress controller's pods: kubectl -n haproxy-ingress get pods -o wide",
    },
    "tcp-443": {
        proves: "every node answers on TCP 443",
        lookAt: "the worker firewall and the ingress controller's pods: kubectl -n haproxy-ingress get pods -o wide",
    },
    certificate: {
        proves: "https://deis.<platform domain> on every node presents a certificate trusted for that name, from Let's Encrypt's production issuer, with more than a sixth of its own lifetime left (cert-manager renews at a third: half of its renewal window is not yet spent)",
        lookAt: "cert-manager: kubectl -n deis describe certificate; kubectl get clusterissuer letsencrypt-prod -o yaml; kubectl -n cert-manager logs deploy/cert-manager",
    },
    http01: {
        proves: "on every node, plain HTTP to /.well-known/acme-challenge/… of each host that gets a certificate (deis.<platform domain> and the Certificates' names) is answered, following redirects as Let's Encrypt does (at most 10, to http or https on ports 80 or 443, never to an IP address)",
        lookAt: "the redirect named in the evidence: the ingress HelmRelease's values (ssl-redirect-port 443, no global redirect: docs/ingress.md) and the host's Ingress annotations (kubectl get ingress -A)",
    },
    "ssh-banner": {
        proves: "every node's TCP 2222 answers with an SSH banner (the builder behind the ingress controller's TCP forward)",
        lookAt: "hephy-doks:builderSshSources (your address must be in it), the ingress controller's TCP services ConfigMap, and kubectl -n deis get pods -l app=deis-builder",
    },
    "controller-health": {
        proves: "the Workflow controller answers 200 on /healthz through the ingress, on every node",
        lookAt: "kubectl -n deis logs deploy/deis-controller, and kubectl -n deis get ingress",
    },
    "kubernetes-api": {
        proves: "the Kubernetes API accepts verify's credential and lists the nodes: a fresh one from DigitalOcean's API when a DigitalOcean token is at hand, else the stack's kubeconfig output (valid 7 days after the pulumi up that wrote it)",
        lookAt: "the evidence's command: export DIGITALOCEAN_TOKEN=$(pulumi config get digitalocean:token --stack <stack>) so verify fetches a fresh credential, or pulumi up --refresh=false --stack <stack>; an unreachable API: the cluster's state in the DigitalOcean console",
    },
    helmreleases: {
        proves: "every HelmRelease is released: condition Released true, release status deployed, its latest generation observed",
        lookAt: "kubectl get helmreleases -A, and kubectl -n flux logs deploy/flux-helm-operator",
    },
    revisions: {
        proves: "no release gains a revision over the sampling window (--watch), which spans helm-operator's 3-minute dry-run compare: the article's \"20 revisions an hour\", measured",
        lookAt: "helm history of the release that moved (Tiller: kubectl -n kube-system get secrets -l OWNER=TILLER,NAME=<release>), and what differs between its last two revisions: a template that renders differently each time",
    },
    "dns-drift": {
        proves: "through the --watch window, the published records stay on the serving nodes: a difference (a node replaced, cordoned or dead) is gone within 90 s, the in-cluster reconciler's minute plus its records' TTL",
        lookAt: "kubectl -n haproxy-ingress logs deploy/hephy-doks-node-dns (with dnsToken), or run pulumi up (without it, DNS moves only then); kubectl get nodes -o wide",
    },
    "no-exposed-services": {
        proves: "no Service of type LoadBalancer or NodePort exists, but those named in hephy-doks:exposedServices",
        lookAt: "kubectl get services -A, and the admission policy deny-exposed-services",
    },
    "tiller-mtls": {
        proves: "Tiller answers a gRPC health check (grpc.health.v1, service Tiller SERVING) over TLS with helm-operator's client certificate, with a server certificate from the stack's CA, and refuses a client without one in the handshake (through a port-forward, which network policies do not see: it proves Tiller's TLS, not who can reach it)",
        lookAt: "kubectl -n kube-system get deploy tiller-deploy -o yaml (TILLER_TLS_VERIFY, TILLER_TLS_ENABLE) and the Secrets tiller-secret and flux/helm-client",
    },
    "pods-ready": {
        proves: "every Deployment, DaemonSet and StatefulSet in the namespaces of the HelmReleases (and Tiller's) has all its pods available (a Deployment: of its current template, its rollout done), and no pod outside them is failing; Failed pods that a controller has replaced (evicted, shut down, rejected) are history",
        lookAt: "kubectl -n <namespace> describe deploy,ds,sts <name>, kubectl -n <namespace> describe pod <pod>, and its logs",
    },
    "storage-bound": {
        proves: "every PersistentVolumeClaim is Bound, Workflow's object store among them",
        lookAt: "kubectl describe pvc -A, and the DigitalOcean volumes of the region",
    },
    "backup-copy": {
        proves: "(with hephy-doks:backupRegion) the newest off-cluster copy of Workflow's object store succeeded within --backup-age minutes (default 45: three of its 15-minute periods), as its CronJob records it",
        lookAt: 'kubectl -n deis get cronjob hephy-doks-backup, kubectl -n deis get jobs -l app=hephy-doks-backup and kubectl -n deis logs job/<newest>; docs/operations.md, "Backups"',
    },
    "volume-snapshot": {
        proves: "(with hephy-doks:volumeSnapshots) each snapshotted claim of Workflow's has a ready snapshot younger than 13 hours (two of its 6-hour periods and one)",
        lookAt: "kubectl -n deis get volumesnapshots, kubectl -n deis describe snapshotschedule hephy-doks-volumes, and kubectl -n backube-snapscheduler logs deploy/snapscheduler",
    },
    push: {
        proves: "(--push) an app is created, a buildpack app pushed with git over SSH, served over HTTPS at https://<app>.<platform domain> with a valid certificate, and app and key removed (with --push-name, the app is reused and kept)",
        lookAt: "deis logs -a <app> and kubectl -n deis logs deploy/deis-builder; an app left behind is named in the evidence",
    },
} as const;

export type CheckId = keyof typeof CHECKS;

/** One line of the report: a check, on one target (a node, a release) or on the whole stack. */
export interface CheckResult {
    id: CheckId;
    /** The node, object or name checked; empty when the check is of the whole stack. */
    target: string;
    ok: boolean;
    /** What was seen: the values that pass, or what went wrong. */
    evidence: string;
}

export type Outcome = Pick<CheckResult, "ok" | "evidence">;

export const pass = (evidence: string): Outcome => ({ ok: true, evidence });
export const fail = (evidence: string): Outcome => ({ ok: false, evidence });

/**
 * Runs one check, bounded in time: a check that does not finish fails with that as its evidence, and a
 * thrown error becomes the evidence. Nothing a check does can hang the run.
 */
export async function runCheck(id: CheckId, target: string, timeoutMs: number, body: () => Promise<Outcome>): Promise<CheckResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<Outcome>((resolve) => {
        timer = setTimeout(() => resolve(fail(`no result within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    });
    try {
        const outcome = await Promise.race([body().catch((error: Error) => fail(errorText(error))), timeout]);
        return { id, target, ...outcome };
    } finally {
        clearTimeout(timer);
    }
}

/**
 * An error as one line: an API error of @kubernetes/client-node (ApiException: a status and a Status
 * body) as its status and message; a command that failed by the error it wrote (its first fatal or error line); a failed fetch by
 * its cause; else the message, with its code (ECONNREFUSED, ENOTFOUND…) when the message lacks it.
 */
export function errorText(error: unknown): string {
    const e = error as { message?: string; code?: unknown; body?: unknown; stderr?: string; cause?: { message?: string; code?: string } };
    if (e?.constructor?.name === "ApiException" && typeof e.code === "number") {
        const status = (typeof e.body === "string" ? safeJson(e.body) : e.body) as { message?: string; reason?: string } | undefined;
        return `the Kubernetes API answered ${e.code}${status?.message ? `: ${status.message}` : status?.reason ? ` ${status.reason}` : ""}`;
    }
    const stderr = e?.stderr?.trim().split("\n");
    if (stderr?.length && stderr[0]) {
        const program = (e as { cmd?: string }).cmd?.split(" ")[0] ?? "a command";
        return `${program} failed: ${stderr.find((l) => /^(fatal|error|ERROR)\b/.test(l)) ?? stderr[stderr.length - 1]}`;
    }
    if (e?.cause?.message) {
        return `${e.message}: ${e.cause.message}${e.cause.code && !e.cause.message.includes(e.cause.code) ? ` (${e.cause.code})` : ""}`;
    }
    const message = e?.message ?? String(error);
    const code = typeof e?.code === "string" && !message.includes(e.code) ? ` (${e.code})` : "";
    return `${message}${code}`.split("\n")[0];
}

/** JSON.parse, or undefined for text that is not JSON (an error page). */
export function safeJson(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return undefined;
    }
}

/** The report as a person reads it: one line per check, and on failure where to look. */
export function formatResult(result: CheckResult): string {
    const target = result.target ? ` ${result.target}` : "";
    const line = `${result.ok ? "✔" : "✖"} ${result.id}${target}: ${result.evidence}`;
    return result.ok ? line : `${line}\n    look at: ${CHECKS[result.id].lookAt}`;
}

/** The report for CI (`--json`). */
export function jsonReport(results: readonly CheckResult[]): string {
    return JSON.stringify(
        {
            ok: results.every((r) => r.ok),
            checks: results.map((r) => (r.ok ? r : { ...r, lookAt: CHECKS[r.id].lookAt })),
        },
        null,
        2,
    );
}
