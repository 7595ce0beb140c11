import * as assert from "node:assert/strict";
import { plain, Recorded, Run, sharedRun } from "../offline/harness";

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
