import * as assert from "node:assert/strict";
import * as YAML from "yaml";
import { compareMinor } from "../catalog";

/** Helpers for the objects a chart renders, shared by the chart tests and `npm run plan`. */

/**
 * APIs Kubernetes removed, and the minor that removed them
 * (https://kubernetes.io/docs/reference/using-api/deprecation-guide/).
 */
export const REMOVED_APIS: readonly { apiVersion: string; kinds?: string[]; removedIn: string }[] = [
    { apiVersion: "extensions/v1beta1", removedIn: "1.22" },
    { apiVersion: "apps/v1beta1", removedIn: "1.16" },
    { apiVersion: "apps/v1beta2", removedIn: "1.16" },
    { apiVersion: "networking.k8s.io/v1beta1", removedIn: "1.22" },
    { apiVersion: "rbac.authorization.k8s.io/v1beta1", removedIn: "1.22" },
    { apiVersion: "admissionregistration.k8s.io/v1beta1", kinds: ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"], removedIn: "1.22" },
    { apiVersion: "apiextensions.k8s.io/v1beta1", removedIn: "1.22" },
    { apiVersion: "scheduling.k8s.io/v1beta1", removedIn: "1.22" },
    { apiVersion: "policy/v1beta1", removedIn: "1.25" },
    { apiVersion: "batch/v1beta1", removedIn: "1.25" },
    { apiVersion: "discovery.k8s.io/v1beta1", removedIn: "1.25" },
    { apiVersion: "autoscaling/v2beta1", removedIn: "1.25" },
    { apiVersion: "autoscaling/v2beta2", removedIn: "1.26" },
    { apiVersion: "storage.k8s.io/v1beta1", kinds: ["CSIStorageCapacity"], removedIn: "1.27" },
    { apiVersion: "flowcontrol.apiserver.k8s.io/v1beta2", removedIn: "1.29" },
    { apiVersion: "flowcontrol.apiserver.k8s.io/v1beta3", removedIn: "1.32" },
];

/** Why an object is not served in `minor`, or undefined if it is. */
export function removedIn(object: { apiVersion: string; kind: string }, minor: string): string | undefined {
    const removal = REMOVED_APIS.find((r) => r.apiVersion === object.apiVersion && (!r.kinds || r.kinds.includes(object.kind)));
    return removal && compareMinor(minor, removal.removedIn) >= 0 ? `${object.apiVersion} ${object.kind} was removed in ${removal.removedIn}` : undefined;
}

/**
 * GA API versions of the built-in groups, served by every Kubernetes minor of the catalog's ranges
 * (1.33 to 1.37; https://kubernetes.io/docs/reference/using-api/deprecation-guide/ plans no removal of
 * any of them), and the APIs whose CRDs the program installs before any release.
 */
export const SERVED_APIS: ReadonlySet<string> = new Set([
    "v1",
    "admissionregistration.k8s.io/v1",
    "apiextensions.k8s.io/v1",
    "apiregistration.k8s.io/v1",
    "apps/v1",
    "autoscaling/v1",
    "autoscaling/v2",
    "batch/v1",
    "certificates.k8s.io/v1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "networking.k8s.io/v1",
    "node.k8s.io/v1",
    "policy/v1",
    "rbac.authorization.k8s.io/v1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1",
    // cert-manager's CRDs (catalog.ts certManagerCrdUrl) and helm-operator's (UPSTREAM.helmOperatorCrdUrl).
    "cert-manager.io/v1",
    // Cilium's, which DOKS's network installs (docs/workflow.md, "Network": to check on a live cluster).
    "cilium.io/v2",
    "acme.cert-manager.io/v1",
    "helm.fluxcd.io/v1",
]);

/** Why the cluster cannot take an object in `minor`, or undefined if it serves its API. */
export function notServed(object: { apiVersion: string; kind: string }, minor: string): string | undefined {
    return (
        removedIn(object, minor) ??
        (SERVED_APIS.has(object.apiVersion)
            ? undefined
            : `${object.apiVersion} ${object.kind} is neither a GA built-in API nor one whose CRD the program installs`)
    );
}

/** Every minor from min to max of a catalog range. */
export function minors({ min, max }: { min: string; max: string }): string[] {
    const [major, first] = min.split(".").map(Number);
    const last = Number(max.split(".")[1]);
    return Array.from({ length: last - first + 1 }, (_, i) => `${major}.${first + i}`);
}

export type K8sObject = {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
    [key: string]: any;
};

export function parseManifest(manifest: string): K8sObject[] {
    return YAML.parseAllDocuments(manifest)
        .map((d) => d.toJS() as K8sObject | null)
        .filter((o): o is K8sObject => o !== null);
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
    const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
    assert.equal(found.length, 1, `one ${kind} ${name}`);
    return found[0];
}

/** The pod templates of every workload. */
export function podSpecs(objects: K8sObject[]): { owner: string; spec: any }[] {
    return objects.filter((o) => o.spec?.template?.spec).map((o) => ({ owner: `${o.kind}/${o.metadata.name}`, spec: o.spec.template.spec }));
}
