import { parseArgs, ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses a command line strictly, as the commands' help says: every option known, each string option's
 * value present and given once, no positional word. A stray word gets npm's `--` hint, since
 * `npm run <command> --stack x` gives the command `x` alone.
 */
export function parseStrict<T extends Options>(command: string, args: readonly string[], options: T): ReturnType<typeof parseArgs<{ options: T }>>["values"] {
    let values: ReturnType<typeof parseArgs<{ options: T }>>["values"];
    try {
        ({ values } = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }));
    } catch (error) {
        const word = args.find((a) => !a.startsWith("-") && !args.some((b, i) => b.startsWith("--") && args[i + 1] === a));
        const hint = word !== undefined ? ` (npm passes options to the command only after --: npm run ${command} -- --stack ${word})` : "";
        throw new Error(`${(error as Error).message}${hint}`);
    }
    for (const [name, option] of Object.entries(options)) {
        const value = (values as Record<string, unknown>)[name];
        if (option.type === "string" && !option.multiple) {
            if (value !== undefined && (value === "" || (value as string).startsWith("-"))) {
                throw new Error(`--${name} needs a value, got ${JSON.stringify(value)}`);
            }
            if (args.filter((a) => a === `--${name}` || a.startsWith(`--${name}=`)).length > 1) {
                throw new Error(`--${name} is given twice`);
            }
        }
    }
    return values;
}
