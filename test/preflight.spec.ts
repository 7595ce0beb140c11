import * as assert from "node:assert/strict";
import { programError, runProgram } from "../offline/harness";
import { resetWorld, world } from "../offline/mocks";

/** The program's look-ups of the account, which refuse a stack before anything is declared. */
describe("preflight against the DigitalOcean account", () => {
    afterEach(resetWorld);

    const refused = async (config: Record<string, string>) => {
        const { error, declared } = await programError({ config });
        assert.deepEqual(declared, [], "nothing is declared");
        return (error as unknown as { problems: string[] }).problems;
    };

    it("refuses a domain that is no zone of the account, listing its zones and how to add it", async () => {
        assert.deepEqual(await refused({ domain: "not-ours.net" }), [
            "hephy-doks:domain not-ours.net is not a DNS zone of this DigitalOcean account (its zones: hephy-demo.net, another-team.org): " +
                "add it (doctl compute domain create not-ours.net) and point the domain's NS records at ns1, ns2 and ns3.digitalocean.com, " +
                "or name one of those (pulumi config set --stack staging hephy-doks:domain <zone>)",
        ]);
    });

    it("refuses a region DigitalOcean does not have, or one closed to new resources, naming the open ones", async () => {
        assert.deepEqual(await refused({ region: "xyz9" }), [
            "hephy-doks:region xyz9 is no region of DigitalOcean's (open regions: fra1, nyc3) (pulumi config set --stack staging hephy-doks:region fra1)",
        ]);
        assert.deepEqual(await refused({ region: "sfo1" }), [
            "hephy-doks:region sfo1 is closed to new resources (open regions: fra1, nyc3) (pulumi config set --stack staging hephy-doks:region fra1)",
        ]);
    });

    it("refuses a node size the region does not offer, naming the priced ones it does", async () => {
        world.regions = { ...world.regions, fra1: { available: true, sizes: ["s-1vcpu-2gb", "s-4vcpu-8gb", "s-48vcpu-192gb"] } };
        assert.deepEqual(await refused({}), [
            "hephy-doks:nodeSize s-2vcpu-4gb is not offered in fra1 (sizes there with a price here: s-1vcpu-2gb, s-4vcpu-8gb) (pulumi config set --stack staging hephy-doks:nodeSize s-1vcpu-2gb)",
        ]);
    });

    it("refuses names reserved for examples before looking them up, and says to set one's own", async () => {
        for (const domain of ["example.com", "paas.example.org", "acme.test", "cluster.local", "my.invalid"]) {
            const problems = await refused({ domain });
            assert.equal(problems.length, 1, problems.join("\n"));
            assert.match(
                problems[0],
                new RegExp(
                    `^hephy-doks:domain "${domain.replace(/\./g, "\\.")}" is a name reserved for examples and tests .* \\(pulumi config set --stack staging hephy-doks:domain <your zone>\\)$`,
                ),
            );
        }
        for (const acmeEmail of ["ops@example.com", "me@example.io", "a@b.test"]) {
            const problems = await refused({ acmeEmail });
            assert.match(
                problems.join("\n"),
                /^hephy-doks:acmeEmail ".*" is at a domain reserved for examples, where Let's Encrypt's expiry warnings would reach no one/,
            );
        }
    });

    it("says every problem at once: the config's, the account's and the version's", async () => {
        const problems = await refused({ nodeCount: "0", domain: "not-ours.net", kubernetesVersion: "1.2" });
        assert.deepEqual(
            problems.map((p) => p.split(" ")[0]),
            ["hephy-doks:nodeCount", "hephy-doks:domain", "hephy-doks:kubernetesVersion"],
        );
        assert.match(problems[2], /^hephy-doks:kubernetesVersion 1\.2 is not offered by DigitalOcean/);
    });

    it("names YAML's reading of an unquoted version", async () => {
        world.offered = ["1.30.2-do.0", "1.29.7-do.0"];
        const problems = await refused({
            kubernetesVersion: "1.3",
            releases: JSON.stringify({
                ingress: { kubernetes: { min: "1.29", max: "1.37" } },
                certManager: { kubernetes: { min: "1.29", max: "1.37" } },
                workflow: { kubernetes: { min: "1.29", max: "1.37" } },
            }),
        });
        assert.match(problems.join("\n"), /if a stack file says 1\.30 unquoted, YAML reads the number 1\.3: write "1\.30"/);
    });

    it("says DigitalOcean refused the token (401), once, instead of reading it as an empty account", async () => {
        world.token.refused = true;
        assert.deepEqual(await refused({}), [
            "digitalocean:token is refused by DigitalOcean (401 Unable to authenticate you) when the program reads the droplets tagged hephy-doks-staging-workers: " +
                "it is revoked, expired or mistyped. Set a valid one (pulumi config set --stack staging --secret digitalocean:token <token>); " +
                "the DIGITALOCEAN_TOKEN variable serves only a stack that sets no digitalocean:token",
        ]);
    });

    it("says which scope the token lacks (403), for each look-up it refuses, and still checks the rest", async () => {
        world.token.missingScopes = ["domain:read"];
        const problems = await refused({ region: "xyz9" });
        assert.deepEqual(problems, [
            "digitalocean:token lacks the scope domain:read (403 You are not authorized to perform this operation), so the program cannot read the zone hephy-demo.net: " +
                "give the token domain:read (docs/configuration.md lists every scope it needs) or full access, then set it (pulumi config set --stack staging --secret digitalocean:token <token>)",
            "hephy-doks:region xyz9 is no region of DigitalOcean's (open regions: fra1, nyc3) (pulumi config set --stack staging hephy-doks:region fra1)",
        ]);
        world.token.missingScopes = ["regions:read", "kubernetes:read"];
        assert.deepEqual(
            (await refused({})).map((p) => /lacks the scope (\S+)/.exec(p)?.[1]),
            ["regions:read", "kubernetes:read"],
        );
    });

    it("prints fixes that pass: each command applied, the same stack runs", async () => {
        const cases: [Record<string, string>, () => void][] = [
            [{ domain: "not-ours.net" }, () => undefined],
            [{ region: "sfo1" }, () => undefined],
            [{}, () => (world.regions = { ...world.regions, fra1: { available: true, sizes: ["s-1vcpu-2gb", "s-4vcpu-8gb"] } })],
            [{ kubernetesVersion: "1.2" }, () => undefined],
        ];
        for (const [config, account] of cases) {
            account();
            const problems = await refused(config);
            const fixed = { ...config };
            for (const [, key, value] of problems.flatMap((p) => [...p.matchAll(/\(pulumi config set --stack staging hephy-doks:(\w+) (\S+)\)/g)])) {
                fixed[key] = value === "<zone>" ? "hephy-demo.net" : value;
            }
            assert.notDeepEqual(fixed, config, problems.join("\n"));
            await runProgram({ config: fixed });
            resetWorld();
        }
    });

    it("passes a stack whose zone, region and size the account has, and looks each up once", async () => {
        const run = await runProgram({ config: { region: "nyc3" } });
        const lookups = run.invokes.map((i) => i.token.replace(/^digitalocean:index\/\w+:/, "")).filter((t) => ["getDomain", "getRegion"].includes(t));
        assert.deepEqual(lookups.sort(), ["getDomain", "getRegion"]);
    });
});
