import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readOutputs } from "../verify/outputs";

/** What npm run verify says when it cannot read a stack's outputs: the cause, and what to do. */
describe("verify's outputs, when they cannot be read", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "verify-cli-"));
    const savedPath = process.env.PATH;
    afterEach(() => (process.env.PATH = savedPath));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("says to install the Pulumi CLI, with where from, when it is not on PATH", async () => {
        process.env.PATH = dir;
        await assert.rejects(
            readOutputs({ stack: "staging" }),
            /^Error: pulumi stack output --json --show-secrets --stack staging failed: the Pulumi CLI is not on PATH: install it \(https:\/\/www\.pulumi\.com\/docs\/iac\/download-install\/\)\./,
        );
    });

    it("says to export PULUMI_CONFIG_PASSPHRASE when the CLI cannot ask for it, and not otherwise", async () => {
        const pulumi = path.join(dir, "pulumi");
        const standIn = (stderr: string) => fs.writeFileSync(pulumi, `#!/bin/sh\necho '${stderr}' >&2\nexit 255\n`, { mode: 0o755 });
        process.env.PATH = `${dir}:${savedPath}`;
        // The Pulumi CLI's words when a passphrase backend's secrets are read without a terminal.
        standIn("error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables");
        await assert.rejects(
            readOutputs({}),
            /environment variables \(verify runs the CLI without a terminal, where it cannot ask for the passphrase: export PULUMI_CONFIG_PASSPHRASE first\)\. Run it/,
        );
        standIn("error: no stack named nope found");
        await assert.rejects(
            readOutputs({ stack: "nope" }),
            (error: Error) => /no stack named nope found\. Run it/.test(error.message) && !/passphrase/.test(error.message),
        );
    });
});
