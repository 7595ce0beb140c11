import * as assert from "node:assert/strict";
import { checkDnsDrift, DriftSample, dnsMovesOnlyAtUp } from "../verify/dnsDrift";
import { recordsAgainstNodes } from "../verify/nodes";
import { parseOutputs } from "../verify/outputs";

/**
 * `npm run verify --watch`'s DNS drift check (verify/dnsDrift.ts) over a scripted window: what a random
 * name resolved to and the nodes at each sample, on a clock the test moves, 20 s a sample.
 */
function scripted(samples: DriftSample[], followsNodes: boolean, minutes = 2) {
    let clock = 0;
    let i = 0;
    return checkDnsDrift(async () => samples[Math.min(i++, samples.length - 1)], {
        minutes,
        followsNodes,
        sleep: async (ms) => {
            clock += ms;
        },
        now: () => clock,
    });
}

const node = (name: string, address: string, ready = true, cordoned = false) => ({ name, address, ready, cordoned });
const OLD = [node("pool-a", "203.0.113.1"), node("pool-b", "203.0.113.2")];
const REPLACED = [node("pool-a", "203.0.113.1"), node("pool-c", "198.51.100.3")];

describe("npm run verify --watch: DNS drift against the serving nodes", () => {
    it("passes a node replaced while watching when the records follow within 90 s, and names the difference it saw", async () => {
        const before = { answers: ["203.0.113.1", "203.0.113.2"], nodes: OLD };
        const lagging = { answers: ["203.0.113.1", "203.0.113.2"], nodes: REPLACED };
        const after = { answers: ["198.51.100.3", "203.0.113.1"], nodes: REPLACED };
        const result = await scripted([before, lagging, lagging, lagging, after], true);
        assert.equal(result.ok, true, result.evidence);
        assert.equal(
            result.evidence,
            "7 samples over 2 min: DNS followed the serving nodes (a difference corrected within 60 s); the in-cluster reconciler moves it",
        );
    });

    it("fails records left on a replaced node past the bound, and says a stack without dnsToken moves its DNS only at pulumi up", async () => {
        const lagging = { answers: ["203.0.113.1", "203.0.113.2"], nodes: REPLACED };
        const result = await scripted([lagging], false);
        assert.equal(result.ok, false);
        assert.match(
            result.evidence,
            /^6 samples over 2 min: DNS differed from the serving nodes for 100 s, more than 90 s: .*records of no node \(replaced or gone\): 203\.0\.113\.2.* \(no dnsToken: this stack's DNS moves only at pulumi up\)$/,
        );
    });

    it("fails a difference still there when the window ends, and a sample that could not be taken counts as one", async () => {
        const good = { answers: ["203.0.113.1", "203.0.113.2"], nodes: OLD };
        const late = { answers: ["203.0.113.1"], nodes: OLD };
        const result = await scripted([good, good, good, good, good, good, late], true);
        assert.equal(result.ok, false);
        assert.match(result.evidence, /at the end of the window: .*nodes with no record: pool-b 203\.0\.113\.2/);
        let calls = 0;
        const unreadable = await checkDnsDrift(
            async () => {
                calls++;
                throw new Error("queryA ETIMEOUT");
            },
            { minutes: 1, followsNodes: true, sleep: async () => undefined, now: () => calls * 20_000 },
        );
        assert.equal(unreadable.ok, false);
        assert.match(unreadable.evidence, /no sample: queryA ETIMEOUT/);
    });

    it("takes a cordoned node's record as optional, as the reconciler drops it at the drain and pulumi up keeps it", () => {
        const draining = [node("pool-a", "203.0.113.1"), node("pool-b", "203.0.113.2", true, true)];
        assert.equal(recordsAgainstNodes(["203.0.113.1"], draining).ok, true);
        assert.equal(recordsAgainstNodes(["203.0.113.1", "203.0.113.2"], draining).ok, true);
        assert.equal(recordsAgainstNodes(["203.0.113.1"], OLD).ok, false, "an uncordoned Ready node must have its record");
    });

    it("reads dnsFollowsNodes from the stack's outputs, false for a stack that predates it, and says what that means", () => {
        const base = { platformDomain: "staging.hephy-demo.net", nodeIps: ["203.0.113.1"], kubeconfig: "apiVersion: v1", tillerCaCertPem: "PEM" };
        assert.equal(parseOutputs({ ...base, dnsFollowsNodes: true }, "a file").dnsFollowsNodes, true);
        assert.equal(parseOutputs(base, "a file").dnsFollowsNodes, false);
        assert.equal(
            dnsMovesOnlyAtUp("staging.hephy-demo.net"),
            'No dnsToken: *.staging.hephy-demo.net moves to new nodes only at pulumi up; a node DigitalOcean replaces keeps a dead record until the next run (docs/operations.md, "DNS that follows the nodes")',
        );
    });
});
