import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { plain, Recorded, ROOT, Run, runProgram, sentAsSecret, sharedRun, valueOf } from "../offline/harness";
import { KUBECLIENT } from "./inCluster";

/**
 * The ingress-nginx HelmRelease as the program declared it before HAProxy (config.ts and
 * components/platform.ts at ce2ff26 and earlier): the engine matches resources across runs by type, name and parent.
 */
const PREVIOUS_INGRESS = {
    id: "kubernetes:helm.fluxcd.io/v1:HelmRelease::staging-ingress",
    parent: "hephy-doks:platform:Platform::staging",
    namespace: "nginx-ingress",
    chartName: "ingress-nginx",
};

/** The input paths that differ between two HelmRelease inputs, among those a test names. */
function changed(before: Record<string, unknown>, after: Record<string, any>, paths: string[]): string[] {
    const at = (object: any, path: string) => path.split(".").reduce((o, k) => o?.[k], object);
    return paths.filter((p) => at(before, p) !== at(after, p));
}

/**
 * Moving a running stack from ingress-nginx to HAProxy: both bind 80 and 443 on every node and own
 * IngressClass `nginx`, so the old release must be gone before the new one is created. Pulumi deletes
 * a resource that leaves the program only after everything else is done, so a new release under a new
 * name would be created first; the program instead keeps the release's name and marks it
 * delete-before-replace, which makes the engine's one step "delete old, then create new".
 */
describe("cut-over from ingress-nginx to HAProxy on a running stack", () => {
    let run: Run;
    let ingress: Recorded;

    before(async () => {
        run = await sharedRun();
        const releases = run.resources.filter((r) => r.type === "kubernetes:helm.fluxcd.io/v1:HelmRelease" && plain(r.inputs).metadata.name === "ingress");
        assert.equal(releases.length, 1);
        ingress = releases[0];
    });

    it("declares the ingress release under the ingress-nginx release's name and parent, so the engine updates it in place", () => {
        assert.equal(`${ingress.type}::${ingress.name}`, PREVIOUS_INGRESS.id);
        assert.equal(ingress.parent, PREVIOUS_INGRESS.parent);
    });

    it("has it replaced, because the namespace and the chart name both change", () => {
        const before = { metadata: { namespace: PREVIOUS_INGRESS.namespace }, spec: { chart: { name: PREVIOUS_INGRESS.chartName } } };
        const inputs = plain(ingress.inputs);
        assert.deepEqual(changed(before, inputs, ["metadata.namespace", "spec.chart.name"]), ["metadata.namespace", "spec.chart.name"]);
        // A namespace change replaces any Kubernetes object; a chart change does because the program says so.
        assert.ok(ingress.replaceOnChanges.includes("spec.chart.name"), "a new chart replaces the release instead of upgrading it");
    });

    it("asks the engine to delete the old release before it creates the new one", () => {
        assert.equal(ingress.deleteBeforeReplace, true);
    });

    it("keeps every other resource out of the replacement: Workflow waits for the new controller, nothing reads its outputs", () => {
        const workflow = run.resources.find((r) => r.type === ingress.type && plain(r.inputs).metadata.name === "hephy")!;
        assert.ok(workflow.dependsOn.includes(PREVIOUS_INGRESS.id));
        // An input dependency would make the engine delete and re-create the dependent with the ingress release.
        assert.deepEqual(
            run.resources.filter((r) => r.inputDependsOn.includes(PREVIOUS_INGRESS.id)).map((r) => r.name),
            [],
        );
    });

    it("marks no other release delete-first, so their upgrades keep serving", () => {
        const others = run.resources.filter((r) => r.type === ingress.type && r !== ingress);
        assert.equal(others.length, 2);
        for (const release of others) {
            assert.equal(release.deleteBeforeReplace, false, release.name);
        }
    });
});

/**
 * Moving a running stack's DNS from the records `pulumi up` writes to the in-cluster reconciler, in the
 * program's runs: before (no dnsToken), and with the token (the run that cuts over, and every one after:
 * the program is the same). In the cut-over run the engine creates the reconciler and waits for it to be
 * Ready, and deletes the records that left the program only at the end, after every create; the
 * reconciler is Ready only once it has published the name alone, having moved `pulumi up`'s records
 * aside (test/nodeDns.spec.ts, "takes over the records pulumi up wrote"), so the deletions never leave
 * the name without records.
 */
