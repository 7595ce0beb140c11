import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import { childOf } from "./kube";

/**
 * The Secrets Workflow's images read, with upstream's names and keys (teamhephy/workflow v2.23.0 and
 * the component charts it pins: builder `builder-secret-*.yaml`, controller `controller-secret-*.yaml`,
 * database `database-secret-creds.yaml`, redis `logger-redis-secret-creds.yaml`, minio
 * `minio-secret-user.yaml`, workflow `objectstorage-secret.yaml`). Upstream's charts generate them with
 * `randAlphaNum` and `genPrivateKey` on every render, which helm-operator's three-minute dry-run
 * compare turns into a new revision, and new credentials, every sync. The project's chart only
 * references them; the program generates them once and keeps them in its state, as secrets.
 */
export const WORKFLOW_SECRETS = {
    builderKey: { name: "builder-key-auth", keys: ["builder-key"] },
    builderSsh: { name: "builder-ssh-private-keys", keys: ["ssh-host-rsa-key", "ssh-host-ecdsa-key"] },
    djangoSecretKey: { name: "django-secret-key", keys: ["secret-key"] },
    deployHookKey: { name: "deploy-hook-key", keys: ["secret-key"] },
    database: { name: "database-creds", keys: ["user", "password"] },
    loggerRedis: { name: "logger-redis-creds", keys: ["password"] },
    minioUser: { name: "minio-user", keys: ["accesskey", "secretkey"] },
    objectStorage: { name: "objectstorage-keyfile", keys: ["accesskey", "secretkey"] },
    registry: { name: "registry-secret", keys: ["hostname", "username", "password"] },
    /** The project's own: the first admin, whom the controller's start creates (charts/hephy-workflow files/controller). */
    admin: { name: "workflow-admin", keys: ["username", "password"] },
} as const;

/**
 * With the registry off-cluster the controller copies `registry-secret` into every app namespace as
 * the app pods' image pull secret, and fails a deploy without it (teamhephy/controller v2.22.0
 * api/models/app.py `_get_private_registry_config`). An empty hostname would mean Docker Hub, where the
 * kubelet would present these credentials for hephy/slugrunner instead of pulling anonymously; a
 * reserved name (RFC 2606) no image comes from keeps every pull anonymous.
 */
const NO_PRIVATE_REGISTRY = { hostname: "registry.invalid", username: "none", password: "none" } as const;

export interface WorkflowSecretsArgs {
    /** The Kubernetes provider of the cluster. */
    provider: k8s.Provider;
    /** Workflow's namespace, already created. */
    namespace: pulumi.Input<string>;
    /**
     * The database's credentials of the stack a new one restores from: the restored database holds that
     * user, and the controller names its database after it. Undefined: new ones.
     */
    databaseCredentials?: { user: pulumi.Input<string>; password: pulumi.Input<string> };
}

/** Workflow's credentials and SSH host keys: generated once by Pulumi, stored as Kubernetes Secrets. */
export class WorkflowSecrets extends pulumi.ComponentResource {
    /** Every Secret; the Workflow release must wait for them. */
    public readonly secrets: k8s.core.v1.Secret[];
    /** The first admin's credentials, for `deis login`; the password is a secret. */
    public readonly admin: { username: pulumi.Output<string>; password: pulumi.Output<string> };
    /** The database's user and password (a secret), which a backup keeps beside the data they open. */
    public readonly database: { user: pulumi.Output<string>; password: pulumi.Output<string> };

    constructor(name: string, args: WorkflowSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:workflowSecrets:WorkflowSecrets", name, {}, opts);
        // Letters and digits only: the images put these in URLs, DSNs and shell commands unquoted.
        const token = (role: string, length: number) => new random.RandomPassword(`${name}-${role}`, { length, special: false }, { parent: this }).result;
        // Postgres folds unquoted names to lower case, so the user name is lower case from the start.
        const databaseUser =
            args.databaseCredentials?.user ??
            new random.RandomString(`${name}-database-user`, { length: 16, upper: false, numeric: false, special: false }, { parent: this }).result;
        this.database = {
            user: pulumi.output(databaseUser),
            password: pulumi.secret(args.databaseCredentials?.password ?? token("database-password", 32)),
        };
        // The builder's SSH host keys in the PEM forms upstream's genPrivateKey gives (PKCS#1 RSA, SEC1
        // ECDSA P-256); RSA at 3072 bits, OpenSSH's default for host keys.
        const rsaHostKey = new tls.PrivateKey(`${name}-builder-ssh-rsa`, { algorithm: "RSA", rsaBits: 3072 }, { parent: this });
        const ecdsaHostKey = new tls.PrivateKey(`${name}-builder-ssh-ecdsa`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent: this });
        const minioAccessKey = token("minio-access-key", 20);
        const minioSecretKey = token("minio-secret-key", 40);
        // Not the guessable "admin": a name that also fits the controller's URL patterns ([-_\w]+, api/urls.py).
        const adminSuffix = new random.RandomString(`${name}-admin-name`, { length: 8, upper: false, special: false }, { parent: this }).result;
        this.admin = { username: pulumi.interpolate`admin-${adminSuffix}`, password: pulumi.secret(token("admin-password", 32)) };

        const data: Record<keyof typeof WORKFLOW_SECRETS, pulumi.Input<string>[]> = {
            builderKey: [token("builder-key", 64)],
            builderSsh: [rsaHostKey.privateKeyPem, ecdsaHostKey.privateKeyPem],
            djangoSecretKey: [token("django-secret-key", 64)],
            deployHookKey: [token("deploy-hook-key", 64)],
            database: [this.database.user, this.database.password],
            loggerRedis: [token("logger-redis-password", 32)],
            // The on-cluster object store and its clients share one key pair.
            minioUser: [minioAccessKey, minioSecretKey],
            objectStorage: [minioAccessKey, minioSecretKey],
            registry: [NO_PRIVATE_REGISTRY.hostname, NO_PRIVATE_REGISTRY.username, NO_PRIVATE_REGISTRY.password],
            admin: [this.admin.username, this.admin.password],
        };
        this.secrets = (Object.keys(WORKFLOW_SECRETS) as (keyof typeof WORKFLOW_SECRETS)[]).map((role) => {
            const { name: secretName, keys } = WORKFLOW_SECRETS[role];
            return new k8s.core.v1.Secret(
                `${name}-${secretName}`,
                {
                    metadata: { name: secretName, namespace: args.namespace, labels: { heritage: "hephy-doks" } },
                    type: "Opaque",
                    stringData: Object.fromEntries(keys.map((key, i) => [key, pulumi.secret(data[role][i])])),
                },
                childOf(this, args.provider),
            );
        });

        this.registerOutputs({ adminUsername: this.admin.username });
    }
}
