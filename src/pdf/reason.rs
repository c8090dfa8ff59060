//! Why a PDF signature is not valid: one code per verification step, with the
//! Vietnamese text shown to users (README "Verified signatures (PDF)").

/// Why a signature is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The byte range is not the whole file (or revision) less the `/Contents` hole.
    ByteRange,
    /// The signature blob is not a CMS SignedData docflow can read.
    Malformed,
    /// The CMS `messageDigest` differs from the digest of the byte range.
    DigestMismatch,
    /// The signature over the signed attributes does not verify with the signer's key.
    BadSignature,
    /// SHA-1 (refused unless `allow_sha1`).
    WeakDigest,
    /// An algorithm docflow does not verify (or an RSA key under 2048 bits).
    UnsupportedAlgorithm,
    /// No chain from the signer's certificate to a trust anchor.
    Untrusted,
    /// A certificate of the chain was not valid at the signing time.
    CertExpired,
    /// An issuing certificate is not a CA allowed to sign certificates.
    CaConstraints,
    /// The signer's certificate allows neither digitalSignature nor nonRepudiation.
    KeyUsage,
    /// A certificate of the chain is revoked by a configured CRL.
    Revoked,
    /// The signature's timestamp token does not verify.
    TimestampInvalid,
    /// A later revision changed more than signatures, their fields and annotations.
    ModifiedAfterSigning,
}

impl Reason {
    /// Every reason, in the order the README lists them.
    pub const ALL: [Reason; 13] = [
        Reason::ByteRange,
        Reason::Malformed,
        Reason::DigestMismatch,
        Reason::BadSignature,
        Reason::WeakDigest,
        Reason::UnsupportedAlgorithm,
        Reason::Untrusted,
        Reason::CertExpired,
        Reason::CaConstraints,
        Reason::KeyUsage,
        Reason::Revoked,
        Reason::TimestampInvalid,
        Reason::ModifiedAfterSigning,
    ];

    /// The code used in the API, metrics labels and the store.
    pub fn code(self) -> &'static str {
        match self {
            Reason::ByteRange => "byte_range",
            Reason::Malformed => "malformed",
            Reason::DigestMismatch => "digest_mismatch",
            Reason::BadSignature => "bad_signature",
            Reason::WeakDigest => "weak_digest",
            Reason::UnsupportedAlgorithm => "unsupported_algorithm",
            Reason::Untrusted => "untrusted",
            Reason::CertExpired => "cert_expired",
            Reason::CaConstraints => "ca_constraints",
            Reason::KeyUsage => "key_usage",
            Reason::Revoked => "revoked",
            Reason::TimestampInvalid => "timestamp_invalid",
            Reason::ModifiedAfterSigning => "modified_after_signing",
        }
    }

    /// What the code means, for users.
    pub fn text_vi(self) -> &'static str {
        match self {
            Reason::ByteRange => {
                "Vùng dữ liệu được ký không bao phủ toàn bộ tệp (ngoài phần chứa chữ ký)"
            }
            Reason::Malformed => "Cấu trúc chữ ký số (CMS) không đọc được",
            Reason::DigestMismatch => {
                "Nội dung tệp đã bị thay đổi sau khi ký (giá trị băm không khớp)"
            }
            Reason::BadSignature => "Chữ ký không khớp với khóa công khai của chứng thư số",
            Reason::WeakDigest => "Thuật toán băm SHA-1 đã lỗi thời, không được chấp nhận",
            Reason::UnsupportedAlgorithm => "Thuật toán ký hoặc băm không được hỗ trợ",
            Reason::Untrusted => "Chứng thư số không do tổ chức chứng thực được tin cậy cấp",
            Reason::CertExpired => "Chứng thư số hết hạn hoặc chưa có hiệu lực tại thời điểm ký",
            Reason::CaConstraints => "Chứng thư cấp trung gian không có quyền cấp chứng thư số",
            Reason::KeyUsage => "Chứng thư số không được phép dùng để ký số",
            Reason::Revoked => "Chứng thư số đã bị thu hồi",
            Reason::TimestampInvalid => "Dấu thời gian của chữ ký không hợp lệ",
            Reason::ModifiedAfterSigning => "Tài liệu bị sửa đổi nội dung sau khi ký",
        }
    }

    /// The reason of a stored code.
    pub(crate) fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_round_trip() {
        let codes: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), Reason::ALL.len());
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
            assert!(!r.text_vi().is_empty());
        }
    }
}
