import { execFile } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { CheckResult, errorText, fail, pass, runCheck } from "./checks";

const run = promisify(execFile);

/** What the push check needs: the controller, an admin, and where to push and fetch. */
export interface PushTarget {
    /** `https://deis.<platform domain>`, from the stack's outputs. */
    controllerUrl: string;
    /** The stack's Workflow admin, from its outputs. */
    username: string;
    password: string;
    /** The builder's git remote of an app (`ssh://git@deis-builder.<platform domain>:2222/<app>.git` live). */
    remote(app: string): string;
    /** Where the app is served (`https://<app>.<platform domain>` live, whose certificate must be valid). */
    appUrl(app: string): string;
    /** The app to push: a directory, copied into a fresh repository. */
    appDir: string;
    /** How long the build and the first answer may take. */
    deadlineMs: number;
    /** Between two tries of the app's URL. */
    pollMs: number;
    /**
     * A fixed app to push to (--push-name): created when missing and kept afterwards, so its host's
     * certificate is issued once and reused. Without it, a new random app, removed afterwards.
     */
    app?: string;
    /** What the run costs in certificates, given the app and whether it existed before. */
    certificateNote?: (app: string, existed: boolean) => string;
}

/** The app `--push` sends unless `--push-app` names another: Python's buildpack, the standard library only. */
export const SAMPLE_APP = path.join(__dirname, "sample-app");
/** The Dockerfile app `--push` sends beside it: built by buildah in the cluster, its port read from its image. */
export const DOCKERFILE_SAMPLE_APP = path.join(__dirname, "sample-dockerfile-app");

const API_MS = 15_000;

/** Workflow's REST API (teamhephy/controller rootfs/api/urls.py, /v2/…), with the admin's token. */
class Controller {
    private token = "";
    constructor(private readonly url: string) {}

    async call(method: string, route: string, body?: unknown): Promise<unknown> {
        const response = await fetch(new URL(route, this.url), {
            method,
            headers: { "content-type": "application/json", ...(this.token ? { authorization: `token ${this.token}` } : {}) },
            body: body === undefined ? undefined : JSON.stringify(body),
            signal: AbortSignal.timeout(API_MS),
        });
        const text = await response.text();
        if (!response.ok) {
            throw new Error(`${method} ${route} → ${response.status} ${text.slice(0, 200)}`);
        }
        return text ? JSON.parse(text) : undefined;
    }

    async login(username: string, password: string): Promise<void> {
        this.token = ((await this.call("POST", "/v2/auth/login/", { username, password })) as { token: string }).token;
    }
}

/** Polls the app's URL until it answers 200 or the deadline passes; the last answer is the evidence. */
async function waitServed(url: string, deadline: number, pollMs: number): Promise<string> {
    let last = "no answer yet";
    while (Date.now() < deadline) {
        try {
            const response = await fetch(url, { signal: AbortSignal.timeout(API_MS) });
            last = `${response.status}`;
            if (response.ok) {
                return `GET ${url} → 200: ${(await response.text()).trim().slice(0, 80)}`;
            }
        } catch (error) {
            last = errorText(error);
        }
        await new Promise((r) => setTimeout(r, pollMs));
    }
    throw new Error(`${url} not served: last answer ${last}`);
}

/** A 404 is an answer (false); any other failure stays a failure. */
function notFound(error: Error): false {
    if (/ → 404 /.test(error.message)) return false;
    throw error;
}

/** Quotes a path for the shell line git runs as its SSH command. */
const quoted = (p: string) => `'${p.replace(/'/g, "'\\''")}'`;

/**
 * The seed's end-to-end run: a throwaway ed25519 key and app, a `git push`, the app served, and both
 * removed whatever happened. Every step gets what is left of one deadline, and the removal its own
 * bound after it, so the check's bound never cuts the removal short. A removal that fails is a failure
 * too, naming what was left.
 */
