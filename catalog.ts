import { ChartSource, ReleaseEntry, ReleaseKey } from "./types";

/**
 * The version catalog and the upstream artefacts the program pins: what it installs, from where, and
 * where each fact comes from. Changes when an upstream release is adopted.
 */

/** Pinned upstream artefacts outside the release catalog, with where each fact comes from. */
export const UPSTREAM = {
    /** helm/helm v2.17.0 `cmd/helm/installer/install.go` (defaultImage ghcr.io/helm/tiller); 2.17.0 is the last Helm 2 release. */
    tillerImage: "ghcr.io/helm/tiller:v2.17.0",
    /** fluxcd/helm-operator chart-1.4.4 `values.yaml` image; 1.4.4 (2022-09-01) is the last release, the project is archived. */
    helmOperatorImage: "docker.io/fluxcd/helm-operator:1.4.4",
    /** The HelmRelease CRD (helm.fluxcd.io/v1, apiextensions.k8s.io/v1) of the same tag, as the chart README applies it. */
    helmOperatorCrdUrl: "https://raw.githubusercontent.com/fluxcd/helm-operator/v1.4.4/deploy/crds.yaml",
    /** The name helm-operator verifies on Tiller's certificate: the article's HELM_TLS_HOSTNAME. */
    tillerHostname: "tiller-deploy.kube-system",
    /** Names on Tiller's certificate: its Service as dialled from the cluster, and 127.0.0.1 for `helm --tls` through a port-forward. */
    tillerDnsNames: ["tiller-deploy", "tiller-deploy.kube-system", "tiller-deploy.kube-system.svc", "localhost"],
    tillerIpAddresses: ["127.0.0.1"],
    /**
     * Workflow's builder: the Service `git push` reaches through the ingress controller's TCP forward,
     * in Workflow's namespace (charts/hephy-workflow templates/builder.yaml, after teamhephy/builder
     * v2.13.7 charts/builder/templates/builder-service.yaml; the article's `deis/deis-builder:2222`).
     */
    builder: { service: "deis-builder", port: 2222 },
    /**
     * The ServiceAccounts of Workflow's controller, builder and route reconciler, in Workflow's namespace
     * (charts/hephy-workflow templates/controller.yaml, builder.yaml, routes.yaml): the ones that start app
     * and build pods, and the one that writes apps' Ingresses.
     */
    workflowServiceAccounts: ["deis-controller", "deis-builder", "deis-routes"],
    /**
     * App names Workflow refuses (teamhephy/controller v2.22.0
     * charts/controller/templates/controller-deployment.yaml `RESERVED_NAMES`, less its namespace).
     */
    workflowReservedNames: ["deis-builder", "deis-workflow-manager", "grafana"],
    /**
     * What app pods reach inside the cluster: the labels the controller gives an app's namespace
     * (teamhephy/controller v2.22.0 rootfs/scheduler/resources/namespace.py), Workflow's object store,
     * whose slugs they fetch at start (charts/hephy-workflow templates/minio.yaml), and the cluster's DNS
     * (CoreDNS as Kubernetes labels it, `k8s-app: kube-dns`).
     */
    workflowApps: {
        appNamespaceLabels: { heritage: "deis" },
        objectStore: { labels: { app: "deis-minio" }, port: 9000 },
        dns: { namespace: "kube-system", labels: { "k8s-app": "kube-dns" }, port: 53 },
    },
    /**
     * Images of Workflow's Dockerfile builds (charts/hephy-workflow templates/registry.yaml,
     * dockerfile-build.yaml), maintained upstream and pinned by digest. Neither digest was resolved from
     * here (no registry is reachable from the machines that wrote this): each is the one that public
     * repositories pin for that image; check it with `skopeo inspect --raw docker://<image>` before a
     * first live run, and change it here.
     */
    workflowBuildImages: {
        /**
         * The distribution project's registry v3.0.0 (distribution/distribution, the Docker official image
         * `registry`); the digest of `registry:3.0.0` as eight unrelated public repositories pin it.
         */
        registry: "docker.io/library/registry:3.0.0@sha256:6c5666b861f3505b116bb9aa9b25175e71210414bd010d92035ff64018f9457e",
        /**
         * buildah from the containers project's own image (containers/image_build buildah/Containerfile:
         * Fedora's buildah, user `build`, chroot isolation). The digest is a multi-platform index of
         * quay.io/buildah/stable as a public repository pins it, its version not stated there: the least
         * verified pin of the program (docs/workflow.md, "Dockerfile builds").
         */
        dockerfileBuild: "quay.io/buildah/stable@sha256:56e6ebc9bb71c8303b1968fb51304d3512e14a1b8c730bd0b27ebdf772a34ceb",
        /**
         * Heroku's Cloud Native Buildpacks builder for its heroku-24 stack (heroku/cnb-builder-images
         * builder-24/builder.toml: Ubuntu 24.04, lifecycle 0.21.12, Heroku's CNB buildpacks and
         * heroku/procfile); its build user is uid and gid 1000 (heroku/base-images heroku-24-build/Dockerfile).
         * The digest is the tag's multi-arch index as another public project pins it, not resolved here;
         * heroku/builder:26 is now the recommended tag, but no digest of it could be found.
         */
        cnbBuild: "docker.io/heroku/builder:24@sha256:e4ead318bb7027bf2b224569cf47b972c62226595d3dc2eba09f1ed912bb320d",
    },
    /**
     * The build container the build-pod webhook makes of the builder's Dockerfile build pod
     * (charts/hephy-workflow files/build/admission.py): the one pod the admission policy
     * guard-pod-relaxations lets run with seccomp and AppArmor Unconfined.
     */
    workflowDockerfileBuild: {
        podNamePrefix: "dockerbuild-",
        command: ["/bin/sh", "/opt/hephy-doks/build/dockerfile-build.sh"],
        scriptMount: "/opt/hephy-doks/build",
        scriptConfigMap: "deis-dockerfile-build",
    },
    /**
     * The build container the build-pod webhook makes of the builder's buildpack (slugbuild) pod
     * (charts/hephy-workflow files/build/admission.py `cnb_build`, files/build/cnb-build.sh): unprivileged,
     * labelled so the registry admits it.
     */
    workflowCnbBuild: {
        podNamePrefix: "slugbuild-",
        command: ["/bin/bash", "/opt/hephy-doks/cnb/cnb-build.sh"],
        scriptMount: "/opt/hephy-doks/cnb",
        scriptConfigMap: "deis-cnb-build",
    },
    /**
     * The image of the object store's off-cluster copy and of its restore: rclone's own (rclone/rclone on
     * Docker Hub, Alpine with /bin/sh), 1.75.1 by the digest its tag resolves to, as independent projects
     * pin it (for example in Dockerfiles `FROM rclone/rclone:1.75.1@sha256:45401ad7…`); not pulled here.
     */
    backupImage: "docker.io/rclone/rclone:1.75.1@sha256:45401ad7410db1d67ffdb58e19059ad20b0d8e0285a60e38bbec55cc1019c7a5",
    /**
     * Workflow's object store as the backup reads it: the Secret of its keys (charts/hephy-workflow values.yaml)
     * and the database's bucket, `dbwal` in minio mode (teamhephy/postgres rootfs/docker-entrypoint-initdb.d/001_setup_envdir.sh).
     */
    workflowObjectStore: { service: "deis-minio", credentialsSecret: "objectstorage-keyfile", databaseBucket: "dbwal" },
    /**
     * backube/snapscheduler, which takes scheduled CSI snapshots, from its repository at the release tag
     * v3.5.0 (commit 46883ceb, 2025-05-14): helm/snapscheduler, chart 3.5.0, image
     * quay.io/backube/snapscheduler:3.5.0 (the chart's appVersion). That image is pinned by tag only: no
     * digest of it could be found from here (no registry is reachable, and no public repository pins one);
     * pin it with `skopeo inspect docker://quay.io/backube/snapscheduler:3.5.0` and `image.image` below
     * before relying on it. The chart's own kube-rbac-proxy is pinned by digest in its values.yaml.
     */
    snapscheduler: {
        git: "https://github.com/backube/snapscheduler",
        ref: "v3.5.0",
        path: "helm/snapscheduler",
        namespace: "backube-snapscheduler",
        // values.yaml @ v3.5.0: one replica, its CRD managed by the chart.
        values: { replicaCount: 1, manageCRDs: true },
    },
    /** Namespaces every cluster has, which no app may be named after. */
    systemNamespaces: ["default", "kube-system", "kube-public", "kube-node-lease"],
    /**
     * The image of the node DNS reconciler (incluster/nodedns.py): Workflow's controller, which the
     * Workflow chart runs (charts/hephy-workflow/values.yaml `controller.image`), for its Python 3.6 and
     * standard library; no image of the project's own.
     */
    nodeDnsImage: "quay.io/hephy/controller:v2.22.0",
    /**
     * The labels of the ingress controller's pods, and of none of its release's other pods (its CRD Job's
     * say `<name>-crdjob`): haproxytech/helm-charts kubernetes-ingress-1.52.1 templates/_helpers.tpl
     * `kubernetes-ingress.selectorLabels`, with the release's name as the instance.
     */
    ingressPodLabels: (releaseName: string) => `app.kubernetes.io/name=kubernetes-ingress,app.kubernetes.io/instance=${releaseName}`,
    /** The ingress controller's ServiceAccount, named by the program (HAProxy's chart `serviceAccount.name`). */
    ingressServiceAccount: "haproxy-ingress-controller",
    /** Name of the Service that serves the project's own charts to helm-operator (components/chartServer.ts). */
    chartServerName: "hephy-doks-charts",
    /**
     * nginx/docker-nginx-unprivileged update.sh @ 8b44229 (2026-07-15): stable 1.30.4, past CVE-2026-42945
     * (fixed in 1.30.1); uid 101, port 8080, pid and temp paths in /tmp (stable/alpine-slim/Dockerfile).
     */
    chartServerImage: "docker.io/nginxinc/nginx-unprivileged:1.30.4-alpine-slim",
    /**
     * Chart repositories helm-operator knows, as the article's `configureRepositories`: hephy for
     * Workflow's dependencies, and stable at its new home (helm/helm v2.17.0 commit 62d6e40 retired
     * storage.googleapis.com).
     */
    chartRepositories: [
        { name: "hephy", url: "https://charts.teamhephy.com/" },
        { name: "stable", url: "https://charts.helm.sh/stable" },
    ],
} as const;

