//! Digest and signature algorithms, from their identifiers to aws-lc-rs:
//! RSA PKCS#1 v1.5 and PSS, ECDSA on P-256 and P-384, SHA-1/256/384/512.

use aws_lc_rs::{digest, signature};
use der::asn1::ObjectIdentifier as Oid;
use der::Decode;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::Reason;

const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
const RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const RSA_SHA1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
const RSA_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
const RSA_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
const RSA_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
const RSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
const MGF1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.8");
const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const ECDSA_SHA1: Oid = Oid::new_unwrap("1.2.840.10045.4.1");
const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
const P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
const P384: Oid = Oid::new_unwrap("1.3.132.0.34");

/// A digest algorithm docflow computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// The digest algorithm an identifier names.
    pub(crate) fn of(oid: &Oid) -> Option<Hash> {
        Some(match *oid {
            SHA1 => Hash::Sha1,
            SHA256 => Hash::Sha256,
            SHA384 => Hash::Sha384,
            SHA512 => Hash::Sha512,
            _ => return None,
        })
    }

    pub(crate) fn algorithm(self) -> &'static digest::Algorithm {
        match self {
            Hash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha256 => &digest::SHA256,
            Hash::Sha384 => &digest::SHA384,
            Hash::Sha512 => &digest::SHA512,
        }
    }

    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.algorithm(), data).as_ref().to_vec()
    }
}

/// The key type of a certificate: its algorithm and, for EC, its curve.
enum KeyType {
    Rsa,
    P256,
    P384,
}

fn key_type(key: &SubjectPublicKeyInfoOwned) -> Option<KeyType> {
    match key.algorithm.oid {
        RSA => Some(KeyType::Rsa),
        EC_PUBLIC_KEY => match key.algorithm.parameters.as_ref()?.decode_as::<Oid>().ok()? {
            P256 => Some(KeyType::P256),
            P384 => Some(KeyType::P384),
            _ => None,
        },
        _ => None,
    }
}

/// The hash a signature algorithm implies, or `given` for plain key algorithms
/// (CMS signers may name just `rsaEncryption` and take the digest algorithm).
pub(crate) fn signature_hash(alg: &AlgorithmIdentifierOwned, given: Option<Hash>) -> Option<Hash> {
    match alg.oid {
        RSA_SHA1 | ECDSA_SHA1 => Some(Hash::Sha1),
        RSA_SHA256 | ECDSA_SHA256 => Some(Hash::Sha256),
        RSA_SHA384 | ECDSA_SHA384 => Some(Hash::Sha384),
        RSA_SHA512 | ECDSA_SHA512 => Some(Hash::Sha512),
        RSA_PSS => pss_params(alg).map(|(h, _)| h),
        RSA | EC_PUBLIC_KEY => given,
        _ => None,
    }
}

/// The hash and salt length of RSASSA-PSS parameters, when the mask uses the same hash.
fn pss_params(alg: &AlgorithmIdentifierOwned) -> Option<(Hash, usize)> {
    let der = der::Encode::to_der(alg.parameters.as_ref()?).ok()?;
    let params = pkcs1::RsaPssParams::from_der(&der).ok()?;
    let hash = Hash::of(&params.hash.oid)?;
    let mgf_hash = params.mask_gen.parameters.as_ref().map(|p| p.oid);
    let same = params.mask_gen.oid == MGF1 && mgf_hash.as_ref().and_then(Hash::of) == Some(hash);
    same.then_some((hash, usize::from(params.salt_len)))
}

/// RSASSA-PSS with the salt length the parameters give (RustCrypto `rsa`).
fn verify_pss(key: &[u8], hash: Hash, salt: usize, msg: &[u8], sig: &[u8]) -> Result<(), Reason> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPublicKey::from_pkcs1_der(key).map_err(|_| Reason::Malformed)?;
    if key.size() * 8 < 2048 {
        return Err(Reason::UnsupportedAlgorithm);
    }
    let scheme = match hash {
        Hash::Sha256 => rsa::Pss::new_with_salt::<sha2::Sha256>(salt),
        Hash::Sha384 => rsa::Pss::new_with_salt::<sha2::Sha384>(salt),
        Hash::Sha512 => rsa::Pss::new_with_salt::<sha2::Sha512>(salt),
        Hash::Sha1 => return Err(Reason::UnsupportedAlgorithm),
    };
    key.verify(scheme, &hash.digest(msg), sig)
        .map_err(|_| Reason::BadSignature)
}

/// Verifies `sig` over `msg` with `key`, for the signature algorithm `alg`
/// (its hash, or `given` when `alg` names only the key type).
pub(crate) fn verify(
    key: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    given: Option<Hash>,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), Reason> {
    let hash = signature_hash(alg, given).ok_or(Reason::UnsupportedAlgorithm)?;
    let kt = key_type(key).ok_or(Reason::UnsupportedAlgorithm)?;
    let pss = alg.oid == RSA_PSS;
    let key_bytes = key.subject_public_key.as_bytes().ok_or(Reason::Malformed)?;
    if let (true, KeyType::Rsa, Some((_, salt))) = (pss, &kt, pss_params(alg)) {
        return verify_pss(key_bytes, hash, salt, msg, sig);
    }
    let ecdsa = matches!(
        alg.oid,
        ECDSA_SHA1 | ECDSA_SHA256 | ECDSA_SHA384 | ECDSA_SHA512 | EC_PUBLIC_KEY
    );
    let params: &'static dyn signature::VerificationAlgorithm = match (kt, hash, pss, ecdsa) {
        (KeyType::Rsa, Hash::Sha1, false, false) => {
            &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
        }
        (KeyType::Rsa, Hash::Sha256, false, false) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (KeyType::Rsa, Hash::Sha384, false, false) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (KeyType::Rsa, Hash::Sha512, false, false) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (KeyType::P256, Hash::Sha1, _, true) => &signature::ECDSA_P256_SHA1_ASN1,
        (KeyType::P256, Hash::Sha256, _, true) => &signature::ECDSA_P256_SHA256_ASN1,
        (KeyType::P256, Hash::Sha384, _, true) => &signature::ECDSA_P256_SHA384_ASN1,
        (KeyType::P256, Hash::Sha512, _, true) => &signature::ECDSA_P256_SHA512_ASN1,
        (KeyType::P384, Hash::Sha256, _, true) => &signature::ECDSA_P384_SHA256_ASN1,
        (KeyType::P384, Hash::Sha384, _, true) => &signature::ECDSA_P384_SHA384_ASN1,
        (KeyType::P384, Hash::Sha512, _, true) => &signature::ECDSA_P384_SHA512_ASN1,
        _ => return Err(Reason::UnsupportedAlgorithm),
    };
    signature::UnparsedPublicKey::new(params, key_bytes)
        .verify(msg, sig)
        .map_err(|_| Reason::BadSignature)
}
