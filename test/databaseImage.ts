import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT } from "../offline/harness";

/**
 * The database image's first start as the tests run it: teamhephy/postgres v2.7.6's docker-entrypoint.sh
 * sources every script of docker-entrypoint-initdb.d in name order under `set -e`, then execs the real
 * server, with which recovery ends. Background jobs the scripts started get a few seconds (until a base
 * backup is logged), then end with the entrypoint. Stand-ins append to `$LOG`; `$STATE` is scratch.
 */
export const DATABASE_ENTRYPOINT = [
    "set -e",
    'for f in "$@"; do . "$f"; done',
    'echo "entrypoint: init complete" >> "$LOG"',
    'rm -f "$PGDATA/recovery.conf"; touch "$STATE/server-up"; echo "entrypoint: server started" >> "$LOG"',
    'for i in $(seq 1 200); do grep -q "^do_backup$" "$LOG" && break; /bin/sleep 0.05; done',
    "kill $(jobs -p) 2>/dev/null || true",
].join("\n");

/** The chart's guards among the image's first-start scripts (charts/hephy-workflow files/database). */
const GUARDS = path.join(ROOT, "charts", "hephy-workflow", "files", "database");

/**
 * Writes the entrypoint and `models` of the image's scripts into `dir`, and gives the scripts the
 * entrypoint sources, in its order: the models and the chart's real guards, sorted by name together
 * (001_setup_envdir.sh, which writes WAL-E's environment, is left out).
 */
export function firstStart(dir: string, models: Record<string, string>): { entrypoint: string; scripts: string[] } {
    const entrypoint = path.join(dir, "entrypoint.sh");
    fs.writeFileSync(entrypoint, DATABASE_ENTRYPOINT);
    for (const [name, text] of Object.entries(models)) {
        fs.writeFileSync(path.join(dir, name), text);
    }
    const guards = fs.readdirSync(GUARDS).filter((f) => f.endsWith(".sh"));
    const scripts = [...Object.keys(models), ...guards].sort().map((name) => (name in models ? path.join(dir, name) : path.join(GUARDS, name)));
    return { entrypoint, scripts };
}
