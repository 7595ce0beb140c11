import { UPSTREAM } from "./catalog";

/** What Workflow on DOKS does and does not do (docs/workflow.md has the reasons). */
export const WORKFLOW_LIMITS =
    "Works: buildpack apps by git push (Python, Node.js, Ruby, Go, Java, PHP, Scala, .NET: built with Cloud Native Buildpacks on " +
    "heroku/builder:24, Ubuntu 24.04, and run from that image with the Procfile's process types; BUILDPACK_URL is refused; apps " +
    "deployed as slugs keep running, and their next push builds the new way) and " +
    "apps with a Dockerfile by git push (Dockerfiles build rootless with buildah, without a Docker daemon, into the stack's own " +
    "registry), each served over HTTPS with a Let's Encrypt certificate, deis pull of images from public registries (copied " +
    "into that registry; the port comes from the image's EXPOSE, or PORT), deis logs, and deis domains, certs, tls, whitelist " +
    "and maintenance (a route reconciler gives them effect). " +
    "Not yet run on a live cluster: the Dockerfile and buildpack build pods themselves (verify with npm run verify -- --push). " +
    "Data: slugs and database backups live on a DigitalOcean volume that outlives node replacements; the database restores " +
    "from them when it restarts, losing at most its last minute of writes. See docs/workflow.md.";

/** The article's host names under the platform domain: the controller's API and the builder's SSH. */
export const WORKFLOW_HOSTS = { controller: "deis", builder: "deis-builder" } as const;

/** Stack outputs of an installed Workflow: the addresses its CLI and git push use. */
export function workflowOutputs(platformDomain: string): { controllerUrl: string; builderSsh: string } {
    return {
        controllerUrl: `https://${WORKFLOW_HOSTS.controller}.${platformDomain}`,
        builderSsh: `ssh://git@${WORKFLOW_HOSTS.builder}.${platformDomain}:${UPSTREAM.builder.port}`,
    };
}

/**
 * What to run once Workflow is installed, as numbered steps: install the CLI, wait for the controller's
 * certificate (`deis login` fails with an x509 error until it is issued), log in as the stack's admin
 * (with a chart of the user's own, which the program gives no admin, register), add an SSH key, create
 * an app and push it from whatever branch is checked out, point custom domains at the platform. The
 * admin's name is read from the stack's outputs, so the text is known at preview.
 */
export function workflowNextSteps(stack: string, platformDomain: string, programAdmin: boolean): string {
    const { controllerUrl, builderSsh } = workflowOutputs(platformDomain);
    const builderHost = `${WORKFLOW_HOSTS.builder}.${platformDomain}`;
    const output = (name: string, secret = false) => `pulumi stack output ${name} --stack ${stack}${secret ? " --show-secrets" : ""}`;
    const steps = [
        'Install the deis CLI v2.23.0: docs/workflow.md, "The deis CLI and SSH keys", names the file for each platform (macOS on Apple Silicon runs the darwin-amd64 one under Rosetta).',
        `Wait for the controller's certificate: npm run verify -- --stack ${stack} --retry 10 (until Let's Encrypt issues it, deis login fails with an x509 error).`,
        programAdmin
            ? `Log in as the stack's admin: deis login ${controllerUrl} --username="$(${output("workflowAdminUsername")})", and give it the password ` +
              `${output("workflowAdminPassword", true)} prints when it asks (on a command line, a password shows in the process list). ` +
              `Add users with deis register ${controllerUrl} --login=false while logged in as the admin.`
            : `Register: deis register ${controllerUrl} (the Workflow chart of releases.workflow decides who may register; the program creates an admin only in its own chart).`,
        "Add an SSH key: without one, ssh-keygen -t ed25519; then deis keys:add ~/.ssh/id_ed25519.pub. An RSA key also needs " +
            `"Host ${builderHost}" with "PubkeyAcceptedAlgorithms +ssh-rsa" in ~/.ssh/config: the builder checks RSA keys only with SHA-1 signatures, ` +
            "which OpenSSH 8.8 and later no longer send.",
        `In your app's git repository: deis create, then git push deis HEAD:master (to ${builderSsh}), from any branch: the builder builds the commit pushed.`,
        `For a domain of your own: deis domains:add <name> --app <app>, then at its DNS a CNAME from <name> to <app>.${platformDomain} (it follows the nodes), ` +
            `or, where a CNAME cannot be (a zone's apex), A records to each address of ${output("nodeIps")}, which change when DigitalOcean replaces a node.`,
    ];
    return [...steps.map((step, i) => `${i + 1}. ${step}`), "", WORKFLOW_LIMITS].join("\n");
}
