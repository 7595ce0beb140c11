import { DoksCluster, resolveKubernetesVersion } from "./components/cluster";
import { NodeDns } from "./components/dns";
import { FIXED, loadConfig } from "./config";

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

    return {
        kubeconfig: cluster.kubeconfig,
        clusterId: cluster.cluster.id,
        clusterEndpoint: cluster.cluster.endpoint,
        kubernetesVersion,
        platformDomain: config.platformDomain,
        nodeIps: dns.nodeIps,
    };
};
