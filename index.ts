import { DoksCluster, resolveKubernetesVersion } from "./components/cluster";
import { NodeDns } from "./components/dns";
import { HelmOperator } from "./components/helmOperator";
import { Tiller } from "./components/tiller";
import { TillerPki } from "./components/tillerPki";
import { FIXED, UPSTREAM, loadConfig } from "./config";

// An async program: config and the Kubernetes version are checked before any resource is declared.
export = async () => {
    const config = loadConfig();
    const kubernetesVersion = await resolveKubernetesVersion(config.kubernetesVersionPrefix);

    const cluster = new DoksCluster(config.namePrefix, {
        region: config.region,
        version: kubernetesVersion,
        nodeSize: config.nodeSize,
        nodeCount: config.nodeCount,
        workerTag: config.workerTag,
        inboundPorts: [
            { port: 80, sources: FIXED.publicSources },
            { port: 443, sources: FIXED.publicSources },
            { port: 2222, sources: config.builderSshSources },
        ],
        protect: config.protect,
    });

    const dns = new NodeDns(config.namePrefix, {
        domain: config.domain,
        recordName: `*.${config.platformSubdomain}`,
        nodeCount: config.nodeCount,
        nodes: cluster.nodes,
        ttl: config.dnsTtlSeconds,
    });

    const pki = new TillerPki(config.namePrefix, {
        ...config.tls,
        tillerDnsNames: [...UPSTREAM.tillerDnsNames],
        tillerIpAddresses: [...UPSTREAM.tillerIpAddresses],
    });

    const tiller = new Tiller(config.namePrefix, {
        provider: cluster.provider,
        image: UPSTREAM.tillerImage,
        historyMax: config.tillerHistoryMax,
        serverKeyPair: pki.tiller,
        caCertPem: pki.caCertPem,
    });

    const helmOperator = new HelmOperator(config.namePrefix, {
        provider: cluster.provider,
        image: UPSTREAM.helmOperatorImage,
        crdUrl: UPSTREAM.helmOperatorCrdUrl,
        helmVersions: ["v2", "v3"],
        clientKeyPair: pki.helmClient,
        caCertPem: pki.caCertPem,
        tillerHostname: UPSTREAM.tillerHostname,
        repositories: UPSTREAM.chartRepositories.map((r) => ({ ...r })),
        tiller: [tiller.deployment, tiller.service],
    });
    void helmOperator;

    return {
        kubeconfig: cluster.kubeconfig,
        clusterId: cluster.cluster.id,
        clusterEndpoint: cluster.cluster.endpoint,
        kubernetesVersion,
        platformDomain: config.platformDomain,
        nodeIps: dns.nodeIps,
        tillerCaCertPem: pki.caCertPem,
    };
};
