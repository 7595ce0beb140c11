import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { helmTemplate } from "./helm";
import { plain, ROOT, Run } from "./harness";
import { K8sObject, parseManifest } from "./manifests";

/**
 * Third-party chart archives, as their repositories publish them: each file's sha256 is the digest the
 * repository's index.yaml records, and the catalog pins (`archiveSha256` in catalog.ts). Charts whose
 * published archive could not be obtained are under `assembled/`, put together from the release tag as
 * the project's release build does and pinned in its SHA256SUMS (the README there says how).
 */
export const CHART_FIXTURES = path.join(ROOT, "offline", "charts");
export const ASSEMBLED_FIXTURES = path.join(CHART_FIXTURES, "assembled");

/** One HelmRelease of the program, rendered as helm-operator's Helm would install it. */
export interface RenderedRelease {
    /** `namespace/name` of the HelmRelease. */
    release: string;
    /** `name-version` of the chart. */
    chart: string;
    /** Where the rendered archive came from. */
    source: string;
    manifest: string;
    objects: K8sObject[];
}

/** The HelmReleases an evaluation of the program declared, as sent. */
export function helmReleases(run: Pick<Run, "resources">): any[] {
    return run.resources.filter((r) => r.custom && plain(r.inputs).kind === "HelmRelease").map((r) => plain(r.inputs));
}

/**
 * Where the chart of a HelmRelease is on this machine: a repository chart's fixture, or the archive of a
 * chart the program serves from its own ConfigMap. Undefined, with the reason, when there is none (a
 * chart override from a repository or git this machine cannot reach).
 */
export function chartArchive(run: Pick<Run, "resources">, spec: any, work: string): { archive: string; source: string } | { missing: string } {
    const { name, version, repository } = spec.chart;
    if (name === undefined || version === undefined) {
        return { missing: `the chart comes from git (${spec.chart.git}), which an offline render cannot fetch` };
    }
    const file = `${name}-${version}.tgz`;
    for (const r of run.resources) {
        const binaryData = plain(r.inputs).binaryData;
        if (r.type === "kubernetes:core/v1:ConfigMap" && binaryData?.[file]) {
            const archive = path.join(work, file);
            fs.writeFileSync(archive, Buffer.from(binaryData[file], "base64"));
            return { archive, source: "the archive the program serves" };
        }
    }
    const published = path.join(CHART_FIXTURES, file);
    if (fs.existsSync(published)) {
        return { archive: published, source: "the published archive" };
    }
    const assembled = path.join(ASSEMBLED_FIXTURES, file);
    if (fs.existsSync(assembled)) {
        return { archive: assembled, source: "assembled from the release tag, not the published archive (offline/charts/README.md)" };
    }
    return { missing: `no archive of ${file} from ${repository} in ${path.relative(ROOT, CHART_FIXTURES)}` };
}

/** Renders one HelmRelease as sent (`spec` from helmReleases) from an archive, for one Kubernetes version. */
export function renderRelease(release: any, archive: string, kubeVersion: string): string {
    return helmTemplate({
        chart: archive,
        releaseName: release.spec.releaseName,
        namespace: release.metadata.namespace,
        kubeVersion,
        values: release.spec.values ?? {},
    });
}

/**
 * Renders every HelmRelease of a run for one Kubernetes version, with the values the program sends;
 * a chart the engine cannot render throws with the engine's error.
 */
export function renderReleases(run: Pick<Run, "resources">, kubeVersion: string): { rendered: RenderedRelease[]; missing: string[] } {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-releases-"));
    try {
        const rendered: RenderedRelease[] = [];
        const missing: string[] = [];
        for (const release of helmReleases(run)) {
            const id = `${release.metadata.namespace}/${release.metadata.name}`;
            const found = chartArchive(run, release.spec, work);
            if ("missing" in found) {
                missing.push(`${id}: ${found.missing}`);
                continue;
            }
            const manifest = renderRelease(release, found.archive, kubeVersion);
            rendered.push({
                release: id,
                chart: `${release.spec.chart.name}-${release.spec.chart.version}`,
                source: found.source,
                manifest,
                objects: parseManifest(manifest),
            });
        }
        return { rendered, missing };
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
}
