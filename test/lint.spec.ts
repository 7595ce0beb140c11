import * as assert from "node:assert/strict";
import * as path from "node:path";
import { esmImport, ROOT } from "../offline/harness";

/** The layers, as the linter holds them (eslint.config.mjs): each rule catches what it is there for. */
describe("the linter's layer rules", function () {
    this.timeout(20000);

    const lint = async (file: string, code: string): Promise<string[]> => {
        const { ESLint } = await esmImport("eslint");
        const [result] = await new ESLint({ cwd: ROOT }).lintText(code, { filePath: path.join(ROOT, file) });
        return result.messages.map((m: { ruleId: string; message: string }) => `${m.ruleId}: ${m.message.split("\n")[0]}`);
    };

    it("keeps components off config and the catalog", async () => {
        assert.deepEqual(await lint("components/probe.ts", 'import { PROJECT } from "../config";\nexport const p = PROJECT;\n'), [
            "no-restricted-imports: '../config' import is restricted from being used by a pattern. Components take typed args: shared types are in types.ts.",
        ]);
        assert.deepEqual(await lint("components/probe.ts", 'import { ReleaseKey } from "../types";\nexport type K = ReleaseKey;\n'), []);
    });

    it("keeps test/ to the specs", async () => {
        const found = await lint("scripts/probe.ts", 'import { assertions } from "../test/anything";\nexport const a = assertions;\n');
        assert.equal(found.length, 1);
        assert.match(found[0], /^no-restricted-imports: .*test\/ serves the specs only/);
    });

    it("refuses an import circle", async () => {
        // catalog.ts imports types.ts: types.ts importing the catalog back closes a circle.
        const found = await lint("types.ts", 'import { CATALOG } from "./catalog";\nexport const c = CATALOG;\n');
        assert.ok(
            found.some((m) => m.startsWith("import-x/no-cycle:")),
            found.join("\n"),
        );
    });

    it("bounds lines", async () => {
        const found = await lint("probe.ts", `export const x = ${"1 + ".repeat(50)}1;\n`);
        assert.ok(
            found.some((m) => m.startsWith("max-len:")),
            found.join("\n"),
        );
    });
});
