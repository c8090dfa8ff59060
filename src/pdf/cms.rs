//! The CMS SignedData inside a PDF signature: its signer, the digest it
//! signed, the signature over the signed attributes, the signing time and
//! the RFC 3161 timestamp token (RustCrypto `cms`, `x509-tsp`).

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{ObjectIdentifier as Oid, OctetString};
use der::{Decode, Encode, Tagged};
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::Certificate;
use x509_tsp::MessageImprint;

use super::algo::{self, Hash};
use super::chain::{extension, TrustStore};
use super::Reason;

const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
const TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
const SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");
const TIMESTAMP_TOKEN: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.14");

/// A parsed signature blob.
pub(crate) struct Cms {
    signed: SignedData,
    certs: Vec<Certificate>,
}

/// The signer of a verified SignedData.
pub(crate) struct Signer {
    pub(crate) cert: Certificate,
    pub(crate) hash: Hash,
    /// The signed `signingTime`, Unix seconds.
    pub(crate) signing_time: Option<i64>,
}

impl Cms {
    /// Parses DER bytes (trailing padding of the `/Contents` hole is ignored).
    pub(crate) fn parse(der: &[u8]) -> Result<Cms, Reason> {
        let mut reader = der::SliceReader::new(der).map_err(|_| Reason::Malformed)?;
        let info =
            <ContentInfo as der::Decode>::decode(&mut reader).map_err(|_| Reason::Malformed)?;
        Cms::from_content_info(&info)
    }

    fn from_content_info(info: &ContentInfo) -> Result<Cms, Reason> {
        if info.content_type != SIGNED_DATA {
            return Err(Reason::Malformed);
        }
        let signed: SignedData = info.content.decode_as().map_err(|_| Reason::Malformed)?;
        let certs = signed
            .certificates
            .iter()
            .flat_map(|set| set.0.iter())
            .filter_map(|c| match c {
                CertificateChoices::Certificate(c) => Some(c.clone()),
                CertificateChoices::Other(_) => None,
            })
            .collect();
        Ok(Cms { signed, certs })
    }

    /// Certificates carried by the signature (candidate intermediates).
    pub(crate) fn certificates(&self) -> &[Certificate] {
        &self.certs
    }

    /// Whether this is a document timestamp (RFC 3161 token), not a signer's signature.
    pub(crate) fn is_document_timestamp(&self) -> bool {
        self.signed.encap_content_info.econtent_type == TST_INFO
    }

    fn signer_info(&self) -> Result<&SignerInfo, Reason> {
        let infos = &self.signed.signer_infos.0;
        match infos.len() {
            1 => Ok(infos.get(0).expect("one signer")),
            _ => Err(Reason::Malformed),
        }
    }

    /// The digest algorithm of the signer (what the byte range must be hashed with).
    pub(crate) fn hash(&self) -> Result<Hash, Reason> {
        Hash::of(&self.signer_info()?.digest_alg.oid).ok_or(Reason::UnsupportedAlgorithm)
    }

    /// The signer's certificate, as the signer identifier names it.
    pub(crate) fn signer_cert(&self) -> Result<&Certificate, Reason> {
        let sid = &self.signer_info()?.sid;
        self.certs
            .iter()
            .find(|c| match sid {
                SignerIdentifier::IssuerAndSerialNumber(ias) => {
                    c.tbs_certificate.issuer == ias.issuer
                        && c.tbs_certificate.serial_number == ias.serial_number
                }
                SignerIdentifier::SubjectKeyIdentifier(ski) => extension::<SubjectKeyIdentifier>(
                    c,
                    &const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
                )
                .is_some_and(|k| k.0 == ski.0),
            })
            .ok_or(Reason::Malformed)
    }

