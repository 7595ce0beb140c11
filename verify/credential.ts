import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { CheckResult, errorText, fail, pass, runCheck, safeJson } from "./checks";
import { kubeConfig } from "./cluster";
import { LiveNode, liveNodes } from "./nodes";

/**
 * The stack's kubeconfig output is DigitalOcean's credential from the last `pulumi up`, valid 7 days
 * (components/cluster.ts). verify asks DigitalOcean for a fresh one itself when it has the user's
 * token, as `doctl kubernetes cluster kubeconfig show` does: GET /v2/kubernetes/clusters/{id}/kubeconfig,
 * whose `expiry_seconds` bounds the token it holds (docs.digitalocean.com/reference/api, "Retrieve the
 * kubeconfig for a Kubernetes Cluster"; 7 days when unset).
 */
export const FRESH_CREDENTIAL_SECONDS = 3600;

/** How long the fresh credential must last: an hour beyond what --retry and --watch may wait. */
export function credentialSeconds(waits: { retryMinutes: number; watchMinutes: number }): number {
    return FRESH_CREDENTIAL_SECONDS + Math.ceil((waits.retryMinutes + waits.watchMinutes) * 60);
}

/** The variables the DigitalOcean provider reads its token from (terraform-provider-digitalocean: DIGITALOCEAN_TOKEN, then DIGITALOCEAN_ACCESS_TOKEN). */
const TOKEN_VARIABLES = ["DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"] as const;
/** The provider's API endpoint; main() takes DIGITALOCEAN_API_URL instead when set, as @pulumi/digitalocean does. */
const DEFAULT_API_URL = "https://api.digitalocean.com";
const API_MS = 20_000;

/** The credential verify talks to the cluster with, and where it came from. */
export interface ClusterCredential {
    kubeconfig: string;
    /** Said in the report: which credential, or why the fresh one could not be had. */
    source: string;
    fresh: boolean;
}

/** The user's DigitalOcean token: the environment's, else the stack's `digitalocean:token` (when verify reads the stack with the CLI). */
export async function digitalOceanToken(env: NodeJS.ProcessEnv, stack: { name?: string; viaCli: boolean }): Promise<string | undefined> {
    const fromEnv = TOKEN_VARIABLES.map((name) => env[name]).find((value) => value);
    if (fromEnv || !stack.viaCli) {
        return fromEnv;
    }
    const args = ["config", "get", "digitalocean:token", ...(stack.name ? ["--stack", stack.name] : [])];
    return promisify(execFile)("pulumi", args, { timeout: API_MS })
        .then(({ stdout }) => stdout.trim() || undefined)
        .catch(() => undefined);
}

/**
 * A fresh credential from DigitalOcean's API when there is a token and the stack's cluster id, else the
 * stack's output. A refusal by DigitalOcean (a token that cannot read the cluster) is said, not hidden,
 * and the output is used instead.
 */
export async function clusterCredential(
    outputs: { kubeconfig: string; clusterId?: string },
    token: string | undefined,
    apiUrl = DEFAULT_API_URL,
    seconds = FRESH_CREDENTIAL_SECONDS,
): Promise<ClusterCredential> {
    const stored = "the stack's kubeconfig output (DigitalOcean's credential of the last pulumi up, valid 7 days)";
    if (!token || !outputs.clusterId) {
        const missing = !token ? "no DigitalOcean token (DIGITALOCEAN_TOKEN)" : "no clusterId in the stack's outputs";
        return { kubeconfig: outputs.kubeconfig, source: `${stored}; ${missing} to fetch a fresh one`, fresh: false };
    }
    const route = `/v2/kubernetes/clusters/${encodeURIComponent(outputs.clusterId)}/kubeconfig?expiry_seconds=${seconds}`;
    try {
        const response = await fetch(new URL(route, apiUrl), { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(API_MS) });
        const text = await response.text();
        if (!response.ok) {
            // DigitalOcean's errors: {"id": "unauthorized", "message": "Unable to authenticate you"}.
            const message = (safeJson(text) as { message?: string } | undefined)?.message ?? text.slice(0, 120);
            throw new Error(`DigitalOcean's API answered ${response.status} ${message}`);
        }
        kubeConfig(text);
        return {
            kubeconfig: text,
            source: `a fresh credential from DigitalOcean's API (GET ${route.split("?")[0]}, valid ${Math.round(seconds / 60)} min)`,
            fresh: true,
        };
    } catch (error) {
        return { kubeconfig: outputs.kubeconfig, source: `${stored}; no fresh one: ${errorText(error)}`, fresh: false };
    }
}

/** What to run when the API server refuses the stack's credential. */
export function renewalHint(stack: string | undefined): string {
    const flag = stack ? ` --stack ${stack}` : "";
    return `export DIGITALOCEAN_TOKEN=$(pulumi config get digitalocean:token${flag}) and run verify again (it fetches a fresh credential), or run pulumi up --refresh=false${flag} (it renews the output)`;
}

/**
 * The first request of the cluster checks, which they all need: the nodes, with the credential. A 401
 * is the credential's expiry, said as such with what to run; the checks that would only repeat it do
 * not run.
 */
export async function checkKubernetesApi(
    credential: ClusterCredential,
    stack: string | undefined,
): Promise<{ result: CheckResult; config?: k8s.KubeConfig; nodes?: LiveNode[] }> {
    const config = kubeConfig(credential.kubeconfig);
    let nodes: LiveNode[] | undefined;
    const result = await runCheck("kubernetes-api", "", API_MS, async () => {
        try {
            nodes = await liveNodes(config);
        } catch (error) {
            if ((error as { code?: unknown }).code === 401) {
                return fail(`the API server answered 401 Unauthorized to ${credential.source}: the credential has expired. ${renewalHint(stack)}`);
            }
            throw error;
        }
        return pass(`${nodes.length} nodes listed with ${credential.source}`);
    });
    return result.ok ? { result, config, nodes } : { result };
}
