/** Prices: what a stack costs a month. Changes when DigitalOcean's prices do. */

/**
 * Monthly list prices in USD. Worker nodes are billed at droplet prices and the HA control plane at a
 * flat rate (https://docs.digitalocean.com/products/kubernetes/details/pricing/). Droplet prices are
 * DigitalOcean's `GET /v2/sizes` `price_monthly`, as recorded daily in
 * sergeykuzmich/terraform-digitalocean-variables `do_sizes.tf` (commit 97e31f6, 2026-08-21), unchanged
 * since DigitalOcean's repricing of 2022-07-01. To use another size, add its `price_monthly` here.
 */
export const PRICES = {
    asOf: "2026-08-21",
    haControlPlaneUsd: 40,
    /** Block storage volumes, per GiB a month (https://docs.digitalocean.com/products/volumes/details/pricing/). */
    volumeUsdPerGib: 0.1,
    /**
     * Spaces: one subscription per account, with 250 GiB of storage and 1 TiB of transfer, whatever the
     * number of buckets (https://docs.digitalocean.com/products/spaces/details/pricing/).
     */
    spacesUsd: 5,
    /** Volume snapshots, per GiB of snapshot a month (https://docs.digitalocean.com/products/volumes/details/pricing/). */
    snapshotUsdPerGib: 0.06,
    nodeUsd: {
        "s-1vcpu-2gb": 12,
        "s-2vcpu-2gb": 18,
        "s-2vcpu-4gb": 24,
        "s-4vcpu-8gb": 48,
        "s-8vcpu-16gb": 96,
        "s-2vcpu-4gb-amd": 28,
        "s-4vcpu-8gb-amd": 56,
        "s-2vcpu-4gb-intel": 28,
        "g-2vcpu-8gb": 63,
        "g-4vcpu-16gb": 126,
        "c-2": 42,
        "c-4": 84,
        "m-2vcpu-16gb": 84,
    } as Readonly<Record<string, number>>,
} as const;

/** What a stack costs a month at list prices. */
export interface CostEstimate {
    readonly monthlyUsd: number;
    /** One line that shows the arithmetic and the date of the prices. */
    readonly summary: string;
}

/** A dollar amount as a price list shows it: whole dollars bare, cents when there are any. */
function usd(amount: number): string {
    return Number.isInteger(amount) ? String(amount) : amount.toFixed(2);
}

/** What a stack's monthly cost depends on. */
export interface CostInputs {
    readonly nodeSize: string;
    readonly nodeCount: number;
    readonly haControlPlane: boolean;
    /** Size of the volume the program claims for Workflow, 0 when it claims none. */
    readonly workflowVolumeGib: number;
    /** Whether the stack keeps an off-cluster copy in Spaces. */
    readonly spacesBackup?: boolean;
    /** Snapshots kept of Workflow's volume, 0 for none. */
    readonly snapshotsKept?: number;
}

/**
 * The monthly cost of what the program creates: the nodes, the HA control plane if on, Workflow's
 * volume if it claims one, and no load balancer (the program creates none and its admission policy
 * refuses them). Bandwidth overage and volumes that apps claim are usage-based and not included; DNS
 * records are free.
 */
export function estimateMonthlyCost(inputs: CostInputs): CostEstimate {
    const nodeUsd = PRICES.nodeUsd[inputs.nodeSize];
    const haUsd = inputs.haControlPlane ? PRICES.haControlPlaneUsd : 0;
    const volumeCost = (gib: number) => Math.round(gib * PRICES.volumeUsdPerGib * 100) / 100;
    const volumeLine = (what: string, gib: number) => (gib > 0 ? `${what} ${gib} GiB at $${usd(PRICES.volumeUsdPerGib)}/GiB $${usd(volumeCost(gib))}, ` : "");
    const volumeUsd = volumeCost(inputs.workflowVolumeGib);
    const spacesUsd = inputs.spacesBackup ? PRICES.spacesUsd : 0;
    // At most: a snapshot is billed for the data it holds, never more than its volume's size.
    const snapshotGib = (inputs.snapshotsKept ?? 0) * inputs.workflowVolumeGib;
    const snapshotUsd = Math.round(snapshotGib * PRICES.snapshotUsdPerGib * 100) / 100;
    const monthlyUsd = Math.round((inputs.nodeCount * nodeUsd + haUsd + volumeUsd + spacesUsd + snapshotUsd) * 100) / 100;
    const volume = volumeLine("Workflow volume", inputs.workflowVolumeGib);
    // The subscription is the account's: a second stack's bucket adds nothing until 250 GiB.
    const spaces = inputs.spacesBackup ? `Spaces backup bucket $${usd(spacesUsd)} (the account's subscription, 250 GiB included), ` : "";
    const snapshots =
        snapshotGib > 0
            ? `${inputs.snapshotsKept} snapshots of the Workflow volume, at most ${snapshotGib} GiB at $${usd(PRICES.snapshotUsdPerGib)}/GiB $${usd(snapshotUsd)}, `
            : "";
    return {
        monthlyUsd,
        summary:
            `$${usd(monthlyUsd)}/month: ${inputs.nodeCount} x ${inputs.nodeSize} at $${nodeUsd}, HA control plane $${haUsd}, ${volume}${spaces}${snapshots}` +
            `0 LoadBalancers $0 (DigitalOcean list prices of ${PRICES.asOf}; bandwidth overage and apps' own volumes not included)`,
    };
}
