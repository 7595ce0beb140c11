import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { childOf } from "./kube";
import { KEY_ALGORITHMS, KeyAlgorithm } from "../types";

/** Names of the objects the ingress controller's release reads, in the release's namespace. */
export const INGRESS_OBJECTS = {
    /** The controller's `--configmap-tcp-services`: listen port → `namespace/service:port`. */
    tcpServices: "ingress-tcp-services",
    /** The certificate served to a TLS client that names no host an Ingress has a certificate for. */
    defaultTls: "ingress-default-tls",
} as const;

export interface IngressPrerequisitesArgs {
    /** The Kubernetes provider of the cluster. */
    provider: k8s.Provider;
    /** The ingress controller's namespace, already created. */
    namespace: pulumi.Input<string>;
    /** Raw TCP forwards: listen port → `namespace/service:port`. */
    tcpServices: Record<string, string>;
    /** Algorithm of the default certificate's key. */
    keyAlgorithm: KeyAlgorithm;
    /** Lifetime of the default certificate, in hours. */
    certValidityHours: number;
    /** A `pulumi up` this many hours or fewer before the default certificate expires replaces it. */
    earlyRenewalHours: number;
    /** The name on the default certificate, such as `*.<platform domain>`. */
    commonName: string;
}

/**
 * What the ingress controller's release reads by name and does not make itself: its TCP forwards and
 * its default certificate. HAProxy's chart would otherwise render the certificate with `genCA` and
 * a `lookup` guarded by an `and` that Go 1.16 evaluates in full, which fails in helm-operator's Helm
 * and, in a newer one, changes on every render (haproxytech/helm-charts kubernetes-ingress-1.52.1
 * templates/controller-defaultcertsecret.yaml, `kubernetes-ingress.gen-certs` in _helpers.tpl).
 */
export class IngressPrerequisites extends pulumi.ComponentResource {
    /** The objects the release needs before it installs. */
    public readonly ready: pulumi.Resource[];

    constructor(name: string, args: IngressPrerequisitesArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:ingressPrerequisites:IngressPrerequisites", name, {}, opts);

        const tcpServices = new k8s.core.v1.ConfigMap(
            `${name}-${INGRESS_OBJECTS.tcpServices}`,
            { metadata: { name: INGRESS_OBJECTS.tcpServices, namespace: args.namespace }, data: args.tcpServices },
            childOf(this, args.provider),
        );

        const key = new tls.PrivateKey(`${name}-default-tls-key`, { ...KEY_ALGORITHMS[args.keyAlgorithm] }, { parent: this });
        const certificate = new tls.SelfSignedCert(
            `${name}-default-tls`,
            {
                privateKeyPem: key.privateKeyPem,
                subject: { commonName: args.commonName, organization: "hephy-doks" },
                dnsNames: [args.commonName],
                allowedUses: ["server_auth", "key_encipherment", "digital_signature"],
                validityPeriodHours: args.certValidityHours,
                earlyRenewalHours: args.earlyRenewalHours,
            },
            { parent: this },
        );
        const defaultTls = new k8s.core.v1.Secret(
            `${name}-${INGRESS_OBJECTS.defaultTls}`,
            {
                metadata: { name: INGRESS_OBJECTS.defaultTls, namespace: args.namespace },
                type: "kubernetes.io/tls",
                stringData: { "tls.crt": certificate.certPem, "tls.key": pulumi.secret(key.privateKeyPem) },
            },
            childOf(this, args.provider),
        );

        this.ready = [tcpServices, defaultTls];
        this.registerOutputs({});
    }
}
