import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as YAML from "yaml";
import { UPSTREAM } from "../catalog";
import { CompatibilityError } from "../kubernetesVersion";
import { exposedServicePaths } from "../policy/policies";
import { OFFERED_VERSIONS } from "../offline/mocks";
import {
    WITH_WORKFLOW_FORK,
    isSecret,
    plain,
    programError,
    sentAsSecret,
    Recorded,
    Run,
    runProgram,
    valueOf,
    esmImport,
    kubernetesModel,
    sharedRun,
} from "../offline/harness";

const CR = "kubernetes:apiextensions.k8s.io/v1:CustomResource";
const HELM_RELEASE = "kubernetes:helm.fluxcd.io/v1:HelmRelease";
const CLUSTER_ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer";
const NAMESPACE = "kubernetes:core/v1:Namespace";
const CONFIG_FILE = "kubernetes:yaml/v2:ConfigFile";

/** Custom resources register under their own apiVersion/kind type token. */
function crs(run: Run, type: string): Recorded[] {
    return run.ofType(type).concat(run.ofType(CR).filter((r) => `kubernetes:${r.inputs.apiVersion}:${r.inputs.kind}` === type));
}

function release(run: Run, name: string): Recorded {
    const found = crs(run, HELM_RELEASE).filter((r) => plain(r.inputs).metadata.name === name);
    assert.equal(found.length, 1, `one HelmRelease ${name}`);
    return found[0];
}