    /// Checks the signed `messageDigest` against `content_digest` and the
    /// signature over the signed attributes with the signer's key.
    pub(crate) fn verify_signer(&self, content_digest: &[u8]) -> Result<Signer, Reason> {
        let info = self.signer_info()?;
        let hash = self.hash()?;
        let cert = self.signer_cert()?.clone();
        // Without signed attributes the signature covers the content itself;
        // PAdES requires them and docflow does not verify the other form.
        let attrs = info
            .signed_attrs
            .as_ref()
            .ok_or(Reason::UnsupportedAlgorithm)?;
        let value = |oid: Oid| {
            attrs
                .iter()
                .find(|a| a.oid == oid)
                .and_then(|a| a.values.get(0))
        };
        let digest: OctetString = value(MESSAGE_DIGEST)
            .ok_or(Reason::Malformed)?
            .decode_as()
            .map_err(|_| Reason::Malformed)?;
        if digest.as_bytes() != content_digest {
            return Err(Reason::DigestMismatch);
        }
        let signed = attrs.to_der().map_err(|_| Reason::Malformed)?;
        let key = &cert.tbs_certificate.subject_public_key_info;
        algo::verify(
            key,
            &info.signature_algorithm,
            Some(hash),
            &signed,
            info.signature.as_bytes(),
        )?;
        let signing_time = value(SIGNING_TIME)
            .and_then(|v| v.to_der().ok())
            .and_then(|der| x509_cert::time::Time::from_der(&der).ok())
            .map(|t| t.to_unix_duration().as_secs() as i64);
        Ok(Signer {
            cert,
            hash,
            signing_time,
        })
    }

    /// The RFC 3161 token in the unsigned attributes, verified: it must
    /// stamp this signature's value and chain to a trust anchor. Its time, if any.
    pub(crate) fn timestamp(
        &self,
        trust: &TrustStore,
        allow_sha1: bool,
    ) -> Result<Option<i64>, Reason> {
        let info = self.signer_info()?;
        let Some(token) = info
            .unsigned_attrs
            .iter()
            .flat_map(|a| a.iter())
            .find(|a| a.oid == TIMESTAMP_TOKEN)
            .and_then(|a| a.values.get(0))
        else {
            return Ok(None);
        };
        let bad = |_| Reason::TimestampInvalid;
        let token: ContentInfo = token.decode_as().map_err(bad)?;
        let tst = Cms::from_content_info(&token).map_err(|_| Reason::TimestampInvalid)?;
        let encap = &tst.signed.encap_content_info;
        if encap.econtent_type != TST_INFO {
            return Err(Reason::TimestampInvalid);
        }
        let content: OctetString = encap
            .econtent
            .as_ref()
            .ok_or(Reason::TimestampInvalid)?
            .decode_as()
            .map_err(bad)?;
        let (imprint, gen_time) = tst_fields(content.as_bytes()).ok_or(Reason::TimestampInvalid)?;
        let imprint_hash = Hash::of(&imprint.hash_algorithm.oid).ok_or(Reason::TimestampInvalid)?;
        if imprint_hash.digest(info.signature.as_bytes()) != imprint.hashed_message.as_bytes() {
            return Err(Reason::TimestampInvalid);
        }
        let tsa_hash = tst.hash().map_err(|_| Reason::TimestampInvalid)?;
        let signer = tst
            .verify_signer(&tsa_hash.digest(content.as_bytes()))
            .map_err(|_| Reason::TimestampInvalid)?;
        let time = gen_time;
        trust
            .validate(
                &signer.cert,
                tst.certificates(),
                time,
                allow_sha1,
                Some(time),
            )
            .map_err(|_| Reason::TimestampInvalid)?;
        Ok(Some(time))
    }
}

/// The message imprint and genTime of a TSTInfo. Its fields are decoded one
/// by one because genTime may carry fractions of a second (RFC 3161 allows
/// them, DER's GeneralizedTime type in `der` does not), so `x509_tsp::TstInfo`
/// refuses most real tokens.
fn tst_fields(tst_info: &[u8]) -> Option<(MessageImprint, i64)> {
    let fields: Vec<der::Any> = Vec::from_der(tst_info).ok()?;
    // version, policy, messageImprint, serialNumber, genTime, ...
    let imprint: MessageImprint = fields.get(2)?.decode_as().ok()?;
    let gen_time = fields
        .get(4)
        .filter(|f| f.tag() == der::Tag::GeneralizedTime)?;
    let text = std::str::from_utf8(gen_time.value()).ok()?;
    let whole = text.strip_suffix('Z')?.split('.').next()?;
    let t = chrono::NaiveDateTime::parse_from_str(whole, "%Y%m%d%H%M%S").ok()?;
    Some((imprint, t.and_utc().timestamp()))
}
