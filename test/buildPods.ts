import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { UPSTREAM } from "../catalog";
import { plain, ROOT, Run } from "../offline/harness";
import { Admission, AdmissionRequest, admit } from "./admission";

/** The builder's Dockerfile build pod and the build-pod webhook's answer, for the specs. */

const FILES = path.join(ROOT, "charts", "hephy-workflow", "files");
const WEBHOOK = path.join(FILES, "build", "admission.py");
const CALL = path.join(ROOT, "test", "build", "call.py");
export const BUILDER = "system:serviceaccount:deis:deis-builder";
export const NAME = "dockerbuild-myapp-1a2b3c4d-0f1e2d3c";

/** Calls one function of a chart module under python3 (test/build/call.py). */
export function callPython(module: string, fn: string, args: unknown[], env: NodeJS.ProcessEnv = process.env): { result?: any; raised?: string; str?: string } {
    return JSON.parse(execFileSync("python3", [CALL, module, fn, JSON.stringify(args)], { encoding: "utf8", env }));
}

/** The app's config, as the builder puts it in the pod's environment and, as JSON, in DOCKER_BUILD_ARGS. */
export const APP_CONFIG = { GREETING: "hello from config", DEIS_DOCKER_BUILD_ARGS_ENABLED: "1" };

/**
 * A build pod as builder v2.13.7 makes every one (pkg/gitreceive/k8s_util.go buildPod: the name as its only
 * label, restartPolicy Never, the object store's keys), with a container's own env, mounts and volumes, as
 * the API server hands it to a mutating webhook: defaulted, with the ServiceAccount token volume.
 */
function admittedBuildPod(
    name: string,
    container: { name: string; image: string; env: { name: string; value: string }[] },
    mounts: any[],
    volumes: any[],
): any {
    const token = "kube-api-access-x7k2p";
    return {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: "deis", labels: { heritage: name } },
        spec: {
            restartPolicy: "Never",
            serviceAccountName: "default",
            containers: [
                {
                    ...container,
                    imagePullPolicy: "IfNotPresent",
                    volumeMounts: [
                        { name: "objectstorage-keyfile", mountPath: "/var/run/secrets/deis/objectstore/creds", readOnly: true },
                        ...mounts,
                        { name: token, mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true },
                    ],
                    terminationMessagePath: "/dev/termination-log",
                    terminationMessagePolicy: "File",
                },
            ],
            volumes: [
                { name: "objectstorage-keyfile", secret: { secretName: "objectstorage-keyfile" } },
                ...volumes,
                {
                    name: token,
                    projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3607 } }, { configMap: { name: "kube-root-ca.crt" } }] },
                },
            ],
        },
    };
}

/**
 * The Dockerfile build pod exactly as teamhephy/builder v2.13.7 creates it (k8s_util.go dockerBuilderPod;
 * build.go for the image name and registry env of an on-cluster registry): the Docker socket as a host path.
 */
export function builderPod(config: Record<string, string> = APP_CONFIG): any {
    const configEnv = Object.entries(config).map(([name, value]) => ({ name, value }));
    const env = [
        ...configEnv,
        ...(config.DEIS_DOCKER_BUILD_ARGS_ENABLED ? [{ name: "DOCKER_BUILD_ARGS", value: JSON.stringify(config) }] : []),
        { name: "TAR_PATH", value: "home/myapp:git-1a2b3c4d/tar" },
        { name: "SOURCE_VERSION", value: "1a2b3c4d" },
        { name: "IMG_NAME", value: "myapp:git-1a2b3c4d" },
        { name: "BUILDER_STORAGE", value: "minio" },
        { name: "DEIS_REGISTRY_SERVICE_HOST", value: "127.0.0.1" },
        { name: "DEIS_REGISTRY_SERVICE_PORT", value: "5555" },
        { name: "DEIS_REGISTRY_PROXY_PORT", value: "5555" },
        { name: "DEIS_REGISTRY_LOCATION", value: "on-cluster" },
    ];
    return admittedBuildPod(
        NAME,
        { name: "deis-dockerbuilder", image: "hephy/dockerbuilder:v2.8.3", env },
        [{ name: "docker-socket", mountPath: "/var/run/docker.sock" }],
        [{ name: "docker-socket", hostPath: { path: "/var/run/docker.sock", type: "" } }],
    );
}