/**
 * The version catalog: every chart the platform installs, pinned to an exact version (helm-operator
 * cuts a new revision on every sync for a range, fluxcd/helm-operator#469). Overridable per stack with
 * `hephy-doks:releases`.
 */
export const CATALOG: Readonly<Record<ReleaseKey, ReleaseEntry>> = {
    // The front door: HAProxy's controller replaces ingress-nginx, which SIG Network retired in March
    // 2026 (docs/ingress.md has the comparison and the cut-over of running stacks).
    ingress: {
        releaseName: "ingress",
        namespace: "haproxy-ingress",
        chart: { repository: "https://haproxytech.github.io/helm-charts", name: "kubernetes-ingress", version: "1.52.1" },
        archiveSha256: "862ddb3343143289a47d0f749a284b32536495c689a25ae354bbc1ed68851bde",
        helmVersion: "v3",
        kubernetes: { min: "1.33", max: "1.37" },
        sources: [
            "haproxytech/helm-charts kubernetes-ingress/Chart.yaml @ kubernetes-ingress-1.52.1 (controller 3.2.12, kubeVersion >=1.23.0-0); gh-pages index.yaml digest",
            "haproxytech/kubernetes-ingress .gitlab/e2e_k8s.yml @ v3.2 9e4b6b93: end-to-end tests on Kubernetes 1.34.0; 1.33 and 1.35-1.37 by inference: it watches networking.k8s.io/v1 Ingresses and IngressClasses, discovery.k8s.io/v1 EndpointSlices and core v1 objects, all served through 1.37",
            "rendered by Helm 3.8.1 (Go 1.17) for every minor of this range in npm test (test/releaseCharts.spec.ts)",
            "replaces ingress-nginx: retired by SIG Network (kubernetes.io/blog/2025/11/11/ingress-nginx-retirement), repository archived 2026-03-24, last release 4.15.1 ships NGINX 1.27.1, affected by CVE-2026-42945",
        ],
    },
    certManager: {
        releaseName: "cert-manager",
        namespace: "cert-manager",
        chart: { repository: "https://charts.jetstack.io", name: "cert-manager", version: "v1.21.1" },
        // As two third-party repositories that vendor this archive record it; charts.jetstack.io could not
        // be reached to confirm (offline/charts/README.md).
        archiveSha256: "c27101f3f3e2349fb4a9e704316105bf7b52ad73b8c8257d3498ef7f2f6a4adc",
        helmVersion: "v3",
        kubernetes: { min: "1.33", max: "1.36" },
        sources: [
            "cert-manager/cert-manager tag v1.21.1 (2026-07-29), deploy/charts/cert-manager/Chart.yaml (apiVersion v2 since v1.15.0)",
            "cert-manager.io docs releases/: 1.21 supports Kubernetes 1.33-1.36",
        ],
    },
    workflow: {
        releaseName: "hephy",
        namespace: "deis",
        // The project's own chart for today's Kubernetes (charts/hephy-workflow, docs/workflow.md): no
        // released Workflow chart installs on Kubernetes 1.25 or newer.
        chart: { bundled: "charts/hephy-workflow" },
        // Through Tiller, as the article installs Workflow (chart apiVersion v1).
        helmVersion: "v2",
        kubernetes: { min: "1.33", max: "1.37" },
        sources: [
            "charts/hephy-workflow: only apps/v1, rbac.authorization.k8s.io/v1, networking.k8s.io/v1 and core v1 objects, rendered by Helm 3.8.1 for every minor of this range in npm test (test/workflowChart.spec.ts)",
            "charts/hephy-workflow/files/ingress.py: the controller's Ingress client speaks networking.k8s.io/v1 (served since Kubernetes 1.19)",
            "teamhephy/workflow tag v2.23.0 (2021-05-08) is the last release; its images, pinned there, are the ones the chart runs",
        ],
    },
};

