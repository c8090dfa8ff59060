//! Verdicts on the committed fixtures: `tests/fixtures/pdf/cases.json` says
//! what make.py built each file to be; the verifier must find exactly that.

use std::path::{Path, PathBuf};

use super::*;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pdf")
}

fn trust(crl: bool) -> TrustStore {
    let pki = |f: &str| dir().join("pki").join(f).to_string_lossy().into_owned();
    let crls = if crl { vec![pki("*.crl")] } else { vec![] };
    TrustStore::load(&[pki("root.pem")], &[pki("intermediate.pem")], &crls).unwrap()
}

fn verifier() -> Verifier {
    Verifier {
        trust: trust(true),
        allow_sha1: false,
        max_file_size: 64 << 20,
    }
}

fn cases() -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(dir().join("cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_fixture_gets_the_verdict_it_was_built_for() {
    let v = verifier();
    for (file, case) in cases() {
        let got = v.verify_file(&dir().join(&file));
        let Some(expected) = case["signatures"].as_array() else {
            assert!(
                got.is_err(),
                "{file}: a broken file is refused, got {got:?}"
            );
            continue;
        };
        let report = got.unwrap_or_else(|e| panic!("{file}: {e}"));
        let reasons: Vec<Option<&str>> = report
            .signatures
            .iter()
            .map(|s| s.reason.map(Reason::code))
            .collect();
        let want: Vec<Option<&str>> = expected.iter().map(|s| s["reason"].as_str()).collect();
        assert_eq!(reasons, want, "{file}: {}", case["note"]);
        for (s, e) in report.signatures.iter().zip(expected) {
            let time = e["time"].as_str().unwrap();
            let want_source = if time == "timestamp" {
                TimeSource::Timestamp
            } else {
                TimeSource::Signed
            };
            if s.valid() {
                assert_eq!(s.time_source, want_source, "{file}");
            }
            assert!(
                !s.signer.is_empty() && s.subject.contains(&format!("CN={}", s.signer)),
                "{file}: {s:?}"
            );
            assert!(
                !s.cert_serial.is_empty() && s.issuer.contains("CN=Test Intermediate")
                    || file == "untrusted.pdf"
            );
        }
    }
}

#[test]
fn the_sha256_is_the_digest_of_the_whole_file() {
    let path = dir().join("person.pdf");
    let report = verifier().verify_file(&path).unwrap();
    let want =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &std::fs::read(&path).unwrap());
    assert_eq!(report.sha256, hex::encode(want.as_ref()));
}

#[test]
fn the_signer_and_the_time_come_from_the_certificate_and_signed_attributes() {
    let report = verifier().verify_file(&dir().join("person.pdf")).unwrap();
    let s = &report.signatures[0];
    assert_eq!(s.signer, "Nguyễn Văn An");
    assert_eq!(
        s.subject,
        "CN=Nguyễn Văn An,OU=Lãnh đạo,O=Sở Nội vụ tỉnh Hà Giang,C=VN"
    );
    assert_eq!(s.cert_serial, "65", "serial 101 in make.py");
    assert_eq!(
        s.time_source,
        TimeSource::Signed,
        "the signed signingTime, not the file's mtime"
    );
    assert!(s.time > 1_700_000_000, "signed when make.py ran");
}

#[test]
fn sha1_is_accepted_only_when_allowed() {
    let mut v = verifier();
    v.allow_sha1 = true;
    let report = v.verify_file(&dir().join("sha1.pdf")).unwrap();
    assert_eq!(report.signatures[0].reason, None);
}

#[test]
fn without_the_crl_a_revoked_certificate_is_not_known_revoked() {
    let mut v = verifier();
    v.trust = trust(false);
    let report = v.verify_file(&dir().join("revoked.pdf")).unwrap();
    assert_eq!(report.signatures[0].reason, None);
}

#[test]
fn an_unsigned_pdf_has_no_signatures() {
    let report = verifier().verify_file(&dir().join("unsigned.pdf")).unwrap();
    assert!(report.signatures.is_empty());
}

fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
    f
}

