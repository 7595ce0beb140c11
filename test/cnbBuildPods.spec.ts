import * as assert from "node:assert/strict";
import { UPSTREAM } from "../catalog";
import { Run, sharedRun } from "../offline/harness";
import { Admission, AdmissionRequest } from "./admission";
import { admitAll as admitAllOf, BUILDER, builderPod, podRequest, SLUG_NAME, slugBuilderPod, webhook } from "./buildPods";

const CONTROLLER = "system:serviceaccount:deis:deis-controller";

describe("buildpack build pods: the builder's slugbuild pod made a Cloud Native Buildpacks build, and the admission guards", () => {
    let run: Run;
    let built: any;
    const admitAll = (req: AdmissionRequest): Admission => admitAllOf(run, req);

    before(async () => {
        run = await sharedRun();
        const answer = webhook(slugBuilderPod());
        assert.equal(answer.response.allowed, true, JSON.stringify(answer.response));
        built = answer.pod;
    });

    it("makes it a CNB build in the pinned builder image, as its own user, with nothing relaxed", () => {
        assert.deepEqual(built.metadata.labels, { heritage: SLUG_NAME, "hephy-doks/build": "cnb" }, "the builder still finds it by heritage");
        const spec = built.spec;
        assert.equal(spec.containers.length, 1, "the builder follows the log of the pod's one container");
        const [build] = spec.containers;
        assert.equal(build.name, "deis-slugbuilder");
        assert.equal(build.image, UPSTREAM.workflowBuildImages.cnbBuild);
        assert.match(build.image, /^docker\.io\/heroku\/builder:24@sha256:[0-9a-f]{64}$/);
        assert.deepEqual(build.command, UPSTREAM.workflowCnbBuild.command);
        assert.deepEqual(build.securityContext, {
            runAsUser: 1000,
            runAsGroup: 1000,
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
            seccompProfile: { type: "RuntimeDefault" },
        });
        assert.deepEqual(spec.securityContext, { runAsNonRoot: true, fsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } });
        assert.equal(spec.automountServiceAccountToken, false);
        assert.ok(!/hostPath|docker\.sock|serviceAccountToken|Unconfined|privileged/.test(JSON.stringify(spec)), JSON.stringify(spec));
        const env = Object.fromEntries(build.env.map((e: any) => [e.name, e.value]));
        assert.deepEqual(
            [env.REGISTRY, env.CNB_INSECURE_REGISTRIES, env.CNB_PLATFORM_API, env.PUT_PATH, env.CACHE_PATH],
            [
                "deis-registry.deis.svc.cluster.local:5000",
                "deis-registry.deis.svc.cluster.local:5000",
                "0.13",
                "home/myapp:git-1f2e3d4c/push",
                "home/myapp/cache",
            ],
        );
        assert.ok(!build.volumeMounts.some((m: any) => m.name === "objectstorage-keyfile"), "the app's build scripts never see the object store's keys");
        assert.deepEqual(
            build.volumeMounts.find((m: any) => m.mountPath === "/platform/env"),
            { name: "myapp-build-env", mountPath: "/platform/env", readOnly: true },
            "the app's config, as the buildpacks' platform env",
        );
        const [fetch, upload] = spec.initContainers;
        assert.deepEqual([fetch.name, upload.name, upload.restartPolicy], ["fetch-source", "procfile-upload", "Always"]);
        for (const c of [fetch, upload]) {
            assert.equal(c.image, "hephy/slugbuilder:v2.8.0", "the pod's own image, with its object store client");
            assert.ok(
                c.volumeMounts.some((m: any) => m.name === "objectstorage-keyfile" && m.readOnly),
                c.name,
            );
            assert.equal(c.securityContext.allowPrivilegeEscalation, false, c.name);
        }
        assert.match(fetch.command[2], /objstorage --storage-type="\$BUILDER_STORAGE" download "\$TAR_PATH" .* && tar -xzf .* -C "\$CNB_APP_DIR"$/);
        assert.match(upload.command[2], /upload "\$HANDOFF\/Procfile" "\$PUT_PATH\/Procfile"/);
        assert.deepEqual(
            [fetch, upload].map((c) => c.env.find((e: any) => e.name === "CNB_APP_DIR" || e.name === "HANDOFF")),
            [
                { name: "CNB_APP_DIR", value: "/workspace" },
                { name: "HANDOFF", value: "/handoff" },
            ],
        );
    });

    it("admits the CNB build pod as the webhook makes it, under every admission policy of the program", () => {
        const result = admitAll(podRequest(BUILDER, "deis", built));
        assert.ok(result.matched);
        assert.deepEqual(result.denied, []);
    });

    it("gives nothing else what it allows: the build label only on the builder's own build pods, the relaxation still on none of them", () => {
        const relabelled = (pod: any, value: string) => ({
            ...structuredClone(pod),
            metadata: { ...pod.metadata, labels: { ...pod.metadata.labels, "hephy-doks/build": value } },
        });
        const dockerfile = webhook(builderPod()).pod;
        const unconfined = structuredClone(built);
        unconfined.spec.containers[0].securityContext.seccompProfile = { type: "Unconfined" };
        const cases: [string, AdmissionRequest, RegExp][] = [
            ["a slugbuild pod labelled as a Dockerfile build", podRequest(BUILDER, "deis", relabelled(built, "dockerfile")), /carries the label heritage only/],
            ["a Dockerfile build labelled as a CNB build", podRequest(BUILDER, "deis", relabelled(dockerfile, "cnb")), /carries the label heritage only/],
            ["the CNB build with seccomp Unconfined", podRequest(BUILDER, "deis", unconfined), /is for Workflow's Dockerfile build container only/],
            ["the CNB build, made by the controller", podRequest(CONTROLLER, "deis", built), /./],
        ];
        for (const [what, req, message] of cases) {
            const { denied } = admitAll(req);
            assert.ok(
                denied.some((m) => message.test(m)),
                `${what}: ${denied.join("; ") || "admitted"}`,
            );
        }
    });

    it("refuses what it cannot read as the builder's slugbuild pod, with the reason", () => {
        const noPutPath = slugBuilderPod();
        noPutPath.spec.containers[0].env = noPutPath.spec.containers[0].env.filter((e: any) => e.name !== "PUT_PATH");
        assert.match(webhook(noPutPath).response.status.message, /has no PUT_PATH: not a buildpack build pod as the builder makes it/);
        const noConfig = slugBuilderPod();
        noConfig.spec.containers[0].volumeMounts = noConfig.spec.containers[0].volumeMounts.filter((m: any) => m.mountPath !== "/tmp/env");
        assert.match(webhook(noConfig).response.status.message, /mounts no app config at \/tmp\/env/);
    });
});
