import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { KEY_ALGORITHMS, KeyAlgorithm } from "../types";

/** A private key and the certificate for it, both PEM. */
export interface KeyPair {
    /** PEM private key; a secret. */
    keyPem: pulumi.Output<string>;
    /** PEM certificate. */
    certPem: pulumi.Output<string>;
}

export interface TillerPkiArgs {
    /** Algorithm of every private key in the hierarchy. */
    keyAlgorithm: KeyAlgorithm;
    /** Lifetime of the CA certificate, in hours. */
    caValidityHours: number;
    /** Lifetime of the Tiller and helm-operator certificates, in hours. */
    certValidityHours: number;
    /** A `pulumi up` this many hours or fewer before a certificate expires replaces it. */
    earlyRenewalHours: number;
    /** DNS names on the Tiller certificate; helm-operator verifies one of them. */
    tillerDnsNames: string[];
    /** IP addresses on the Tiller certificate (127.0.0.1 for `helm --tls` through a port-forward). */
    tillerIpAddresses: string[];
}

/**
 * The article's cfssl step, done by @pulumi/tls in state instead of files on disk: a CA, Tiller's
 * server certificate, and the helm-operator's client certificate, all signed by that CA. Tiller
 * accepts only clients whose certificate chains to this CA (`TILLER_TLS_VERIFY=1`).
 */
export class TillerPki extends pulumi.ComponentResource {
    /** PEM certificate of the CA; public. */
    public readonly caCertPem: pulumi.Output<string>;
    /** Tiller's server key pair. */
    public readonly tiller: KeyPair;
    /** The helm-operator's client key pair (the article's `helm-client`). */
    public readonly helmClient: KeyPair;

    constructor(name: string, args: TillerPkiArgs, opts?: pulumi.ComponentResourceOptions) {
        super("hephy-doks:tillerPki:TillerPki", name, {}, opts);

        const keySpec = KEY_ALGORITHMS[args.keyAlgorithm];
        const newKey = (role: string) => new tls.PrivateKey(`${name}-${role}-key`, { ...keySpec }, { parent: this });

        const caKey = newKey("ca");
        const caCert = new tls.SelfSignedCert(
            `${name}-ca`,
            {
                privateKeyPem: caKey.privateKeyPem,
                subject: { commonName: "tiller-ca", organization: "hephy-doks" },
                isCaCertificate: true,
                allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
                validityPeriodHours: args.caValidityHours,
                earlyRenewalHours: args.earlyRenewalHours,
            },
            { parent: this },
        );
        this.caCertPem = caCert.certPem;

        // Key, request and CA signature for one leaf; a new CA re-signs both leaves.
        const leaf = (role: string, commonName: string, allowedUses: string[], sans: { dnsNames?: string[]; ipAddresses?: string[] }): KeyPair => {
            const key = newKey(role);
            const request = new tls.CertRequest(
                `${name}-${role}-csr`,
                { privateKeyPem: key.privateKeyPem, subject: { commonName, organization: "hephy-doks" }, ...sans },
                { parent: this },
            );
            const cert = new tls.LocallySignedCert(
                `${name}-${role}-cert`,
                {
                    certRequestPem: request.certRequestPem,
                    caPrivateKeyPem: caKey.privateKeyPem,
                    caCertPem: caCert.certPem,
                    allowedUses,
                    validityPeriodHours: args.certValidityHours,
                    earlyRenewalHours: args.earlyRenewalHours,
                },
                { parent: this },
            );
            return { keyPem: pulumi.secret(key.privateKeyPem), certPem: cert.certPem };
        };

        this.tiller = leaf("tiller", "tiller-server", ["server_auth", "key_encipherment", "digital_signature"], {
            dnsNames: args.tillerDnsNames,
            ipAddresses: args.tillerIpAddresses,
        });
        this.helmClient = leaf("helm-client", "helm-operator", ["client_auth", "key_encipherment", "digital_signature"], {});

        this.registerOutputs({
            caCertPem: this.caCertPem,
            tillerCertPem: this.tiller.certPem,
            helmClientCertPem: this.helmClient.certPem,
        });
    }
}