export const SLUG_NAME = "slugbuild-myapp-1f2e3d4c-0f1e2d3c";

/**
 * The buildpack build pod exactly as teamhephy/builder v2.13.7 creates it (k8s_util.go slugbuilderPod;
 * build.go for the object keys, caching and the app's config, a Secret `<app>-build-env` at /tmp/env).
 */
export function slugBuilderPod(): any {
    const env = [
        { name: "CACHE_PATH", value: "home/myapp/cache" },
        { name: "TAR_PATH", value: "home/myapp:git-1f2e3d4c/tar" },
        { name: "PUT_PATH", value: "home/myapp:git-1f2e3d4c/push" },
        { name: "SOURCE_VERSION", value: "1f2e3d4c" },
        { name: "BUILDER_STORAGE", value: "minio" },
    ];
    return admittedBuildPod(
        SLUG_NAME,
        { name: "deis-slugbuilder", image: "hephy/slugbuilder:v2.8.0", env },
        [{ name: "myapp-build-env", mountPath: "/tmp/env", readOnly: true }],
        [{ name: "myapp-build-env", secret: { secretName: "myapp-build-env" } }],
    );
}

/** What the chart tells the webhook (templates/dockerfile-build.yaml). */
export const WEBHOOK_SETTINGS = {
    image: UPSTREAM.workflowBuildImages.dockerfileBuild,
    registry: "deis-registry.deis.svc.cluster.local:5000",
    configmap: UPSTREAM.workflowDockerfileBuild.scriptConfigMap,
    storage_limit: "10Gi",
    cnb_image: UPSTREAM.workflowBuildImages.cnbBuild,
    cnb_configmap: UPSTREAM.workflowCnbBuild.scriptConfigMap,
    cnb_storage_limit: "10Gi",
};

/** A pod creation as the API server gives it to admission. */
export const podRequest = (user: string, namespace: string, object: any, namespaceLabels: Record<string, string> = {}): AdmissionRequest => ({
    operation: "CREATE",
    kind: { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    namespace,
    name: object.metadata.name,
    userInfo: { username: user },
    object,
    namespaceObject: { metadata: { name: namespace, labels: { "kubernetes.io/metadata.name": namespace, ...namespaceLabels } } },
});

/** Every ValidatingAdmissionPolicy of the program's run, evaluated on a request. */
export function admitAll(run: Run, req: AdmissionRequest): Admission {
    const results = run.ofType("kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy").map((v) => admit(plain(v.inputs).spec, req));
    return { matched: results.some((x) => x.matched), denied: results.flatMap((x) => x.denied) };
}

/** A JSON patch of `replace` and `add` operations at top-level paths, applied as the API server would. */
function applyPatch(object: any, patch: { op: string; path: string; value: unknown }[]): any {
    const result = structuredClone(object);
    for (const { op, path: pointer, value } of patch) {
        assert.ok(op === "replace" || op === "add", op);
        const keys = pointer.split("/").slice(1);
        const parent = keys.slice(0, -1).reduce((o, k) => o[k], result);
        parent[keys[keys.length - 1]] = value;
    }
    return result;
}

/** The webhook's answer to the API server for a pod, and the pod it lets through. */
export function webhook(pod: any, user = BUILDER): { response: any; pod?: any } {
    const reviewRequest = { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "u-1", userInfo: { username: user }, object: pod } };
    const { result, raised, str } = callPython(WEBHOOK, "review", [JSON.stringify(reviewRequest), WEBHOOK_SETTINGS]);
    assert.equal(raised, undefined, str);
    const { response } = result;
    if (!response.allowed) {
        return { response };
    }
    const patch = JSON.parse(Buffer.from(response.patch, "base64").toString("utf8"));
    return { response, pod: applyPatch(pod, patch) };
}
