import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { promisify } from "node:util";

/** The outputs of a stack that verify reads (index.ts exports them). */
export interface StackOutputs {
    platformDomain: string;
    nodeIps: string[];
    kubeconfig: string;
    tillerCaCertPem: string;
    exposedServices: string[];
    /** DigitalOcean's id of the cluster, with which verify fetches a fresh credential. */
    clusterId?: string;
    /** Present when Workflow is installed. */
    controllerUrl?: string;
    builderSsh?: string;
    workflowAdminUsername?: string;
    workflowAdminPassword?: string;
    /** Present when the stack keeps an off-cluster copy (hephy-doks:backupRegion). */
    backupBucket?: string;
    /** Present when the stack snapshots Workflow's volume (hephy-doks:volumeSnapshots). */
    volumeSnapshotsKept?: number;
    /** Whether the in-cluster reconciler moves the records with the nodes (dnsToken); false, or absent in older stacks: only pulumi up does. */
    dnsFollowsNodes: boolean;
}

const STACK_OUTPUT_MS = 60_000;

/** What `pulumi stack output --json` writes for a secret without `--show-secrets`. */
const HIDDEN_SECRET = "[secret]";

/** The command that writes a stack's outputs to FILE with their secrets, readable by its owner only. */
export const OUTPUTS_FILE_COMMAND = "(umask 077; pulumi stack output --json --show-secrets > FILE)";

/**
 * Checks the shape of parsed outputs; every missing or ill-typed output is named at once. Outputs saved
 * without --show-secrets are refused first: their kubeconfig would load as an empty one.
 */
export function parseOutputs(raw: unknown, source: string): StackOutputs {
    const o = (raw ?? {}) as Record<string, unknown>;
    const hidden = Object.keys(o).filter((key) => o[key] === HIDDEN_SECRET);
    if (hidden.length > 0) {
        throw new Error(
            `the outputs of ${source} hide their secrets (${hidden.join(", ")} read "${HIDDEN_SECRET}"): they were written without --show-secrets. Write them with ${OUTPUTS_FILE_COMMAND}`,
        );
    }
    const problems: string[] = [];
    const text = (key: string, required: boolean) => {
        if (typeof o[key] === "string" && o[key] !== "") return o[key] as string;
        if (required || o[key] !== undefined) problems.push(`${key} must be a non-empty string`);
        return undefined;
    };
    const list = (key: string, required: boolean) => {
        const value = o[key] ?? (required ? undefined : []);
        if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value as string[];
        problems.push(`${key} must be a list of strings`);
        return [];
    };
    const outputs = {
        platformDomain: text("platformDomain", true) ?? "",
        nodeIps: list("nodeIps", true),
        kubeconfig: text("kubeconfig", true) ?? "",
        tillerCaCertPem: text("tillerCaCertPem", true) ?? "",
        exposedServices: list("exposedServices", false),
        clusterId: text("clusterId", false),
        controllerUrl: text("controllerUrl", false),
        builderSsh: text("builderSsh", false),
        workflowAdminUsername: text("workflowAdminUsername", false),
        workflowAdminPassword: text("workflowAdminPassword", false),
        backupBucket: text("backupBucket", false),
        volumeSnapshotsKept: typeof o.volumeSnapshotsKept === "number" ? o.volumeSnapshotsKept : undefined,
        dnsFollowsNodes: o.dnsFollowsNodes === true,
    };
    for (const key of ["controllerUrl", "builderSsh"] as const) {
        if (outputs[key] !== undefined && !URL.canParse(outputs[key]!)) problems.push(`${key} must be a URL`);
    }
    if (outputs.nodeIps.length === 0 && problems.length === 0) {
        problems.push("nodeIps is empty");
    }
    if (problems.length > 0) {
        throw new Error(`the outputs of ${source} are not a hephy-doks stack's (run pulumi up first?): ${problems.join("; ")}`);
    }
    return outputs;
}

/** The outputs of a stack, with its secrets, from the Pulumi CLI, or from a file of `pulumi stack output --json --show-secrets`. */
export async function readOutputs(from: { stack?: string; file?: string }): Promise<StackOutputs> {
    if (from.file) {
        let text: string;
        try {
            text = fs.readFileSync(from.file, "utf8");
        } catch (error) {
            throw new Error(
                `cannot read the outputs file ${from.file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): ` +
                    `write it with (umask 077; pulumi stack output --json --show-secrets > ${from.file}), or leave out --outputs`,
            );
        }
        let raw: unknown;
        try {
            raw = JSON.parse(text);
        } catch {
            throw new Error(`the outputs file ${from.file} is not JSON: write it with pulumi stack output --json --show-secrets`);
        }
        return parseOutputs(raw, from.file);
    }
    const args = ["stack", "output", "--json", "--show-secrets", ...(from.stack ? ["--stack", from.stack] : [])];
    const { stdout } = await promisify(execFile)("pulumi", args, { timeout: STACK_OUTPUT_MS, maxBuffer: 16 * 1024 * 1024 }).catch(
        (error: { stderr?: string; message: string; code?: string }) => {
            const reason =
                error.code === "ENOENT"
                    ? "the Pulumi CLI is not on PATH: install it (https://www.pulumi.com/docs/iac/download-install/)"
                    : (error.stderr?.trim() || error.message) +
                      // The CLI runs here without a terminal, so it cannot ask for the local backend's passphrase.
                      (/passphrase/i.test(error.stderr ?? "")
                          ? " (verify runs the CLI without a terminal, where it cannot ask for the passphrase: export PULUMI_CONFIG_PASSPHRASE first)"
                          : "");
            throw new Error(
                `pulumi ${args.join(" ")} failed: ${reason}. Run it from the project's directory, logged in to the stack's backend, or pass --outputs FILE`,
            );
        },
    );
    return parseOutputs(JSON.parse(stdout), from.stack ? `stack ${from.stack}` : "the selected stack");
}
