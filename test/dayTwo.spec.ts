import * as assert from "node:assert/strict";
import { CATALOG } from "../catalog";
import { expiresWithin } from "../components/cluster";
import { publishedNodes } from "../components/dns";
import { chooseKubernetesVersion, commonRange, compareSlugs } from "../kubernetesVersion";
import { plain, programError, Run, runProgram, valueOf } from "../offline/harness";
import { dropletIp, FIRST_DROPLET_ID, FRESH_TOKEN, MOCK_TOKEN, resetWorld, world } from "../offline/mocks";

const CLUSTER = "digitalocean:index/kubernetesCluster:KubernetesCluster";
const SUPPORTED = { min: "1.33", max: "1.36" };

describe("choosing the cluster's Kubernetes version", () => {
    const choose = (requested: string | undefined, offered: string[], running?: string) =>
        chooseKubernetesVersion({ requested, offered, running, supported: SUPPORTED });

    it("creates a new cluster on the newest patch of the newest minor every release supports, and says when a newer minor exists", () => {
        const chosen = choose(undefined, ["1.37.0-do.0", "1.36.1-do.0", "1.36.2-do.1", "1.35.3-do.1"]);
        assert.equal(chosen.version, "1.36.2-do.1");
        assert.deepEqual(chosen.warnings, ["DigitalOcean also offers 1.37, which not every enabled release supports yet; chose 1.36"]);
        assert.deepEqual(choose(undefined, ["1.36.1-do.0", "1.35.3-do.1"]).warnings, []);
    });

    it("keeps a running cluster's version when a minor is added, and says how to move", () => {
        const chosen = choose(undefined, ["1.36.1-do.0", "1.35.3-do.1"], "1.35.3-do.1");
        assert.equal(chosen.version, "1.35.3-do.1");
        assert.deepEqual(chosen.warnings, [
            "DigitalOcean offers Kubernetes 1.36, which every release supports; the cluster stays on 1.35.3-do.1 until you ask (pulumi config set hephy-doks:kubernetesVersion 1.36)",
        ]);
    });

    it("keeps a running cluster on a minor DigitalOcean retired, for latest, its minor and its slug", () => {
        for (const requested of [undefined, "1.34", "1.34.6-do.2"]) {
            const chosen = choose(requested, ["1.36.1-do.0", "1.35.3-do.1"], "1.34.6-do.2");
            assert.equal(chosen.version, "1.34.6-do.2", String(requested));
            assert.ok(
                chosen.warnings.includes(
                    "DigitalOcean no longer offers 1.34.6-do.2, which the cluster runs; it stays until you upgrade it or DigitalOcean does",
                ),
            );
        }
    });

    it("does not move a running cluster to a patch DigitalOcean released since", () => {
        for (const requested of [undefined, "1.35"]) {
            assert.equal(choose(requested, ["1.35.4-do.0", "1.35.3-do.1"], "1.35.3-do.1").version, "1.35.3-do.1");
        }
        assert.equal(choose("1.35.4-do.0", ["1.35.4-do.0", "1.35.3-do.1"], "1.35.3-do.1").version, "1.35.4-do.0", "unless the config names it");
    });

    it("upgrades when the config names a newer minor, and never downgrades", () => {
        assert.equal(choose("1.36", ["1.36.1-do.0", "1.36.2-do.0", "1.35.3-do.1"], "1.35.3-do.1").version, "1.36.2-do.0");
        const older = choose("1.34", ["1.36.1-do.0", "1.35.3-do.1"], "1.35.3-do.1");
        assert.equal(older.version, "1.35.3-do.1");
        assert.match(
            older.warnings[0],
            /^the cluster runs 1\.35\.3-do\.1, newer than the 1\.34 the config asks for, and a cluster cannot go back: kept 1\.35\.3-do\.1/,
        );
        // A slug pinned before DigitalOcean's auto-upgrade moved the cluster on: a downgrade would replace the cluster.
        const pinned = choose("1.35.3-do.1", ["1.35.4-do.0", "1.35.3-do.1"], "1.35.4-do.0");
        assert.equal(pinned.version, "1.35.4-do.0");
        assert.match(pinned.warnings[0], /newer than the 1\.35\.3-do\.1 the config asks for/);
        assert.equal(choose("1.35.3-do.1", ["1.36.1-do.0"], "1.35.4-do.0").version, "1.35.4-do.0", "even when the pinned slug is retired");
    });

    it("moves a running cluster one minor at a time", () => {
        assert.throws(
            () => choose("1.36", ["1.36.1-do.0", "1.35.3-do.1", "1.34.6-do.2"], "1.34.6-do.2"),
            /1\.36 skips a minor: the cluster runs 1\.34\.6-do\.2, and DOKS upgrades one minor at a time \(pulumi config set hephy-doks:kubernetesVersion 1\.35 first\)/,
        );
        assert.equal(choose("1.35", ["1.36.1-do.0", "1.35.3-do.1"], "1.34.6-do.2").version, "1.35.3-do.1");
    });

    it("orders slugs by their numbers, not their text", () => {
        assert.ok(compareSlugs("1.35.10-do.0", "1.35.9-do.3") > 0);
        assert.ok(compareSlugs("1.35.3-do.10", "1.35.3-do.2") > 0);
        assert.equal(compareSlugs("1.35.3-do.1", "1.35.3-do.1"), 0);
    });

    it("refuses what DigitalOcean does not offer for a new cluster, listing what it offers", () => {
        assert.throws(
            () => choose("1.33", ["1.36.1-do.0"]),
            /^Error: hephy-doks:kubernetesVersion 1\.33 is not offered by DigitalOcean; offered now: 1\.36\.1-do\.0/,
        );
        assert.throws(() => choose("1.36.9-do.0", ["1.36.1-do.0"]), /1\.36\.9-do\.0 is not offered/);
        assert.throws(() => choose(undefined, ["1.37.0-do.0"]), /latest: DigitalOcean offers 1\.37, and the enabled releases support only 1\.33 to 1\.36/);
    });

    it("intersects the releases' ranges", () => {
        assert.deepEqual(commonRange([CATALOG.ingress.kubernetes, CATALOG.certManager.kubernetes, CATALOG.workflow.kubernetes]), { min: "1.33", max: "1.36" });
        assert.equal(
            commonRange([
                { min: "1.16", max: "1.21" },
                { min: "1.33", max: "1.36" },
            ]),
            undefined,
        );
    });
});

