import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ChartServer, chartServerUrl } from "./components/chartServer";
import { DoksCluster } from "./components/cluster";
import { NodeDns } from "./components/dns";
import { NodeDnsReconciler } from "./components/nodeDnsReconciler";
import { HELM_OPERATOR, HelmOperator } from "./components/helmOperator";
import { Tiller } from "./components/tiller";
import { AdmissionGuards } from "./components/admissionGuards";
import { Platform } from "./components/platform";
import { TillerPki } from "./components/tillerPki";
import { UPSTREAM, certManagerCrdUrl, chartRepositories, protectedNamespaces, serviceAccountUser, workflowServiceAccounts } from "./catalog";
import { ConfigError, concerns, FIXED, PROJECT, readConfig } from "./config";
import { accountProblems, readRestoreSource, tokenProblem, tokenRefused } from "./preflight";
import { checkCompatibility, findRunningCluster, resolveKubernetesVersion, supportedByReleases } from "./kubernetesVersion";
import { chooseVpc, regionHasDefaultVpc } from "./vpc";
import { estimateMonthlyCost } from "./pricing";
import { workflowNextSteps, workflowOutputs } from "./workflowAccess";

/** The node DNS reconciler's code and the shared in-cluster Kubernetes client it imports. */
const NODE_DNS_CODE = {
    program: path.join(__dirname, "incluster", "nodedns.py"),
    kubeclient: path.join(__dirname, "charts", "hephy-workflow", "files", "lib", "kubeclient.py"),
};

