//! Trust: the configured anchors, intermediates and CRLs, and the chain from
//! a signer's certificate to an anchor, checked at the signing time.

use std::path::Path;

use der::{Decode, Encode};
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::Certificate;

use super::algo::{self, Hash};
use super::Reason;

/// Longest chain searched, anchor included.
const MAX_DEPTH: usize = 8;

/// The certificates and CRLs a PDF source trusts (README "Verified signatures (PDF)").
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    anchors: Vec<Certificate>,
    intermediates: Vec<Certificate>,
    crls: Vec<CertificateList>,
}

/// Why the trust files could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct TrustError {
    pub path: String,
    pub what: String,
}

impl TrustStore {
    /// Loads the files the globs name: PEM certificates, and CRLs in DER or PEM.
    pub fn load(
        anchors: &[String],
        intermediates: &[String],
        crls: &[String],
    ) -> Result<TrustStore, TrustError> {
        let mut store = TrustStore::default();
        for path in expand(anchors)? {
            store.anchors.extend(read_certs(&path)?);
        }
        if store.anchors.is_empty() {
            return Err(TrustError {
                path: anchors.join(", "),
                what: "no trust anchor certificate found".into(),
            });
        }
        for path in expand(intermediates)? {
            store.intermediates.extend(read_certs(&path)?);
        }
        for path in expand(crls)? {
            store.crls.extend(read_crls(&path)?);
        }
        Ok(store)
    }

    /// Counts of anchors, intermediates and CRLs, for the log.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.anchors.len(),
            self.intermediates.len(),
            self.crls.len(),
        )
    }

    /// The same trust without CRLs (the comparison with pyHanko, which checks none offline).
    pub fn without_crls(&self) -> TrustStore {
        TrustStore {
            crls: Vec::new(),
            ..self.clone()
        }
    }

    /// Checks the chain of `leaf` at `time` (Unix seconds), with `extra`
    /// certificates from the signature. A revocation counts unless
    /// `proven_before` (a verified timestamp) precedes it.
    pub(crate) fn validate(
        &self,
        leaf: &Certificate,
        extra: &[Certificate],
        time: i64,
        allow_sha1: bool,
        proven_before: Option<i64>,
    ) -> Result<(), Reason> {
        let mut path = vec![leaf.clone()];
        if !self.anchors.contains(leaf) && !self.build(&mut path, extra) {
            return Err(Reason::Untrusted);
        }
        let weak = path
            .windows(2)
            .any(|w| algo::signature_hash(&w[0].signature_algorithm, None) == Some(Hash::Sha1));
        if weak && !allow_sha1 {
            return Err(Reason::WeakDigest);
        }
        // Issuers below the anchor must be CAs allowed to sign certificates.
        for (depth, ca) in path.iter().enumerate().skip(1) {
            let is_anchor = depth == path.len() - 1;
            if !is_anchor && !may_issue(ca, depth - 1) {
                return Err(Reason::CaConstraints);
            }
        }
        for cert in &path {
            let v = &cert.tbs_certificate.validity;
            let from = v.not_before.to_unix_duration().as_secs() as i64;
            let to = v.not_after.to_unix_duration().as_secs() as i64;
            if time < from || time > to {
                return Err(Reason::CertExpired);
            }
        }
        if let Some(ku) = extension::<KeyUsage>(leaf, &const_oid::db::rfc5280::ID_CE_KEY_USAGE) {
            if !ku.digital_signature() && !ku.non_repudiation() {
                return Err(Reason::KeyUsage);
            }
        }
        for w in path.windows(2) {
            if let Some(revoked_at) = self.revocation(&w[0], &w[1]) {
                if proven_before.is_none_or(|t| revoked_at <= t) {
                    return Err(Reason::Revoked);
                }
            }
        }
        Ok(())
    }

    /// Extends `path` up to an anchor, depth first; false if there is none.
    fn build(&self, path: &mut Vec<Certificate>, extra: &[Certificate]) -> bool {
        let cert = path.last().expect("path starts with the leaf").clone();
        let issuer = &cert.tbs_certificate.issuer;
        for anchor in self
            .anchors
            .iter()
            .filter(|a| &a.tbs_certificate.subject == issuer)
        {
            if signed_by(&cert, anchor) {
                path.push(anchor.clone());
                return true;
            }
        }
        if path.len() >= MAX_DEPTH {
            return false;
        }
        let candidates = extra.iter().chain(&self.intermediates);
        for ca in candidates.filter(|c| &c.tbs_certificate.subject == issuer) {
            if path.contains(ca) || !signed_by(&cert, ca) {
                continue;
            }
            path.push(ca.clone());
            if self.build(path, extra) {
                return true;
            }
            path.pop();
        }
        false
    }

    /// When `cert` was revoked, per a CRL that `issuer` signed.
    fn revocation(&self, cert: &Certificate, issuer: &Certificate) -> Option<i64> {
        let serial = &cert.tbs_certificate.serial_number;
        for crl in &self.crls {
            let tbs = &crl.tbs_cert_list;
            if tbs.issuer != issuer.tbs_certificate.subject {
                continue;
            }
            let Ok(signed) = tbs.to_der() else { continue };
            let Some(sig) = crl.signature.as_bytes() else {
                continue;
            };
            let key = &issuer.tbs_certificate.subject_public_key_info;
            if algo::verify(key, &crl.signature_algorithm, None, &signed, sig).is_err() {
                tracing::warn!(issuer = %tbs.issuer, "CRL signature does not verify; CRL ignored");
                continue;
            }
            let listed = tbs.revoked_certificates.iter().flatten();
            if let Some(entry) = listed.into_iter().find(|r| &r.serial_number == serial) {
                return Some(entry.revocation_date.to_unix_duration().as_secs() as i64);
            }
        }
        None
    }
}

