import * as assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { PolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import * as analyzerRpc from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import * as analyzerProto from "@pulumi/pulumi/proto/analyzer_pb";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import {
    TYPES,
    builderSshClosed,
    builderSshClosedWhenProtected,
    helmOperatorVerifiesTiller,
    noExposedServices,
    noExposedServiceValues,
    policies,
    tillerVerifiesTls,
    worldOpenRules,
} from "../policy/policies";
import { plain, programError, Recorded, ROOT, runProgram, sharedRun } from "../offline/harness";
import { ALLOW_UNSAFE_ANNOTATION } from "../types";

/** A resource as the policy engine hands it to a policy: type, props, options. */
function resource(type: string, props: Record<string, any>, protect = false, name = "r"): PolicyResource & ResourceValidationArgs {
    const unused = (): never => {
        throw new Error("not used by these policies");
    };
    return {
        type,
        props,
        name,
        urn: `urn:pulumi:test::hephy-doks::${type}::${name}`,
        opts: {
            protect,
            ignoreChanges: [],
            aliases: [],
            customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
            additionalSecretOutputs: [],
        },
        stackTags: new Map(),
        isType: unused,
        asType: unused,
        getConfig: unused,
        notApplicable: unused,
        propertyDependencies: {},
        dependencies: [],
    } as unknown as PolicyResource & ResourceValidationArgs;
}

/** The messages a policy reports for one resource, or for a whole stack. */
async function violations(
    policy: ResourceValidationPolicy | StackValidationPolicy,
    input: ReturnType<typeof resource> | ReturnType<typeof resource>[],
): Promise<string[]> {
    const messages: string[] = [];
    const report = (message: string) => messages.push(message);
    if ("validateStack" in policy) {
        const resources = Array.isArray(input) ? input : [input];
        await policy.validateStack(
            { resources, stackTags: new Map(), getConfig: () => ({}), notApplicable: () => assert.fail("unexpected") } as unknown as StackValidationArgs,
            report,
        );
    } else {
        for (const validate of [policy.validateResource ?? []].flat()) {
            await validate(input as ResourceValidationArgs, report);
        }
    }
    return messages;
}

function deployment(containers: Record<string, any>[]) {
    return resource(TYPES.deployment, { metadata: { namespace: "kube-system", name: "d" }, spec: { template: { spec: { containers } } } });
}

const TILLER = { name: "tiller", image: "ghcr.io/helm/tiller:v2.17.0" };
const OPERATOR = { name: "flux-helm-operator", image: "docker.io/fluxcd/helm-operator:1.4.4" };
const VERIFYING_OPERATOR_ARGS = [
    "--enabled-helm-versions=v2,v3",
    "--tiller-tls-enable=true",
    "--tiller-tls-verify=true",
    "--tiller-tls-ca-cert-path=/etc/fluxd/helm-ca/ca.crt",
];

function firewall(sources: string[], portRange = "2222") {
    return resource(
        TYPES.firewall,
        {
            inboundRules: [
                { protocol: "tcp", portRange: "443", sourceAddresses: ["0.0.0.0/0"] },
                { protocol: "tcp", portRange, sourceAddresses: sources },
            ],
        },
        false,
        "workers",
    );
}

const cluster = (protect: boolean) => resource(TYPES.cluster, { region: "fra1" }, protect, "cluster");

describe("policy: no-loadbalancer-or-nodeport-services", () => {
    it("rejects a Service of type LoadBalancer or NodePort and passes the other types", async () => {
        const lb = resource(TYPES.service, { metadata: { namespace: "deis", name: "deis-builder" }, spec: { type: "LoadBalancer" } });
        assert.deepEqual(await violations(noExposedServices, lb), [
            "Service deis/deis-builder is of type LoadBalancer, which would create a billed DigitalOcean load balancer; use ClusterIP and reach it through the ingress controller",
        ]);
        const nodePort = resource(TYPES.service, { metadata: { namespace: "haproxy-ingress", name: "ingress" }, spec: { type: "NodePort" } });
        assert.deepEqual(await violations(noExposedServices, nodePort), [
            "Service haproxy-ingress/ingress is of type NodePort, which opens a port on every node, and DigitalOcean's managed firewall opens it to the internet; use ClusterIP and reach it through the ingress controller",
        ]);
        for (const type of ["ClusterIP", "ExternalName", undefined]) {
            assert.deepEqual(await violations(noExposedServices, resource(TYPES.service, { spec: { type } })), [], String(type));
        }
        assert.equal(
            (await violations(noExposedServices, resource(TYPES.servicePatch, { metadata: { name: "x" }, spec: { type: "NodePort" } }))).length,
            1,
            "a patch that makes a Service a NodePort",
        );
        assert.deepEqual(await violations(noExposedServices, resource(TYPES.deployment, { spec: { type: "LoadBalancer" } })), []);
    });
});

describe("policy: tiller-tls-verify", () => {
    it("rejects a Tiller without TILLER_TLS_VERIFY=1, whatever else it sets", async () => {
        assert.match(
            (await violations(tillerVerifiesTls, deployment([{ ...TILLER, env: [{ name: "TILLER_TLS_ENABLE", value: "1" }] }])))[0],
            /must set TILLER_TLS_VERIFY=1, found it unset/,
        );
        assert.match((await violations(tillerVerifiesTls, deployment([{ ...TILLER, env: [{ name: "TILLER_TLS_VERIFY", value: "" }] }])))[0], /found ""/);
    });

    it("passes a verifying Tiller and ignores other containers", async () => {
        assert.deepEqual(await violations(tillerVerifiesTls, deployment([{ ...TILLER, env: [{ name: "TILLER_TLS_VERIFY", value: "1" }] }])), []);
        assert.deepEqual(await violations(tillerVerifiesTls, deployment([{ name: "nginx", image: "nginx:1.27" }])), []);
    });
});

describe("policy: helm-operator-verifies-tiller", () => {
    it("rejects an operator that talks to Tiller without verifying it, naming what is missing", async () => {
        const [message] = await violations(
            helmOperatorVerifiesTiller,
            deployment([{ ...OPERATOR, args: ["--enabled-helm-versions=v2,v3", "--tiller-tls-enable=true"] }]),
        );
        assert.match(message, /must verify Tiller's TLS certificate; missing: --tiller-tls-verify, --tiller-tls-ca-cert-path=<path of the Tiller CA>$/);
        assert.equal(
            (await violations(helmOperatorVerifiesTiller, deployment([{ ...OPERATOR, args: VERIFYING_OPERATOR_ARGS.filter((a) => !a.includes("enable")) }])))
                .length,
            1,
        );
    });

    it("passes a verifying operator, and one with Helm 2 (so Tiller) disabled", async () => {
        assert.deepEqual(await violations(helmOperatorVerifiesTiller, deployment([{ ...OPERATOR, args: VERIFYING_OPERATOR_ARGS }])), []);
        assert.deepEqual(await violations(helmOperatorVerifiesTiller, deployment([{ ...OPERATOR, args: ["--enabled-helm-versions=v3"] }])), []);
    });
});

describe("policy: no-loadbalancer-or-nodeport-helm-values", () => {
    const release = (values: unknown, annotations?: Record<string, string>) =>
        resource(TYPES.helmRelease, { metadata: { namespace: "haproxy-ingress", name: "ingress", annotations }, spec: { values } });

    it("rejects a HelmRelease whose values ask for a LoadBalancer or a NodePort, in an object or in YAML text", async () => {
        assert.deepEqual(await violations(noExposedServiceValues, release({ controller: { service: { type: "LoadBalancer" } } })), [
            "HelmRelease haproxy-ingress/ingress asks for a LoadBalancer Service at spec.values.controller.service.type; use ClusterIP and reach it through the ingress controller",
        ]);
        assert.deepEqual(
            await violations(
                noExposedServiceValues,
                release({ controller: { service: { type: "NodePort" } }, extra: "kind: Service\nspec:\n  type: LoadBalancer\n" }),
            ),
            [
                "HelmRelease haproxy-ingress/ingress asks for a NodePort Service at spec.values.controller.service.type, a LoadBalancer Service at spec.values.extra; use ClusterIP and reach it through the ingress controller",
            ],
        );
        assert.deepEqual(await violations(noExposedServiceValues, release({ controller: { service: { type: "ClusterIP" } } })), []);
    });

    it("passes a release whose override allows it, as the program marks it", async () => {
        assert.deepEqual(
            await violations(noExposedServiceValues, release({ controller: { service: { type: "NodePort" } } }, { [ALLOW_UNSAFE_ANNOTATION]: "true" })),
            [],
        );
        assert.equal(
            (await violations(noExposedServiceValues, release({ controller: { service: { type: "NodePort" } } }, { [ALLOW_UNSAFE_ANNOTATION]: "yes" }))).length,
            1,
        );
    });
});

describe("policy: builder SSH in protected and unprotected stacks", () => {
    it("finds rules that open a port to the world, ranges and IPv6 included", () => {
        assert.deepEqual(worldOpenRules(firewall(["::/0"], "2000-3000").props, 2222), ["all of IPv6 on tcp 2000-3000 from ::/0"]);
        assert.deepEqual(worldOpenRules(firewall(["0.0.0.0/0"], "all").props, 2222), ["all of IPv4 on tcp all from 0.0.0.0/0"]);
        assert.deepEqual(worldOpenRules(firewall(["203.0.113.0/24"]).props, 2222), []);
        assert.deepEqual(worldOpenRules(firewall(["0.0.0.0/0"], "22").props, 2222), []);
    });

    it("adds up the sources of every rule that opens the port, however they split the address space", () => {
        assert.deepEqual(worldOpenRules(firewall(["0.0.0.0/1", "128.0.0.0/1"]).props, 2222), ["all of IPv4 on tcp 2222 from 0.0.0.0/1, 128.0.0.0/1"]);
        const split = resource(TYPES.firewall, {
            inboundRules: [
                { protocol: "tcp", portRange: "2222", sourceAddresses: ["0.0.0.0/1"] },
                { protocol: "tcp", portRange: "2000-3000", sourceAddresses: ["128.0.0.0/1"] },
                { protocol: "udp", portRange: "2222", sourceAddresses: ["::/0"] },
            ],
        });
        assert.deepEqual(worldOpenRules(split.props, 2222), ["all of IPv4 on tcp 2222, 2000-3000 from 0.0.0.0/1, 128.0.0.0/1"]);
        assert.deepEqual(worldOpenRules(firewall(["0.0.0.0/1", "128.0.0.0/2"]).props, 2222), [], "a quarter of IPv4 is missing");
    });

    it("is mandatory in a stack that protects its cluster, and silent there once 2222 is restricted", async () => {
        const [message] = await violations(builderSshClosedWhenProtected, [cluster(true), firewall(["0.0.0.0/0", "::/0"])]);
        assert.match(
            message,
            /^Firewall workers opens the builder's SSH port 2222 to the whole internet \(all of IPv4 on tcp 2222 from 0\.0\.0\.0\/0, ::\/0, all of IPv6 on tcp 2222 from 0\.0\.0\.0\/0, ::\/0\) in a protected stack; restrict it with: pulumi config set --path 'hephy-doks:builderSshSources\[0\]' <your CIDR>/,
        );
        assert.deepEqual(await violations(builderSshClosedWhenProtected, [cluster(true), firewall(["203.0.113.0/24"])]), []);
        assert.deepEqual(await violations(builderSshClosedWhenProtected, [cluster(false), firewall(["0.0.0.0/0"])]), []);
        assert.equal(builderSshClosedWhenProtected.enforcementLevel, "mandatory");
    });

    it("is advice only in an unprotected stack", async () => {
        assert.equal((await violations(builderSshClosed, [cluster(false), firewall(["0.0.0.0/0"])])).length, 1);
        assert.deepEqual(await violations(builderSshClosed, [cluster(true), firewall(["0.0.0.0/0"])]), []);
        assert.equal(builderSshClosed.enforcementLevel, "advisory");
    });
});

/** Runs every policy over what the program declares, as `pulumi preview --policy-pack policy` would. */
async function policyReport(recorded: Recorded[]): Promise<Record<string, string[]>> {
    const resources = recorded.filter((r) => r.custom).map((r) => resource(r.type, plain(r.inputs), r.protect, r.name));
    const report: Record<string, string[]> = {};
    for (const policy of policies) {
        const found = "validateStack" in policy ? await violations(policy, resources) : (await Promise.all(resources.map((r) => violations(policy, r)))).flat();
        if (found.length > 0) {
            report[policy.name] = found;
        }
    }
    return report;
}

describe("the program under its policy pack", () => {
    it("passes every mandatory policy; the default world-open 2222 only draws the advisory", async () => {
        const run = await sharedRun();
        assert.ok(run.ofType(TYPES.deployment).length >= 2, "Tiller and helm-operator are among the checked resources");
        assert.deepEqual(Object.keys(await policyReport(run.resources)), ["builder-ssh-not-world-open"]);
    });

    it("passes every policy in a protected stack whose 2222 is restricted, and fails one whose 2222 is world-open", async () => {
        const restricted = await runProgram({ config: { protect: "true", builderSshSources: '["81.2.69.0/24"]' } });
        assert.deepEqual(await policyReport(restricted.resources), {});
        // The config refuses the same stack before any resource; the pack is the second line, for a
        // program changed to protect its cluster without that check.
        const { error, declared } = await programError({ config: { protect: "true" } });
        assert.match(error.message, /hephy-doks:builderSshSources opens the builder's SSH port 2222 to all of IPv4 and IPv6/);
        assert.deepEqual(declared, []);
        const open = (await sharedRun()).resources.map((r) => (r.type === TYPES.cluster ? { ...r, protect: true } : r));
        assert.deepEqual(Object.keys(await policyReport(open)), ["builder-ssh-not-world-open-in-protected-stacks"]);
    });
});

describe("the policy pack as the Pulumi CLI runs it", function () {
    this.timeout(30000);
    let pack: ChildProcess;
    let client: analyzerRpc.AnalyzerClient;

    before(async () => {
        // What the CLI's nodejs policy runner does: load policy/index.ts from policy/ and read the port it prints.
        pack = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "index.ts"], {
            cwd: path.join(ROOT, "policy"),
            stdio: ["ignore", "pipe", "inherit"],
        });
        const port = await new Promise<string>((resolve, reject) => {
            pack.stdout!.once("data", (chunk: Buffer) => resolve(chunk.toString().trim()));
            pack.once("exit", (code) => reject(new Error(`policy pack exited with ${code}`)));
        });
        client = new analyzerRpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    });

    after(() => {
        client?.close();
        pack?.kill();
    });

    it("serves every policy with its enforcement level", async () => {
        const info = await new Promise<analyzerProto.AnalyzerInfo>((resolve, reject) =>
            client.getAnalyzerInfo(new Empty(), (err, res) => (err ? reject(err) : resolve(res!))),
        );
        const levels = { [analyzerProto.EnforcementLevel.ADVISORY]: "advisory", [analyzerProto.EnforcementLevel.MANDATORY]: "mandatory" } as Record<
            number,
            string
        >;
        assert.equal(info.getName(), "hephy-doks");
        assert.deepEqual(
            Object.fromEntries(info.getPoliciesList().map((p) => [p.getName(), levels[p.getEnforcementlevel()]])),
            Object.fromEntries(policies.map((p) => [p.name, p.enforcementLevel])),
        );
    });

    it("reports a LoadBalancer Service as a mandatory violation", async () => {
        const request = new analyzerProto.AnalyzeRequest()
            .setType(TYPES.service)
            .setName("stray")
            .setUrn(`urn:pulumi:staging::hephy-doks::${TYPES.service}::stray`)
            .setOptions(new analyzerProto.AnalyzerResourceOptions())
            .setProperties(
                Struct.fromJavaScript({ apiVersion: "v1", kind: "Service", metadata: { namespace: "default", name: "stray" }, spec: { type: "LoadBalancer" } }),
            );
        const response = await new Promise<analyzerProto.AnalyzeResponse>((resolve, reject) =>
            client.analyze(request, (err, res) => (err ? reject(err) : resolve(res!))),
        );
        assert.deepEqual(
            response.getDiagnosticsList().map((d) => [d.getPolicyname(), d.getEnforcementlevel()]),
            [["no-loadbalancer-or-nodeport-services", analyzerProto.EnforcementLevel.MANDATORY]],
        );
    });
});
