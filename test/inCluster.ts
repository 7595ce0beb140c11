import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT } from "../offline/harness";

/**
 * What the tests of the project's in-cluster Python programs share: where the shared Kubernetes client
 * lives, the environment that points a program at a stand-in API, and the check that a file runs on the
 * controller image's Python 3.6 with the standard library only.
 */

/** files/lib, which each program's ConfigMap mounts beside it: on PYTHONPATH here. */
export const PYTHON_LIB = path.join(ROOT, "charts", "hephy-workflow", "files", "lib");
export const KUBECLIENT = path.join(PYTHON_LIB, "kubeclient.py");

/** A program's environment, its Kubernetes API the stand-in at `port` (plain HTTP, no token unless `extra` says). */
export function inClusterEnv(port: number, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH, PYTHONPATH: PYTHON_LIB, PYTHONDONTWRITEBYTECODE: "1", KUBE_API: `http://127.0.0.1:${port}`, ...extra };
}

/** Fails unless `file` parses as Python 3.6 (the controller image's), and gives its `import x` and `from x import` modules. */
export function python36Imports(file: string): { imports: string[]; from: string[] } {
    const check = spawnSync("python3", ["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read(), feature_version=(3, 6))", file], { encoding: "utf8" });
    if (check.status !== 0) throw new Error(`${file} does not parse as Python 3.6: ${check.stderr}`);
    const text = fs.readFileSync(file, "utf8");
    return {
        imports: [...text.matchAll(/^import (\S+)$/gm)].map((m) => m[1]),
        from: [...text.matchAll(/^from (\S+) import/gm)].map((m) => m[1]),
    };
}