/// Whether `ca` may issue certificates with `below` CA certificates under it.
fn may_issue(ca: &Certificate, below: usize) -> bool {
    let Some(bc) =
        extension::<BasicConstraints>(ca, &const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
    else {
        return false;
    };
    if !bc.ca
        || bc
            .path_len_constraint
            .is_some_and(|n| usize::from(n) < below)
    {
        return false;
    }
    extension::<KeyUsage>(ca, &const_oid::db::rfc5280::ID_CE_KEY_USAGE)
        .is_none_or(|ku| ku.key_cert_sign())
}

/// Whether `issuer`'s key verifies `cert`'s signature.
pub(crate) fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let (Ok(tbs), Some(sig)) = (cert.tbs_certificate.to_der(), cert.signature.as_bytes()) else {
        return false;
    };
    let key = &issuer.tbs_certificate.subject_public_key_info;
    algo::verify(key, &cert.signature_algorithm, None, &tbs, sig).is_ok()
}

/// A certificate extension, decoded.
pub(crate) fn extension<'a, T: Decode<'a>>(
    cert: &'a Certificate,
    oid: &der::asn1::ObjectIdentifier,
) -> Option<T> {
    let ext = cert
        .tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| &e.extn_id == oid)?;
    T::from_der(ext.extn_value.as_bytes()).ok()
}

fn expand(globs: &[String]) -> Result<Vec<std::path::PathBuf>, TrustError> {
    let mut out = Vec::new();
    for g in globs {
        let paths = glob::glob(g).map_err(|e| TrustError {
            path: g.clone(),
            what: e.to_string(),
        })?;
        out.extend(paths.filter_map(Result::ok).filter(|p| p.is_file()));
    }
    out.sort();
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>, TrustError> {
    std::fs::read(path).map_err(|e| TrustError {
        path: path.display().to_string(),
        what: e.to_string(),
    })
}

fn read_certs(path: &Path) -> Result<Vec<Certificate>, TrustError> {
    let bytes = read(path)?;
    let parsed = if bytes.starts_with(b"-----") || bytes.windows(10).any(|w| w == b"-----BEGIN") {
        Certificate::load_pem_chain(&bytes)
    } else {
        Certificate::from_der(&bytes).map(|c| vec![c])
    };
    parsed.map_err(|e| TrustError {
        path: path.display().to_string(),
        what: format!("not a certificate (PEM or DER): {e}"),
    })
}

fn read_crls(path: &Path) -> Result<Vec<CertificateList>, TrustError> {
    let bytes = read(path)?;
    let bad = |e: String| TrustError {
        path: path.display().to_string(),
        what: format!("not a CRL (DER or PEM): {e}"),
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return CertificateList::from_der(&bytes)
            .map(|c| vec![c])
            .map_err(|e| bad(e.to_string()));
    };
    if !text.contains("-----BEGIN") {
        return CertificateList::from_der(&bytes)
            .map(|c| vec![c])
            .map_err(|e| bad(e.to_string()));
    }
    let mut out = Vec::new();
    for block in text.split("-----BEGIN").skip(1) {
        let pem = format!("-----BEGIN{block}");
        let (label, der) =
            der::pem::decode_vec(pem.trim_end().as_bytes()).map_err(|e| bad(e.to_string()))?;
        if label != "X509 CRL" {
            return Err(bad(format!("PEM label {label:?}, expected \"X509 CRL\"")));
        }
        out.push(CertificateList::from_der(&der).map_err(|e| bad(e.to_string()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        format!(
            "{}/tests/fixtures/pdf/pki/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    #[test]
    fn crls_load_from_der_and_from_pem() {
        let der_path = fixture("intermediate.crl");
        let der_crls = read_crls(Path::new(&der_path)).unwrap();
        assert_eq!(der_crls.len(), 1);
        let der = std::fs::read(&der_path).unwrap();
        let pem = der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, &der).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pem_path = dir.path().join("two.pem");
        std::fs::write(&pem_path, format!("{pem}{pem}")).unwrap();
        let pem_crls = read_crls(&pem_path).unwrap();
        assert_eq!(pem_crls.len(), 2);
        assert_eq!(pem_crls[0], der_crls[0]);
    }

    #[test]
    fn a_store_without_anchors_is_refused() {
        let err = TrustStore::load(&[fixture("none-*.pem")], &[], &[]).unwrap_err();
        assert!(err.what.contains("no trust anchor"), "{err}");
    }
}
