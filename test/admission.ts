import { CelScalar, celEnv, isCelError, parse, plan } from "@bufbuild/cel";

/**
 * A ValidatingAdmissionPolicy evaluated as the API server does (kubernetes.io/docs/reference/access-authn-authz/
 * validating-admission-policy): its resource rules and match conditions decide whether it applies, then
 * every validation must hold. The CEL is the real expression text, run by @bufbuild/cel with the
 * variables the API server binds; integers are CEL ints, as Kubernetes types schema integers.
 */

/** An admission request, with the fields the policies read. */
export interface AdmissionRequest {
    operation: "CREATE" | "UPDATE" | "DELETE";
    kind: { group: string; version: string; kind: string };
    resource: { group: string; version: string; resource: string };
    /** Empty for a cluster-scoped object. */
    namespace: string;
    name: string;
    userInfo: { username: string };
    object: unknown;
    oldObject?: unknown;
    /** The namespace of a namespaced request, as the API server binds it (`namespaceObject`). */
    namespaceObject?: unknown;
}

export interface Admission {
    /** Whether the policy's rules and match conditions select the request. */
    matched: boolean;
    /** The message of every validation that fails. */
    denied: string[];
}

const env = celEnv({
    variables: { object: CelScalar.DYN, oldObject: CelScalar.DYN, request: CelScalar.DYN, params: CelScalar.DYN, namespaceObject: CelScalar.DYN },
});

function toCel(value: unknown): unknown {
    if (Array.isArray(value)) {
        return value.map(toCel);
    }
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toCel(v)]));
    }
    return Number.isInteger(value) ? BigInt(value as number) : value;
}

/** Evaluates one expression; an error fails the request, as failurePolicy Fail does. */
export function evaluate(expression: string, request: AdmissionRequest): boolean {
    const bindings = {
        object: request.object ?? null,
        oldObject: request.oldObject ?? null,
        request,
        params: null,
        namespaceObject: request.namespaceObject ?? null,
    };
    const run = plan(env, parse(expression));
    const result = run(toCel(bindings) as Parameters<typeof run>[0]);
    if (isCelError(result)) {
        throw new Error(`CEL error in ${expression}: ${result.message}`);
    }
    if (typeof result !== "boolean") {
        throw new Error(`${expression} gives ${String(result)}, not a boolean`);
    }
    return result;
}

const matches = (allowed: string[] | undefined, value: string) => (allowed ?? []).some((a) => a === "*" || a === value);

/** What a ValidatingAdmissionPolicy, as the program declares it (`spec`), does with a request. */
export function admit(spec: any, request: AdmissionRequest): Admission {
    const ruled = (spec.matchConstraints?.resourceRules ?? []).some(
        (rule: any) =>
            matches(rule.apiGroups, request.resource.group) &&
            matches(rule.apiVersions, request.resource.version) &&
            matches(rule.resources, request.resource.resource) &&
            matches(rule.operations, request.operation) &&
            (rule.scope === undefined || rule.scope === "*" || (rule.scope === "Namespaced") === (request.namespace !== "")),
    );
    const matched = ruled && (spec.matchConditions ?? []).every((c: any) => evaluate(c.expression, request));
    const denied = matched ? (spec.validations ?? []).filter((v: any) => !evaluate(v.expression, request)).map((v: any) => v.message as string) : [];
    return { matched, denied };
}
