import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as tls from "node:tls";
import { plain, Run, runProgram, sentAsSecret, sharedRun } from "../offline/harness";
import { tlsState } from "../offline/tlsMocks";

const SECRET = "kubernetes:core/v1:Secret";
const CONFIG_MAP = "kubernetes:core/v1:ConfigMap";
const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
const SERVICE = "kubernetes:core/v1:Service";
const CERT = "tls:index/locallySignedCert:LocallySignedCert";
const KEY = "tls:index/privateKey:PrivateKey";
const CA = "tls:index/selfSignedCert:SelfSignedCert";

/** The Kubernetes object a resource declared, with secret wrappers removed. */
function object(run: Run, type: string, name: string): any {
    return plain(run.one(type, name).inputs);
}

function byName(run: Run, type: string, objectName: string): any {
    const found = run.ofType(type).filter((r) => plain(r.inputs).metadata?.name === objectName);
    assert.equal(found.length, 1, `one ${type} named ${objectName}`);
    return found[0];
}

describe("Tiller PKI", () => {
    let run: Run;
    before(async () => {
        run = await sharedRun();
    });

    it("makes a CA with @pulumi/tls only, as a CA certificate", () => {
        const ca = object(run, CA, "staging-ca");
        assert.equal(ca.isCaCertificate, true);
        assert.deepEqual(ca.allowedUses, ["cert_signing", "crl_signing", "digital_signature"]);
        assert.equal(ca.validityPeriodHours, 87600);
        assert.equal(ca.earlyRenewalHours, 720);
        assert.equal(sentAsSecret(run.one(CA, "staging-ca").inputs.privateKeyPem), true, "the CA key reaches the provider as a secret");
        const x509 = new crypto.X509Certificate(run.one(CA, "staging-ca").state.certPem);
        assert.equal(x509.ca, true);
    });

    it("gives every key the configured algorithm", async () => {
        for (const role of ["ca", "tiller", "helm-client"]) {
            assert.deepEqual(object(run, KEY, `staging-${role}-key`), { algorithm: "ECDSA", ecdsaCurve: "P256" });
        }
        const rsa = await runProgram({ config: { tlsKeyAlgorithm: "RSA-2048" } });
        assert.deepEqual(object(rsa, KEY, "staging-tiller-key"), { algorithm: "RSA", rsaBits: 2048 });
    });

    it("signs Tiller's certificate for its Service name and for 127.0.0.1, for server auth", () => {
        const csr = object(run, "tls:index/certRequest:CertRequest", "staging-tiller-csr");
        assert.deepEqual(csr.dnsNames, ["tiller-deploy", "tiller-deploy.kube-system", "tiller-deploy.kube-system.svc", "localhost"]);
        assert.deepEqual(csr.ipAddresses, ["127.0.0.1"]);
        const cert = object(run, CERT, "staging-tiller-cert");
        assert.deepEqual(cert.allowedUses, ["server_auth", "key_encipherment", "digital_signature"]);
        assert.equal(cert.validityPeriodHours, 8760);
        assert.equal(cert.earlyRenewalHours, 720);
        assert.equal(cert.caCertPem, run.one(CA, "staging-ca").state.certPem);
        const x509 = new crypto.X509Certificate(run.one(CERT, "staging-tiller-cert").state.certPem);
        assert.deepEqual(x509.keyUsage, ["1.3.6.1.5.5.7.3.1"]);
        assert.equal(x509.checkHost("tiller-deploy.kube-system"), "tiller-deploy.kube-system");
        assert.equal(x509.checkIP("127.0.0.1"), "127.0.0.1");
    });

    it("signs the helm-operator's certificate for client auth only", () => {
        const cert = object(run, CERT, "staging-helm-client-cert");
        assert.deepEqual(cert.allowedUses, ["client_auth", "key_encipherment", "digital_signature"]);
        const x509 = new crypto.X509Certificate(run.one(CERT, "staging-helm-client-cert").state.certPem);
        assert.deepEqual(x509.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
        assert.equal(x509.checkHost("tiller-deploy.kube-system"), undefined);
    });

    it("parents the PKI under its component", () => {
        const pki = run.resources.filter((r) => r.type.startsWith("tls:") && !/builder-ssh|ingress-default-tls/.test(r.name));
        for (const r of pki) {
            assert.equal(r.parent, "hephy-doks:tillerPki:TillerPki::staging", r.name);
        }
        assert.equal(pki.length, 8);
    });
});

describe("Tiller", () => {
    let run: Run;
    before(async () => {
        run = await runProgram({ config: { tillerHistoryMax: "25" } });
    });

    const labels = { app: "helm", name: "tiller" };

    it("runs tiller-deploy as helm init --tiller-tls-verify renders it, with release data in Secrets", () => {
        const deployment = object(run, DEPLOYMENT, "staging-tiller-deploy");
        assert.deepEqual(deployment.metadata, { name: "tiller-deploy", namespace: "kube-system", labels });
        assert.deepEqual(deployment.spec.selector, { matchLabels: labels });
        assert.equal(deployment.spec.replicas, 1);
        const pod = deployment.spec.template;
        assert.deepEqual(pod.metadata.labels, labels);
        assert.equal(pod.spec.serviceAccountName, "tiller");
        assert.equal(pod.spec.automountServiceAccountToken, true);
        assert.deepEqual(pod.spec.volumes, [{ name: "tiller-certs", secret: { secretName: "tiller-secret" } }]);
        assert.deepEqual(pod.spec.containers, [
            {
                name: "tiller",
                image: "ghcr.io/helm/tiller:v2.17.0",
                imagePullPolicy: "IfNotPresent",
                command: ["/tiller", "--storage=secret"],
                env: [
                    { name: "TILLER_NAMESPACE", value: "kube-system" },
                    { name: "TILLER_HISTORY_MAX", value: "25" },
                    { name: "TILLER_TLS_VERIFY", value: "1" },
                    { name: "TILLER_TLS_ENABLE", value: "1" },
                    { name: "TILLER_TLS_CERTS", value: "/etc/certs" },
                ],
                ports: [
                    { containerPort: 44134, name: "tiller" },
                    { containerPort: 44135, name: "http" },
                ],
                livenessProbe: { httpGet: { path: "/liveness", port: 44135 }, initialDelaySeconds: 1, timeoutSeconds: 1 },
                readinessProbe: { httpGet: { path: "/readiness", port: 44135 }, initialDelaySeconds: 1, timeoutSeconds: 1 },
                // Not BestEffort, which is evicted first: every release goes through Tiller.
                resources: { requests: { cpu: "50m", memory: "64Mi" } },
                volumeMounts: [{ name: "tiller-certs", mountPath: "/etc/certs", readOnly: true }],
            },
        ]);
    });

    it("exposes tiller-deploy on the named port, with no probe port", () => {
        assert.deepEqual(object(run, SERVICE, "staging-tiller-service"), {
            apiVersion: "v1",
            kind: "Service",
            metadata: { name: "tiller-deploy", namespace: "kube-system", labels },
            spec: { type: "ClusterIP", ports: [{ name: "tiller", port: 44134, targetPort: "tiller" }], selector: labels },
        });
    });

    it("binds the tiller ServiceAccount to cluster-admin, as the article does", () => {
        assert.deepEqual(object(run, "kubernetes:core/v1:ServiceAccount", "staging-tiller-sa").metadata, {
            name: "tiller",
            namespace: "kube-system",
            labels,
        });
        const binding = object(run, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "staging-tiller-binding");
        assert.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" });
        assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: "tiller", namespace: "kube-system" }]);
    });

    it("fills tiller-secret from the PKI's outputs, with the key sent as a secret", () => {
        const secret = run.one(SECRET, "staging-tiller-secret");
        const data = plain(secret.inputs).stringData;
        assert.deepEqual(Object.keys(data).sort(), ["ca.crt", "tls.crt", "tls.key"]);
        assert.equal(data["tls.crt"], run.one(CERT, "staging-tiller-cert").state.certPem);
        assert.equal(data["tls.key"], run.one(KEY, "staging-tiller-key").state.privateKeyPem);
        assert.equal(data["ca.crt"], run.one(CA, "staging-ca").state.certPem);
        assert.equal(sentAsSecret(secret.inputs.stringData), true);
        assert.deepEqual(plain(secret.inputs).metadata, { name: "tiller-secret", namespace: "kube-system", labels });
    });

    it("puts every Tiller object on the cluster's provider, under the Tiller component", () => {
        const tillerObjects = run.resources.filter((r) => r.parent === "hephy-doks:tiller:Tiller::staging");
        assert.equal(tillerObjects.length, 7);
        for (const r of tillerObjects) {
            assert.equal(r.provider, "pulumi:providers:kubernetes::staging-k8s", r.name);
        }
    });
});