// An async program: config and the Kubernetes version are checked before any resource is declared.
export = async () => {
    // Every problem at once: the config's, then what the account and DigitalOcean's offer say of it.
    const { config, problems } = readConfig();
    const running = await findRunningCluster(config.clusterName, config.workerTag).catch((error: Error) => {
        const refused = tokenProblem(error, `the droplets tagged ${config.workerTag}`, "droplet:read");
        if (refused === undefined) throw error;
        problems.push(refused);
        return undefined;
    });
    problems.push(...(await accountProblems(config, problems)));
    // Read once: the bucket's problems now, the credentials its restored database opens with later.
    const restore =
        config.restoreFrom && !concerns(problems, "restoreFrom") && !tokenRefused(problems) ? await readRestoreSource(config.restoreFrom) : undefined;
    problems.push(...(restore?.problems ?? []));
    const resolved =
        concerns(problems, "kubernetesVersion") || tokenRefused(problems)
            ? undefined
            : await resolveKubernetesVersion({
                  stack: config.stack,
                  requested: config.requestedKubernetesVersion,
                  running,
                  supported: supportedByReleases(config),
              }).catch((error: Error) => {
                  const refused = tokenProblem(error, "the Kubernetes versions DigitalOcean offers", "kubernetes:read");
                  problems.push(...(error instanceof ConfigError ? error.problems : [refused ?? error.message]));
                  return undefined;
              });
    if (problems.length > 0 || resolved === undefined) {
        throw new ConfigError(config.stack, problems);
    }
    const { version: kubernetesVersion, keepRunningVersion } = resolved;
    const vpc = chooseVpc({
        stack: config.stack,
        region: config.region,
        regionHasDefaultVpc: running !== undefined || (await regionHasDefaultVpc(config.region)),
        running,
        name: config.vpcName,
        ipRange: config.vpcIpRange,
        protect: config.protect,
    });
    checkCompatibility(config, kubernetesVersion);

    const cluster = new DoksCluster(config.namePrefix, {
        clusterName: config.clusterName,
        region: config.region,
        version: kubernetesVersion,
        keepRunningVersion,
        autoUpgrade: config.autoUpgrade,
        maintenance: config.maintenance,
        credentialRenewalHours: FIXED.credentialRenewalHours,
        nodeSize: config.nodeSize,
        nodeCount: config.nodeCount,
        haControlPlane: config.haControlPlane,
        workerTag: config.workerTag,
        inboundPorts: [
            { port: 80, sources: FIXED.publicSources },
            { port: 443, sources: FIXED.publicSources },
            // git push reaches the builder only while Workflow is installed.
            ...(config.workflowEnabled ? [{ port: UPSTREAM.builder.port, sources: config.builderSshSources }] : []),
        ],
        protect: config.protect,
        vpc,
    });

    const recordName = `*.${config.platformSubdomain}`;
    const dns = new NodeDns(config.namePrefix, {
        domain: config.domain,
        recordName,
        nodeCount: config.nodeCount,
        nodes: cluster.nodes,
        ttl: config.dnsTtlSeconds,
        declareRecords: config.dnsToken === undefined,
    });
    if (config.dnsToken === undefined) {
        pulumi.log.warn(
            `*.${config.platformDomain} moves to new nodes only at pulumi up: a node DigitalOcean replaces (an upgrade, an auto-repair) keeps a dead record until the next run. ` +
                `Give the stack a DNS-only token and the in-cluster reconciler moves it within a minute (pulumi config set --secret ${PROJECT}:dnsToken <token>; docs/operations.md, "DNS that follows the nodes")`,
        );
    }

    const pki = new TillerPki(config.namePrefix, {
        ...config.tls,
        tillerDnsNames: [...UPSTREAM.tillerDnsNames],
        tillerIpAddresses: [...UPSTREAM.tillerIpAddresses],
    });

    const operatorPods = { namespace: HELM_OPERATOR.namespace, labels: HELM_OPERATOR.labels };
    const tiller = new Tiller(config.namePrefix, {
        provider: cluster.provider,
        image: UPSTREAM.tillerImage,
        historyMax: config.tillerHistoryMax,
        serverKeyPair: pki.tiller,
        caCertPem: pki.caCertPem,
        clients: [operatorPods],
    });

    const helmOperator = new HelmOperator(config.namePrefix, {
        provider: cluster.provider,
        image: UPSTREAM.helmOperatorImage,
        crdUrl: UPSTREAM.helmOperatorCrdUrl,
        helmVersions: ["v2", "v3"],
        clientKeyPair: pki.helmClient,
        caCertPem: pki.caCertPem,
        tillerHostname: UPSTREAM.tillerHostname,
        repositories: chartRepositories(config, chartServerUrl(UPSTREAM.chartServerName, HELM_OPERATOR.namespace)),
        tiller: [tiller.deployment, tiller.service],
    });

    const platformNamespaces = protectedNamespaces(config, HELM_OPERATOR.namespace);
    const admissionGuards = new AdmissionGuards(config.namePrefix, {
        provider: cluster.provider,
        exposedServices: config.exposedServices,
        workflowUsers: workflowServiceAccounts(config.releases.workflow.namespace),
        appNamespaceLabels: UPSTREAM.workflowApps.appNamespaceLabels,
        ingressControllerUser: serviceAccountUser(config.releases.ingress.namespace, UPSTREAM.ingressServiceAccount),
        protectedNamespaces: platformNamespaces,
        workflowNamespace: config.releases.workflow.namespace,
        dockerfileBuild: { image: UPSTREAM.workflowBuildImages.dockerfileBuild, ...UPSTREAM.workflowDockerfileBuild },
        cnbBuild: UPSTREAM.workflowCnbBuild,
    });

    const workflowChart = config.releases.workflow.chart;
    const workflowChartServer =
        config.workflowEnabled && "bundled" in workflowChart
            ? new ChartServer(`${config.namePrefix}-charts`, {
                  provider: cluster.provider,
                  namespace: HELM_OPERATOR.namespace,
                  namespaceReady: [helmOperator.namespace],
                  serviceName: UPSTREAM.chartServerName,
                  chartDirectory: path.join(__dirname, workflowChart.bundled),
                  image: UPSTREAM.chartServerImage,
                  clients: [operatorPods],
              })
            : undefined;

    const platform = new Platform(config.namePrefix, {
        provider: cluster.provider,
        releases: config.releases,
        workflowEnabled: config.workflowEnabled,
        platformDomain: config.platformDomain,
        acmeEmail: config.acmeEmail,
        certManagerCrdUrl: certManagerCrdUrl(config.releases.certManager),
        operatorReady: [helmOperator.crds, helmOperator.deployment, tiller.deployment],
        admissionGuards: admissionGuards.ready,
        servedCharts: workflowChartServer ? { workflow: workflowChartServer } : {},
        historyMax: config.tillerHistoryMax,
        ingressCertificate: {
            keyAlgorithm: config.tls.keyAlgorithm,
            validityHours: config.tls.certValidityHours,
            earlyRenewalHours: config.tls.earlyRenewalHours,
        },
        secretValues: config.releaseSecretValues,
        workflowVolume: { sizeGib: config.workflowStorageGib, protect: config.protect },
        protectedNamespaces: platformNamespaces,
        workflowFacts: {
            builder: UPSTREAM.builder,
            reservedNames: UPSTREAM.workflowReservedNames,
            apps: UPSTREAM.workflowApps,
            buildImages: UPSTREAM.workflowBuildImages,
        },
        ingressServiceAccount: UPSTREAM.ingressServiceAccount,
        workflowBackup: config.backupRegion
            ? {
                  namePrefix: config.clusterName,
                  region: config.backupRegion,
                  protect: config.protect,
                  image: UPSTREAM.backupImage,
                  schedule: FIXED.backupSchedule,
                  noncurrentDays: FIXED.backupNoncurrentDays,
                  objectStore: UPSTREAM.workflowObjectStore,
                  restoreFrom: config.restoreFrom,
              }
            : undefined,
        volumeSnapshots:
            config.volumeSnapshots > 0 ? { schedule: FIXED.snapshotSchedule, keep: config.volumeSnapshots, operator: UPSTREAM.snapscheduler } : undefined,
        workflowRestore: config.restoreFrom &&
            restore?.credentials && {
                ...config.restoreFrom,
                databaseCredentials: restore.credentials,
                image: UPSTREAM.backupImage,
                databaseBucket: UPSTREAM.workflowObjectStore.databaseBucket,
            },
    });

    if (config.dnsToken !== undefined) {
        new NodeDnsReconciler(config.namePrefix, {
            provider: cluster.provider,
            namespace: config.releases.ingress.namespace,
            domain: config.domain,
            recordName,
            ttl: FIXED.nodeDnsTtlSeconds,
            ingressSelector: UPSTREAM.ingressPodLabels(config.releases.ingress.releaseName),
            ipv6: false,
            token: pulumi.secret(config.dnsToken),
            image: UPSTREAM.nodeDnsImage,
            resyncSeconds: FIXED.nodeDnsResyncSeconds,
            code: NODE_DNS_CODE,
            dependsOn: platform.helmReleases.ingress ? [platform.helmReleases.ingress] : [],
        });
    }

    const cost = estimateMonthlyCost({
        ...config,
        workflowVolumeGib: platform.workflowVolume ? config.workflowStorageGib : 0,
        spacesBackup: platform.workflowBackup !== undefined,
        snapshotsKept: platform.volumeSnapshots ? config.volumeSnapshots : 0,
    });
    return {
        kubeconfig: cluster.kubeconfig,
        clusterId: cluster.cluster.id,
        clusterEndpoint: cluster.cluster.endpoint,
        // What the cluster runs: the chosen version, or, while DigitalOcean upgrades it or this run keeps it, its own.
        kubernetesVersion: cluster.cluster.version,
        platformDomain: config.platformDomain,
        nodeIps: dns.nodeIps,
        // Who moves *.<platformDomain> to new nodes, which npm run verify reports.
        dnsFollowsNodes: config.dnsToken !== undefined,
        // Services allowed to be LoadBalancer or NodePort, which npm run verify leaves alone.
        exposedServices: config.exposedServices,
        tillerCaCertPem: pki.caCertPem,
        ...(config.workflowEnabled ? workflowOutputs(config.platformDomain) : {}),
        ...(platform.workflowAdmin ? { workflowAdminUsername: platform.workflowAdmin.username, workflowAdminPassword: platform.workflowAdmin.password } : {}),
        nextSteps: config.workflowEnabled
            ? workflowNextSteps(config.stack, config.platformDomain, platform.workflowAdmin !== undefined)
            : `Workflow is disabled (hephy-doks:workflowEnabled false): the ingress controller and cert-manager serve *.${config.platformDomain}`,
        ...(platform.workflowBackup ? { backupBucket: platform.workflowBackup.bucket.name, backupRegion: config.backupRegion } : {}),
        ...(platform.volumeSnapshots ? { volumeSnapshotsKept: config.volumeSnapshots } : {}),
        monthlyCostUsd: cost.monthlyUsd,
        monthlyCostEstimate: cost.summary,
    };
};