describe("a running stack while DigitalOcean's offer moves", () => {
    afterEach(resetWorld);

    const running = (version: string) => {
        world.running = { name: "hephy-doks-staging", version, workerTag: "hephy-doks-staging-workers" };
    };
    const version = (run: Run) => plain(run.one(CLUSTER).inputs).version;

    it("a minor added: the running cluster stays on its version", async () => {
        running("1.35.3-do.1");
        world.offered = ["1.37.0-do.0", "1.36.1-do.0", "1.35.3-do.1"];
        const run = await runProgram();
        assert.equal(version(run), "1.35.3-do.1");
        assert.equal(await valueOf(run.outputs.kubernetesVersion), "1.35.3-do.1");
    });

    it("a minor retired: the cluster that runs it is not refused", async () => {
        running("1.34.6-do.2");
        world.offered = ["1.36.1-do.0", "1.35.3-do.1"];
        for (const kubernetesVersion of ["latest", "1.34"]) {
            assert.equal(version(await runProgram({ config: { kubernetesVersion } })), "1.34.6-do.2", kubernetesVersion);
        }
    });

    it("a patch released: the cluster changes only when the config names the patch", async () => {
        running("1.35.3-do.1");
        world.offered = ["1.36.1-do.0", "1.35.4-do.0", "1.35.3-do.1"];
        assert.equal(version(await runProgram({ config: { kubernetesVersion: "1.35" } })), "1.35.3-do.1");
        assert.equal(version(await runProgram({ config: { kubernetesVersion: "1.35.4-do.0" } })), "1.35.4-do.0");
    });

    it("looks the running cluster up by the name it declares, only once its workers exist", async () => {
        const fresh = await runProgram();
        assert.equal(plain(fresh.one(CLUSTER).inputs).name, "hephy-doks-staging");
        const lookups = (run: Run) => run.invokes.filter((i) => i.token.endsWith("getKubernetesCluster")).map((i) => i.inputs.name);
        // A new stack has no workers to find, and its credential is new.
        assert.deepEqual(lookups(fresh), []);
        running("1.35.3-do.1");
        assert.deepEqual(lookups(await runProgram()), ["hephy-doks-staging"]);
    });

    it("a cluster whose version cannot be read (named before clusters were named): renamed, its version left as it is", async () => {
        world.running = { name: "staging-cluster-1a2b3c4", version: "1.35.3-do.1", workerTag: "hephy-doks-staging-workers" };
        const run = await runProgram();
        const cluster = run.one(CLUSTER);
        assert.equal(plain(cluster.inputs).name, "hephy-doks-staging");
        // The engine keeps the version in state; the declared one only serves a cluster that does not exist.
        assert.deepEqual(cluster.ignoreChanges, ["version"]);
        resetWorld();
        assert.deepEqual((await runProgram()).one(CLUSTER).ignoreChanges, [], "a new stack's cluster gets the chosen version");
        running("1.35.3-do.1");
        assert.deepEqual((await runProgram()).one(CLUSTER).ignoreChanges, [], "a cluster found by name gets the chosen version");
    });

    it("passes the patch auto-upgrade and maintenance window from config", async () => {
        const run = await runProgram({ config: { autoUpgrade: "false", maintenanceDay: "tuesday", maintenanceStartTime: "22:30" } });
        const inputs = plain(run.one(CLUSTER).inputs);
        assert.equal(inputs.autoUpgrade, false);
        assert.deepEqual(inputs.maintenancePolicy, { day: "tuesday", startTime: "22:30" });
        assert.equal(inputs.surgeUpgrade, true);
    });
});