describe("cut-over of the platform's DNS from pulumi up to the in-cluster reconciler", () => {
    const TOKEN = `dop_v1_${"ab".repeat(32)}`;
    const RECORD = "digitalocean:index/dnsRecord:DnsRecord";
    const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
    let withoutToken: Run;
    let withToken: Run;

    before(async () => {
        withoutToken = await sharedRun();
        withToken = await runProgram({ config: { dnsToken: TOKEN } });
    });

    it("before: pulumi up writes one record per node, warns at every run that only it moves them, and leaves DigitalOcean's upgrades to a run", async () => {
        const records = withoutToken.ofType(RECORD).map((r) => plain(r.inputs));
        assert.equal(records.length, 3);
        assert.ok(records.every((r) => r.name === "*.staging" && r.domain === "hephy-demo.net" && r.ttl === 60));
        assert.deepEqual(
            withoutToken.warnings.filter((w) => w.includes("dnsToken")),
            [
                "*.staging.hephy-demo.net moves to new nodes only at pulumi up: a node DigitalOcean replaces (an upgrade, an auto-repair) keeps a dead record until the next run. " +
                    'Give the stack a DNS-only token and the in-cluster reconciler moves it within a minute (pulumi config set --secret hephy-doks:dnsToken <token>; docs/operations.md, "DNS that follows the nodes")',
            ],
        );
        assert.equal(plain(withoutToken.one("digitalocean:index/kubernetesCluster:KubernetesCluster").inputs).autoUpgrade, false);
        assert.equal(await valueOf(withoutToken.outputs.dnsFollowsNodes), false);
        assert.equal(withoutToken.ofType(DEPLOYMENT).filter((d) => plain(d.inputs).metadata.name === "hephy-doks-node-dns").length, 0);
    });

    it("with the token: no record of pulumi up's, and the reconciler publishes the same name in the same zone, its records told apart by their TTL", async () => {
        assert.deepEqual(withToken.ofType(RECORD), []);
        const legacy = plain(withoutToken.ofType(RECORD)[0].inputs);
        const deployment = plain(withToken.one(DEPLOYMENT, "staging-node-dns").inputs);
        const container = deployment.spec.template.spec.containers[0];
        const env = Object.fromEntries(container.env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
        assert.equal(env.DOMAIN, legacy.domain);
        assert.equal(env.RECORD_NAME, legacy.name);
        assert.notEqual(Number(env.TTL_SECONDS), legacy.ttl, "the mark by which it knows pulumi up's records from its own");
        assert.ok(Number(env.TTL_SECONDS) >= 30 && Number(env.TTL_SECONDS) <= 60);
        assert.equal(env.INGRESS_NAMESPACE, "haproxy-ingress");
        assert.equal(env.INGRESS_SELECTOR, "app.kubernetes.io/name=kubernetes-ingress,app.kubernetes.io/instance=ingress");
        assert.equal(container.image, "quay.io/hephy/controller:v2.22.0");
        assert.deepEqual(container.readinessProbe.exec.command, ["test", "-f", env.READY_FILE]);
        assert.equal(deployment.metadata.annotations?.["pulumi.com/skipAwait"], undefined, "pulumi up waits for it to be Ready");
        assert.equal(deployment.spec.strategy.type, "Recreate", "one writer at a time");
        assert.equal(await valueOf(withToken.outputs.dnsFollowsNodes), true);
        assert.deepEqual(
            withToken.warnings.filter((w) => w.includes("dnsToken")),
            [],
        );
        assert.equal(plain(withToken.one("digitalocean:index/kubernetesCluster:KubernetesCluster").inputs).autoUpgrade, true, "DNS follows the nodes");
    });

    it("with the token: the token reaches the cluster only as a secret, and the reconciler may read nodes, the ingress pods and its own Deployment, nothing more", () => {
        const secret = withToken.one("kubernetes:core/v1:Secret", "staging-node-dns-token");
        assert.equal(sentAsSecret(secret.inputs.stringData), true);
        assert.equal(plain(secret.inputs).stringData.token, TOKEN);
        const deployment = plain(withToken.one(DEPLOYMENT, "staging-node-dns").inputs);
        assert.deepEqual(deployment.spec.template.spec.containers[0].env.find((e: any) => e.name === "DIGITALOCEAN_TOKEN").valueFrom, {
            secretKeyRef: { name: "hephy-doks-node-dns-token", key: "token" },
        });
        assert.deepEqual(plain(withToken.one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "staging-node-dns").inputs).rules, [
            { apiGroups: [""], resources: ["nodes"], verbs: ["list", "watch"] },
        ]);
        assert.deepEqual(plain(withToken.one("kubernetes:rbac.authorization.k8s.io/v1:Role", "staging-node-dns").inputs).rules, [
            { apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"] },
            { apiGroups: ["apps"], resources: ["deployments"], resourceNames: ["hephy-doks-node-dns"], verbs: ["get"] },
        ]);
        const code = plain(withToken.one("kubernetes:core/v1:ConfigMap", "staging-node-dns-code").inputs).data;
        assert.equal(code["nodedns.py"], fs.readFileSync(path.join(ROOT, "incluster", "nodedns.py"), "utf8"));
        assert.equal(code["kubeclient.py"], fs.readFileSync(KUBECLIENT, "utf8"), "the shared client, beside it");
    });

    it("an explicit autoUpgrade wins over what the token implies", async () => {
        const run = await runProgram({ config: { autoUpgrade: "true" } });
        assert.equal(plain(run.one("digitalocean:index/kubernetesCluster:KubernetesCluster").inputs).autoUpgrade, true);
    });
});
