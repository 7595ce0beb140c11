// ESLint's flat config: typescript-eslint's recommended rules, and the project's layers as rules.
import tseslint from "typescript-eslint";
import importX, { createNodeResolver } from "eslint-plugin-import-x";
import prettier from "eslint-config-prettier";

const testCode = { group: ["**/test/**", "./test", "../test"], message: "test/ serves the specs only; shared offline code lives in offline/." };

export default tseslint.config(
    { ignores: ["node_modules/**", "plan/**", "bin/**", "charts/**", "offline/charts/**"] },
    ...tseslint.configs.recommended,
    prettier,
    {
        files: ["**/*.ts"],
        plugins: { "import-x": importX },
        settings: {
            "import-x/resolver-next": [createNodeResolver({ extensions: [".ts", ".js", ".json"] })],
            // How the circle check reads the modules an import leads to.
            "import-x/parsers": { "@typescript-eslint/parser": [".ts"] },
            "import-x/extensions": [".ts", ".js"],
        },
        rules: {
            "import-x/no-cycle": ["error", { ignoreExternal: true }],
            "max-len": ["error", { code: 160, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true }],
            "no-restricted-imports": ["error", { patterns: [testCode] }],
        },
    },
    {
        files: ["components/**/*.ts"],
        rules: {
            "no-restricted-imports": [
                "error",
                {
                    patterns: [
                        testCode,
                        { group: ["../config", "../catalog", "../kubernetesVersion", "../preflight", "../vpc", "../workflowAccess", "../index"], message: "Components take typed args: shared types are in types.ts." },
                    ],
                },
            ],
        },
    },
    {
        files: ["**/*.ts"],
        rules: { "@typescript-eslint/no-unused-vars": ["error", { ignoreRestSiblings: true }] },
    },
    {
        // The offline engine records provider inputs, and specs walk them and parsed YAML by the shape they
        // assert: their values are typed by those assertions, not by a declaration.
        files: ["offline/**/*.ts", "test/**/*.ts"],
        rules: { "@typescript-eslint/no-explicit-any": "off" },
    },
    {
        files: ["test/**/*.ts"],
        rules: { "no-restricted-imports": "off" },
    },
);
