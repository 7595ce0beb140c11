import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { plain, Recorded, ROOT, Run, runProgram, WITH_WORKFLOW_FORK } from "../offline/harness";

/**
 * `pulumi destroy` deletes a resource before everything it depends on: its explicit `dependsOn`, the
 * resources whose outputs feed its inputs, and its provider; a dependency on a component stands for
 * all of the component's children. These tests walk those edges as the program declares them.
 */
function dependencyClosure(run: Run): (id: string) => Set<string> {
    const byId = new Map(run.resources.map((r) => [`${r.type}::${r.name}`, r]));
    const children = (id: string): string[] =>
        run.resources.filter((r) => r.parent === id).flatMap((r) => [`${r.type}::${r.name}`, ...children(`${r.type}::${r.name}`)]);
    const direct = (r: Recorded): string[] =>
        [...r.dependsOn, ...r.inputDependsOn, ...(r.provider ? [r.provider] : [])].flatMap((d) => (byId.get(d)?.custom === false ? [d, ...children(d)] : [d]));
    return (id) => {
        const seen = new Set<string>();
        const walk = (at: string) => {
            for (const next of direct(byId.get(at)!)) {
                if (!seen.has(next) && byId.has(next)) {
                    seen.add(next);
                    walk(next);
                }
            }
        };
        walk(id);
        return seen;
    };
}

const CLUSTER = "digitalocean:index/kubernetesCluster:KubernetesCluster::staging-cluster";
const PROVIDER = "pulumi:providers:kubernetes::staging-k8s";
const OPERATOR = "kubernetes:apps/v1:Deployment::staging-helm-operator-deployment";
const OPERATOR_CRD = "kubernetes:yaml/v2:ConfigFile::staging-helm-operator-crds";
const TILLER = ["kubernetes:apps/v1:Deployment::staging-tiller-deploy", "kubernetes:core/v1:Service::staging-tiller-service"];

describe("teardown order of pulumi destroy", () => {
    let run: Run;
    let dependsOn: (id: string) => Set<string>;

    before(async () => {
        run = await runProgram({ config: WITH_WORKFLOW_FORK });
        dependsOn = dependencyClosure(run);
    });

    const ids = (type: string) => run.ofType(type).map((r) => `${r.type}::${r.name}`);

    it("deletes every HelmRelease while helm-operator and its CRD still exist, so the operator purges the release", () => {
        const releases = ids("kubernetes:helm.fluxcd.io/v1:HelmRelease");
        assert.deepEqual(
            releases.map((r) => r.split("::")[1]),
            ["staging-ingress", "staging-cert-manager", "staging-hephy"],
        );
        for (const release of releases) {
            const deps = dependsOn(release);
            assert.ok(deps.has(OPERATOR) && deps.has(OPERATOR_CRD), `${release} goes before the operator and its CRD`);
        }
    });

    it("deletes the operator while Tiller still exists, and never the other way round", () => {
        for (const tiller of TILLER) {
            assert.ok(dependsOn(OPERATOR).has(tiller), `the operator goes before ${tiller}`);
            assert.ok(!dependsOn(tiller).has(OPERATOR));
        }
    });

    it("deletes every Kubernetes object, through our provider, before the cluster", () => {
        const kubernetes = run.resources.filter((r) => r.type.startsWith("kubernetes:"));
        assert.ok(kubernetes.length >= 20, `${kubernetes.length} Kubernetes resources checked`);
        for (const object of kubernetes) {
            const deps = dependsOn(`${object.type}::${object.name}`);
            assert.ok(deps.has(PROVIDER) && deps.has(CLUSTER), `${object.type}::${object.name} goes before the provider and the cluster`);
        }
        assert.deepEqual(run.one("pulumi:providers:kubernetes").inputDependsOn, [CLUSTER]);
    });

    it("deletes the DNS records and the firewall before the cluster, which takes its volumes and load balancers with it", () => {
        for (const id of [...ids("digitalocean:index/dnsRecord:DnsRecord"), ...ids("digitalocean:index/firewall:Firewall")]) {
            assert.ok(dependsOn(id).has(CLUSTER), `${id} goes before the cluster`);
        }
        assert.equal(plain(run.one("digitalocean:index/kubernetesCluster:KubernetesCluster").inputs).destroyAllAssociatedResources, true);
    });

    it("finds no order where there is none, so the checks above can fail", () => {
        assert.ok(!dependsOn(CLUSTER).has(PROVIDER));
        assert.equal(dependsOn("tls:index/privateKey:PrivateKey::staging-ca-key").size, 0);
    });
});

describe("stopping Workflow's tracking, as docs/operations.md describes it", () => {
    it("names exactly the objects that turning Workflow off would delete, in an order Pulumi accepts", async () => {
        const ids = (run: Run) => new Set(run.resources.map((r) => `${r.type}::${r.name}`));
        const on = await runProgram({ config: { platformSubdomain: "paas" } });
        const off = ids(await runProgram({ config: { platformSubdomain: "paas", workflowEnabled: "false" } }));
        // What holds Workflow in the cluster: its release, its namespace and every object in that namespace.
        const inDeis = (r: Recorded) =>
            r.type.startsWith("kubernetes:") && (plain(r.inputs).metadata?.namespace === "deis" || plain(r.inputs).metadata?.name === "deis");
        const removed = on.resources
            .filter((r) => !off.has(`${r.type}::${r.name}`) && inDeis(r))
            .map((r) => `${r.type}::${r.name}`.replace("::staging-", "::<stack>-"));
        assert.ok(removed.length >= 10, `found ${removed.length} objects in deis`);
        const readme = fs.readFileSync(path.join(ROOT, "docs", "operations.md"), "utf8");
        const procedure = readme.slice(readme.indexOf("**Stop tracking a release without purging it**"), readme.indexOf("**Remove a release on purpose:**"));
        const forgotten = [...procedure.matchAll(/pulumi state delete '<URN ending (.+?)>'/g)].map((m) => m[1]);
        assert.deepEqual([...forgotten].sort(), [...removed].sort());
        // A resource can leave the state only after those that depend on it.
        const namespaceAt = forgotten.indexOf("kubernetes:core/v1:Namespace::<stack>-deis");
        assert.ok(
            forgotten.every((id, i) => id.endsWith("-deis") || i < namespaceAt),
            "the Namespace goes last",
        );
        assert.ok(procedure.indexOf("--replicas=0") < procedure.indexOf("kubectl -n deis delete helmrelease hephy"));
    });
});
