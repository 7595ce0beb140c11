import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "./config";
import { RunningCluster } from "./kubernetesVersion";

/**
 * Where the stack's cluster goes: a new one into a VPC of the stack's own; a running one stays where it
 * is, since a cluster cannot move between VPCs (a new `vpcUuid` replaces it): one made in the region's
 * default VPC by an earlier version of this program stays there, with a warning. A protected stack
 * refuses a new range for its own VPC, which would replace the VPC and the cluster; a region without a
 * default VPC is refused, as the stack's would become it.
 */
export function chooseVpc(args: {
    stack: string;
    region: string;
    /** Whether the region already has its default VPC (a new cluster's own VPC must not become it). */
    regionHasDefaultVpc: boolean;
    running: RunningCluster | undefined;
    name: string;
    ipRange: string | undefined;
    protect: boolean;
}): { name: string; ipRange: string | undefined } | undefined {
    const own = { name: args.name, ipRange: args.ipRange };
    if (args.running === undefined) {
        if (!args.regionHasDefaultVpc) {
            // DigitalOcean makes the first VPC of a region its default, which can never be deleted.
            throw new ConfigError(args.stack, [
                `hephy-doks:region ${args.region} has no default VPC yet, so the stack's would become it, and no teardown could delete it; ` +
                    `make one first (doctl vpcs create --name default-${args.region} --region ${args.region}), then run again`,
            ]);
        }
        return own;
    }
    const current = args.running.vpc;
    if (current === undefined || current.name !== args.name) {
        pulumi.log.warn(
            `the cluster runs in ${current ? `the VPC ${current.name} (${current.ipRange})` : "a VPC that cannot be read"}, not in a VPC of this stack's own (${args.name}); ` +
                "it stays there, as moving it would replace it. Droplets of one VPC reach each other on every port: docs/operations.md says how to move to a VPC of the stack's own",
        );
        return undefined;
    }
    if (args.ipRange !== undefined && args.ipRange !== current.ipRange) {
        const change = `hephy-doks:vpcIpRange ${args.ipRange} differs from the range of the stack's VPC, ${current.ipRange}: it replaces the VPC and with it the cluster`;
        if (args.protect) {
            throw new ConfigError(args.stack, [`${change}, which a protected stack refuses (pulumi config set hephy-doks:vpcIpRange ${current.ipRange})`]);
        }
        pulumi.log.warn(`${change}, and everything on it`);
    }
    return own;
}

/** Whether a region has its default VPC, where DigitalOcean puts whatever names no VPC. */
export async function regionHasDefaultVpc(region: string): Promise<boolean> {
    try {
        await digitalocean.getVpc({ region });
        return true;
    } catch {
        return false;
    }
}