describe("helm-operator", () => {
    let run: Run;
    before(async () => {
        run = await sharedRun();
    });
    const labels = { app: "helm-operator", release: "flux" };
    const deployment = () => object(run, DEPLOYMENT, "staging-helm-operator-deployment");

    it("installs the HelmRelease CRD from the pinned upstream manifest", () => {
        const crds = run.one("kubernetes:yaml/v2:ConfigFile", "staging-helm-operator-crds");
        assert.equal(plain(crds.inputs).file, "https://raw.githubusercontent.com/fluxcd/helm-operator/v1.4.4/deploy/crds.yaml");
        assert.equal(crds.provider, "pulumi:providers:kubernetes::staging-k8s");
    });

    it("runs the last helm-operator with mutual TLS to Tiller, verifying tiller-deploy.kube-system", () => {
        const d = deployment();
        assert.deepEqual(d.metadata, { name: "flux-helm-operator", namespace: "flux", labels });
        assert.deepEqual(d.spec.strategy, { type: "Recreate" });
        const [container] = d.spec.template.spec.containers;
        assert.equal(container.image, "docker.io/fluxcd/helm-operator:1.4.4");
        assert.deepEqual(container.args, [
            "--enabled-helm-versions=v2,v3",
            "--helm-repository-import=v2:/root/.helm/repository/repositories.yaml",
            "--helm-repository-import=v3:/root/.helm/repository/repositories.yaml",
            "--log-format=fmt",
            "--charts-sync-interval=3m",
            "--status-update-interval=30s",
            "--update-chart-deps=true",
            "--log-release-diffs=false",
            "--workers=4",
            "--tiller-namespace=kube-system",
            "--tiller-tls-enable=true",
            "--tiller-tls-key-path=/etc/fluxd/helm/tls.key",
            "--tiller-tls-cert-path=/etc/fluxd/helm/tls.crt",
            "--tiller-tls-verify=true",
            "--tiller-tls-ca-cert-path=/etc/fluxd/helm-ca/ca.crt",
            "--tiller-tls-hostname=tiller-deploy.kube-system",
        ]);
        assert.deepEqual(container.ports, [{ name: "http", containerPort: 3030 }]);
        assert.deepEqual(container.readinessProbe.httpGet, { path: "/healthz", port: 3030 });
        assert.equal(d.spec.template.spec.serviceAccountName, "flux-helm-operator");
    });

    it("mounts each TLS file where its flag points", () => {
        const spec = deployment().spec.template.spec;
        const [container] = spec.containers;
        const flag = (name: string) => container.args.find((a: string) => a.startsWith(`--${name}=`)).split("=")[1];
        const volumeOf = (file: string) => {
            const mount = container.volumeMounts.find((m: any) => file.startsWith(`${m.mountPath}/`));
            assert.ok(mount, `a mount holds ${file}`);
            return { volume: spec.volumes.find((v: any) => v.name === mount.name), key: file.slice(mount.mountPath.length + 1) };
        };
        const key = volumeOf(flag("tiller-tls-key-path"));
        const cert = volumeOf(flag("tiller-tls-cert-path"));
        const ca = volumeOf(flag("tiller-tls-ca-cert-path"));
        assert.deepEqual([key.volume.secret.secretName, key.key], ["helm-client", "tls.key"]);
        assert.deepEqual([cert.volume.secret.secretName, cert.key], ["helm-client", "tls.crt"]);
        // Upstream mounts the CA from a ConfigMap, not from the client Secret.
        assert.deepEqual([ca.volume.configMap.name, ca.key], ["flux-helm-operator-helm-tls-ca-config", "ca.crt"]);

        const clientSecret = byName(run, SECRET, "helm-client");
        assert.deepEqual(Object.keys(plain(clientSecret.inputs).stringData).sort(), ["tls.crt", "tls.key"]);
        const caMap = plain(byName(run, CONFIG_MAP, "flux-helm-operator-helm-tls-ca-config").inputs);
        assert.deepEqual(Object.keys(caMap.data), ["ca.crt"]);

        const repoMount = container.volumeMounts.find((m: any) => m.mountPath === "/root/.helm/repository/repositories.yaml");
        assert.deepEqual(repoMount, { name: "repositories-yaml", mountPath: "/root/.helm/repository/repositories.yaml", subPath: "repositories.yaml" });
        assert.deepEqual(spec.volumes.find((v: any) => v.name === "repositories-yaml").secret, { secretName: "flux-helm-repositories" });
    });

    it("fills the client Secret and the CA ConfigMap from the PKI's outputs", () => {
        const clientSecret = byName(run, SECRET, "helm-client");
        const data = plain(clientSecret.inputs).stringData;
        assert.equal(data["tls.crt"], run.one(CERT, "staging-helm-client-cert").state.certPem);
        assert.equal(data["tls.key"], run.one(KEY, "staging-helm-client-key").state.privateKeyPem);
        assert.equal(sentAsSecret(clientSecret.inputs.stringData), true);
        assert.equal(plain(clientSecret.inputs).type, "kubernetes.io/tls");
        const caMap = plain(byName(run, CONFIG_MAP, "flux-helm-operator-helm-tls-ca-config").inputs);
        assert.equal(caMap.data["ca.crt"], run.one(CA, "staging-ca").state.certPem);
    });

    it("configures the hephy and stable chart repositories", () => {
        const yaml = plain(byName(run, SECRET, "flux-helm-repositories").inputs).stringData["repositories.yaml"];
        assert.match(yaml, /^apiVersion: v1\ngenerated: 0001-01-01T00:00:00Z\nrepositories:\n/);
        assert.match(yaml, /- name: hephy\n  url: https:\/\/charts\.teamhephy\.com\/\n  cache: \/var\/fluxd\/helm\/repository\/cache\/hephy-index\.yaml\n/);
        assert.match(yaml, /- name: stable\n  url: https:\/\/charts\.helm\.sh\/stable\n/);
        assert.doesNotMatch(yaml, /storage\.googleapis\.com/);
    });

    it("grants its ServiceAccount the chart's ClusterRole", () => {
        const role = object(run, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "staging-helm-operator-role");
        assert.deepEqual(role.rules, [
            { apiGroups: ["*"], resources: ["*"], verbs: ["*"] },
            { nonResourceURLs: ["*"], verbs: ["*"] },
        ]);
        const binding = object(run, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "staging-helm-operator-binding");
        assert.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "flux-helm-operator" });
        assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: "flux-helm-operator", namespace: "flux" }]);
    });

    it("starts only after Tiller is ready and the CRD exists", () => {
        const d = run.one(DEPLOYMENT, "staging-helm-operator-deployment");
        assert.deepEqual(d.dependsOn, [
            "kubernetes:core/v1:Namespace::staging-helm-operator-namespace",
            "kubernetes:yaml/v2:ConfigFile::staging-helm-operator-crds",
            "kubernetes:apps/v1:Deployment::staging-tiller-deploy",
            "kubernetes:core/v1:Service::staging-tiller-service",
        ]);
    });
});

