import { parseStrict } from "../scripts/cliArgs";
import { checkBackupCopy, checkVolumeSnapshots, DEFAULT_BACKUP_AGE_MINUTES } from "./backups";
import { CHECKS, CheckId, CheckResult, formatResult, jsonReport } from "./checks";
import * as k8s from "@kubernetes/client-node";
import { checkRevisions, clusterChecks, IssuedCertificate, kubeConfig, listCertificates } from "./cluster";
import { checkKubernetesApi, ClusterCredential, clusterCredential, credentialSeconds, digitalOceanToken } from "./credential";
import { checkDnsDrift, dnsMovesOnlyAtUp } from "./dnsDrift";
import { CONTROLLER_HOST, frontDoorChecks, resolvePlatform } from "./network";
import { liveNodes } from "./nodes";
import { readOutputs, StackOutputs } from "./outputs";
import { checkPush, DOCKERFILE_SAMPLE_APP, SAMPLE_APP } from "./push";

/** helm-operator compares every release each 3 minutes (fluxcd/helm-operator v1.4.4 `--charts-sync-interval`). */
export const DEFAULT_WATCH_MINUTES = 4;
/** Let's Encrypt's "New Certificates per Registered Domain" limit, per 7 days (letsencrypt.org/docs/rate-limits). */
export const LETS_ENCRYPT_WEEKLY_LIMIT = 50;
/** Let's Encrypt's production intermediates carry this organisation; the staging ones "(STAGING) Let's Encrypt". */
export const PRODUCTION_ISSUER = "Let's Encrypt";
const PUSH_DEADLINE_MINUTES = 15;

