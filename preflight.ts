import * as digitalocean from "@pulumi/digitalocean";
import { concerns, PROJECT, StackConfig } from "./config";
import { PRICES } from "./pricing";

/**
 * What the DigitalOcean account must have before the program declares anything: the zone the platform's
 * names go into, a region that is open for new resources, and the node size there. A wrong value would
 * otherwise cost a cluster's creation, then fail. Each problem names the key, the value, what the
 * account has and the fix; a key whose value the config already refused is not looked up.
 */
export async function accountProblems(config: Pick<StackConfig, "domain" | "region" | "nodeSize">, known: readonly string[]): Promise<string[]> {
    const problems: string[] = [];
    if (!concerns(known, "domain")) {
        const zone = await digitalocean.getDomain({ name: config.domain }).catch(() => undefined);
        if (zone === undefined) {
            const zones = await digitalocean
                .getDomains({})
                .then((r) => r.domains.map((d) => d.name))
                .catch(() => [] as string[]);
            problems.push(
                `${PROJECT}:domain ${config.domain} is not a DNS zone of this DigitalOcean account (its zones: ${zones.join(", ") || "none"}): ` +
                    `add it (doctl compute domain create ${config.domain}) and point the domain's NS records at ns1, ns2 and ns3.digitalocean.com, ` +
                    `or name one of those (pulumi config set ${PROJECT}:domain <zone>)`,
            );
        }
    }
    if (!concerns(known, "region")) {
        const region = await digitalocean.getRegion({ slug: config.region }).catch(() => undefined);
        if (region === undefined || !region.available) {
            const open = await digitalocean
                .getRegions({ filters: [{ key: "available", values: ["true"] }] })
                .then((r) => r.regions.map((g) => g.slug).sort())
                .catch(() => [] as string[]);
            problems.push(
                `${PROJECT}:region ${config.region} is ${region === undefined ? "no region of DigitalOcean's" : "closed to new resources"} ` +
                    `(open regions: ${open.join(", ") || "unknown"}) (pulumi config set ${PROJECT}:region ${open[0] ?? "fra1"})`,
            );
        } else if (!concerns(known, "nodeSize") && !region.sizes.includes(config.nodeSize)) {
            const offered = region.sizes.filter((size) => Object.hasOwn(PRICES.nodeUsd, size));
            problems.push(
                `${PROJECT}:nodeSize ${config.nodeSize} is not offered in ${config.region} (sizes there with a price here: ${offered.join(", ") || "none"}) ` +
                    `(pulumi config set ${PROJECT}:nodeSize ${offered[0] ?? "<size>"})`,
            );
        }
    }
    return problems;
}
