/**
 * The vocabulary the layers share: what config reads and the catalog pins, in the shapes components
 * take. It imports nothing, so every layer can import it without a circle.
 */

/** A Kubernetes minor version range, inclusive: `{ min: "1.31", max: "1.35" }`. */
export interface KubernetesRange {
    readonly min: string;
    readonly max: string;
}

/** A chart in a Helm repository, as `spec.chart` of a HelmRelease names it. */
export interface RepositoryChart {
    readonly repository: string;
    readonly name: string;
    readonly version: string;
}

/**
 * Where helm-operator fetches a chart: a Helm repository, a git repository (`spec.chart.git`), or a
 * chart of this project (`bundled`, a directory relative to the project root) that the program packages
 * and serves to helm-operator from inside the cluster.
 */
export type ChartSource = RepositoryChart | { readonly git: string; readonly ref: string; readonly path: string } | { readonly bundled: string };

/** One platform release: what to install, with which Helm, where it is known to work, and why we believe so. */
export interface ReleaseEntry {
    /** Helm release name and HelmRelease name (the article's). */
    readonly releaseName: string;
    readonly namespace: string;
    readonly chart: ChartSource;
    /**
     * sha256 of the chart archive a repository chart is pinned to, as the repository's index.yaml
     * records it; `offline/charts/` holds that archive, and npm test renders it.
     */
    readonly archiveSha256?: string;
    readonly helmVersion: "v2" | "v3";
    /** Kubernetes minors the chart (as configured here) installs and works on. */
    readonly kubernetes: KubernetesRange;
    /** Values merged over the program's own for this release (overrides only). */
    readonly values?: Readonly<Record<string, unknown>>;
    /** The override may open node ports, load balancers or host ports, or use a plain-HTTP repository (`allowUnsafe`). */
    readonly allowUnsafe?: boolean;
    /** Where each fact above comes from. */
    readonly sources: readonly string[];
}

export type ReleaseKey = "ingress" | "certManager" | "workflow";

/** The private-key algorithms `hephy-doks:tlsKeyAlgorithm` accepts, as @pulumi/tls `PrivateKey` inputs. */
export const KEY_ALGORITHMS = {
    "ECDSA-P256": { algorithm: "ECDSA", ecdsaCurve: "P256" },
    "ECDSA-P384": { algorithm: "ECDSA", ecdsaCurve: "P384" },
    "RSA-2048": { algorithm: "RSA", rsaBits: 2048 },
    "RSA-4096": { algorithm: "RSA", rsaBits: 4096 },
} as const;
export type KeyAlgorithm = keyof typeof KEY_ALGORITHMS;

/** The days DigitalOcean's maintenance policy accepts (`maintenance_policy.day`). */
export const MAINTENANCE_DAYS = ["any", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] as const;
export type MaintenanceDay = (typeof MAINTENANCE_DAYS)[number];

/** The HelmRelease annotation the program sets for a release whose override has `allowUnsafe`, which the policy pack reads. */
export const ALLOW_UNSAFE_ANNOTATION = "hephy-doks/allow-unsafe-values";
