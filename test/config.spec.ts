import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { passesDeclaredType } from "../scripts/plan";
import { ROOT } from "../offline/harness";
import { CATALOG } from "../catalog";
import { isCidr } from "../cidr";
import { checkConfig, CONFIG_KEYS, CONFIG_NAMESPACES, ConfigError, DEFAULTS, parseConfig, withStack } from "../config";
import { PRICES, estimateMonthlyCost } from "../pricing";

const REQUIRED = { domain: "hephy-demo.net", acmeEmail: "ops@hephy-demo.net" };

function parse(values: Record<string, string>, stack = "staging", present: string[] = [], secret: string[] = []) {
    return parseConfig((k) => values[k], stack, present, secret);
}

function problemsOf(values: Record<string, string>, stack = "staging", present: string[] = [], secret: string[] = []): readonly string[] {
    try {
        parse(values, stack, present, secret);
    } catch (e) {
        assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
        return e.problems;
    }
    assert.fail("expected the config to be rejected");
}

describe("parseConfig", () => {
    it("applies every default when only the required keys are set", () => {
        assert.deepEqual(parse(REQUIRED), {
            stack: "staging",
            region: "fra1",
            requestedKubernetesVersion: undefined,
            nodeSize: "s-2vcpu-4gb",
            nodeCount: 3,
            domain: "hephy-demo.net",
            platformSubdomain: "staging",
            platformDomain: "staging.hephy-demo.net",
            acmeEmail: "ops@hephy-demo.net",
            builderSshSources: ["0.0.0.0/0", "::/0"],
            protect: false,
            haControlPlane: false,
            namePrefix: "staging",
            workerTag: "hephy-doks-staging-workers",
            dnsTtlSeconds: 60,
            clusterName: "hephy-doks-staging",
            // Without dnsToken a replaced node's record moves only at pulumi up: upgrades wait for a run too.
            autoUpgrade: false,
            dnsToken: undefined,
            maintenance: { day: "sunday", startTime: "03:00" },
            tls: { keyAlgorithm: "ECDSA-P256", caValidityHours: 87600, certValidityHours: 8760, earlyRenewalHours: 720 },
            tillerHistoryMax: 10,
            workflowEnabled: true,
            workflowStorageGib: 20,
            releases: CATALOG,
            releaseSecretValues: {},
            exposedServices: [],
            vpcIpRange: undefined,
            vpcName: "hephy-doks-staging",
            backupRegion: undefined,
            volumeSnapshots: 0,
            restoreFrom: undefined,
        });
    });

    it("refuses the review's NodePort override for the ingress controller on both counts, before any resource", () => {
        const problems = problemsOf({ ...REQUIRED, releases: '{"ingress":{"values":{"controller":{"service":{"enabled":true,"type":"NodePort"}}}}}' });
        assert.deepEqual(
            problems.map((p) => p.split(". Set ")[0]),
            [
                'hephy-doks:releases.ingress.values.controller.service.type = "NodePort" opens a node port, a load balancer or the node\'s network',
                "hephy-doks:releases.ingress.values.controller.service.enabled = true gives the ingress controller a Service (a NodePort by the chart's default)",
            ],
        );
    });

    it("takes an override that opens more on purpose, and a protected stack that opens git push to a part of the internet", () => {
        const exposed = parse({
            ...REQUIRED,
            releases: '{"ingress":{"allowUnsafe":true,"values":{"controller":{"service":{"enabled":true,"type":"NodePort"}}}}}',
        });
        assert.deepEqual((exposed.releases.ingress.values as any).controller.service, { enabled: true, type: "NodePort" });
        const restricted = parse({ ...REQUIRED, protect: "true", builderSshSources: '["0.0.0.0/1","2a01:4f8::/32"]' });
        assert.deepEqual(restricted.builderSshSources, ["0.0.0.0/1", "2a01:4f8::/32"]);
        const unprotected = parse({ ...REQUIRED, builderSshSources: '["0.0.0.0/1","128.0.0.0/1"]' });
        assert.equal(unprotected.protect, false);
        const off = parse({ ...REQUIRED, protect: "true", workflowEnabled: "false" });
        assert.equal(off.workflowEnabled, false, "no port 2222 without Workflow");
    });

    it("accepts the registration modes that keep strangers out, and the bounds of the volume size", () => {
        for (const mode of ["admin_only", "disabled"]) {
            const config = parse({ ...REQUIRED, releases: JSON.stringify({ workflow: { values: { controller: { registration_mode: mode } } } }) });
            assert.equal((config.releases.workflow.values as any).controller.registration_mode, mode);
        }
        assert.equal(parse({ ...REQUIRED, workflowStorageGib: "5" }).workflowStorageGib, 5);
        assert.equal(parse({ ...REQUIRED, vpcIpRange: "192.168.64.0/24" }).vpcIpRange, "192.168.64.0/24");
        assert.equal(parse({ ...REQUIRED, workflowStorageGib: "16384" }).workflowStorageGib, 16384);
    });

    it("reads every key it is given", () => {
        const config = parse({
            ...REQUIRED,
            region: "nyc3",
            kubernetesVersion: "1.33",
            nodeSize: "s-4vcpu-8gb",
            nodeCount: "5",
            platformSubdomain: "paas",
            builderSshSources: '["81.2.69.0/24","2a01:4f8::/32"]',
            protect: "true",
        });
        assert.equal(config.region, "nyc3");
        assert.equal(config.requestedKubernetesVersion, "1.33");
        assert.equal(config.nodeSize, "s-4vcpu-8gb");
        assert.equal(config.nodeCount, 5);
        assert.equal(config.platformDomain, "paas.hephy-demo.net");
        assert.deepEqual(config.builderSshSources, ["81.2.69.0/24", "2a01:4f8::/32"]);
        assert.equal(config.protect, true);
    });

    it("accepts a full DOKS slug as the version and the bounds of nodeCount", () => {
        assert.equal(parse({ ...REQUIRED, kubernetesVersion: "1.33.1-do.0" }).requestedKubernetesVersion, "1.33.1-do.0");
        assert.equal(parse({ ...REQUIRED, nodeCount: "1" }).nodeCount, 1);
        assert.equal(parse({ ...REQUIRED, nodeCount: "50" }).nodeCount, 50);
    });

    it("makes a stack name safe for DigitalOcean names and tags", () => {
        const config = parse({ ...REQUIRED, platformSubdomain: "paas" }, "Staging_EU.1");
        assert.equal(config.namePrefix, "staging-eu-1");
        assert.equal(config.workerTag, "hephy-doks-staging-eu-1-workers");
    });

    // Each bad value is rejected with a message naming the key, echoing the value and saying what is allowed.
    const bad: [string, Record<string, string>, RegExp][] = [
        ["missing domain", { acmeEmail: "ops@hephy-demo.net" }, /^hephy-doks:domain is required: a DNS zone that already exists/],
        ["domain with a trailing dot", { ...REQUIRED, domain: "example.com." }, /^hephy-doks:domain must be a lowercase DNS name .* got "example\.com\."/],
        ["single-label domain", { ...REQUIRED, domain: "localhost" }, /^hephy-doks:domain must be .* got "localhost"/],
        ["missing acmeEmail", { domain: "hephy-demo.net" }, /^hephy-doks:acmeEmail is required/],
        ["invalid acmeEmail", { ...REQUIRED, acmeEmail: "ops-at-example.org" }, /^hephy-doks:acmeEmail must be an email address, got "ops-at-example\.org"/],
        ["nodeCount 0", { ...REQUIRED, nodeCount: "0" }, /^hephy-doks:nodeCount must be an integer from 1 to 50, got "0"/],
        ["nodeCount 51", { ...REQUIRED, nodeCount: "51" }, /^hephy-doks:nodeCount must be an integer from 1 to 50, got "51"/],
        ["nodeCount three", { ...REQUIRED, nodeCount: "three" }, /^hephy-doks:nodeCount must be an integer from 1 to 50, got "three"/],
        ["nodeCount 2.5", { ...REQUIRED, nodeCount: "2.5" }, /^hephy-doks:nodeCount must be an integer .* got "2\.5"/],
        [
            "bad CIDR",
            { ...REQUIRED, builderSshSources: '["10.0.0.0/33"]' },
            /^hephy-doks:builderSshSources\[0\] must be an IPv4 or IPv6 network in CIDR notation, .* got "10\.0\.0\.0\/33" \(pulumi config set --stack staging --path 'hephy-doks:builderSshSources\[0\]' <your network, as a CIDR>\)$/,
        ],
        [
            "an address without prefix, second in the list",
            { ...REQUIRED, builderSshSources: '["81.2.69.0/24","81.2.70.7"]' },
            /^hephy-doks:builderSshSources\[1\] must be .* got "81\.2\.70\.7" \(pulumi config set --stack staging --path 'hephy-doks:builderSshSources\[1\]' 81\.2\.70\.7\/32\)$/,
        ],
        [
            "a documentation range as the only source",
            { ...REQUIRED, builderSshSources: '["203.0.113.0/24"]' },
            /^hephy-doks:builderSshSources\[0\] "203\.0\.113\.0\/24" lies in 203\.0\.113\.0\/24, a range kept for documentation \(RFC 5737, RFC 3849\), no one's network: the firewall would let no git push in \(pulumi config set --stack staging --path 'hephy-doks:builderSshSources\[0\]' <your network, as a CIDR>\)$/,
        ],
        [
            "an IPv6 documentation range",
            { ...REQUIRED, builderSshSources: '["0.0.0.0/0","2001:db8:1::/48"]' },
            /^hephy-doks:builderSshSources\[1\] "2001:db8:1::\/48" lies in 2001:db8::\/32/,
        ],
        [
            "CIDR list not JSON",
            { ...REQUIRED, builderSshSources: "10.0.0.0/8" },
            /^hephy-doks:builderSshSources must be a non-empty list of CIDRs, got "10\.0\.0\.0\/8" \(pulumi config rm --stack staging hephy-doks:builderSshSources && pulumi config set --stack staging --path 'hephy-doks:builderSshSources\[0\]' 10\.0\.0\.0\/8\)$/,
        ],
        ["empty CIDR list", { ...REQUIRED, builderSshSources: "[]" }, /^hephy-doks:builderSshSources must be a non-empty list/],
        ["bad region", { ...REQUIRED, region: "Frankfurt" }, /^hephy-doks:region must be a DigitalOcean region slug .* got "Frankfurt"/],
        [
            "a size without a known price",
            { ...REQUIRED, nodeSize: "s-16vcpu-64gb" },
            /^hephy-doks:nodeSize must be a droplet size whose price the program knows, got "s-16vcpu-64gb"; known sizes: s-1vcpu-2gb, s-2vcpu-2gb, s-2vcpu-4gb, .*m-2vcpu-16gb \(pulumi config set --stack staging hephy-doks:nodeSize s-2vcpu-4gb\)\. For another size, add its price_monthly .* to PRICES\.nodeUsd in pricing\.ts$/,
        ],
        ["bad haControlPlane", { ...REQUIRED, haControlPlane: "on" }, /^hephy-doks:haControlPlane must be true or false, got "on"/],
        ["bad subdomain label", { ...REQUIRED, platformSubdomain: "my.paas" }, /^hephy-doks:platformSubdomain must be one DNS label .* got "my\.paas"/],
        ["bad kubernetesVersion", { ...REQUIRED, kubernetesVersion: "v1.33" }, /^hephy-doks:kubernetesVersion must be "latest", .* got "v1\.33"/],
        [
            "a patch without DigitalOcean's revision",
            { ...REQUIRED, kubernetesVersion: "1.35.3" },
            /^hephy-doks:kubernetesVersion must be "latest", a minor version such as 1\.33, or a DOKS slug such as 1\.33\.1-do\.0, got "1\.35\.3"/,
        ],
        ["bad protect", { ...REQUIRED, protect: "maybe" }, /^hephy-doks:protect must be true or false, got "maybe" .*hephy-doks:protect false\)$/],
        [
            "unknown key algorithm",
            { ...REQUIRED, tlsKeyAlgorithm: "DSA-1024" },
            /^hephy-doks:tlsKeyAlgorithm must be one of ECDSA-P256, ECDSA-P384, RSA-2048, RSA-4096, got "DSA-1024"/,
        ],
        ["zero CA validity", { ...REQUIRED, tlsCaValidityHours: "0" }, /^hephy-doks:tlsCaValidityHours must be an integer from 1 to 876600, got "0"/],
        [
            "negative certificate validity",
            { ...REQUIRED, tlsCertValidityHours: "-5" },
            /^hephy-doks:tlsCertValidityHours must be an integer from 1 to 876600, got "-5"/,
        ],
        [
            "certificate outliving its CA",
            { ...REQUIRED, tlsCaValidityHours: "100", tlsCertValidityHours: "200", tlsEarlyRenewalHours: "10" },
            /^hephy-doks:tlsCertValidityHours \(200\) must not exceed hephy-doks:tlsCaValidityHours \(100\)/,
        ],
        [
            "renewal window as long as the validity",
            { ...REQUIRED, tlsCertValidityHours: "720", tlsEarlyRenewalHours: "720" },
            /^hephy-doks:tlsEarlyRenewalHours \(720\) must be less than hephy-doks:tlsCertValidityHours \(720\)/,
        ],
        [
            "a version range for a release",
            { ...REQUIRED, releases: '{"ingress": {"version": "^1.52.0", "kubernetes": {"min": "1.33", "max": "1.36"}}}' },
            /^hephy-doks:releases\.ingress\.version must be one exact chart version .* got "\^1\.52\.0"/,
        ],
        [
            "a chart change without its Kubernetes range",
            { ...REQUIRED, releases: '{"workflow": {"git": "https://github.com/you/workflow", "ref": "v2.24.0", "path": "charts/workflow"}}' },
            /^hephy-doks:releases\.workflow\.kubernetes is required when the chart changes/,
        ],
        [
            "an unknown release",
            { ...REQUIRED, releases: '{"traefik": {}}' },
            /^hephy-doks:releases has no release "traefik"; releases: ingress, certManager, workflow$/,
        ],
        [
            "the retired ingress-nginx release",
            { ...REQUIRED, releases: '{"nginx": {"version": "4.15.1"}}' },
            /^hephy-doks:releases has no release "nginx"; releases: ingress, certManager, workflow\. The retired ingress-nginx is no longer installed: the front door is releases\.ingress/,
        ],
        [
            "releases that are not JSON",
            { ...REQUIRED, releases: "workflow=v2.24.0" },
            /^hephy-doks:releases must be a JSON object keyed by ingress, certManager, workflow, got "workflow=v2\.24\.0"/,
        ],
        [
            "ingress-nginx as the ingress release",
            {
                ...REQUIRED,
                releases:
                    '{"ingress": {"repository": "https://kubernetes.github.io/ingress-nginx", "name": "ingress-nginx", "version": "4.15.1", "kubernetes": {"min": "1.31", "max": "1.35"}}}',
            },
            /^hephy-doks:releases\.ingress points at ingress-nginx, which is not selectable: SIG Network retired it/,
        ],
        [
            "a bad helmVersion",
            { ...REQUIRED, releases: '{"ingress": {"helmVersion": "v4"}}' },
            /^hephy-doks:releases\.ingress\.helmVersion must be v2 or v3, got "v4"/,
        ],
        [
            "an inverted Kubernetes range",
            { ...REQUIRED, releases: '{"ingress": {"kubernetes": {"min": "1.36", "max": "1.31"}}}' },
            /^hephy-doks:releases\.ingress\.kubernetes must be \{"min": "1\.x", "max": "1\.y"\} with min <= max/,
        ],
        ["bad workflowEnabled", { ...REQUIRED, workflowEnabled: "no" }, /^hephy-doks:workflowEnabled must be true or false, got "no"/],
        [
            "a maintenance day DigitalOcean does not know",
            { ...REQUIRED, maintenanceDay: "weekend" },
            /^hephy-doks:maintenanceDay must be one of any, monday, .* got "weekend"/,
        ],
        [
            "a maintenance time that is not HH:MM",
            { ...REQUIRED, maintenanceStartTime: "3am" },
            /^hephy-doks:maintenanceStartTime must be a UTC time of day as HH:MM, .* got "3am"/,
        ],
        ["bad autoUpgrade", { ...REQUIRED, autoUpgrade: "sometimes" }, /^hephy-doks:autoUpgrade must be true or false, got "sometimes"/],
        [
            "a DNS token that is no DigitalOcean personal access token, not shown",
            { ...REQUIRED, dnsToken: "hunter2-secret" },
            /^hephy-doks:dnsToken must be a DigitalOcean personal access token \(dop_v1_ and 64 hex digits\) with the domain:read, domain:create, domain:update and domain:delete scopes only \(its value is not shown: it is a secret\) \(pulumi config set --stack staging --secret hephy-doks:dnsToken <token>\)$/,
        ],
        [
            "secret values that are not JSON",
            { ...REQUIRED, releaseSecretValues: "password=hunter2" },
            /^hephy-doks:releaseSecretValues must be a JSON object keyed by ingress, certManager, workflow \(its value is not shown: it is a secret\)/,
        ],
        [
            "secret values for an unknown release",
            { ...REQUIRED, releaseSecretValues: '{"minio": {"key": "x"}}' },
            /^hephy-doks:releaseSecretValues has no release "minio"/,
        ],
        [
            "secret values that are not an object",
            { ...REQUIRED, releaseSecretValues: '{"workflow": "hunter2"}' },
            /^hephy-doks:releaseSecretValues\.workflow must be an object of Helm values \(its value is not shown/,
        ],
        ["unbounded Tiller history", { ...REQUIRED, tillerHistoryMax: "0" }, /^hephy-doks:tillerHistoryMax must be an integer from 1 to 1000, got "0"/],
        [
            "a volume below minio's floor",
            { ...REQUIRED, workflowStorageGib: "4" },
            /^hephy-doks:workflowStorageGib must be an integer from 5 to 16384, got "4" \(pulumi config set --stack staging hephy-doks:workflowStorageGib 20\)/,
        ],
        [
            "a volume above DigitalOcean's largest",
            { ...REQUIRED, workflowStorageGib: "16385" },
            /^hephy-doks:workflowStorageGib must be an integer from 5 to 16384, got "16385"/,
        ],
        [
            "a volume size in other units",
            { ...REQUIRED, workflowStorageGib: "10Gi" },
            /^hephy-doks:workflowStorageGib must be an integer from 5 to 16384, got "10Gi"/,
        ],
        [
            "a release named after Object.prototype",
            { ...REQUIRED, releases: '{"constructor": {"version": "1.0.0"}}' },
            /^hephy-doks:releases has no release "constructor"; releases: ingress, certManager, workflow$/,
        ],
        ["a release named __proto__", { ...REQUIRED, releases: '{"__proto__": {"version": "1.0.0"}}' }, /^hephy-doks:releases has no release "__proto__"/],
        [
            "secret values for hasOwnProperty",
            { ...REQUIRED, releaseSecretValues: '{"hasOwnProperty": {"a": "hunter2"}}' },
            /^hephy-doks:releaseSecretValues has no release "hasOwnProperty"/,
        ],
        [
            "a key algorithm named after Object.prototype",
            { ...REQUIRED, tlsKeyAlgorithm: "constructor" },
            /^hephy-doks:tlsKeyAlgorithm must be one of ECDSA-P256, ECDSA-P384, RSA-2048, RSA-4096, got "constructor"/,
        ],
        [
            "__proto__ inside values",
            { ...REQUIRED, releases: '{"workflow": {"values": {"controller": {"__proto__": {"image": "evil"}}}}}' },
            /^hephy-doks:releases\.workflow\.values\.controller\.__proto__ is not a Helm value this program can pass on/,
        ],
        [
            "__proto__ inside secret values",
            { ...REQUIRED, releaseSecretValues: '{"workflow": {"__proto__": {"x": "hunter2"}}}' },
            /^hephy-doks:releaseSecretValues\.workflow\.__proto__ is not a Helm value/,
        ],
        [
            "a NodePort for the ingress controller",
            { ...REQUIRED, releases: '{"ingress":{"values":{"controller":{"service":{"type":"NodePort"}}}}}' },
            /^hephy-doks:releases\.ingress\.values\.controller\.service\.type = "NodePort" opens a node port, a load balancer or the node's network\. Set hephy-doks:releases\.ingress\.allowUnsafe to true only if you mean it/,
        ],
        [
            "the ingress controller's port",
            { ...REQUIRED, releases: '{"ingress":{"values":{"controller":{"containerPort":{"admin":6060}}}}}' },
            /^hephy-doks:releases\.ingress\.values\.controller\.containerPort\.admin = 6060 opens the controller's port on every node/,
        ],
        [
            "ingress arguments without --controller-port=0",
            { ...REQUIRED, releases: '{"ingress":{"values":{"controller":{"extraArgs":["--log=debug"]}}}}' },
            /^hephy-doks:releases\.ingress\.values\.controller\.extraArgs replaces the program's arguments without --controller-port=0/,
        ],
        [
            "host ports for a Workflow component",
            { ...REQUIRED, releases: '{"workflow":{"values":{"builder":{"hostPort":2222}}}}' },
            /^hephy-doks:releases\.workflow\.values\.builder\.hostPort = 2222 opens a node port/,
        ],
        [
            "a host-network Workflow component",
            { ...REQUIRED, releases: '{"workflow":{"values":{"controller":{"hostNetwork":true}}}}' },
            /^hephy-doks:releases\.workflow\.values\.controller\.hostNetwork = true opens/,
        ],
        [
            "a chart repository over plain HTTP",
            {
                ...REQUIRED,
                releases:
                    '{"certManager":{"repository":"http://charts.example.org","name":"cert-manager","version":"v1.21.1","kubernetes":{"min":"1.33","max":"1.36"}}}',
            },
            /^hephy-doks:releases\.certManager\.repository is a plain transport \("http:\/\/charts\.example\.org"\)/,
        ],
        [
            "the ingress controller's Service switched on by a string",
            { ...REQUIRED, releases: '{"ingress":{"values":{"controller":{"service":{"enabled":"true"}}}}}' },
            /^hephy-doks:releases\.ingress\.values\.controller\.service\.enabled = true gives the ingress controller a Service/,
        ],
        [
            "a git source over git://",
            {
                ...REQUIRED,
                releases: '{"workflow":{"git":"git://example.net/workflow","ref":"v1","path":"charts/workflow","kubernetes":{"min":"1.33","max":"1.36"}}}',
            },
            /^hephy-doks:releases\.workflow\.git is a plain transport \("git:\/\/example\.net\/workflow"\)/,
        ],
        [
            "another ServiceAccount for the ingress controller",
            { ...REQUIRED, releases: '{"ingress":{"values":{"serviceAccount":{"name":"other"}}}}' },
            /^hephy-doks:releases\.ingress\.values\.serviceAccount changes who the ingress controller runs as/,
        ],
        [
            "the ingress chart's RBAC switched off",
            { ...REQUIRED, releases: '{"ingress":{"values":{"rbac":{"create":false}}}}' },
            /^hephy-doks:releases\.ingress\.values\.rbac changes who the ingress controller runs as/,
        ],
        [
            "another stats rule",
            { ...REQUIRED, releases: '{"ingress":{"values":{"controller":{"config":{"stats-config-snippet":"stats auth a:b"}}}}}' },
            /^hephy-doks:releases\.ingress\.values\.controller\.config\.stats-config-snippet replaces the rule/,
        ],
        [
            "a non-boolean allowUnsafe",
            { ...REQUIRED, releases: '{"ingress":{"allowUnsafe":"yes"}}' },
            /^hephy-doks:releases\.ingress\.allowUnsafe must be true or false, got "\\"yes\\""/,
        ],
        [
            "a source CIDR with host bits",
            { ...REQUIRED, builderSshSources: '["10.0.0.1/8"]' },
            /^hephy-doks:builderSshSources\[0\] must be a network, without host bits: "10\.0\.0\.1\/8" means 10\.0\.0\.0\/8 \(or write the address as \/32 or \/128\) \(pulumi config set --stack staging --path 'hephy-doks:builderSshSources\[0\]' 10\.0\.0\.0\/8\)$/,
        ],
        [
            "an IPv6 source with host bits",
            { ...REQUIRED, builderSshSources: '["2a01:4f8::1/32"]' },
            /means 2a01:4f8::\/32 .*'hephy-doks:builderSshSources\[0\]' 2a01:4f8::\/32\)$/,
        ],
        [
            "a protected stack with git push open to all of IPv4, split in halves",
            { ...REQUIRED, protect: "true", builderSshSources: '["0.0.0.0/1","128.0.0.0/1"]' },
            /^hephy-doks:builderSshSources opens the builder's SSH port 2222 to all of IPv4 \(0\.0\.0\.0\/1, 128\.0\.0\.0\/1\) in a protected stack; list only the networks git push comes from \(pulumi config rm --stack staging hephy-doks:builderSshSources && pulumi config set --stack staging --path 'hephy-doks:builderSshSources\[0\]' <your network, as a CIDR>\)$/,
        ],
        [
            "a protected stack with the default, world-open sources",
            { ...REQUIRED, protect: "true" },
            /^hephy-doks:builderSshSources opens the builder's SSH port 2222 to all of IPv4 and IPv6 \(0\.0\.0\.0\/0, ::\/0\) in a protected stack/,
        ],
        [
            "an exposed Service without its namespace",
            { ...REQUIRED, exposedServices: '["ssh-gateway"]' },
            /^hephy-doks:exposedServices\[0\] must be namespace\/name of a Service, two DNS labels, got "ssh-gateway" \(pulumi config set --stack staging --path 'hephy-doks:exposedServices\[0\]' <namespace>\/<service>\)$/,
        ],
        [
            "exposed Services that are no list",
            { ...REQUIRED, exposedServices: "edge/ssh-gateway" },
            /^hephy-doks:exposedServices must be a list of Services as namespace\/name, got "edge\/ssh-gateway" \(pulumi config rm --stack staging hephy-doks:exposedServices && pulumi config set --stack staging --path 'hephy-doks:exposedServices\[0\]' edge\/ssh-gateway\)$/,
        ],
        [
            "a VPC range over DOKS's pod network",
            { ...REQUIRED, vpcIpRange: "10.244.0.0/20" },
            /^hephy-doks:vpcIpRange "10\.244\.0\.0\/20" overlaps 10\.244\.0\.0\/16, which DOKS's pods and services or DigitalOcean itself use \(pulumi config set --stack staging hephy-doks:vpcIpRange 10\.120\.0\.0\/20\)/,
        ],
        [
            "a public VPC range",
            { ...REQUIRED, vpcIpRange: "203.0.113.0/24" },
            /^hephy-doks:vpcIpRange must lie in 10\.0\.0\.0\/8, 172\.16\.0\.0\/12, 192\.168\.0\.0\/16 and be a \/16 to \/24, got "203\.0\.113\.0\/24"/,
        ],
        [
            "a VPC range too large",
            { ...REQUIRED, vpcIpRange: "172.16.0.0/12" },
            /^hephy-doks:vpcIpRange must lie in .* and be a \/16 to \/24, got "172\.16\.0\.0\/12"/,
        ],
        [
            "a VPC range with host bits",
            { ...REQUIRED, vpcIpRange: "10.120.0.1/20" },
            /^hephy-doks:vpcIpRange must be a network, without host bits: "10\.120\.0\.1\/20" means 10\.120\.0\.0\/20/,
        ],
        ["an IPv6 VPC range", { ...REQUIRED, vpcIpRange: "fd00::/64" }, /^hephy-doks:vpcIpRange must be an IPv4 network such as 10\.120\.0\.0\/20/],
        [
            "registration open to anyone",
            { ...REQUIRED, releases: '{"workflow": {"values": {"controller": {"registration_mode": "enabled"}}}}' },
            /^hephy-doks:releases\.workflow\.values\.controller\.registration_mode must be admin_only or disabled, got "\\"enabled\\"": "enabled" lets anyone/,
        ],
    ];
    for (const [what, values, message] of bad) {
        it(`rejects ${what}`, () => {
            const problems = problemsOf(values);
            assert.equal(problems.length, 1, problems.join("\n"));
            assert.match(problems[0], message);
            // Every problem comes with the command that fixes it, but the JSON overrides', whose fix is an edit they name.
            assert.match(problems[0], /\(pulumi config (set|rm) --stack staging |^hephy-doks:(releases|releaseSecretValues)[ .]/);
        });
    }

    it("prints, for a list key, commands the CLI accepts: one --path item each, never a JSON string", () => {
        const lists = CONFIG_KEYS.filter((k) => Array.isArray(DEFAULTS[k]));
        assert.deepEqual(lists, ["builderSshSources", "exposedServices"]);
        const texts = [
            ...bad.map(([, values]) => problemsOf(values).join("\n")),
            ...["README.md", "docs/configuration.md", "docs/operations.md", "docs/delivery.md", "docs/design.md", "docs/workflow.md", "policy/policies.ts"].map(
                (f) => fs.readFileSync(path.join(ROOT, f), "utf8"),
            ),
        ];
        const commands = texts.flatMap((t) => [...t.matchAll(/pulumi config set [^\n`)]*/g)].map((m) => m[0].replace(/ --stack \S+/, "")));
        const forLists = commands.filter((c) => lists.some((k) => c.includes(`hephy-doks:${k}`)));
        assert.ok(forLists.length >= 3, forLists.join("\n"));
        for (const command of forLists) {
            assert.match(command, /^pulumi config set --path 'hephy-doks:\w+\[[0-9]+\]' \S+/, command);
        }
        // Pulumi.yaml declares a type only for the secret keys, so the CLI passes every other value to the program.
        const declared = parseYaml(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")).config;
        const typed = Object.keys(declared).filter((k) => declared[k].type !== undefined);
        assert.deepEqual(
            typed,
            typed.filter((k) => declared[k].secret === true),
        );
        assert.ok(typed.includes("releaseSecretValues"));
        assert.equal(passesDeclaredType(declared.nodeCount, [3]), true, "a list where a number belongs reaches the program");
        assert.equal(passesDeclaredType({ type: "string" }, [3]), false, "the check can fail");
    });

    it("reports a list or a number where the other belongs with every other problem, since the CLI lets both through", () => {
        // Pulumi.yaml declares no type: the engine hands the program a stack file's list as JSON text, a number as text.
        const problems = problemsOf({ nodeCount: "[3]", protect: "0", builderSshSources: "22", domain: "hephy-demo.net" });
        assert.deepEqual(
            problems.map((p) => p.split(" ")[0]),
            ["hephy-doks:nodeCount", "hephy-doks:acmeEmail", "hephy-doks:builderSshSources", "hephy-doks:protect"],
        );
        assert.match(
            problems[0],
            /^hephy-doks:nodeCount must be an integer from 1 to 50, got "\[3\]" \(pulumi config set --stack staging hephy-doks:nodeCount 3\)$/,
        );
        assert.match(problems[3], /^hephy-doks:protect must be true or false, got "0" \(pulumi config set --stack staging hephy-doks:protect false\)$/);
        // protect: 1 means a protected stack: its fix keeps that, and what a protected stack requires comes with it.
        const meant = problemsOf({ ...REQUIRED, protect: "1" });
        assert.deepEqual(
            meant.map((p) => p.split(" ")[0]),
            ["hephy-doks:protect", "hephy-doks:builderSshSources"],
        );
        assert.match(meant[0], /^hephy-doks:protect must be true or false, got "1" \(pulumi config set --stack staging hephy-doks:protect true\)$/);
        assert.match(meant[1], /opens the builder's SSH port 2222 to all of IPv4 and IPv6 .* in a protected stack/);
        for (const [raw, value] of [
            ["YES", "true"],
            ["on", "true"],
            ["no", "false"],
            ["Off", "false"],
            ["maybe", "false"],
        ]) {
            assert.match(problemsOf({ ...REQUIRED, haControlPlane: raw })[0], new RegExp(`hephy-doks:haControlPlane ${value}\\)$`), raw);
        }
    });

    /** What a user types where a fix names a value only they know. */
    const TYPED: Record<string, string> = {
        "<your zone>": "hephy-demo.net",
        "<zone>": "hephy-demo.net",
        "<your address>": "ops@hephy-demo.net",
        "<your network, as a CIDR>": "81.2.69.0/24",
        "<namespace>/<service>": "edge/ssh-gateway",
        "<token>": `dop_v1_${"0123456789abcdef".repeat(4)}`,
        '{"workflow": {...}}': '{"workflow": {"controller": {"app_pull_policy": "Always"}}}',
    };

    /** The `pulumi config` commands of a problem's fixes, in order, each as the words a shell passes. */
    function fixesIn(problem: string): string[][] {
        return [...problem.matchAll(/\((pulumi config (?:set|rm) [^()]*)\)/g)]
            .flatMap((m) => m[1].split(" && "))
            .map((command) => (command.match(/'[^']*'|<[^>]*>\/<[^>]*>|<[^>]*>|\S+/g) ?? []).map((w) => w.replace(/^'(.*)'$/, "$1")));
    }

    /** Applies one `pulumi config set|rm` to raw values as the CLI would store them (a list as JSON text). */
    function applyFix(words: string[], values: Record<string, string>, stack: string): void {
        const [pulumi, config, verb, ...rest] = words;
        assert.deepEqual([pulumi, config], ["pulumi", "config"]);
        const positional: string[] = [];
        const flags = new Set<string>();
        for (let i = 0; i < rest.length; i++) {
            if (rest[i] === "--stack") assert.equal(rest[++i], stack, `${words.join(" ")} names the stack the run was about`);
            else if (rest[i].startsWith("--")) flags.add(rest[i]);
            else positional.push(TYPED[rest[i]] ?? rest[i]);
        }
        assert.ok(words.includes("--stack"), `${words.join(" ")} names its stack`);
        const [target, value] = positional;
        assert.ok(value === undefined || !(value.startsWith("<") || value.includes("...")), `${words.join(" ")}: a placeholder the test does not know`);
        const [, key, index] = /^(?:hephy-doks:)?([\w:-]+?)(?:\[(\d+)\])?$/.exec(target) ?? [];
        assert.ok(key, target);
        if (index !== undefined) {
            assert.ok(flags.has("--path"), `${words.join(" ")}: an item needs --path`);
            const list: string[] = values[key] === undefined ? [] : JSON.parse(values[key]);
            assert.ok(Array.isArray(list) && Number(index) <= list.length, `${words.join(" ")}: --path into ${values[key]}`);
            if (verb === "rm") list.splice(Number(index), 1);
            else list[Number(index)] = value;
            values[key] = JSON.stringify(list);
        } else if (verb === "rm") {
            delete values[key];
        } else {
            values[key] = value;
        }
    }

    it("prints, with every problem, commands that fix it: applied as printed, they pass every check", () => {
        const more: Record<string, string>[] = [
            { ...REQUIRED, nodecount: "5" },
            { ...REQUIRED, "hephydoks:nodeCount": "5" },
            { ...REQUIRED, buildersshsources: '["81.2.69.0/24","2a01:4f8::/32"]' },
            { ...REQUIRED, buildersshsources: "81.2.69.0/24" },
            { ...REQUIRED, nodeCount: "[3]", protect: "1" },
            { ...REQUIRED, protect: "yes", builderSshSources: '["81.2.69.0/24","0.0.0.0/0"]' },
            { ...REQUIRED, tlsCaValidityHours: "100", tlsCertValidityHours: "200", tlsEarlyRenewalHours: "150" },
            { ...REQUIRED, vpcIpRange: "10.244.0.1/20" },
            { ...REQUIRED, domain: "Hephy-Demo.net." },
            { ...REQUIRED, exposedServices: '["edge/ssh-gateway","ssh-gateway"]' },
            { ...REQUIRED, protect: "true", builderSshSources: '["0.0.0.0/0","::/0"]' },
            { ...REQUIRED, builderSshSources: '["81.2.69.0/24","198.51.100.0/24","81.2.70.1/24"]' },
            { domain: "example.com", acmeEmail: "ops@example.com", region: "Frankfurt", kubernetesVersion: "1.33.0", maintenanceStartTime: "3am" },
        ];
        let fixed = 0;
        for (const values of [...bad.map(([, v]) => v), ...more]) {
            const problems = problemsOf(values, "staging", Object.keys(values));
            const fixes = problems.flatMap(fixesIn);
            if (fixes.length === 0) {
                assert.match(problems.join("\n"), /^hephy-doks:(releases|releaseSecretValues)[ .]/, "only the JSON overrides' fixes are edits");
                continue;
            }
            const applied = { ...values };
            fixes.forEach((words) => applyFix(words, applied, "staging"));
            const after = checkConfig((k) => applied[k], "staging", Object.keys(applied)).problems;
            assert.deepEqual(after, [], `${JSON.stringify(values)}\n  ${problems.join("\n  ")}\nfixed as ${JSON.stringify(applied)}`);
            fixed++;
        }
        assert.ok(fixed >= 50, `${fixed} configurations fixed`);
        // The check can fail: a fix that names another index, or a value the checks refuse, leaves a problem.
        const wrongIndex: Record<string, string> = { ...REQUIRED, builderSshSources: '["81.2.69.0/24","81.2.70.7"]' };
        applyFix(fixesIn("(pulumi config set --stack staging --path 'hephy-doks:builderSshSources[0]' 81.2.70.7/32)")[0], wrongIndex, "staging");
        assert.notDeepEqual(checkConfig((k) => wrongIndex[k], "staging").problems, []);
    });

    it("names the run's stack in every command, and says the stack file is the other way", () => {
        const error = (() => {
            try {
                parse({ nodeCount: "0", domain: "hephy-demo.net" }, "pr-7", ["nodeCount", "domain"]);
            } catch (e) {
                return e as ConfigError;
            }
            assert.fail("refused");
        })();
        assert.match(error.message, /^The configuration of stack "pr-7" has 2 problem\(s\); run the command after each, or edit Pulumi\.pr-7\.yaml:\n/);
        const commands = error.problems.flatMap(fixesIn);
        assert.equal(commands.length, 2);
        commands.forEach((words) => assert.deepEqual(words.slice(0, 5), ["pulumi", "config", "set", "--stack", "pr-7"]));
        assert.equal(withStack("(pulumi config set --stack a hephy-doks:x 1)", "b"), "(pulumi config set --stack a hephy-doks:x 1)", "a named stack stays");
    });

    it("never repeats a secret value in a message", () => {
        for (const releaseSecretValues of ["password=hunter2", '{"workflow": "hunter2"}']) {
            assert.doesNotMatch(problemsOf({ ...REQUIRED, releaseSecretValues }).join("\n"), /hunter2/);
        }
    });

    it("rejects a default subdomain when the stack name is no DNS label, and says to set it", () => {
        const [problem] = problemsOf(REQUIRED, "Staging_EU");
        assert.match(
            problem,
            /^hephy-doks:platformSubdomain defaults to the stack name, and "Staging_EU" is not a DNS label.*pulumi config set --stack Staging_EU hephy-doks:platformSubdomain/,
        );
    });

    it("reports an unknown key with the one it most likely meant, and moves its value there", () => {
        const [typo] = problemsOf({ ...REQUIRED, nodecount: "5" }, "staging", ["domain", "acmeEmail", "nodecount"]);
        assert.equal(
            typo,
            "hephy-doks:nodecount is not a setting of this program; did you mean hephy-doks:nodeCount? " +
                "(pulumi config rm --stack staging hephy-doks:nodecount && pulumi config set --stack staging hephy-doks:nodeCount 5)",
        );
        const [list] = problemsOf({ ...REQUIRED, buildersshsource: '["81.2.69.0/24"]' }, "staging", ["buildersshsource"]);
        assert.match(
            list,
            /did you mean hephy-doks:builderSshSources\? \(pulumi config rm --stack staging hephy-doks:buildersshsource && pulumi config set --stack staging --path 'hephy-doks:builderSshSources\[0\]' 81\.2\.69\.0\/24\)$/,
        );
        const [secret] = problemsOf({ ...REQUIRED, releasesecretvalues: "hunter2" }, "staging", ["releasesecretvalues"], ["hephy-doks:releasesecretvalues"]);
        assert.match(
            secret,
            /\(pulumi config rm --stack staging hephy-doks:releasesecretvalues\), then set hephy-doks:releaseSecretValues again with --secret$/,
        );
        assert.doesNotMatch(secret, /hunter2/);
        const [unlike] = problemsOf(REQUIRED, "staging", ["colour"]);
        assert.match(
            unlike,
            /^hephy-doks:colour is not a setting of this program; known keys: region, kubernetesVersion, .* \(pulumi config rm --stack staging hephy-doks:colour\)$/,
        );
    });

    it("reports a namespace nothing here reads, with the key it most likely meant", () => {
        const present = [
            "domain",
            "acmeEmail",
            "hephydoks:nodeCount",
            "aws:region",
            "digitalocean:token",
            "pulumi:disable-default-providers",
            "kubernetes:context",
        ];
        const problems = problemsOf({ ...REQUIRED, "hephydoks:nodeCount": "5", "aws:region": "us-east-1" }, "staging", present);
        assert.deepEqual(problems, [
            "hephydoks:nodeCount is in the namespace hephydoks, which nothing in this program reads (it reads hephy-doks, pulumi, digitalocean, kubernetes, random, tls); " +
                "did you mean hephy-doks:nodeCount? (pulumi config rm --stack staging hephydoks:nodeCount && pulumi config set --stack staging hephy-doks:nodeCount 5)",
            "aws:region is in the namespace aws, which nothing in this program reads (it reads hephy-doks, pulumi, digitalocean, kubernetes, random, tls) " +
                "(pulumi config rm --stack staging aws:region)",
        ]);
    });

    it("reads the namespaces of the providers package.json depends on, and no other", () => {
        const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
        const providers = Object.keys(pkg.dependencies)
            .filter((d) => d.startsWith("@pulumi/") && d !== "@pulumi/pulumi")
            .map((d) => d.slice("@pulumi/".length));
        assert.deepEqual([...CONFIG_NAMESPACES].sort(), ["hephy-doks", "pulumi", ...providers].sort());
    });

    it("lists every problem at once", () => {
        const problems = problemsOf({ nodeCount: "0", region: "x" });
        assert.deepEqual(
            problems.map((p) => p.split(" ")[0]),
            ["hephy-doks:region", "hephy-doks:nodeCount", "hephy-doks:domain", "hephy-doks:acmeEmail"],
        );
        assert.throws(
            () => parse({ nodeCount: "0", region: "x" }),
            /The configuration of stack "staging" has 4 problem\(s\); run the command after each, or edit Pulumi\.staging\.yaml:\n  - hephy-doks:region/,
        );
    });

    it("recognises CIDRs of both families and refuses the rest", () => {
        for (const good of ["0.0.0.0/0", "::/0", "203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32"]) {
            assert.equal(isCidr(good), true, good);
        }
        for (const bad of ["", "/8", "300.1.1.1/8", "10.0.0.0/-1", "10.0.0.0/8/8", "2001:db8::/129", "example.com/24"]) {
            assert.equal(isCidr(bad), false, bad);
        }
    });

    it("keeps the defaults that Pulumi.yaml declares in one place", () => {
        assert.deepEqual(DEFAULTS.builderSshSources, ["0.0.0.0/0", "::/0"]);
    });
});

describe("estimateMonthlyCost", () => {
    const DEFAULT_STACK = { nodeSize: "s-2vcpu-4gb", nodeCount: 3, haControlPlane: false, workflowVolumeGib: DEFAULTS.workflowStorageGib };

    it("prices the nodes from the cited table and Workflow's volume, with no HA control plane and no load balancer by default", () => {
        assert.deepEqual(estimateMonthlyCost(DEFAULT_STACK), {
            monthlyUsd: 74,
            summary:
                "$74/month: 3 x s-2vcpu-4gb at $24, HA control plane $0, Workflow volume 20 GiB at $0.10/GiB $2, 0 LoadBalancers $0 " +
                "(DigitalOcean list prices of 2026-08-21; bandwidth overage and apps' own volumes not included)",
        });
    });

    it("prices Workflow's volume by the GiB, in cents when it comes to any, and leaves it out when there is none", () => {
        const larger = estimateMonthlyCost({ ...DEFAULT_STACK, workflowVolumeGib: 25 });
        assert.equal(larger.monthlyUsd, 74.5);
        assert.match(larger.summary, /^\$74\.50\/month: .*, Workflow volume 25 GiB at \$0\.10\/GiB \$2\.50, /);
        const none = estimateMonthlyCost({ ...DEFAULT_STACK, workflowVolumeGib: 0 });
        assert.equal(none.monthlyUsd, 72);
        assert.match(none.summary, /^\$72\/month: 3 x s-2vcpu-4gb at \$24, HA control plane \$0, 0 LoadBalancers \$0 /);
    });

    it("adds the HA control plane when it is on", () => {
        const cost = estimateMonthlyCost({ nodeSize: "g-2vcpu-8gb", nodeCount: 5, haControlPlane: true, workflowVolumeGib: 10 });
        assert.equal(cost.monthlyUsd, 5 * 63 + 40 + 1);
        assert.match(cost.summary, /^\$356\/month: 5 x g-2vcpu-8gb at \$63, HA control plane \$40,/);
    });

    it("has a positive whole-dollar price for every size it accepts, and accepts exactly those", () => {
        for (const [size, usd] of Object.entries(PRICES.nodeUsd)) {
            assert.ok(Number.isInteger(usd) && usd > 0, `${size}: ${usd}`);
            assert.equal(parse({ ...REQUIRED, nodeSize: size }).nodeSize, size);
        }
        assert.equal(PRICES.nodeUsd[DEFAULTS.nodeSize], 24);
        assert.throws(() => parse({ ...REQUIRED, nodeSize: "toString" }), /nodeSize must be a droplet size whose price the program knows, got "toString"/);
    });
});
