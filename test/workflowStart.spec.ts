import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT } from "../offline/harness";
import { firstStart } from "./databaseImage";

/**
 * The project's start-up code in the Workflow chart, run for real (bash, python3) against stand-ins of
 * the commands the released images have: the controller's start (files/controller) and the database's
 * first-start guards (files/database).
 */

const FILES = path.join(ROOT, "charts", "hephy-workflow", "files");
const START = path.join(FILES, "controller", "start.sh");
const ENSURE_ADMIN = path.join(FILES, "controller", "ensure_admin.py");
const ENSURE_ADMIN_HARNESS = path.join(ROOT, "test", "overlay", "ensure_admin_harness.py");

interface Ran {
    status: number | null;
    stdout: string;
    stderr: string;
    /** What the stand-in commands recorded, one call a line. */
    log: string[];
    dir: string;
}

/** A scratch directory with stand-in commands in `bin/`, each a bash script that may append to `$LOG`. */
function sandbox(stubs: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-start-"));
    fs.mkdirSync(path.join(dir, "bin"));
    for (const [name, body] of Object.entries(stubs)) {
        fs.writeFileSync(path.join(dir, "bin", name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
    }
    return dir;
}

function run(dir: string, args: string[], env: Record<string, string>): Ran {
    const log = path.join(dir, "log");
    fs.writeFileSync(log, "");
    const result = spawnSync("bash", args, {
        encoding: "utf8",
        env: { PATH: `${path.join(dir, "bin")}:${process.env.PATH}`, HOME: dir, LOG: log, STATE: dir, ...env },
        timeout: 15000,
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr, log: fs.readFileSync(log, "utf8").split("\n").filter(Boolean), dir };
}

describe("the controller's start (files/controller/start.sh): the admin exists before the API serves", () => {
    // python stands in for the image's manage.py commands; healthchecks fails HEALTH_FAILS times first.
    const stubs = {
        python: [
            'case "$2" in',
            '  healthchecks) n=$(cat "$STATE/health" 2>/dev/null || echo 0); echo $((n + 1)) > "$STATE/health"; echo "healthchecks" >> "$LOG"; [ "$n" -ge "${HEALTH_FAILS:-0}" ] ;;',
            '  migrate) echo "migrate $3 as $(cat "$STATE/user")" >> "$LOG"; [ -z "$MIGRATE_FAILS" ] ;;',
            '  shell) printf "%s" "$4" > "$STATE/shell-code"; echo "shell $3 as $(cat "$STATE/user")" >> "$LOG"; [ -z "$ENSURE_FAILS" ] ;;',
            '  *) echo "unexpected python $*" >> "$LOG"; exit 99 ;;',
            "esac",
        ].join("\n"),
        sudo: '[ "$1 $2 $3" = "-E -u deis" ] || exit 98; echo deis > "$STATE/user"; shift 3; "$@"; status=$?; echo root > "$STATE/user"; exit $status',
        sleep: ":",
    };
    let dir: string;
    beforeEach(() => {
        dir = sandbox(stubs);
        fs.mkdirSync(path.join(dir, "app", "bin"), { recursive: true });
        fs.writeFileSync(path.join(dir, "app", "bin", "boot"), '#!/usr/bin/env bash\necho "boot: serving" >> "$LOG"\n', { mode: 0o755 });
        fs.writeFileSync(path.join(dir, "user"), "root");
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("waits for the database, migrates, ensures the admin, and only then hands over to the image's boot", () => {
        const ran = run(dir, [START, path.join(dir, "app"), "300"], { HEALTH_FAILS: "2" });
        assert.equal(ran.status, 0, ran.stderr);
        assert.deepEqual(ran.log, ["healthchecks", "healthchecks", "healthchecks", "migrate --noinput as deis", "shell -c as deis", "boot: serving"]);
        assert.equal(fs.readFileSync(path.join(dir, "shell-code"), "utf8"), fs.readFileSync(ENSURE_ADMIN, "utf8").replace(/\n+$/, ""));
    });

    it("gives up loudly when the database does not answer within the bound, and never serves", () => {
        const ran = run(dir, [START, path.join(dir, "app"), "0"], { HEALTH_FAILS: "1000" });
        assert.equal(ran.status, 1);
        assert.match(ran.stderr, /the database did not answer within 0 s; the controller does not start without it/);
        assert.deepEqual(ran.log, ["healthchecks"]);
    });

    it("never serves when the admin cannot be ensured, or the migration fails", () => {
        const ensureFails = run(dir, [START, path.join(dir, "app"), "300"], { ENSURE_FAILS: "1" });
        assert.notEqual(ensureFails.status, 0);
        assert.ok(!ensureFails.log.includes("boot: serving"), ensureFails.log.join("\n"));
        fs.rmSync(path.join(dir, "health"));
        const migrateFails = run(dir, [START, path.join(dir, "app"), "300"], { MIGRATE_FAILS: "1" });
        assert.notEqual(migrateFails.status, 0);
        assert.deepEqual(migrateFails.log, ["healthchecks", "migrate --noinput as deis"]);
    });
});

describe("ensuring the admin (files/controller/ensure_admin.py), under stubs of Django 2.2's ORM as `manage.py shell -c` runs it", () => {
    interface Row {
        username: string;
        password?: string;
        is_superuser?: boolean;
        is_staff?: boolean;
        is_active?: boolean;
        token?: boolean;
    }
    interface Result {
        users: Required<Omit<Row, "token">>[];
        tokens: string[];
        saves: number;
        output: string;
    }
    const ADMIN = "admin-k3x9q2zt";
    const PASSWORD = "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z";
    let dir: string;

    /** Runs the script (or `script`) over a users table; the stack's Secret holds `credentials`. */
    function ensure(
        users: Row[],
        credentials = { username: ADMIN, password: PASSWORD },
        script = ENSURE_ADMIN,
    ): { status: number | null; result?: Result; stderr: string } {
        fs.writeFileSync(path.join(dir, "users.json"), JSON.stringify(users));
        fs.mkdirSync(path.join(dir, "admin"), { recursive: true });
        fs.writeFileSync(path.join(dir, "admin", "username"), credentials.username);
        fs.writeFileSync(path.join(dir, "admin", "password"), credentials.password);
        const ran = spawnSync("python3", [ENSURE_ADMIN_HARNESS, script, path.join(dir, "users.json")], {
            encoding: "utf8",
            env: { PATH: process.env.PATH, ADMIN_CREDENTIALS_DIR: path.join(dir, "admin") },
        });
        return { status: ran.status, result: ran.status === 0 ? (JSON.parse(ran.stdout) as Result) : undefined, stderr: ran.stderr };
    }
    const hashed = (password: string) => `stub_sha256$${crypto.createHash("sha256").update(password).digest("hex")}`;

    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "hephy-doks-admin-"));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("creates the admin in a new or emptied database (django-guardian's AnonymousUser is no superuser), with its API token", () => {
        const { result } = ensure([{ username: "AnonymousUser", password: "!unusable" }]);
        assert.deepEqual(result!.users[1], { username: ADMIN, password: hashed(PASSWORD), is_superuser: true, is_staff: true, is_active: true });
        assert.deepEqual(result!.users[0], { username: "AnonymousUser", password: "!unusable", is_superuser: false, is_staff: false, is_active: true });
        assert.deepEqual(result!.tokens, [ADMIN]);
        assert.equal(result!.output, `hephy-doks: admin ${ADMIN} created\n`);
    });

    it("changes nothing when the admin is as the stack says, so a restart writes nothing", () => {
        const { result } = ensure([{ username: ADMIN, password: hashed(PASSWORD), is_superuser: true, is_staff: true, is_active: true, token: true }]);
        assert.equal(result!.saves, 0);
        assert.equal(result!.output, `hephy-doks: admin ${ADMIN} present\n`);
    });

    it("restores the stack's password and the admin's rights, and gives back a lost token", () => {
        const { result } = ensure([{ username: ADMIN, password: hashed("changed-by-hand"), is_superuser: false, is_staff: false, is_active: false }]);
        assert.deepEqual(result!.users, [{ username: ADMIN, password: hashed(PASSWORD), is_superuser: true, is_staff: true, is_active: true }]);
        assert.deepEqual(result!.tokens, [ADMIN]);
        assert.equal(result!.output, `hephy-doks: admin ${ADMIN} updated: superuser, password\n`);
    });

    it("leaves every other user, other admins included, as it is", () => {
        const others: Row[] = [
            { username: "alice", password: hashed("a"), is_superuser: true, is_staff: true, is_active: true, token: true },
            { username: "bob", password: hashed("b"), is_superuser: false, is_staff: false, is_active: false },
        ];
        const { result } = ensure(others);
        assert.deepEqual(result!.users.slice(0, 2), [
            { username: "alice", password: hashed("a"), is_superuser: true, is_staff: true, is_active: true },
            { username: "bob", password: hashed("b"), is_superuser: false, is_staff: false, is_active: false },
        ]);
        assert.equal(result!.users[2].username, ADMIN);
    });

    it("fails, creating no one, when the Secret holds an empty name or password", () => {
        const { status, stderr } = ensure([], { username: ADMIN, password: "" });
        assert.notEqual(status, 0);
        assert.match(stderr, /the admin's username or password is empty/);
    });

    it("runs as Django 2.2 runs it: a comprehension over the script's own names fails there, so the check above can fail", () => {
        const variant = path.join(dir, "variant.py");
        fs.writeFileSync(variant, fs.readFileSync(ENSURE_ADMIN, "utf8") + "\nprint([username for _ in range(1)])\n");
        const { status, stderr } = ensure([], undefined, variant);
        assert.notEqual(status, 0);
        assert.match(stderr, /NameError: name 'username' is not defined/);
    });
});

describe("the database's first-start guards (files/database), among stand-ins of the image's scripts", () => {
    // Object storage as the image's commands see it: calls numbered from 1; the first STORAGE_DOWN_CALLS
    // fail, so does call STORAGE_FAIL_AT, and so does every call from STORAGE_DOWN_FROM on. wal-e prints
    // its heading before it fails, as 1.1.1 does.
    const storage = [
        'n=$(($(cat "$STATE/calls" 2>/dev/null || echo 0) + 1)); echo $n > "$STATE/calls"',
        'down() { [ "$n" -le "${STORAGE_DOWN_CALLS:-0}" ] || [ "$n" = "${STORAGE_FAIL_AT:-0}" ] || [ "$n" -ge "${STORAGE_DOWN_FROM:-1000000}" ]; }',
    ].join("\n");
    const stubs = {
        envdir: 'shift; exec "$@"',
        "su-exec": 'shift; exec "$@"',
        sleep: "/bin/sleep 0.05",
        create_bucket: `${storage}\necho "create_bucket boto=\${BOTO_CONFIG:-default}" >> "$LOG"; ! down`,
        "wal-e": [
            storage,
            'echo "wal-e $* boto=${BOTO_CONFIG:-default}" >> "$LOG"',
            'echo "name last_modified expanded_size_bytes wal_segment_backup_start"',
            "if down; then echo 'ConnectionRefusedError' >&2; exit 2; fi",
            'for i in $(seq 1 "${BACKUPS:-0}"); do echo "base_00000001000000000000000$i"; done',
        ].join("\n"),
        // The image's do_backup skips, with status 0, while recovery runs.
        do_backup:
            'if [ -f "$PGDATA/recovery.conf" ]; then echo "do_backup: skipped, recovering" >> "$LOG"; exit 0; fi; echo "do_backup" >> "$LOG"; [ -z "$BACKUP_FAILS" ]',
        // The server answers on TCP once the entrypoint has started the real one.
        pg_isready: '[ -f "$STATE/server-up" ]',
    };
    // The stand-ins model the parts of upstream's scripts the guards are about (test/databaseImage.ts).
    const models = {
        "002_create_bucket.sh": 'envdir "$WALE_ENVDIR" create_bucket\n',
        // teamhephy/postgres v2.7.6 003_restore_from_backup.sh: restores when `wal-e --terse backup-list | wc -l`
        // is above 1, fetching the newest base backup into $PGDATA_RECOVERY.
        "003_restore_from_backup.sh": [
            'if [[ $(envdir "$WALE_ENVDIR" wal-e --terse backup-list | wc -l) -gt "1" ]]; then',
            '  mkdir -p "$PGDATA_RECOVERY" "$PGDATA"; echo 11 > "$PGDATA_RECOVERY/PG_VERSION"; touch "$PGDATA/recovery.conf"; echo "003: restored" >> "$LOG"',
            'else echo "003: empty database" >> "$LOG"; fi',
        ].join("\n"),
        "004_run_backups.sh": 'echo "004: periodic backups start" >> "$LOG"\n',
    };
    let dir: string;
    let order: string[];

    let entrypoint: string;

    beforeEach(() => {
        dir = sandbox(stubs);
        ({ entrypoint, scripts: order } = firstStart(dir, models));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    const start = (env: Record<string, string>) =>
        run(dir, [entrypoint, ...order], {
            WALE_ENVDIR: path.join(dir, "env"),
            PGDATA: path.join(dir, "pgdata"),
            PGDATA_RECOVERY: path.join(dir, "recovery"),
            OBJECT_STORAGE_WAIT_SECONDS: "300",
            GUARD_BOTO_CONFIG: "/etc/hephy-doks/boto.cfg",
            ...env,
        });

    it("restores the newest backup once object storage lists the bucket, then takes a base backup once recovery is over", () => {
        const ran = start({ BACKUPS: "2" });
        assert.equal(ran.status, 0, ran.stderr);
        assert.deepEqual(ran.log, [
            "create_bucket boto=/etc/hephy-doks/boto.cfg",
            "wal-e --terse backup-list boto=/etc/hephy-doks/boto.cfg",
            "create_bucket boto=default",
            "wal-e --terse backup-list boto=default",
            "003: restored",
            "004: periodic backups start",
            "entrypoint: init complete",
            "entrypoint: server started",
            "do_backup",
        ]);
        assert.match(ran.stdout, /the newest backup was restored/);
    });

    it("waits while object storage does not answer, then goes on", () => {
        const ran = start({ BACKUPS: "1", STORAGE_DOWN_CALLS: "3" });
        assert.equal(ran.status, 0, ran.stderr);
        assert.equal((ran.stderr.match(/waiting for object storage to list the database's bucket/g) ?? []).length, 3);
        assert.ok(ran.log.includes("003: restored"), ran.log.join("\n"));
    });

    it("gives up within its bound and exits before the restore decision, so the container starts over", () => {
        const ran = start({ BACKUPS: "2", STORAGE_DOWN_CALLS: "100000", OBJECT_STORAGE_WAIT_SECONDS: "1" });
        assert.equal(ran.status, 1);
        assert.match(ran.stderr, /object storage did not list the database's bucket within 1 s; exiting/);
        assert.deepEqual(
            ran.log.filter((l) => !/^(create_bucket|wal-e)/.test(l)),
            [],
        );
    });

    it("exits before any backup when the restore's own listing failed although backups exist", () => {
        // Calls 1-3 are the wait and 002; call 4 is 003's listing.
        const ran = start({ BACKUPS: "2", STORAGE_FAIL_AT: "4" });
        assert.equal(ran.status, 1);
        assert.match(ran.stderr, /the bucket holds 2 backup\(s\), but none was restored; exiting/);
        assert.ok(ran.log.includes("003: empty database"));
        assert.deepEqual(
            ran.log.filter((l) => /do_backup|004|init complete/.test(l)),
            [],
        );
    });

    it("exits when it cannot confirm that a database it did not restore has no backup", () => {
        const ran = start({ BACKUPS: "2", STORAGE_DOWN_FROM: "4" });
        assert.equal(ran.status, 1);
        assert.match(ran.stderr, /no backup was restored, and object storage cannot list the bucket to confirm that it holds none; exiting/);
        assert.deepEqual(
            ran.log.filter((l) => /do_backup|004|init complete/.test(l)),
            [],
        );
    });

    it("starts a new database, with a base backup once the real server listens, when the bucket holds none", () => {
        const ran = start({ BACKUPS: "0" });
        assert.equal(ran.status, 0, ran.stderr);
        assert.match(ran.stdout, /the bucket holds no backup: this is a new database/);
        assert.deepEqual(ran.log.slice(-6), [
            "003: empty database",
            "wal-e --terse backup-list boto=/etc/hephy-doks/boto.cfg",
            "004: periodic backups start",
            "entrypoint: init complete",
            "entrypoint: server started",
            "do_backup",
        ]);
    });

    it("leaves the periodic backups as the image has them when the first base backup fails", () => {
        const ran = start({ BACKUPS: "0", BACKUP_FAILS: "1" });
        assert.equal(ran.status, 0, ran.stderr);
        assert.match(ran.stderr, /the first base backup failed; the periodic one follows in 4h/);
        assert.ok(ran.log.includes("004: periodic backups start"));
    });
});
