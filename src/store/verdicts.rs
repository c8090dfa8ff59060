//! Verified signatures of signed files, kept by the file's sha256 (README
//! "Verified signatures (PDF)"): one key per signature, written with the
//! batch that read the file, read back for `/api/v1/documents`.

use super::codec::{DecodeError, Reader, Writer};
use super::keys::PREFIX_VERDICT;
use super::{Store, StoreError};
use crate::model::{Role, SignatureVerdict};
use crate::pdf::{Reason, TimeSource};

const FORMAT_VERDICT: u8 = 1;
/// Length of a verdict key: the prefix, 64 hex digits and the index.
pub(crate) const VERDICT_KEY_LEN: usize = 1 + 64 + 2;

/// `V{sha256}{index}`; the index keeps the file's order in a scan.
pub(crate) fn verdict_key(sha: &str, index: u16) -> Vec<u8> {
    let mut k = Vec::with_capacity(VERDICT_KEY_LEN);
    k.push(PREFIX_VERDICT);
    k.extend_from_slice(sha.as_bytes());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

pub(crate) fn encode_verdict(v: &SignatureVerdict) -> Vec<u8> {
    let mut w = Writer::new(FORMAT_VERDICT);
    w.str(&v.source)
        .u8(v.role.map_or(0, Role::bit))
        .str(v.reason.map_or("", Reason::code))
        .str(&v.signer)
        .str(&v.subject)
        .str(&v.issuer)
        .str(&v.cert_serial)
        .ivar(v.time)
        .str(v.time_source.as_str());
    w.buf
}

/// Decodes a verdict; its index comes from the key.
pub(crate) fn decode_verdict(value: &[u8], index: u16) -> Result<SignatureVerdict, DecodeError> {
    let mut r = Reader::new(value, FORMAT_VERDICT)?;
    let source = r.str()?;
    let role = match r.u8()? {
        0 => None,
        bit => Some(
            Role::ALL
                .into_iter()
                .find(|role| role.bit() == bit)
                .ok_or(DecodeError("bad role in a verdict"))?,
        ),
    };
    let reason = match r.str()?.as_str() {
        "" => None,
        code => Some(Reason::from_code(code).ok_or(DecodeError("unknown reason code"))?),
    };
    let (signer, subject, issuer, cert_serial) = (r.str()?, r.str()?, r.str()?, r.str()?);
    let time = r.ivar()?;
    let source_name = r.str()?;
    let time_source = TimeSource::ALL
        .into_iter()
        .find(|t| t.as_str() == source_name)
        .ok_or(DecodeError("unknown time source"))?;
    if r.remaining() != 0 {
        return Err(DecodeError("trailing bytes after a verdict"));
    }
    Ok(SignatureVerdict {
        source,
        index,
        role,
        reason,
        signer,
        subject,
        issuer,
        cert_serial,
        time,
        time_source,
    })
}

/// Checks a verdict key and value, as a snapshot import and a verify do.
pub(crate) fn check_verdict(key: &[u8], value: &[u8]) -> Result<(), String> {
    if key.len() != VERDICT_KEY_LEN || !key[1..65].iter().all(u8::is_ascii_hexdigit) {
        return Err("signature verdict key is not a sha256 and an index".into());
    }
    let index = u16::from_be_bytes([key[65], key[66]]);
    decode_verdict(value, index)
        .map(drop)
        .map_err(|e| e.to_string())
}

impl Store {
    /// The verified signatures of the file with this sha256, in file order.
    pub(crate) fn verdicts(&self, sha: &str) -> Result<Vec<SignatureVerdict>, StoreError> {
        let mut prefix = vec![PREFIX_VERDICT];
        prefix.extend_from_slice(sha.as_bytes());
        let mut out = Vec::new();
        for item in self.db.scan_prefix(&prefix) {
            let (k, v) = item?;
            if k.len() != VERDICT_KEY_LEN {
                return Err(DecodeError("bad signature verdict key").into());
            }
            out.push(decode_verdict(&v, u16::from_be_bytes([k[65], k[66]]))?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_round_trips_with_its_index_from_the_key() {
        let v = SignatureVerdict {
            source: "signed-pdfs".into(),
            index: 3,
            role: Some(Role::Organization),
            reason: Some(Reason::Revoked),
            signer: "Sở Nội vụ".into(),
            subject: "CN=Sở Nội vụ,C=VN".into(),
            issuer: "CN=CA,C=VN".into(),
            cert_serial: "0A1B".into(),
            time: 1_780_000_000,
            time_source: TimeSource::Timestamp,
        };
        let sha = "ab".repeat(32);
        let key = verdict_key(&sha, 3);
        let value = encode_verdict(&v);
        assert_eq!(decode_verdict(&value, 3).unwrap(), v);
        check_verdict(&key, &value).unwrap();
        assert!(check_verdict(&key[..10], &value).is_err());
        assert!(check_verdict(&key, &value[..value.len() - 1]).is_err());
    }
}
