import { UPSTREAM } from "./catalog";

/** What Workflow on DOKS does and does not do (docs/workflow.md has the reasons). */
export const WORKFLOW_LIMITS =
    "Works: buildpack apps by git push (built by slugbuilder on heroku-18, a stack Heroku ended in 2023: a build may fail), each served over HTTPS with a Let's Encrypt certificate, deis pull of images from public " +
    "registries (set PORT with deis config:set), deis logs, and deis domains, certs, tls, whitelist and maintenance (a route " +
    "reconciler gives them effect; point a custom domain's DNS at the nodes). " +
    "Does not work: Dockerfile builds (DOKS nodes run containerd, and the dockerbuilder needs a Docker daemon). " +
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
 * What to run once Workflow is installed: log in as the stack's admin (with a chart of the user's own,
 * which the program gives no admin, register), add an SSH key, create an app and push it. The admin's
 * name is read from the stack's outputs, so the text is known at preview.
 */
export function workflowNextSteps(platformDomain: string, programAdmin: boolean): string {
    const { controllerUrl, builderSsh } = workflowOutputs(platformDomain);
    const builderHost = `${WORKFLOW_HOSTS.builder}.${platformDomain}`;
    return [
        "Once the hephy release is Released, install the deis CLI v2.23.0 (docs/workflow.md), then:",
        programAdmin
            ? `deis login ${controllerUrl} --username="$(pulumi stack output workflowAdminUsername)", and give it the password ` +
              "pulumi stack output workflowAdminPassword --show-secrets prints when it asks (on its command line, a password shows in the process list) " +
              `(the stack's admin; add users with deis register ${controllerUrl} --login=false while logged in as the admin);`
            : `deis register ${controllerUrl} (the Workflow chart of releases.workflow decides who may register; the program creates an admin only in its own chart);`,
        `deis keys:add ~/.ssh/id_ed25519.pub (an RSA key also needs "Host ${builderHost}" with "PubkeyAcceptedAlgorithms +ssh-rsa" in ~/.ssh/config: ` +
            "the builder checks RSA keys only with SHA-1 signatures, which OpenSSH 8.8 and later no longer send);",
        `in your app's git repository, deis create, then git push deis master (to ${builderSsh}).`,
        WORKFLOW_LIMITS,
    ].join(" ");
}
