import "reflect-metadata";
import * as crypto from "node:crypto";
import * as x509 from "@peculiar/x509";

/**
 * The @pulumi/tls provider, played by real cryptography: keys from node:crypto and X.509 built with
 * @peculiar/x509 from exactly the inputs the program sends (subject, SANs, usages, CA flag, validity).
 * A handshake test can then prove the program wired the right PEMs into the right places.
 */

x509.cryptoProvider.set(crypto.webcrypto as unknown as Crypto);

type Inputs = Record<string, any>;

const ECDSA_CURVES: Record<string, string> = { P256: "P-256", P384: "P-384" };

function webAlgorithm(key: crypto.KeyObject): { name: string; namedCurve?: string; hash: string } {
    if (key.asymmetricKeyType === "ec") {
        const curve = key.asymmetricKeyDetails?.namedCurve === "secp384r1" ? "P-384" : "P-256";
        return { name: "ECDSA", namedCurve: curve, hash: curve === "P-384" ? "SHA-384" : "SHA-256" };
    }
    return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
}

async function importKeys(privateKeyPem: string): Promise<{ privateKey: CryptoKey; publicKey: CryptoKey; signingAlgorithm: any }> {
    const keyObject = crypto.createPrivateKey(privateKeyPem);
    const alg = webAlgorithm(keyObject);
    const importAlg = alg.name === "ECDSA" ? { name: "ECDSA", namedCurve: alg.namedCurve } : { name: alg.name, hash: alg.hash };
    const pkcs8 = keyObject.export({ type: "pkcs8", format: "der" });
    const spki = crypto.createPublicKey(keyObject).export({ type: "spki", format: "der" });
    const privateKey = await crypto.webcrypto.subtle.importKey("pkcs8", pkcs8, importAlg, true, ["sign"]);
    const publicKey = await crypto.webcrypto.subtle.importKey("spki", spki, importAlg, true, ["verify"]);
    const signingAlgorithm = alg.name === "ECDSA" ? { name: "ECDSA", hash: alg.hash } : { name: alg.name, hash: alg.hash };
    return { privateKey: privateKey as CryptoKey, publicKey: publicKey as CryptoKey, signingAlgorithm };
}

function distinguishedName(subject: Inputs | undefined): string {
    const parts: string[] = [];
    if (subject?.commonName) parts.push(`CN=${subject.commonName}`);
    if (subject?.organization) parts.push(`O=${subject.organization}`);
    return parts.join(", ");
}

const KEY_USAGES: Record<string, number> = {
    cert_signing: x509.KeyUsageFlags.keyCertSign,
    crl_signing: x509.KeyUsageFlags.cRLSign,
    digital_signature: x509.KeyUsageFlags.digitalSignature,
    key_encipherment: x509.KeyUsageFlags.keyEncipherment,
};
const EXTENDED_USAGES: Record<string, string> = {
    server_auth: x509.ExtendedKeyUsage.serverAuth,
    client_auth: x509.ExtendedKeyUsage.clientAuth,
};

/** The extensions the tls provider writes for `allowedUses` and `isCaCertificate`. */
function usageExtensions(inputs: Inputs): x509.Extension[] {
    const uses: string[] = inputs.allowedUses ?? [];
    for (const use of uses) {
        if (!(use in KEY_USAGES) && !(use in EXTENDED_USAGES)) {
            throw new Error(`tls mock: allowedUses value ${use} is not one the provider accepts here`);
        }
    }
    const extensions: x509.Extension[] = [
        new x509.BasicConstraintsExtension(inputs.isCaCertificate === true, undefined, true),
        new x509.KeyUsagesExtension(
            uses.reduce((flags, use) => flags | (KEY_USAGES[use] ?? 0), 0),
            true,
        ),
    ];
    const extended = uses.filter((u) => u in EXTENDED_USAGES).map((u) => EXTENDED_USAGES[u]);
    if (extended.length > 0) {
        extensions.push(new x509.ExtendedKeyUsageExtension(extended));
    }
    return extensions;
}

function sanExtension(dnsNames: string[] = [], ipAddresses: string[] = []): x509.Extension[] {
    const names = [...dnsNames.map((value) => ({ type: "dns" as const, value })), ...ipAddresses.map((value) => ({ type: "ip" as const, value }))];
    return names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [];
}

function validity(hours: number): { notBefore: Date; notAfter: Date } {
    if (!(hours > 0)) {
        throw new Error(`tls mock: validityPeriodHours must be positive, got ${hours}`);
    }
    // Back-dated a minute, as a clock-skew allowance, like the provider's NotBefore = now.
    const notBefore = new Date(Date.now() - 60_000);
    return { notBefore, notAfter: new Date(notBefore.getTime() + hours * 3600_000) };
}

let serial = 1;
function nextSerial(): string {
    return (serial++).toString(16).padStart(8, "0");
}

