import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { CONFIG_KEYS, ConfigError, DEFAULTS } from "../config";
import { PRICES } from "../pricing";
import { ROOT, isSecret, plain, programError, runProgram, sentAsSecret, valueOf, sharedRun } from "../offline/harness";
import { FIRST_DROPLET_ID, MOCK_TOKEN, dropletIp } from "../offline/mocks";
import { stackConfig } from "../scripts/plan";

const CLUSTER = "digitalocean:index/kubernetesCluster:KubernetesCluster";
const FIREWALL = "digitalocean:index/firewall:Firewall";
const RECORD = "digitalocean:index/dnsRecord:DnsRecord";
const K8S_PROVIDER = "pulumi:providers:kubernetes";

describe("foundation: cluster, firewall, DNS", () => {
    it("declares the cluster from config, on the resolved DOKS version", async () => {
        const run = await runProgram({ config: { region: "nyc3", nodeSize: "s-4vcpu-8gb", nodeCount: "4", kubernetesVersion: "1.35" } });
        const cluster = run.one(CLUSTER, "staging-cluster");
        assert.deepEqual(plain(cluster.inputs), {
            name: "hephy-doks-staging",
            region: "nyc3",
            vpcUuid: "staging-vpc-id",
            version: "1.35.3-do.1",
            // No dnsToken: DigitalOcean's upgrades wait for a pulumi up, which moves the records too.
            autoUpgrade: false,
            surgeUpgrade: true,
            maintenancePolicy: { day: "sunday", startTime: "03:00" },
            ha: false,
            destroyAllAssociatedResources: true,
            nodePool: { name: "staging-workers", size: "s-4vcpu-8gb", nodeCount: 4, tags: ["hephy-doks-staging-workers"] },
        });
        assert.equal(cluster.protect, false);
        assert.deepEqual(
            run.invokes.filter((i) => i.token.endsWith("getKubernetesVersions")).map((i) => i.inputs),
            [{}],
        );
        assert.equal(await valueOf(run.outputs.kubernetesVersion), "1.35.3-do.1");
    });

    it("takes the newest offered version by default", async () => {
        const run = await sharedRun();
        assert.equal(plain(run.one(CLUSTER).inputs).version, "1.36.1-do.0");
    });

    it("fails before declaring anything when no offered version matches", async () => {
        const { error, declared } = await programError({ config: { kubernetesVersion: "1.19" } });
        assert.match(
            error.message,
            /hephy-doks:kubernetesVersion 1\.19 is not offered by DigitalOcean; offered now: 1\.34\.6-do\.2, 1\.35\.3-do\.1, 1\.36\.1-do\.0 \(pulumi config set --stack staging hephy-doks:kubernetesVersion/,
        );
        assert.equal(declared.length, 0);
    });

    it("protects the cluster when protect is true", async () => {
        const run = await runProgram({ config: { protect: "true", builderSshSources: '["81.2.69.0/24"]' } });
        assert.equal(run.one(CLUSTER).protect, true);
        assert.equal(run.one(FIREWALL).protect, false);
    });

    it("opens exactly TCP 80 and 443 to everyone and 2222 to builderSshSources, on our worker tag", async () => {
        const run = await runProgram({ config: { builderSshSources: '["81.2.69.0/24","2a01:4f8::/48"]' } });
        const firewall = run.one(FIREWALL, "staging-workers");
        assert.deepEqual(plain(firewall.inputs), {
            tags: ["hephy-doks-staging-workers"],
            inboundRules: [
                { protocol: "tcp", portRange: "80", sourceAddresses: ["0.0.0.0/0", "::/0"] },
                { protocol: "tcp", portRange: "443", sourceAddresses: ["0.0.0.0/0", "::/0"] },
                { protocol: "tcp", portRange: "2222", sourceAddresses: ["81.2.69.0/24", "2a01:4f8::/48"] },
            ],
        });
        // The firewall targets the tag the node pool puts on every worker droplet.
        assert.deepEqual(plain(run.one(CLUSTER).inputs).nodePool.tags, firewall.inputs.tags);
        assert.deepEqual(firewall.dependsOn, [`${CLUSTER}::staging-cluster`]);
    });

    for (const nodeCount of [1, 5]) {
        it(`declares one wildcard A record per node for nodeCount ${nodeCount}`, async () => {
            const run = await runProgram({ config: { nodeCount: String(nodeCount), platformSubdomain: "paas" } });
            const records = run.ofType(RECORD);
            assert.equal(records.length, nodeCount);
            records.forEach((record, i) => {
                assert.equal(record.name, `staging-node-${i}`);
                assert.deepEqual(plain(record.inputs), {
                    domain: "hephy-demo.net",
                    type: "A",
                    name: "*.paas",
                    value: dropletIp(FIRST_DROPLET_ID + i),
                    ttl: 60,
                });
                assert.equal(record.parent, "hephy-doks:dns:NodeDns::staging");
            });
            // Each address comes from the droplet of the matching node, looked up by its numeric ID.
            assert.deepEqual(
                run.invokes
                    .filter((i) => i.token.endsWith("getDroplet"))
                    .map((i) => i.inputs.id)
                    .sort(),
                Array.from({ length: nodeCount }, (_, i) => FIRST_DROPLET_ID + i),
            );
            assert.deepEqual(
                await valueOf(run.outputs.nodeIps),
                records.map((r) => plain(r.inputs).value),
            );
        });
    }

    it("declares every DNS record during preview too, the count coming from config", async () => {
        const run = await runProgram({ preview: true, config: { nodeCount: "4" } });
        assert.equal(run.ofType(RECORD).length, 4);
    });

    it("keeps the kubeconfig secret in the output and in the provider's inputs", async () => {
        const run = await sharedRun();
        assert.equal(await isSecret(run.outputs.kubeconfig), true);
        const kubeconfig: string = await valueOf(run.outputs.kubeconfig);
        assert.match(kubeconfig, new RegExp(`token: ${MOCK_TOKEN}`));

        const provider = run.one(K8S_PROVIDER, "staging-k8s");
        assert.equal(sentAsSecret(provider.inputs.kubeconfig), true);
        assert.equal(plain(provider.inputs.kubeconfig), kubeconfig);
        // Refresh must fail loudly on an unreachable cluster rather than forget its objects (docs/operations.md).
        assert.equal(provider.inputs.deleteUnreachable, undefined);
    });

    it("stores no deleteUnreachable in the provider when the workflow's variable is empty, so a later destroy can set it", async () => {
        const saved = process.env.PULUMI_K8S_DELETE_UNREACHABLE;
        try {
            // What .github/workflows/pulumi.yml gives every command but destroy.
            process.env.PULUMI_K8S_DELETE_UNREACHABLE = "";
            assert.equal((await runProgram()).one(K8S_PROVIDER, "staging-k8s").inputs.deleteUnreachable, undefined);
            process.env.PULUMI_K8S_DELETE_UNREACHABLE = "false";
            assert.equal(plain((await runProgram()).one(K8S_PROVIDER, "staging-k8s").inputs.deleteUnreachable), "false", "a false would be stored");
        } finally {
            if (saved === undefined) delete process.env.PULUMI_K8S_DELETE_UNREACHABLE;
            else process.env.PULUMI_K8S_DELETE_UNREACHABLE = saved;
        }
    });

    it("exports the cluster's id, endpoint and the platform domain", async () => {
        const run = await runProgram({ config: { platformSubdomain: "paas" } });
        assert.equal(await valueOf(run.outputs.clusterId), "staging-cluster-id");
        assert.match(await valueOf(run.outputs.clusterEndpoint), /^https:\/\/staging-cluster-.*\.k8s\.ondigitalocean\.com$/);
        assert.equal(await valueOf(run.outputs.platformDomain), "paas.hephy-demo.net");
    });

    it("asks for the HA control plane when configured, and exports what the stack costs a month", async () => {
        const run = await runProgram({ config: { haControlPlane: "true", nodeSize: "s-4vcpu-8gb", nodeCount: "2" } });
        assert.equal(plain(run.one(CLUSTER).inputs).ha, true);
        assert.equal(await valueOf(run.outputs.monthlyCostUsd), 2 * 48 + 40 + 2);
        assert.match(
            await valueOf(run.outputs.monthlyCostEstimate),
            /^\$138\/month: 2 x s-4vcpu-8gb at \$48, HA control plane \$40, Workflow volume 20 GiB at \$0\.10\/GiB \$2, 0 LoadBalancers \$0 \(DigitalOcean list prices of 2026-08-21;/,
        );
    });

    it("parents every resource under its component", async () => {
        const run = await sharedRun();
        const foundation = run.resources.filter((r) => /^(digitalocean:|pulumi:providers:|hephy-doks:(cluster|dns):)/.test(r.type));
        const parents = Object.fromEntries(foundation.map((r) => [`${r.type}::${r.name}`, r.parent]));
        assert.deepEqual(parents, {
            "hephy-doks:cluster:DoksCluster::staging": "pulumi:pulumi:Stack",
            [`${CLUSTER}::staging-cluster`]: "hephy-doks:cluster:DoksCluster::staging",
            ["digitalocean:index/vpc:Vpc::staging-vpc"]: "hephy-doks:cluster:DoksCluster::staging",
            [`${K8S_PROVIDER}::staging-k8s`]: "hephy-doks:cluster:DoksCluster::staging",
            [`${FIREWALL}::staging-workers`]: "hephy-doks:cluster:DoksCluster::staging",
            "hephy-doks:dns:NodeDns::staging": "pulumi:pulumi:Stack",
            [`${RECORD}::staging-node-0`]: "hephy-doks:dns:NodeDns::staging",
            [`${RECORD}::staging-node-1`]: "hephy-doks:dns:NodeDns::staging",
            [`${RECORD}::staging-node-2`]: "hephy-doks:dns:NodeDns::staging",
        });
    });

    it("is deterministic: two evaluations send identical inputs", async () => {
        const first = await runProgram();
        const second = await runProgram();
        assert.deepEqual(second.resources, first.resources);
        assert.ok(first.resources.length > 0);
    });

    const badConfigs: [string, Record<string, string>, RegExp][] = [
        ["missing domain", { domain: "" }, /hephy-doks:domain is required/],
        ["missing acmeEmail", { acmeEmail: "" }, /hephy-doks:acmeEmail is required/],
        ["nodeCount 0", { nodeCount: "0" }, /hephy-doks:nodeCount must be an integer from 1 to 50, got "0"/],
        ["bad CIDR", { builderSshSources: '["1.2.3.4/40"]' }, /hephy-doks:builderSshSources\[0\] must be an IPv4 or IPv6 network .* got "1\.2\.3\.4\/40"/],
    ];
    for (const [what, config, message] of badConfigs) {
        it(`declares no resource, and only looks things up, when config has ${what}`, async () => {
            const { error, declared, invoked } = await programError({ config });
            assert.match(error.message, message);
            assert.deepEqual(declared, []);
            // What the account has is looked up all the same, so every problem comes at once.
            assert.deepEqual(
                invoked.filter((i) => !/^digitalocean:index\/get\w+:get\w+$/.test(i.token)),
                [],
            );
        });
    }
});

describe("project files", () => {
    const project = parseYaml(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));

    it("documents exactly the price table the program uses, with its date", () => {
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        const section = readme.slice(readme.indexOf("## Cost"), readme.indexOf("\n## ", readme.indexOf("## Cost") + 1));
        const documented = Object.fromEntries([...section.matchAll(/\| `([a-z0-9-]+)` \| ([0-9]+) /g)].map((m) => [m[1], Number(m[2])]));
        assert.deepEqual(documented, PRICES.nodeUsd);
        assert.ok(section.includes(PRICES.asOf));
    });

    it("refreshes before every operation, so an expired DOKS credential is renewed", () => {
        assert.equal(project.options.refresh, "always");
    });

    it("declares every config key in Pulumi.yaml, with the same defaults as config.ts", () => {
        assert.deepEqual(Object.keys(project.config), [...CONFIG_KEYS]);
        for (const key of CONFIG_KEYS) {
            const spec = project.config[key];
            const expected = (DEFAULTS as Record<string, unknown>)[key];
            // Scalars' defaults are written as the text the engine hands the program: same value, as text.
            const asDeclared = typeof expected === "number" || typeof expected === "boolean" ? String(expected) : expected;
            assert.deepEqual(spec.default, asDeclared, `Pulumi.yaml default of ${key}`);
            assert.ok(spec.description, `${key} needs a description`);
            // Untyped, the CLI hands the program whatever a stack file holds, and the program reports it with the
            // rest; only the secret key keeps a type, through which the CLI refuses it unencrypted.
            if (spec.secret) assert.equal(spec.type, "string", `${key}: the CLI enforces secret only on a typed key`);
            else assert.equal(spec.type, undefined, `declare ${key} without a type (Pulumi.yaml's comment says why)`);
        }
        // The two things only the user knows have no default at all.
        assert.equal(project.config.domain.default, undefined);
        assert.equal(project.config.acmeEmail.default, undefined);
    });

    for (const name of ["staging", "production"]) {
        it(`has an example ${name} stack that needs only the user's zone and address, and refuses ambient kubeconfigs`, async () => {
            const stack = parseYaml(fs.readFileSync(path.join(ROOT, `Pulumi.${name}.yaml`), "utf8")).config;
            assert.deepEqual(stack["pulumi:disable-default-providers"], ["kubernetes"]);
            const token = stack["digitalocean:token"];
            assert.ok(token === undefined || Object.keys(token).join() === "secure", "the token is set with --secret, never in clear");
            // No placeholder for what only the user knows: the file alone is refused, naming each key (production
            // also needs the user's network: a protected stack keeps git push from the whole internet).
            const { error, declared } = await programError({ stack: name, config: stackConfig(name, ROOT), replaceConfig: true });
            assert.deepEqual(
                (error as ConfigError).problems.map((p) => p.split(" ")[0]),
                ["hephy-doks:domain", "hephy-doks:acmeEmail", ...(name === "production" ? ["hephy-doks:builderSshSources"] : [])],
            );
            assert.deepEqual(declared, []);
            const config: Record<string, string> = {
                ...stackConfig(name, ROOT),
                domain: "hephy-demo.net",
                acmeEmail: "ops@hephy-demo.net",
                ...(name === "production" ? { builderSshSources: '["81.2.69.0/24"]' } : {}),
            };
            const run = await runProgram({ stack: name, config, replaceConfig: true });
            assert.equal(run.ofType(RECORD).length, Number(config.nodeCount));
            if (name === "production") {
                assert.equal(run.one(CLUSTER).protect, true);
                assert.equal(plain(run.one(CLUSTER).inputs).ha, true);
                assert.deepEqual(plain(run.one(FIREWALL).inputs).inboundRules.find((r: any) => r.portRange === "2222").sourceAddresses, ["81.2.69.0/24"]);
            }
        });
    }
});