describe("platform releases", () => {
    let run: Run;
    before(async () => {
        run = await runProgram({ config: WITH_WORKFLOW_FORK });
    });

    it("creates the article's namespaces, cert-manager's with its webhook opt-out label", () => {
        const namespaces = Object.fromEntries(run.ofType(NAMESPACE).map((r) => [plain(r.inputs).metadata.name, plain(r.inputs).metadata.labels]));
        assert.deepEqual(namespaces, {
            flux: undefined,
            "haproxy-ingress": undefined,
            "cert-manager": { "cert-manager.io/disable-validation": "true" },
            deis: undefined,
        });
    });

    it("releases HAProxy's ingress controller as a hostNetwork DaemonSet on 80/443, with no Service, TCP 2222 to the builder", () => {
        const spec = plain(release(run, "ingress").inputs);
        assert.deepEqual(spec.metadata, {
            name: "ingress",
            namespace: "haproxy-ingress",
            annotations: { "pulumi.com/waitFor": "condition=Released", "pulumi.com/timeoutSeconds": "900" },
        });
        assert.deepEqual(spec.spec, {
            releaseName: "ingress",
            helmVersion: "v3",
            chart: { repository: "https://haproxytech.github.io/helm-charts", name: "kubernetes-ingress", version: "1.52.1" },
            wait: true,
            timeout: 840,
            maxHistory: 10,
            values: {
                controller: {
                    kind: "DaemonSet",
                    daemonset: { useHostNetwork: true },
                    dnsPolicy: "ClusterFirstWithHostNet",
                    containerPort: { http: 80, https: 443, admin: null },
                    unprivileged: false,
                    ingressClass: "nginx",
                    ingressClassResource: { name: "nginx", default: true },
                    service: { enabled: false, enablePorts: { quic: false }, tcpPorts: [{ name: "tcp-2222", port: 2222, targetPort: 2222 }] },
                    publishService: { enabled: false },
                    pprof: { enabled: false },
                    prometheus: { enabled: false },
                    defaultTLSSecret: { enabled: true, secretNamespace: "haproxy-ingress", secret: "ingress-default-tls" },
                    extraArgs: ["--configmap-tcp-services=haproxy-ingress/ingress-tcp-services", "--controller-port=0", "--disable-quic"],
                    config: { "ssl-redirect-port": "443", "stats-config-snippet": "tcp-request connection reject unless { src 127.0.0.0/8 ::1 }" },
                },
                serviceAccount: { create: true, name: "haproxy-ingress-controller" },
            },
        });
    });

    it("creates what the ingress release reads by name before it: the TCP forwards and a default certificate held as a secret", async () => {
        const ingress = release(run, "ingress");
        const forwards = run.one("kubernetes:core/v1:ConfigMap", "staging-ingress-ingress-tcp-services");
        assert.deepEqual(plain(forwards.inputs).metadata, { name: "ingress-tcp-services", namespace: "haproxy-ingress" });
        assert.deepEqual(plain(forwards.inputs).data, { "2222": "deis/deis-builder:2222" });
        const secret = run.one("kubernetes:core/v1:Secret", "staging-ingress-ingress-default-tls");
        assert.equal(plain(secret.inputs).type, "kubernetes.io/tls");
        assert.ok(sentAsSecret(secret.inputs.stringData), "the private key reaches the provider as a secret");
        const certificate = new crypto.X509Certificate(plain(secret.inputs).stringData["tls.crt"]);
        assert.match(certificate.subject, /CN=\*\.paas\.hephy-demo\.net/);
        assert.ok(certificate.checkPrivateKey(crypto.createPrivateKey(plain(secret.inputs).stringData["tls.key"])));
        for (const prerequisite of [forwards, secret]) {
            assert.equal(prerequisite.parent, "hephy-doks:ingressPrerequisites:IngressPrerequisites::staging-ingress");
            assert.ok(ingress.dependsOn.includes(`${prerequisite.type}::${prerequisite.name}`), `the release waits for ${prerequisite.name}`);
        }
    });

    it("releases cert-manager with its CRDs left to the program and letsencrypt-prod as the default issuer", () => {
        const spec = plain(release(run, "cert-manager").inputs).spec;
        assert.deepEqual(spec.chart, { repository: "https://charts.jetstack.io", name: "cert-manager", version: "v1.21.1" });
        assert.equal(spec.helmVersion, "v3");
        assert.equal(spec.releaseName, "cert-manager");
        assert.deepEqual(spec.values, {
            crds: { enabled: false },
            ingressShim: { defaultIssuerName: "letsencrypt-prod", defaultIssuerKind: "ClusterIssuer", defaultIssuerGroup: "cert-manager.io" },
            resources: { requests: { cpu: "10m", memory: "64Mi" } },
            webhook: { resources: { requests: { cpu: "10m", memory: "32Mi" } } },
            cainjector: { resources: { requests: { cpu: "10m", memory: "64Mi" } } },
            startupapicheck: { resources: { requests: { cpu: "10m", memory: "32Mi" } } },
        });
        const crds = run.one(CONFIG_FILE, "staging-cert-manager-crds");
        assert.equal(plain(crds.inputs).file, "https://github.com/cert-manager/cert-manager/releases/download/v1.21.1/cert-manager.crds.yaml");
    });

    it("releases Hephy Workflow through Tiller with native ingress, CNI, RBAC and the platform domain", () => {
        const spec = plain(release(run, "hephy").inputs);
        assert.equal(spec.metadata.namespace, "deis");
        assert.equal(spec.spec.releaseName, "hephy");
        assert.equal(spec.spec.helmVersion, "v2");
        // A git source, as the article's; helm-operator must not re-resolve the fork's dependencies.
        assert.deepEqual(spec.spec.chart, { git: "https://github.com/example/workflow", ref: "k8s-1.36", path: "charts/workflow", skipDepUpdate: true });
        assert.deepEqual(spec.spec.values, {
            global: { experimental_native_ingress: true, use_cni: true, use_rbac: true },
            controller: {
                platform_domain: "paas.hephy-demo.net",
                tls: { cluster_issuer: "letsencrypt-prod" },
                reserved_names: [
                    "deis-builder",
                    "deis-workflow-manager",
                    "grafana",
                    "default",
                    "kube-system",
                    "kube-public",
                    "kube-node-lease",
                    "flux",
                    "haproxy-ingress",
                    "cert-manager",
                ],
                org: "example",
                docker_tag: "git-abc1234",
            },
            minio: { data_claim: "deis-minio-data" },
            registry: { image: UPSTREAM.workflowBuildImages.registry },
            dockerfile_build: { image: UPSTREAM.workflowBuildImages.dockerfileBuild },
            cnb_build: { image: UPSTREAM.workflowBuildImages.cnbBuild },
        });
    });

    it("releases the project's own Workflow chart by default, served from inside the cluster, after its Secrets and issuers", async () => {
        const standard = await sharedRun();
        const hephy = release(standard, "hephy");
        const spec = plain(hephy.inputs).spec;
        assert.equal(spec.helmVersion, "v2");
        assert.equal(spec.chart.repository, "http://hephy-doks-charts.flux.svc.cluster.local:8080/");
        assert.equal(spec.chart.name, "hephy-workflow");
        assert.match(spec.chart.version, /^2\.23\.0-doks\.1\.g[0-9a-f]{12}$/);
        assert.deepEqual(spec.values.controller.platform_domain, "staging.hephy-demo.net");
        assert.deepEqual(spec.values.controller.tls, { cluster_issuer: "letsencrypt-prod" });
        const server = standard.one("kubernetes:core/v1:Service", "staging-charts-service");
        assert.deepEqual(plain(server.inputs).spec.ports, [{ name: "http", port: 8080, targetPort: "http" }]);
        assert.equal(plain(server.inputs).spec.type, "ClusterIP");
        for (const edge of [
            "kubernetes:apps/v1:Deployment::staging-charts-deployment",
            "kubernetes:core/v1:ConfigMap::staging-charts-content",
            "kubernetes:core/v1:Secret::staging-workflow-database-creds",
            "kubernetes:core/v1:Secret::staging-workflow-builder-ssh-private-keys",
            `${CLUSTER_ISSUER}::staging-letsencrypt-prod`,
        ]) {
            assert.ok(hephy.dependsOn.includes(edge) || hephy.dependsOn.includes(edge.replace(CLUSTER_ISSUER, CR)), `Workflow waits for ${edge}`);
        }
    });

    it("hands release values that carry secrets to helm-operator through a Secret, never in the HelmRelease", async () => {
        const secrets = { workflow: { minio: { accesskey: "AKIAEXAMPLE", secretkey: "s3cr3t-value-42" } } };
        const withSecrets = await runProgram({ config: { releaseSecretValues: JSON.stringify(secrets) } });
        const hephy = release(withSecrets, "hephy");
        assert.ok(!JSON.stringify(plain(hephy.inputs)).includes("s3cr3t-value-42"), "the HelmRelease carries no secret value");
        assert.deepEqual(plain(hephy.inputs).spec.valuesFrom, [{ secretKeyRef: { name: "hephy-secret-values", key: "values.yaml" } }]);
        const secret = withSecrets.one("kubernetes:core/v1:Secret", "staging-hephy-secret-values");
        assert.ok(sentAsSecret(secret.inputs.stringData), "the values reach the provider as a secret");
        assert.deepEqual(plain(secret.inputs).metadata, { name: "hephy-secret-values", namespace: "deis" });
        assert.deepEqual(YAML.parse(plain(secret.inputs).stringData["values.yaml"]), secrets.workflow);
        assert.ok(hephy.dependsOn.includes("kubernetes:core/v1:Secret::staging-hephy-secret-values"));
        for (const other of ["ingress", "cert-manager"]) {
            assert.equal(plain(release(withSecrets, other).inputs).spec.valuesFrom, undefined, other);
            assert.equal(plain(release(withSecrets, other).inputs).metadata.annotations["hephy-doks/secret-values-hmac"], undefined, other);
        }
        // A keyed digest on the HelmRelease, so helm-operator reconciles as soon as the values change.
        const digest = plain(hephy.inputs).metadata.annotations["hephy-doks/secret-values-hmac"];
        assert.match(digest, /^[0-9a-f]{64}$/);
        assert.ok(!sentAsSecret(hephy.inputs.metadata), "the digest is not a secret, so the HelmRelease shows in previews");
        const key = plain(withSecrets.one("random:index/randomPassword:RandomPassword", "staging-hephy-secret-values-key").state).result;
        assert.equal(digest, crypto.createHmac("sha256", key).update(plain(secret.inputs).stringData["values.yaml"]).digest("hex"));
        const changed = await runProgram({ config: { releaseSecretValues: JSON.stringify({ workflow: { minio: { secretkey: "another" } } }) } });
        assert.notEqual(plain(release(changed, "hephy").inputs).metadata.annotations["hephy-doks/secret-values-hmac"], digest);
    });

    it("keeps a repository override of the bundled Workflow chart whole, or refuses it", async () => {
        const fork = await runProgram({
            config: {
                releases: JSON.stringify({
                    workflow: { repository: "https://charts.example.com/", name: "workflow", version: "2.23.5", kubernetes: { min: "1.33", max: "1.36" } },
                }),
            },
        });
        assert.deepEqual(plain(release(fork, "hephy").inputs).spec.chart, { repository: "https://charts.example.com/", name: "workflow", version: "2.23.5" });
        assert.equal(fork.ofType("hephy-doks:chartServer:ChartServer").length, 0, "a fork's chart needs no server");
        const { error, declared } = await programError({
            config: { releases: JSON.stringify({ workflow: { version: "2.23.5", kubernetes: { min: "1.33", max: "1.36" } } }) },
        });
        assert.match(
            error.message,
            /hephy-doks:releases\.workflow: the catalog serves this chart from the project, so a repository source needs all of repository, name and version/,
        );
        assert.deepEqual(declared, []);
    });

    it("lists every repository a release pulls from for helm-operator, beside the article's hephy and stable", async () => {
        const standard = await sharedRun();
        const yaml = plain(standard.one("kubernetes:core/v1:Secret", "staging-helm-operator-repositories").inputs).stringData["repositories.yaml"];
        const listed = [...yaml.matchAll(/- name: (\S+)\n {2}url: (\S+)\n/g)].map((m: RegExpMatchArray) => [m[1], m[2]]);
        assert.deepEqual(listed, [
            ["hephy", "https://charts.teamhephy.com/"],
            ["stable", "https://charts.helm.sh/stable"],
            ["ingress", "https://haproxytech.github.io/helm-charts"],
            ["certmanager", "https://charts.jetstack.io"],
            ["workflow", "http://hephy-doks-charts.flux.svc.cluster.local:8080/"],
        ]);
        for (const r of crs(standard, HELM_RELEASE)) {
            assert.ok(
                listed.some(([, url]) => url === plain(r.inputs).spec.chart.repository),
                `${r.name} pulls from a listed repository`,
            );
        }
    });

    it("pins every chart to one exact version", () => {
        for (const r of crs(run, HELM_RELEASE)) {
            const chart = plain(r.inputs).spec.chart;
            const pin = chart.version ?? chart.ref;
            assert.doesNotMatch(pin, /[\^~*><= |]|x$/, `${r.name} ${pin}`);
        }
    });

    it("creates both Let's Encrypt ClusterIssuers, valid against cert-manager's schema", async () => {
        const { ClusterIssuer } = await esmImport("@kubernetes-models/cert-manager/cert-manager.io/v1");
        const issuers = crs(run, CLUSTER_ISSUER).map((r) => plain(r.inputs));
        assert.deepEqual(
            issuers.map((i) => [i.metadata.name, i.spec.acme.server, i.spec.acme.privateKeySecretRef.name]),
            [
                ["letsencrypt-staging", "https://acme-staging-v02.api.letsencrypt.org/directory", "letsencrypt-staging-account-key"],
                ["letsencrypt-prod", "https://acme-v02.api.letsencrypt.org/directory", "letsencrypt-prod-account-key"],
            ],
        );
        for (const issuer of issuers) {
            assert.equal(issuer.spec.acme.email, "ops@hephy-demo.net");
            assert.deepEqual(issuer.spec.acme.solvers, [{ http01: { ingress: { ingressClassName: "nginx", serviceType: "ClusterIP" } } }]);
            new ClusterIssuer(issuer).validate();
        }
        assert.throws(() => new ClusterIssuer({ ...issuers[0], spec: { acme: { email: "x" } } }).validate());
    });

    it("renders every Kubernetes object valid against the Kubernetes schemas", async () => {
        let validated = 0;
        for (const r of run.resources.filter((r) => r.custom && r.type.startsWith("kubernetes:"))) {
            const [, group, kind] = r.type.split(":");
            const model = await kubernetesModel(group.replace(/^core\//, ""), kind);
            if (!model) continue;
            const object = plain(r.inputs);
            new model(object).validate();
            validated++;
        }
        assert.ok(validated >= 20, `validated ${validated} objects`);
    });

    it("orders the platform: CRDs, operator and Tiller before releases; cert-manager CRDs before its release and issuers; the ingress controller before Workflow", () => {
        const deps = (r: Recorded) => r.dependsOn;
        const operatorReady = [
            "kubernetes:yaml/v2:ConfigFile::staging-helm-operator-crds",
            "kubernetes:apps/v1:Deployment::staging-helm-operator-deployment",
            "kubernetes:apps/v1:Deployment::staging-tiller-deploy",
        ];
        for (const r of crs(run, HELM_RELEASE)) {
            for (const edge of operatorReady) {
                assert.ok(deps(r).includes(edge), `${r.name} waits for ${edge}`);
            }
            for (const guard of ["deny-exposed-services", "guard-workflow-namespaces", "guard-workflow-pods", "guard-workflow-pod-templates"]) {
                assert.ok(
                    deps(r).includes(`kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding::staging-${guard}`),
                    `${r.name} waits for ${guard}`,
                );
            }
        }
        assert.ok(deps(release(run, "cert-manager")).includes(`${CONFIG_FILE}::staging-cert-manager-crds`));
        for (const issuer of crs(run, CLUSTER_ISSUER)) {
            assert.ok(deps(issuer).includes(`${CONFIG_FILE}::staging-cert-manager-crds`));
            assert.ok(
                deps(issuer).some((d) => d.endsWith("::staging-cert-manager")),
                `${issuer.name} waits for the cert-manager release`,
            );
        }
        const hephy = deps(release(run, "hephy"));
        assert.ok(
            hephy.some((d) => d.endsWith("::staging-ingress")),
            "Workflow waits for the ingress controller",
        );
    });
});

describe("zero LoadBalancers and NodePorts", () => {
    it("finds a LoadBalancer or a NodePort where one is set, so the check below can fail", () => {
        assert.deepEqual(exposedServicePaths({ controller: { service: { type: "LoadBalancer" } } }), [
            { type: "LoadBalancer", at: ".controller.service.type" },
        ]);
        assert.deepEqual(exposedServicePaths({ manifest: 'spec:\n  type: "NodePort"\n' }), [{ type: "NodePort", at: ".manifest" }]);
    });

    for (const [what, config] of [
        ["with Workflow", WITH_WORKFLOW_FORK],
        ["without Workflow", {}],
    ] as const) {
        it(`declares no object and no HelmRelease value with type LoadBalancer or NodePort, ${what}`, async () => {
            const run = await runProgram({ config });
            assert.deepEqual(
                run.resources.flatMap((r) => exposedServicePaths(plain(r.inputs), `${r.type}::${r.name}`)),
                [],
            );
        });
    }

    it("declares none of Workflow's pieces when Workflow is off: no release, chart server, Secrets, port 2222 or outputs", async () => {
        const run = await runProgram({ config: { workflowEnabled: "false" } });
        assert.deepEqual(
            crs(run, HELM_RELEASE)
                .map((r) => plain(r.inputs).metadata.name)
                .sort(),
            ["cert-manager", "ingress"],
        );
        for (const type of ["hephy-doks:chartServer:ChartServer", "hephy-doks:workflowSecrets:WorkflowSecrets", "kubernetes:core/v1:Secret"]) {
            assert.deepEqual(
                run
                    .ofType(type)
                    .filter((r) => !/tiller|helm-operator|ingress-default-tls/.test(r.name))
                    .map((r) => r.name),
                [],
                type,
            );
        }
        const firewall = plain(run.one("digitalocean:index/firewall:Firewall").inputs);
        assert.deepEqual(
            firewall.inboundRules.map((r: any) => r.portRange),
            ["80", "443"],
        );
        assert.deepEqual(plain(release(run, "ingress").inputs).spec.values.controller.service.tcpPorts, []);
        assert.deepEqual(plain(run.one("kubernetes:core/v1:ConfigMap", "staging-ingress-ingress-tcp-services").inputs).data, {});
        assert.equal(run.outputs.controllerUrl, undefined);
        assert.equal(run.outputs.builderSsh, undefined);
        assert.doesNotMatch(await valueOf(run.outputs.nextSteps), /2222|deis register/);
    });
});

describe("compatibility guard", () => {
    for (const version of OFFERED_VERSIONS) {
        it(`deploys the default platform with Workflow and zero LoadBalancers on ${version}`, async () => {
            const run = await runProgram({ config: { kubernetesVersion: version } });
            assert.deepEqual(
                crs(run, HELM_RELEASE)
                    .map((r) => plain(r.inputs).metadata.name)
                    .sort(),
                ["cert-manager", "hephy", "ingress"],
            );
            assert.equal(run.ofType("hephy-doks:chartServer:ChartServer").length, 1);
            assert.deepEqual(
                run.resources.flatMap((r) => exposedServicePaths(plain(r.inputs), `${r.type}::${r.name}`)),
                [],
            );
        });
    }

    it("refuses a Workflow chart override outside its range, naming the keys that fix it, before any resource", async () => {
        const upstream = { repository: "https://charts.teamhephy.com/", name: "workflow", version: "v2.23.0", kubernetes: { min: "1.16", max: "1.21" } };
        const { error, declared } = await programError({ config: { kubernetesVersion: "1.36", releases: JSON.stringify({ workflow: upstream }) } });
        // The program was loaded afresh, so its CompatibilityError is another class object than the test's.
        assert.equal(error.name, "CompatibilityError");
        const problems = (error as CompatibilityError).problems;
        assert.equal(problems.length, 1);
        assert.match(
            problems[0],
            /^release workflow \(workflow v2\.23\.0\) supports Kubernetes 1\.16 to 1\.21, not 1\.36\.1-do\.0\. Why: .* Fix: pulumi config set --stack staging hephy-doks:kubernetesVersion .* hephy-doks:releases\.workflow .* pulumi config set --stack staging hephy-doks:workflowEnabled false/,
        );
        assert.deepEqual(declared, []);
    });

    it("finds no latest version for releases with no offered minor in common, and names the keys that fix it", async () => {
        const upstream = { repository: "https://charts.teamhephy.com/", name: "workflow", version: "v2.23.0", kubernetes: { min: "1.16", max: "1.21" } };
        const { error, declared } = await programError({ config: { releases: JSON.stringify({ workflow: upstream }) } });
        assert.equal(error.name, "ConfigError");
        assert.match(
            error.message,
            /hephy-doks:kubernetesVersion latest: DigitalOcean offers 1\.34, 1\.35, 1\.36, and the enabled releases have no minor in common; point hephy-doks:releases .* hephy-doks:workflowEnabled false/,
        );
        assert.deepEqual(declared, []);
    });

    it("refuses a platform release outside its range, naming it and the keys that fix it", async () => {
        const { error, declared } = await programError({
            config: { kubernetesVersion: "1.34", releases: JSON.stringify({ certManager: { kubernetes: { min: "1.35", max: "1.36" } } }) },
        });
        assert.match(error.message, /release certManager \(cert-manager v1\.21\.1\) supports Kubernetes 1\.35 to 1\.36, not 1\.34\.6-do\.2/);
        assert.match(error.message, /hephy-doks:kubernetesVersion/);
        assert.deepEqual(declared, []);
    });

    it("passes a supported combination", async () => {
        const run = await runProgram({ config: { ...WITH_WORKFLOW_FORK, kubernetesVersion: "1.36" } });
        assert.equal(crs(run, HELM_RELEASE).length, 3);
    });
});

describe("platform outputs", () => {
    it("exports the controller URL, the builder's SSH address and what to do next", async () => {
        const run = await runProgram({ config: WITH_WORKFLOW_FORK });
        assert.equal(await valueOf(run.outputs.controllerUrl), "https://deis.paas.hephy-demo.net");
        assert.equal(await valueOf(run.outputs.builderSsh), "ssh://git@deis-builder.paas.hephy-demo.net:2222");
        const nextSteps = await valueOf(run.outputs.nextSteps);
        assert.match(nextSteps, /deis register https:\/\/deis\.paas\.hephy-demo\.net/);
        assert.match(nextSteps, /Works: buildpack apps by git push \(.*Cloud Native Buildpacks on heroku\/builder:24.* and apps with a Dockerfile by git push/);
        assert.doesNotMatch(nextSteps, /Does not work: Dockerfile builds/);
        assert.match(nextSteps, /Data: slugs and database backups live on a DigitalOcean volume/);
    });
});

describe("Workflow's volume and first admin, as the program declares them", () => {
    const STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass";
    const CLAIM = "kubernetes:core/v1:PersistentVolumeClaim";
    let standard: Run;
    let protectedStack: Run;
    before(async () => {
        standard = await sharedRun();
        protectedStack = await runProgram({
            config: { protect: "true", builderSshSources: '["81.2.69.0/24"]', workflowStorageGib: "25" },
        });
    });

    /** A claim of the program's in Workflow's namespace, on its StorageClass, of the default 20 GiB. */
    const assertClaim = (claim: { inputs: unknown }, name: string) => {
        assert.deepEqual(plain(claim.inputs).metadata, { name, namespace: "deis", labels: { heritage: "hephy-doks" } });
        assert.deepEqual(plain(claim.inputs).spec, {
            accessModes: ["ReadWriteOnce"],
            storageClassName: "hephy-doks-workflow",
            resources: { requests: { storage: "20Gi" } },
        });
    };

    it("claims a DigitalOcean volume of the configured size through a StorageClass of its own, deleted with an unprotected stack", () => {
        const storageClass = standard.one(STORAGE_CLASS);
        assert.deepEqual(plain(storageClass.inputs), {
            apiVersion: "storage.k8s.io/v1",
            kind: "StorageClass",
            metadata: { name: "hephy-doks-workflow", labels: { heritage: "hephy-doks" } },
            provisioner: "dobs.csi.digitalocean.com",
            reclaimPolicy: "Delete",
            allowVolumeExpansion: true,
            volumeBindingMode: "Immediate",
            parameters: { "csi.storage.k8s.io/fstype": "ext4" },
        });
        assert.deepEqual(storageClass.replaceOnChanges, ["reclaimPolicy", "volumeBindingMode"]);
        assert.equal(storageClass.deleteBeforeReplace, true, "the replacement keeps the name the claim names");
        const claim = standard.one(CLAIM, "staging-workflow-claim");
        assertClaim(claim, "deis-minio-data");
        assert.equal(claim.protect, false);
        assert.equal(claim.parent, "hephy-doks:workflowStorage:WorkflowStorage::staging-workflow");
        assert.ok(claim.inputDependsOn.includes(`${STORAGE_CLASS}::staging-workflow-storage-class`));
        assert.equal(claim.provider, "pulumi:providers:kubernetes::staging-k8s");
    });

    it("keeps the volume of a protected stack: Retain, and a claim Pulumi refuses to delete", () => {
        assert.equal(plain(protectedStack.one(STORAGE_CLASS).inputs).reclaimPolicy, "Retain");
        const claim = protectedStack.one(CLAIM, "staging-workflow-claim");
        assert.equal(claim.protect, true);
        assert.equal(plain(claim.inputs).spec.resources.requests.storage, "25Gi");
    });

    it("claims no volume for the image registry: its images are in the object store's, which the backups copy", () => {
        for (const run of [standard, protectedStack]) {
            assert.deepEqual(
                run.ofType(CLAIM).map((c) => plain(c.inputs).metadata.name),
                ["deis-minio-data"],
            );
        }
        assert.equal(plain(release(standard, "hephy").inputs).spec.values.registry.data_claim, undefined);
    });

    it("installs Workflow only once its claim exists, and tells the chart the claim's name", () => {
        const hephy = release(standard, "hephy");
        assert.ok(hephy.dependsOn.includes(`${CLAIM}::staging-workflow-claim`), hephy.dependsOn.join("\n"));
        assert.equal(plain(hephy.inputs).spec.values.minio.data_claim, plain(standard.one(CLAIM, "staging-workflow-claim").inputs).metadata.name);
    });

    it("creates the first admin's Secret before the release, and exports its name and, as a secret, its password", async () => {
        const admin = standard.one("kubernetes:core/v1:Secret", "staging-workflow-workflow-admin");
        assert.deepEqual(Object.keys(plain(admin.inputs).stringData).sort(), ["password", "username"]);
        assert.ok(sentAsSecret(admin.inputs.stringData), "the password reaches the provider as a secret");
        assert.ok(release(standard, "hephy").dependsOn.includes("kubernetes:core/v1:Secret::staging-workflow-workflow-admin"));
        const username = await valueOf(standard.outputs.workflowAdminUsername);
        assert.match(username, /^admin-[a-z0-9]{8}$/);
        assert.equal(plain(admin.inputs).stringData.username, username);
        assert.equal(await isSecret(standard.outputs.workflowAdminPassword), true);
        assert.equal(await valueOf(standard.outputs.workflowAdminPassword), plain(admin.inputs).stringData.password);
    });

    it("tells the user, in numbered steps, to install the CLI, wait for the certificate, log in as that admin, add an ed25519 key, push from any branch and point a domain", async () => {
        const nextSteps = await valueOf(standard.outputs.nextSteps);
        assert.equal(typeof standard.outputs.nextSteps, "string", "known at preview");
        const steps = nextSteps.split("\n").filter((line: string) => /^[0-9]+\. /.test(line));
        assert.deepEqual(
            steps.map((line: string) => line.split(":")[0]),
            [
                "1. Install the deis CLI v2.23.0",
                "2. Wait for the controller's certificate",
                "3. Log in as the stack's admin",
                "4. Add an SSH key",
                "5. In your app's git repository",
                "6. For a domain of your own",
            ],
        );
        assert.ok(
            steps.every((line: string) => line.length < 450),
            "no step is a wall of text",
        );
        assert.match(steps[1], /npm run verify -- --stack staging --retry 10 .*x509/);
        assert.ok(
            steps[2].includes(
                'deis login https://deis.staging.hephy-demo.net --username="$(pulumi stack output workflowAdminUsername --stack staging)", and give it the password ' +
                    "pulumi stack output workflowAdminPassword --stack staging --show-secrets prints when it asks",
            ),
            steps[2],
        );
        assert.doesNotMatch(nextSteps, /--password/, "a password on a command line shows in the process list");
        assert.match(steps[3], /ssh-keygen -t ed25519; then deis keys:add ~\/\.ssh\/id_ed25519\.pub/);
        assert.match(steps[3], /"Host deis-builder\.staging\.hephy-demo\.net" with "PubkeyAcceptedAlgorithms \+ssh-rsa"/);
        // The builder builds whatever ref is pushed (teamhephy/builder v2.13.7 pkg/gitreceive/run.go); HEAD:master works from main.
        assert.match(steps[4], /deis create, then git push deis HEAD:master \(to ssh:\/\/git@deis-builder\.staging\.hephy-demo\.net:2222\), from any branch/);
        assert.match(steps[5], /a CNAME from <name> to <app>\.staging\.hephy-demo\.net .* pulumi stack output nodeIps --stack staging/);
        assert.doesNotMatch(nextSteps, /deis register https:\/\/deis\.staging\.hephy-demo\.net \(/);
        assert.doesNotMatch(nextSteps, /git push deis master/);
    });

    it("exports no admin and claims no volume for a Workflow chart of the user's own, which reads neither", async () => {
        const fork = await runProgram({ config: WITH_WORKFLOW_FORK });
        assert.equal(fork.outputs.workflowAdminUsername, undefined);
        assert.equal(fork.outputs.workflowAdminPassword, undefined);
        assert.deepEqual([...fork.ofType(CLAIM), ...fork.ofType(STORAGE_CLASS)], []);
        assert.match(await valueOf(fork.outputs.monthlyCostEstimate), /HA control plane \$0, 0 LoadBalancers/);
        assert.match(
            await valueOf(fork.outputs.nextSteps),
            /deis register https:\/\/deis\.paas\.hephy-demo\.net \(the Workflow chart of releases\.workflow decides who may register/,
        );
    });
});