describe("the kubeconfig credential", () => {
    afterEach(resetWorld);

    const providerToken = (run: Run) => /token: (\S+)/.exec(plain(run.one("pulumi:providers:kubernetes").inputs).kubeconfig)?.[1];

    it("keeps the credential in state while it has more than a day left, without reading the cluster", async () => {
        world.storedCredentialHours = 72;
        const run = await runProgram();
        assert.equal(providerToken(run), MOCK_TOKEN);
        assert.ok(!run.invokes.some((i) => i.token.endsWith("getKubernetesCluster")));
    });

    it("keeps the credential in state when the cluster cannot be read under its name yet", async () => {
        world.storedCredentialHours = 2;
        world.unreadable = true;
        assert.equal(providerToken(await runProgram()), MOCK_TOKEN);
    });

    it("renews a credential that expires within a day, without a refresh, from a fresh read of the cluster", async () => {
        world.storedCredentialHours = 2;
        const run = await runProgram();
        assert.equal(providerToken(run), FRESH_TOKEN);
        assert.ok(run.invokes.some((i) => i.token.endsWith("getKubernetesCluster") && i.inputs.name === "hephy-doks-staging"));
    });

    it("judges expiry against the clock", () => {
        const now = Date.parse("2026-11-25T12:00:00Z");
        assert.equal(expiresWithin("2026-11-26T13:00:00Z", 24, now), false);
        assert.equal(expiresWithin("2026-11-26T11:00:00Z", 24, now), true);
        assert.equal(expiresWithin(undefined, 24, now), true);
    });
});

describe("DNS records that follow the nodes", () => {
    afterEach(resetWorld);

    it("publishes the newest running nodes during a surge upgrade instead of failing the run", async () => {
        world.surgeNodes = 2;
        const run = await runProgram({ config: { nodeCount: "3" } });
        const values = run.ofType("digitalocean:index/dnsRecord:DnsRecord").map((r) => plain(r.inputs).value);
        assert.deepEqual(
            values,
            [2, 3, 4].map((i) => dropletIp(FIRST_DROPLET_ID + i)),
        );
    });

    it("prefers running nodes, then draining ones, never one without a droplet, and names a pool that is too small", () => {
        const node = (id: string, status: string, createdAt: string) => ({ dropletId: id, status, createdAt });
        const at = (day: number) => `2026-01-0${day} 00:00:00 +0000 UTC`;
        const pool = [
            node("a", "running", at(1)),
            node("b", "running", at(2)),
            node("c", "draining", at(3)),
            node("d", "provisioning", at(4)),
            node("", "provisioning", at(5)),
        ];
        assert.deepEqual(
            publishedNodes(pool, 2).map((n) => n.dropletId),
            ["a", "b"],
        );
        assert.deepEqual(
            publishedNodes(pool, 3).map((n) => n.dropletId),
            ["a", "b", "c"],
        );
        assert.deepEqual(
            publishedNodes(pool, 4).map((n) => n.dropletId),
            ["a", "b", "c", "d"],
        );
        assert.throws(() => publishedNodes(pool, 5), /the node pool has 4 nodes with a droplet \(of 5\), fewer than the 5 of hephy-doks:nodeCount/);
    });
});