const OPTIONS = {
    stack: { type: "string" },
    outputs: { type: "string" },
    watch: { type: "string" },
    retry: { type: "string" },
    push: { type: "boolean" },
    "push-app": { type: "string" },
    "push-name": { type: "string" },
    "dns-server": { type: "string", multiple: true },
    skip: { type: "string", multiple: true },
    "backup-age": { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
} as const;

export const HELP = `npm run verify [-- OPTIONS]

Checks a live stack end to end: what the article set out to build, on the cluster as it runs now.
Reads the stack's outputs with \`pulumi stack output --json --show-secrets\` (kubeconfig, nodes,
platform domain, Tiller's CA, Workflow's admin) and prints one line per check, ✔ or ✖, with what
was seen and, on failure, where to look. It reaches the cluster with a fresh credential from
DigitalOcean's API when it has a token (DIGITALOCEAN_TOKEN or DIGITALOCEAN_ACCESS_TOKEN, else the
stack's digitalocean:token), else with the kubeconfig output, which lasts 7 days after a pulumi up.
Every check is bounded in time; the exit status is 1 when any fails, 2 when verify cannot run. It
runs the Pulumi CLI without a terminal: with the local backend (pulumi login --local) or another
passphrase backend, export PULUMI_CONFIG_PASSPHRASE first.

Options:
  --stack NAME        the stack to verify (default: the selected one)
  --outputs FILE      read the outputs from FILE, which holds secrets: (umask 077; pulumi stack
                      output --json --show-secrets > FILE)
  --watch MINUTES     how long to sample release revisions and DNS against the nodes, 0 to skip
                      (default ${DEFAULT_WATCH_MINUTES}: more than helm-operator's 3-minute compare); the other
                      checks run meanwhile
  --retry MINUTES     run failed checks again every 30 s for up to MINUTES (default 0): right
                      after a pulumi up, certificates and pods take a few minutes
  --push              also deploy a throwaway app by git push (needs git, ssh-keygen), remove it.
                      Each run's new app gets a new production certificate from Let's Encrypt,
                      which allows ${LETS_ENCRYPT_WEEKLY_LIMIT} a week per registered domain (counted in the evidence)
  --push-app DIR      the app --push deploys (default: verify/sample-app, for Python's
                      buildpack, and verify/sample-dockerfile-app, a Dockerfile build)
  --push-name NAME    push to the app NAME instead, created once and kept: its certificate is
                      issued once and reused by every later run
  --dns-server HOST   a resolver to ask instead of the system's, repeatable (ns1.digitalocean.com
                      skips every cache)
  --skip CHECK        leave a check out, repeatable: ssh-banner from outside builderSshSources
  --backup-age MINUTES  the oldest the newest off-cluster copy may be (default ${DEFAULT_BACKUP_AGE_MINUTES})
  --json              print a JSON report instead (for CI)
  -h, --help          this help

Checks:
${Object.entries(CHECKS)
    .map(([id, check]) => `  ${id.padEnd(22)}${wrap(check.proves, 76).join(`\n${" ".repeat(24)}`)}`)
    .join("\n")}
`;

/** Words in lines of at most `width` characters, so the help reads in a terminal without scrolling sideways. */
function wrap(text: string, width: number): string[] {
    const lines: string[] = [];
    for (const word of text.split(" ")) {
        const last = lines.length - 1;
        if (last >= 0 && lines[last].length + 1 + word.length <= width) {
            lines[last] += ` ${word}`;
        } else {
            lines.push(word);
        }
    }
    return lines;
}

export interface Options {
    stack?: string;
    outputs?: string;
    watchMinutes: number;
    retryMinutes: number;
    push: boolean;
    pushApp: string;
    /** The fixed app --push reuses (--push-name), instead of a new one each run. */
    pushName?: string;
    dnsServers: string[];
    /** Checks not to run, such as ssh-banner from a machine outside hephy-doks:builderSshSources. */
    skip: CheckId[];
    /** The oldest the newest off-cluster copy may be, in minutes. */
    backupAgeMinutes: number;
    json: boolean;
    help: boolean;
}

export class UsageError extends Error {}

export function parseOptions(argv: readonly string[]): Options {
    let values;
    try {
        values = parseStrict("verify", argv, OPTIONS);
    } catch (error) {
        throw new UsageError(`${(error as Error).message}; see npm run verify -- --help`);
    }
    const minutes = (option: "watch" | "retry", fallback: number) => {
        const text = values[option] ?? String(fallback);
        if (!/^\d+(\.\d+)?$/.test(text) || Number(text) > 60) {
            throw new UsageError(`--${option} must be a number of minutes from 0 to 60, got "${text}"`);
        }
        return Number(text);
    };
    const watchMinutes = minutes("watch", DEFAULT_WATCH_MINUTES);
    const retryMinutes = minutes("retry", 0);
    const skip = values.skip ?? [];
    const pushName = values["push-name"];
    // teamhephy/controller rootfs/api/models/app.py `validate_app_id`.
    if (pushName !== undefined && !/^[a-z]([a-z0-9-]*[a-z0-9])?$/.test(pushName)) {
        throw new UsageError(`--push-name must be a Workflow app name (a-z first, then a-z, 0-9 and hyphens, not ending in one), got "${pushName}"`);
    }
    const backupAge = values["backup-age"] ?? String(DEFAULT_BACKUP_AGE_MINUTES);
    if (!/^\d+$/.test(backupAge) || Number(backupAge) < 1 || Number(backupAge) > 10080) {
        throw new UsageError(`--backup-age must be a whole number of minutes from 1 to 10080 (a week), got "${backupAge}"`);
    }
    const unknown = skip.filter((id) => !(id in CHECKS));
    if (unknown.length > 0) {
        throw new UsageError(`--skip takes a check's name (${Object.keys(CHECKS).join(", ")}), got "${unknown.join('", "')}"`);
    }
    return {
        stack: values.stack,
        outputs: values.outputs,
        watchMinutes,
        retryMinutes,
        push: values.push ?? false,
        pushApp: values["push-app"] ?? SAMPLE_APP,
        pushName,
        dnsServers: values["dns-server"] ?? [],
        skip: skip as CheckId[],
        backupAgeMinutes: Number(backupAge),
        json: values.json ?? false,
        help: values.help ?? false,
    };
}

/** Where verify finds a stack's front door; the tests move it to loopback. */
export interface Reach {
    ports: { http: number; https: number; ssh: number };
    /** CA certificates to trust instead of Node's bundle. */
    ca?: readonly string[];
    /** Between two runs of the failed checks (--retry). */
    retryPauseMs: number;
}

const LIVE: Reach = { ports: { http: 80, https: 443, ssh: 2222 }, retryPauseMs: 30_000 };

/** The most certificate hosts whose challenge path is probed on each node. */
const MAX_CHALLENGED_HOSTS = 5;

/**
 * Every check the options ask for, on a stack's outputs, all bounded; the result lines in a stable
 * order. The cluster is reached with `credential` (the stack's kubeconfig output when none is given);
 * its live nodes are the ones probed and held against DNS, and its Certificates name the hosts whose
 * challenge path is probed. When the API refuses the credential, that one failure stands for the
 * checks that need it. The revision window and --push start once the other checks pass (or --retry
 * gives up), so an upgrade the last pulumi up started is not counted as a new revision.
 */
export async function verify(outputs: StackOutputs, options: Options, reach: Reach = LIVE, credential?: ClusterCredential): Promise<CheckResult[]> {
    const workflow = outputs.controllerUrl !== undefined;
    const wanted = (results: CheckResult[]) => results.filter((r) => !options.skip.includes(r.id));
    const access = credential ?? (await clusterCredential(outputs, undefined));
    let config: k8s.KubeConfig | undefined;
    let certificates: IssuedCertificate[] = [];
    const once = async () => {
        const api = await checkKubernetesApi(access, options.stack);
        config = api.config;
        certificates = config ? await listCertificates(config).catch(() => []) : [];
        const controllerHost = `${CONTROLLER_HOST}.${outputs.platformDomain}`;
        const issuedHosts = certificates.flatMap((c) => c.dnsNames).filter((name) => !name.startsWith("*."));
        const certificateHosts = [...new Set([...(workflow ? [controllerHost] : []), ...issuedHosts.sort()])].slice(0, MAX_CHALLENGED_HOSTS);
        const liveAddresses = api.nodes?.filter((n) => n.ready && n.address).map((n) => n.address!) ?? [];
        const results = await Promise.all([
            frontDoorChecks({
                platformDomain: outputs.platformDomain,
                nodeIps: liveAddresses.length > 0 ? liveAddresses : outputs.nodeIps,
                liveNodes: api.nodes,
                certificateHosts,
                workflow,
                ports: reach.ports,
                ca: reach.ca,
                dnsServers: options.dnsServers,
                productionIssuer: PRODUCTION_ISSUER,
            }),
            config
                ? clusterChecks({
                      kubeconfig: access.kubeconfig,
                      tillerCaCertPem: outputs.tillerCaCertPem,
                      exposedServices: outputs.exposedServices,
                      workflow,
                  })
                : [],
            config && outputs.backupBucket ? checkBackupCopy(config, outputs.backupBucket, options.backupAgeMinutes) : [],
            config && outputs.volumeSnapshotsKept ? checkVolumeSnapshots(config) : [],
        ]);
        return wanted([api.result, ...results.flat()]);
    };
    const settled = await retried(once, options.retryMinutes * 60_000, reach.retryPauseMs);
    const later = await Promise.all([
        options.watchMinutes > 0 && config ? checkRevisions(config, options.watchMinutes) : undefined,
        options.watchMinutes > 0 && config ? watchDns(config, outputs, options) : undefined,
        ...(options.push ? pushedApps(options).map((app) => pushCheck(outputs, app, certificates)) : []),
    ]);
    const order = Object.keys(CHECKS) as CheckId[];
    const results = wanted([...settled, ...later.filter((r): r is CheckResult => r !== undefined)]);
    return results.sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
}

/** The dns check, repeated through the --watch window against the nodes as they are at each sample. */
function watchDns(config: k8s.KubeConfig, outputs: StackOutputs, options: Options): Promise<CheckResult> {
    const sample = async () => {
        const [{ found }, nodes] = await Promise.all([resolvePlatform(outputs.platformDomain, options.dnsServers), liveNodes(config)]);
        return { answers: found, nodes };
    };
    return checkDnsDrift(sample, { minutes: options.watchMinutes, followsNodes: outputs.dnsFollowsNodes });
}

/**
 * What a --push run costs in certificates: none when it reuses an app, else one new production
 * certificate, counted with those this cluster's cert-manager issued in the last 7 days (other stacks
 * and users of the same registered domain count too).
 */
export function certificateNote(platformDomain: string, certificates: readonly IssuedCertificate[], now = Date.now()) {
    return (app: string, existed: boolean): string => {
        if (existed) {
            return `${app}.${platformDomain} keeps its certificate`;
        }
        const week = certificates.filter((c) => c.notBefore && now - Date.parse(c.notBefore) < 7 * 86_400_000).length;
        return `a new production certificate for ${app}.${platformDomain}: ${week + 1} of the ${LETS_ENCRYPT_WEEKLY_LIMIT} a week Let's Encrypt allows the registered domain, counting this cluster's of the last 7 days (--push-name reuses one)`;
    };
}

/**
 * The apps --push deploys: the one --push-app names, or by default the buildpack sample and, beside it,
 * the Dockerfile sample (under --push-name, as NAME-dockerfile).
 */
export function pushedApps(options: Options): { appDir: string; name?: string }[] {
    const first = { appDir: options.pushApp, name: options.pushName };
    if (options.pushApp !== SAMPLE_APP) {
        return [first];
    }
    return [first, { appDir: DOCKERFILE_SAMPLE_APP, name: options.pushName === undefined ? undefined : `${options.pushName}-dockerfile` }];
}

function pushCheck(outputs: StackOutputs, push: { appDir: string; name?: string }, certificates: readonly IssuedCertificate[]): Promise<CheckResult> {
    if (!outputs.controllerUrl || !outputs.builderSsh || !outputs.workflowAdminUsername || !outputs.workflowAdminPassword) {
        return Promise.resolve({
            id: "push",
            target: "",
            ok: false,
            evidence: "the stack has no Workflow admin in its outputs (Workflow off, or a chart of your own)",
        });
    }
    const builder = outputs.builderSsh.replace(/\/$/, "");
    return checkPush({
        controllerUrl: outputs.controllerUrl,
        username: outputs.workflowAdminUsername,
        password: outputs.workflowAdminPassword,
        remote: (app) => `${builder}/${app}.git`,
        // Over HTTPS, so the app's certificate (the route reconciler's, from letsencrypt-prod) must be valid.
        appUrl: (app) => `https://${app}.${outputs.platformDomain}/`,
        appDir: push.appDir,
        app: push.name,
        certificateNote: certificateNote(outputs.platformDomain, certificates),
        deadlineMs: PUSH_DEADLINE_MINUTES * 60_000,
        pollMs: 10_000,
    });
}

/** Runs the checks until none fails or `forMs` has passed, pausing between runs; the last run's results. */
export async function retried(run: () => Promise<CheckResult[]>, forMs: number, pauseMs: number): Promise<CheckResult[]> {
    const deadline = Date.now() + forMs;
    let results = await run();
    while (results.some((r) => !r.ok) && Date.now() + pauseMs < deadline) {
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
        results = await run();
    }
    return results;
}

/** The command: returns its exit status (0 all passed, 1 a check failed, 2 it could not run). */
export async function main(
    argv: readonly string[],
    out: (text: string) => void = console.log,
    reach: Reach = LIVE,
    env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
    let options: Options;
    try {
        options = parseOptions(argv);
    } catch (error) {
        out(`verify: ${(error as Error).message}`);
        return 2;
    }
    if (options.help) {
        out(HELP);
        return 0;
    }
    let outputs: StackOutputs;
    try {
        outputs = await readOutputs({ stack: options.stack, file: options.outputs });
    } catch (error) {
        out(`verify: ${(error as Error).message}`);
        return 2;
    }
    try {
        kubeConfig(outputs.kubeconfig);
    } catch {
        // Its text is not repeated: it holds the cluster's credential.
        out("verify: the stack's kubeconfig output cannot be read as a kubeconfig (run pulumi up, which renews it)");
        return 2;
    }
    if (!options.json) {
        out(
            `Verifying ${outputs.platformDomain} (${outputs.nodeIps.length} nodes)${options.watchMinutes > 0 ? `, sampling release revisions and DNS for ${options.watchMinutes} min` : ", release revisions and DNS drift not sampled (--watch 0)"}`,
        );
        if (!outputs.dnsFollowsNodes) {
            out(dnsMovesOnlyAtUp(outputs.platformDomain));
        }
    }
    const token = await digitalOceanToken(env, { name: options.stack, viaCli: options.outputs === undefined });
    const credential = await clusterCredential(outputs, token, env.DIGITALOCEAN_API_URL || undefined, credentialSeconds(options));
    const results = await verify(outputs, options, reach, credential);
    out(options.json ? jsonReport(results) : results.map(formatResult).join("\n"));
    const failed = results.filter((r) => !r.ok).length;
    if (!options.json) {
        out(failed === 0 ? `All ${results.length} checks passed.` : `${failed} of ${results.length} checks failed.`);
    }
    return failed === 0 ? 0 : 1;
}

if (require.main === module) {
    // Some sockets (a port-forward's WebSocket) may outlive their check: the process ends once the
    // report is written out (a pipe may take it asynchronously), with the report's status.
    main(process.argv.slice(2))
        .catch((error: Error) => {
            console.error(`verify: ${error.message.split("\n")[0]}`);
            return 2;
        })
        .then((status) => process.stdout.write("", () => process.exit(status)));
}