export function checkPush(target: PushTarget): Promise<CheckResult> {
    const app = target.app ?? `verify-${crypto.randomBytes(3).toString("hex")}`;
    return runCheck("push", app, target.deadlineMs + 8 * API_MS, async () => {
        const deadline = Date.now() + target.deadlineMs;
        const remaining = () => Math.max(1, deadline - Date.now());
        const controller = new Controller(target.controllerUrl);
        const work = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-verify-"));
        const key = path.join(work, "id_ed25519");
        const steps: string[] = [];
        let created = false;
        let keyAdded = false;
        let outcome;
        try {
            await controller.login(target.username, target.password);
            await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", app, "-f", key], { timeout: API_MS });
            await controller.call("POST", "/v2/keys/", { id: app, public: fs.readFileSync(`${key}.pub`, "utf8").trim() });
            keyAdded = true;
            // teamhephy/controller rootfs/api/urls.py `apps/(?P<id>…)/?$`: the app, 404 when there is none.
            const existed = target.app !== undefined && (await controller.call("GET", `/v2/apps/${app}/`).then(() => true, notFound));
            if (!existed) {
                await controller.call("POST", "/v2/apps/", { id: app });
                created = target.app === undefined;
            }
            // A Dockerfile at the root makes the builder build it as one (teamhephy/builder pkg/gitreceive/build_type.go).
            const kind = fs.existsSync(path.join(target.appDir, "Dockerfile")) ? " (Dockerfile build)" : "";
            steps.push(`app ${app} ${existed ? "reused" : "created"}${kind}`);
            if (target.certificateNote) steps.push(target.certificateNote(app, existed));
            const repo = path.join(work, "app");
            fs.cpSync(target.appDir, repo, { recursive: true });
            const ssh = [
                "ssh",
                "-i",
                quoted(key),
                "-o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=10",
                "-o StrictHostKeyChecking=accept-new",
                `-o UserKnownHostsFile=${quoted(path.join(work, "known_hosts"))}`,
            ];
            const git = (...args: string[]) =>
                run(
                    "git",
                    ["-C", repo, "-c", "user.name=hephy-doks verify", "-c", "user.email=verify@hephy-doks.invalid", "-c", "commit.gpgsign=false", ...args],
                    {
                        timeout: remaining(),
                        // Nothing of the user's git configuration (a signing key, a credential helper) can prompt.
                        env: {
                            ...process.env,
                            GIT_SSH_COMMAND: ssh.join(" "),
                            GIT_CONFIG_GLOBAL: "/dev/null",
                            GIT_CONFIG_NOSYSTEM: "1",
                            GIT_TERMINAL_PROMPT: "0",
                        },
                    },
                );
            await git("init", "-q");
            await git("add", "-A");
            await git("commit", "-q", "-m", "hephy-doks verify");
            // deis git:remote names the branch master; the builder builds any ref pushed (teamhephy/builder pkg/gitreceive/run.go).
            await git("push", "-q", target.remote(app), "HEAD:refs/heads/master");
            steps.push("pushed");
            steps.push(await waitServed(target.appUrl(app), deadline, target.pollMs));
            outcome = pass(steps.join(", "));
        } catch (error) {
            outcome = fail([...steps, errorText(error)].join(", "));
        } finally {
            fs.rmSync(work, { recursive: true, force: true });
        }
        const left: string[] = [];
        if (created) {
            await controller.call("DELETE", `/v2/apps/${app}/`).catch(() => left.push(`app ${app}`));
        }
        if (keyAdded) {
            // teamhephy/controller rootfs/api/urls.py `keys/(?P<id>.+)/?$`: a trailing slash would be part of the id.
            await controller.call("DELETE", `/v2/keys/${encodeURIComponent(app)}`).catch(() => left.push(`key ${app}`));
        }
        if (left.length > 0) {
            return fail(`${outcome.evidence}; left behind: ${left.join(", ")} (deis apps:destroy -a ${app}, deis keys:remove ${app})`);
        }
        return { ok: outcome.ok, evidence: `${outcome.evidence}; ${target.app ? `key removed, app ${app} kept for the next run` : "app and key removed"}` };
    });
}