/** Connects a TLS client to the server and reports whether the server accepted it and answered. */
function handshake(port: number, client: tls.ConnectionOptions): Promise<"accepted" | string> {
    return new Promise((resolve) => {
        const socket = tls.connect({ host: "127.0.0.1", port, ...client });
        const timer = setTimeout(() => {
            socket.destroy();
            resolve("timeout");
        }, 5000);
        const done = (result: string) => {
            clearTimeout(timer);
            socket.destroy();
            resolve(result);
        };
        socket.on("data", (data) => done(data.toString() === "tiller" ? "accepted" : `unexpected ${data}`));
        socket.on("error", (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
        socket.on("end", () => done("closed"));
    });
}

describe("mutual TLS between helm-operator and Tiller, with the PEMs the program deploys", () => {
    let run: Run;
    let server: tls.Server;
    let port: number;
    let clientKey: string;
    let clientCert: string;
    let clientCa: string;

    before(async () => {
        run = await sharedRun();
        const tiller = plain(run.one(SECRET, "staging-tiller-secret").inputs).stringData;
        // Tiller's own settings (helm/helm v2.17.0 pkg/tlsutil): its key pair, and client certificates required and checked against ca.crt.
        server = tls.createServer(
            { key: tiller["tls.key"], cert: tiller["tls.crt"], ca: tiller["ca.crt"], requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.2" },
            (socket) => socket.end("tiller"),
        );
        server.on("tlsClientError", () => undefined);
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        port = (server.address() as { port: number }).port;

        const helmClient = plain(byName(run, SECRET, "helm-client").inputs).stringData;
        clientKey = helmClient["tls.key"];
        clientCert = helmClient["tls.crt"];
        clientCa = plain(byName(run, CONFIG_MAP, "flux-helm-operator-helm-tls-ca-config").inputs).data["ca.crt"];
    });

    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it("accepts the helm-operator client, which verifies tiller-deploy.kube-system", async () => {
        assert.equal(await handshake(port, { key: clientKey, cert: clientCert, ca: clientCa, servername: "tiller-deploy.kube-system" }), "accepted");
    });

    it("accepts `helm --tls` through a port-forward to 127.0.0.1", async () => {
        assert.equal(
            await handshake(port, {
                key: clientKey,
                cert: clientCert,
                ca: clientCa,
                checkServerIdentity: (_h, cert) => tls.checkServerIdentity("127.0.0.1", cert),
            }),
            "accepted",
        );
    });

    it("refuses a client with no certificate", async () => {
        assert.notEqual(await handshake(port, { ca: clientCa, servername: "tiller-deploy.kube-system" }), "accepted");
    });

    it("refuses a client whose certificate comes from another CA", async () => {
        const key = await tlsState(KEY, "rogue-key", { algorithm: "ECDSA", ecdsaCurve: "P256" });
        const rogueCa = await tlsState(CA, "rogue-ca", {
            privateKeyPem: key.privateKeyPem,
            subject: { commonName: "tiller-ca", organization: "hephy-doks" },
            isCaCertificate: true,
            allowedUses: ["cert_signing", "digital_signature"],
            validityPeriodHours: 24,
        });
        const csr = await tlsState("tls:index/certRequest:CertRequest", "rogue-csr", {
            privateKeyPem: key.privateKeyPem,
            subject: { commonName: "helm-operator" },
        });
        const rogue = await tlsState(CERT, "rogue-cert", {
            certRequestPem: csr.certRequestPem,
            caPrivateKeyPem: key.privateKeyPem,
            caCertPem: rogueCa.certPem,
            allowedUses: ["client_auth", "digital_signature"],
            validityPeriodHours: 24,
        });
        assert.notEqual(
            await handshake(port, { key: key.privateKeyPem, cert: rogue.certPem, ca: clientCa, servername: "tiller-deploy.kube-system" }),
            "accepted",
        );
    });

    it("is refused by a client expecting another hostname", async () => {
        assert.equal(
            await handshake(port, { key: clientKey, cert: clientCert, ca: clientCa, servername: "tiller.example.com" }),
            "ERR_TLS_CERT_ALTNAME_INVALID",
        );
    });
});

describe("renewed certificates reach Tiller and helm-operator", () => {
    const podAnnotations = (run: Run, name: string) =>
        plain(run.one("kubernetes:apps/v1:Deployment", name).inputs).spec.template.metadata.annotations["hephy-doks/inputs-sha256"];

    it("rolls both Deployments when their certificates change, and neither when nothing changes", async () => {
        const first = await runProgram();
        const again = await runProgram();
        // A longer leaf lifetime is a new certificate over the same keys, as an early renewal is.
        const renewed = await runProgram({ config: { tlsCertValidityHours: "8000" } });
        for (const name of ["staging-tiller-deploy", "staging-helm-operator-deployment"]) {
            assert.match(podAnnotations(first, name), /^[0-9a-f]{64}$/);
            assert.equal(podAnnotations(again, name), podAnnotations(first, name), `${name} is stable`);
            assert.notEqual(podAnnotations(renewed, name), podAnnotations(first, name), `${name} rolls`);
        }
    });

    it("rolls helm-operator when its chart repositories change, which it reads through a subPath mount", async () => {
        const withWorkflow = await sharedRun();
        const without = await runProgram({ config: { workflowEnabled: "false" } });
        assert.notEqual(podAnnotations(without, "staging-helm-operator-deployment"), podAnnotations(withWorkflow, "staging-helm-operator-deployment"));
        assert.equal(podAnnotations(without, "staging-tiller-deploy"), podAnnotations(withWorkflow, "staging-tiller-deploy"));
    });
});
