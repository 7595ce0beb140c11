import { CheckResult, fail, pass, runCheck } from "./checks";
import { LiveNode, recordsAgainstNodes } from "./nodes";

/**
 * How long DNS may differ from the serving nodes before it is drift: the in-cluster reconciler's bound
 * (a dead node is NotReady within the control plane's 40 s grace, its record gone at the next pass)
 * plus its records' 30 s TTL in resolvers.
 */
export const DRIFT_BOUND_MS = 90_000;
/** Between samples of the drift watch. */
export const DRIFT_SAMPLE_MS = 20_000;

/** One look at DNS and the nodes: what a random name resolves to, and the cluster's nodes then. */
export interface DriftSample {
    answers: string[];
    nodes: LiveNode[];
}

/**
 * `verify --watch`: samples DNS against the live nodes (the dns check's comparison, recordsAgainstNodes)
 * through the window, and fails when they differ for longer than `boundMs`: records that do not follow
 * the nodes. A difference corrected within the bound (a node replaced while watching) passes, and is
 * named. A stack without dnsToken is said to move its DNS only at pulumi up.
 */
export function checkDnsDrift(
    sample: () => Promise<DriftSample>,
    opts: { minutes: number; followsNodes: boolean; boundMs?: number; intervalMs?: number; sleep?: (ms: number) => Promise<void>; now?: () => number },
): Promise<CheckResult> {
    const windowMs = opts.minutes * 60_000;
    const boundMs = opts.boundMs ?? DRIFT_BOUND_MS;
    const intervalMs = opts.intervalMs ?? DRIFT_SAMPLE_MS;
    const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const now = opts.now ?? Date.now;
    const mover = opts.followsNodes ? "the in-cluster reconciler moves it" : "no dnsToken: this stack's DNS moves only at pulumi up";
    return runCheck("dns-drift", "", windowMs + boundMs + 30_000, async () => {
        const started = now();
        let samples = 0;
        let since: number | undefined;
        let longest = 0;
        let last = "";
        const corrected: string[] = [];
        for (;;) {
            const at = now();
            const seen = await sample().then(
                (s) => recordsAgainstNodes(s.answers, s.nodes),
                (error: Error) => ({ ok: false, evidence: `no sample: ${error.message}` }),
            );
            samples++;
            if (seen.ok) {
                if (since !== undefined) corrected.push(`a difference corrected within ${Math.round((at - since) / 1000)} s`);
                since = undefined;
            } else {
                since ??= at;
                longest = Math.max(longest, at - since);
                last = seen.evidence;
            }
            if (longest > boundMs || at - started >= windowMs) break;
            await sleep(intervalMs);
        }
        const summary = `${samples} samples over ${Math.round((now() - started) / 60_000)} min`;
        if (longest > boundMs) {
            return fail(
                `${summary}: DNS differed from the serving nodes for ${Math.round(longest / 1000)} s, more than ${boundMs / 1000} s: ${last} (${mover})`,
            );
        }
        if (since !== undefined) {
            return fail(`${summary}: DNS differs from the serving nodes at the end of the window: ${last} (${mover})`);
        }
        return pass(`${summary}: DNS followed the serving nodes${corrected.length ? ` (${corrected.join(", ")})` : ""}; ${mover}`);
    });
}

/** What verify says of a stack without dnsToken, before its checks. */
export function dnsMovesOnlyAtUp(platformDomain: string): string {
    return `No dnsToken: *.${platformDomain} moves to new nodes only at pulumi up; a node DigitalOcean replaces keeps a dead record until the next run (docs/operations.md, "DNS that follows the nodes")`;
}