describe("the stack's own VPC", () => {
    const VPC = "digitalocean:index/vpc:Vpc";
    const OWN_VPC = { id: "staging-vpc-id", name: "hephy-doks-staging", ipRange: "10.114.0.0/20" };
    const running = (vpc?: typeof OWN_VPC) => {
        world.running = { name: "hephy-doks-staging", version: "1.35.3-do.1", workerTag: "hephy-doks-staging-workers", vpc };
    };
    afterEach(resetWorld);

    it("makes a new cluster in a VPC of its own, whose range DigitalOcean picks unless the config names one", async () => {
        const run = await runProgram();
        const vpc = run.one(VPC);
        assert.deepEqual(plain(vpc.inputs), {
            name: "hephy-doks-staging",
            region: "fra1",
            description: "The network of the hephy-doks-staging cluster (hephy-doks)",
        });
        assert.equal(vpc.protect, false);
        assert.equal(vpc.deleteBeforeReplace, true, "a replacement keeps the name, which DigitalOcean keeps unique");
        const cluster = run.one(CLUSTER);
        assert.equal(plain(cluster.inputs).vpcUuid, "staging-vpc-id");
        assert.ok(cluster.inputDependsOn.includes(`${VPC}::staging-vpc`));
        const named = await runProgram({ config: { vpcIpRange: "10.120.0.0/20", protect: "true", builderSshSources: '["81.2.69.0/24"]' } });
        assert.equal(plain(named.one(VPC).inputs).ipRange, "10.120.0.0/20");
        assert.equal(named.one(VPC).protect, true, "a protected stack protects its VPC");
    });

    it("keeps a running cluster of an earlier version in the VPC it has, since moving it would replace it", async () => {
        running(undefined);
        const run = await runProgram();
        assert.deepEqual(run.ofType(VPC), []);
        assert.equal(plain(run.one(CLUSTER).inputs).vpcUuid, undefined);
        assert.ok(
            run.warnings.some((w) =>
                w.startsWith("the cluster runs in the VPC default-fra1 (10.135.0.0/16), not in a VPC of this stack's own (hephy-doks-staging); it stays there"),
            ),
            run.warnings.join("\n"),
        );
    });

    it("refuses a region with no default VPC, which the stack's own would become for good, before any resource", async () => {
        world.defaultVpc = false;
        const { error, declared } = await programError({});
        assert.match(
            error.message,
            /hephy-doks:region fra1 has no default VPC yet, so the stack's would become it, and no teardown could delete it; make one first \(doctl vpcs create --name default-fra1 --region fra1\)/,
        );
        assert.deepEqual(declared, []);
    });

    it("stops, rather than guess, when the running cluster's VPC cannot be read", async () => {
        running(OWN_VPC);
        world.vpcUnreadable = true;
        const { error, declared } = await programError({});
        assert.match(
            error.message,
            /cannot read the VPC staging-vpc-id of cluster hephy-doks-staging \(.*\); the run stops rather than guess whether it is the stack's own/,
        );
        assert.deepEqual(declared, []);
    });

    it("keeps the stack's VPC as it is, and refuses a new range in a protected stack before any resource", async () => {
        running(OWN_VPC);
        assert.equal(plain((await runProgram()).one(VPC).inputs).ipRange, undefined);
        const { error, declared } = await programError({ config: { vpcIpRange: "10.120.0.0/20", protect: "true", builderSshSources: '["81.2.69.0/24"]' } });
        assert.match(
            error.message,
            /hephy-doks:vpcIpRange 10\.120\.0\.0\/20 differs from the range of the stack's VPC, 10\.114\.0\.0\/20: it replaces the VPC and with it the cluster, which a protected stack refuses \(pulumi config set --stack staging hephy-doks:vpcIpRange 10\.114\.0\.0\/20\)/,
        );
        assert.deepEqual(declared, []);
        const unprotected = await runProgram({ config: { vpcIpRange: "10.120.0.0/20" } });
        assert.equal(plain(unprotected.one(VPC).inputs).ipRange, "10.120.0.0/20", "an unprotected stack is replaced, with a warning");
        assert.ok(
            unprotected.warnings.some((w) => /it replaces the VPC and with it the cluster, and everything on it$/.test(w)),
            unprotected.warnings.join("\n"),
        );
    });
});