/** The releases a stack installs: the catalog with its overrides, and whether Workflow is on. */
export interface ReleaseSelection {
    readonly releases: Readonly<Record<ReleaseKey, ReleaseEntry>>;
    readonly workflowEnabled: boolean;
}

/**
 * Every chart repository helm-operator is told about: the article's two, and each repository an enabled
 * release pulls from. A release whose repository is listed reads only that repository's index; one whose
 * repository is not listed makes Helm read the cached index of every listed repository and fail when
 * one is missing, as it is on a fresh pod for any repository that is down (fluxcd/helm-operator v1.4.4
 * pkg/helm/v2/pull.go and v3/pull.go `PullWithRepoURL`; helm v2.17.0 and v3.7.0
 * pkg/downloader/chart_downloader.go `scanReposForURL`).
 */
export function chartRepositories(config: ReleaseSelection, bundledRepository: string): { name: string; url: string }[] {
    const listed: { name: string; url: string }[] = UPSTREAM.chartRepositories.map((r) => ({ ...r }));
    const normal = (url: string) => (url.endsWith("/") ? url : `${url}/`);
    for (const key of enabledReleases(config)) {
        const chart = config.releases[key].chart;
        const url = "bundled" in chart ? bundledRepository : "repository" in chart ? chart.repository : undefined;
        if (url !== undefined && !listed.some((r) => normal(r.url) === normal(url))) {
            listed.push({ name: key.toLowerCase(), url });
        }
    }
    return listed;
}