async function privateKey(inputs: Inputs): Promise<Inputs> {
    let pair: { publicKey: crypto.KeyObject; privateKey: crypto.KeyObject };
    if (inputs.algorithm === "ECDSA") {
        const curve = ECDSA_CURVES[inputs.ecdsaCurve ?? "P224"];
        if (!curve) throw new Error(`tls mock: unsupported ecdsaCurve ${inputs.ecdsaCurve}`);
        pair = crypto.generateKeyPairSync("ec", { namedCurve: curve });
    } else if (inputs.algorithm === "RSA") {
        pair = crypto.generateKeyPairSync("rsa", { modulusLength: inputs.rsaBits ?? 2048 });
    } else {
        throw new Error(`tls mock: unsupported algorithm ${inputs.algorithm}`);
    }
    // The provider's privateKeyPem is PKCS#1 for RSA and SEC1 for ECDSA.
    const privateKeyPem = pair.privateKey.export({ type: inputs.algorithm === "RSA" ? "pkcs1" : "sec1", format: "pem" }) as string;
    return {
        privateKeyPem,
        privateKeyPemPkcs8: pair.privateKey.export({ type: "pkcs8", format: "pem" }),
        publicKeyPem: pair.publicKey.export({ type: "spki", format: "pem" }),
    };
}

async function selfSignedCert(inputs: Inputs): Promise<Inputs> {
    const keys = await importKeys(inputs.privateKeyPem);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: nextSerial(),
        name: distinguishedName(inputs.subject),
        ...validity(inputs.validityPeriodHours),
        keys: { privateKey: keys.privateKey, publicKey: keys.publicKey },
        signingAlgorithm: keys.signingAlgorithm,
        extensions: [
            ...usageExtensions(inputs),
            ...sanExtension(inputs.dnsNames, inputs.ipAddresses),
            await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        ],
    });
    return {
        certPem: cert.toString("pem"),
        validityStartTime: cert.notBefore.toISOString(),
        validityEndTime: cert.notAfter.toISOString(),
        readyForRenewal: false,
    };
}

async function certRequest(inputs: Inputs): Promise<Inputs> {
    const keys = await importKeys(inputs.privateKeyPem);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
        name: distinguishedName(inputs.subject),
        keys: { privateKey: keys.privateKey, publicKey: keys.publicKey },
        signingAlgorithm: keys.signingAlgorithm,
        extensions: sanExtension(inputs.dnsNames, inputs.ipAddresses),
    });
    return { certRequestPem: csr.toString("pem") };
}

async function locallySignedCert(inputs: Inputs): Promise<Inputs> {
    const csr = new x509.Pkcs10CertificateRequest(inputs.certRequestPem);
    if (!(await csr.verify())) {
        throw new Error("tls mock: the certificate request's signature does not verify");
    }
    const ca = new x509.X509Certificate(inputs.caCertPem);
    const caKeys = await importKeys(inputs.caPrivateKeyPem);
    const san = csr.getExtension("2.5.29.17"); // subjectAltName
    const cert = await x509.X509CertificateGenerator.create({
        serialNumber: nextSerial(),
        subject: csr.subject,
        issuer: ca.subject,
        ...validity(inputs.validityPeriodHours),
        publicKey: csr.publicKey,
        signingKey: caKeys.privateKey,
        signingAlgorithm: caKeys.signingAlgorithm,
        // The provider copies the request's subject and SANs and adds the usages it is told.
        extensions: [...usageExtensions(inputs), ...(san ? [san] : []), await x509.AuthorityKeyIdentifierExtension.create(ca, false)],
    });
    return {
        certPem: cert.toString("pem"),
        validityStartTime: cert.notBefore.toISOString(),
        validityEndTime: cert.notAfter.toISOString(),
        readyForRenewal: false,
    };
}

const byType: Record<string, (inputs: Inputs) => Promise<Inputs>> = {
    "tls:index/privateKey:PrivateKey": privateKey,
    "tls:index/selfSignedCert:SelfSignedCert": selfSignedCert,
    "tls:index/certRequest:CertRequest": certRequest,
    "tls:index/locallySignedCert:LocallySignedCert": locallySignedCert,
};

/**
 * Like the provider, the same inputs keep the same key or certificate: within one test process a
 * resource evaluated twice with identical inputs gets the same outputs, as `pulumi up` would.
 */
const cache = new Map<string, Promise<Inputs>>();

export function isTlsType(type: string): boolean {
    return type in byType;
}

export function tlsState(type: string, name: string, inputs: Inputs): Promise<Inputs> {
    const key = `${type}::${name}::${JSON.stringify(inputs)}`;
    let state = cache.get(key);
    if (!state) {
        state = byType[type](inputs);
        cache.set(key, state);
    }
    return state;
}