/// An incremental update after `pdf`'s last revision holding `object` as object `n`.
fn append_update(pdf: &[u8], n: u32, object: &[u8]) -> Vec<u8> {
    let mut out = pdf.to_vec();
    let at = out.len();
    out.extend_from_slice(format!("{n} 0 obj\n").as_bytes());
    out.extend_from_slice(object);
    out.extend_from_slice(b"\nendobj\n");
    let xref = out.len();
    let prev = startxref_of(pdf);
    out.extend_from_slice(
        format!(
            "xref\n{n} 1\n{at:010} 00000 n \ntrailer\n<< /Size {} /Root 1 0 R /Prev {prev} >>\nstartxref\n{xref}\n%%EOF\n",
            n + 1
        )
        .as_bytes(),
    );
    out
}

#[test]
fn a_later_revision_changing_the_page_is_a_modification_and_adding_objects_is_not() {
    let person = std::fs::read(dir().join("person.pdf")).unwrap();
    // Object 3 is the page in make.py's base document.
    let page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 100 100] /Contents 4 0 R >>";
    let changed = write_temp(&append_update(&person, 3, page));
    let r = verifier().verify_file(changed.path()).unwrap();
    assert_eq!(r.signatures[0].reason, Some(Reason::ModifiedAfterSigning));
    let added = write_temp(&append_update(
        &person,
        900,
        b"<< /Type /Annot /Subtype /Text /Contents (ghi chu) >>",
    ));
    let r = verifier().verify_file(added.path()).unwrap();
    assert_eq!(
        r.signatures[0].reason, None,
        "a new object alone changes nothing shown"
    );
}

#[test]
fn hostile_updates_are_refused_in_bounded_work() {
    let person = std::fs::read(dir().join("person.pdf")).unwrap();
    let deep = [b"[".repeat(100_000), b"]".repeat(100_000)].concat();
    let nested = write_temp(&append_update(&person, 3, &deep));
    let r = verifier().verify_file(nested.path()).unwrap();
    assert_eq!(
        r.signatures[0].reason,
        Some(Reason::ModifiedAfterSigning),
        "cannot be shown harmless"
    );
    let huge =
        b"<< /Type /ObjStm /N 99999999999 /First 5 /Length 999999999999 >>\nstream\nxx\nendstream";
    let long = write_temp(&append_update(&person, 3, huge));
    let r = verifier().verify_file(long.path()).unwrap();
    assert_eq!(r.signatures[0].reason, Some(Reason::ModifiedAfterSigning));
}

#[test]
fn byte_ranges_that_leave_part_of_the_file_out_are_refused() {
    let person = std::fs::read(dir().join("person.pdf")).unwrap();
    let text = String::from_utf8_lossy(&person);
    let at = text.find("/ByteRange").unwrap();
    let close = at + text[at..].find(']').unwrap();
    let original = &text[at..=close];
    let open = original.find('[').unwrap();
    let nums: Vec<u64> = original[open + 1..original.len() - 1]
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    // Same length, first range starting one byte late: byte 0 is no longer covered.
    let mut shifted = format!("/ByteRange [1 {} {} {}]", nums[1] - 1, nums[2], nums[3]);
    while shifted.len() < original.len() {
        shifted.insert(12, ' ');
    }
    let mut bytes = person.clone();
    bytes[at..=close].copy_from_slice(shifted.as_bytes());
    let r = verifier().verify_file(write_temp(&bytes).path()).unwrap();
    assert_eq!(r.signatures[0].reason, Some(Reason::ByteRange));
}

#[test]
fn files_over_the_size_limit_are_refused_unread() {
    let mut v = verifier();
    v.max_file_size = 100;
    let err = v.verify_file(&dir().join("person.pdf")).unwrap_err();
    assert!(matches!(err, PdfError::TooLarge { .. }), "{err}");
}

/// The last `startxref` value of a whole file in memory (the tests build updates with it).
fn startxref_of(pdf: &[u8]) -> u64 {
    let at = memchr::memmem::rfind(pdf, b"startxref").expect("startxref");
    objects::Parser::new(pdf, at + 9).uint().expect("offset")
}