/** The releases a stack installs: the whole catalog, less Workflow when it is off. */
export function enabledReleases(config: ReleaseSelection): ReleaseKey[] {
    return (Object.keys(config.releases) as ReleaseKey[]).filter((k) => k !== "workflow" || config.workflowEnabled);
}

/** The user Kubernetes knows a ServiceAccount as. */
export function serviceAccountUser(namespace: string, name: string): string {
    return `system:serviceaccount:${namespace}:${name}`;
}

/** The users Kubernetes knows Workflow's controller, builder and route reconciler as. */
export function workflowServiceAccounts(workflowNamespace: string): { controller: string; builder: string; routes: string } {
    const [controller, builder, routes] = UPSTREAM.workflowServiceAccounts.map((account) => serviceAccountUser(workflowNamespace, account));
    return { controller, builder, routes };
}

/**
 * The namespaces Workflow may not touch: the cluster's own, helm-operator's and those of the platform's
 * other releases. An app named after one would otherwise be deployed into it, and deleted with it.
 */
export function protectedNamespaces(config: Pick<ReleaseSelection, "releases">, operatorNamespace: string): string[] {
    const platform = (Object.keys(config.releases) as ReleaseKey[]).filter((k) => k !== "workflow").map((k) => config.releases[k].namespace);
    return [...new Set([...UPSTREAM.systemNamespaces, operatorNamespace, ...platform])];
}

/** The CRD manifest cert-manager publishes with each release (cert-manager.io docs, installation/helm). */
export function certManagerCrdUrl(entry: ReleaseEntry): string {
    if ("bundled" in entry.chart) {
        throw new Error("cert-manager's CRDs come from its release; a bundled cert-manager chart has no release to take them from");
    }
    const version = "version" in entry.chart ? entry.chart.version : entry.chart.ref;
    return `https://github.com/cert-manager/cert-manager/releases/download/${version}/cert-manager.crds.yaml`;
}

/** A chart source in one line, for messages. */
export function describeChart(chart: ChartSource): string {
    if ("bundled" in chart) {
        return `${chart.bundled} (this project)`;
    }
    return "version" in chart ? `${chart.name} ${chart.version}` : `${chart.git}//${chart.path}@${chart.ref}`;
}

/** Compares two `major.minor` versions (a DOKS slug's patch and suffix are ignored). */
export function compareMinor(a: string, b: string): number {
    const [aMajor, aMinor] = a.split(".").map(Number);
    const [bMajor, bMinor] = b.split(".").map(Number);
    return aMajor - bMajor || aMinor - bMinor;
}

/** The `major.minor` of a DOKS slug such as `1.35.2-do.0`. */
export function minorOf(slug: string): string {
    return slug.split(".").slice(0, 2).join(".");
}
