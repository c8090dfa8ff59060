//! Hostile PDF files through `docflowd check-pdf`: deep nesting, huge
//! declared lengths and table sizes, a 200 MB file. Each is rejected or
//! verified, never a panic, and the process's peak RSS stays bounded
//! (README "Verified signatures (PDF)": the figures quoted there).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// Peak RSS allowed to `check-pdf` on any of these files. A debug build
/// starts at about 29 MiB; a file the verifier read whole, or a table or
/// nesting as large as declared, would cost tens or hundreds of MiB more.
const MAX_RSS_KIB: u64 = 64 * 1024;

fn fixture_pdf(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pdf")
            .join(name),
    )
    .unwrap()
}

/// A config whose one PDF source trusts the fixtures' root and reads files
/// up to `max_file_size`.
fn check_env(max_file_size: &str) -> Env {
    let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pdf/pki");
    Env::new(&format!(
        "[[sources]]\nname = \"signed-pdfs\"\nkind = \"signature\"\nformat = \"pdf\"\npath = \"{{logs}}/*.pdf\"\n\
         max_file_size = \"{max_file_size}\"\ntrust_anchors = [\"{}\"]\nintermediates = [\"{}\"]\n\
         [[sources.role_rules]]\nrole = \"person\"\nsubject_matches = 'OU=Lãnh đạo'\n",
        pki.join("root.pem").display(),
        pki.join("intermediate.pem").display(),
    ))
}

/// Runs `docflowd check-pdf` on `files`; its JSON lines and its peak RSS
/// (KiB), which it reports itself: measured from outside (wait4), a child
/// inherits the test process's own peak across exec.
fn check_pdf(env: &Env, files: &[PathBuf]) -> (Vec<Value>, u64) {
    let out = Command::new(BIN)
        .args(["check-pdf", "-c"])
        .arg(&env.config)
        .args(files)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run docflowd check-pdf");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "check-pdf failed on {files:?}: {stderr}"
    );
    let rss = stderr
        .rsplit_once("peak RSS ")
        .and_then(|(_, r)| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {stderr}"));
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, rss)
}

/// The last `startxref` value of `pdf`.
fn startxref_of(pdf: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(pdf);
    let at = text.rfind("startxref").unwrap() + "startxref".len();
    text[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// `pdf` with an incremental update adding object `n` = `object`.
fn append_update(pdf: &[u8], n: u32, object: &[u8]) -> Vec<u8> {
    let mut out = pdf.to_vec();
    let at = out.len();
    out.extend_from_slice(format!("{n} 0 obj\n").as_bytes());
    out.extend_from_slice(object);
    out.extend_from_slice(b"\nendobj\n");
    let xref = out.len();
    out.extend_from_slice(
        format!(
            "xref\n{n} 1\n{at:010} 00000 n \ntrailer\n<< /Size {} /Root 1 0 R /Prev {} >>\nstartxref\n{xref}\n%%EOF\n",
            n + 1,
            startxref_of(pdf)
        )
        .as_bytes(),
    );
    out
}

/// `pdf` with a raw incremental update `tail` (its own xref and trailer).
fn append_raw(pdf: &[u8], tail: impl FnOnce(u64, u64) -> String) -> Vec<u8> {
    let mut out = pdf.to_vec();
    let tail = tail(out.len() as u64, startxref_of(pdf));
    out.extend_from_slice(tail.as_bytes());
    out
}

/// The hostile files: name, bytes, and the verdict of the person's
/// signature (`None`: the file is refused as a whole).
fn hostile_files() -> Vec<(&'static str, Vec<u8>, Option<&'static str>)> {
    let person = fixture_pdf("person.pdf");
    let deep = [b"[".repeat(1_000_000), b"]".repeat(1_000_000)].concat();
    let deep_dict = [b"<< /A ".repeat(200_000), b">>".repeat(200_000)].concat();
    vec![
        (
            "deep-array.pdf",
            append_update(&person, 3, &deep),
            Some("modified_after_signing"),
        ),
        (
            "deep-dict.pdf",
            append_update(&person, 1, &deep_dict),
            Some("modified_after_signing"),
        ),
        (
            "deep-trailer.pdf",
            append_raw(&person, |at, prev| {
                format!(
                    "xref\n0 0\ntrailer\n<< /Size 5 /Root 1 0 R /Prev {prev} /X {}{} >>\nstartxref\n{at}\n%%EOF\n",
                    "[".repeat(500_000),
                    "]".repeat(500_000)
                )
            }),
            Some("modified_after_signing"),
        ),
        (
            "huge-objstm.pdf",
            append_update(
                &person,
                3,
                b"<< /Type /ObjStm /N 99999999999 /First 5 /Length 999999999999 >>\nstream\nxx\nendstream",
            ),
            Some("modified_after_signing"),
        ),
        (
            "huge-xref-count.pdf",
            append_raw(&person, |at, prev| {
                format!(
                    "xref\n0 4000000000\n0000000000 65535 f \ntrailer\n<< /Size 4000000000 /Root 1 0 R /Prev {prev} >>\nstartxref\n{at}\n%%EOF\n"
                )
            }),
            Some("modified_after_signing"),
        ),
        (
            "huge-xref-stream.pdf",
            append_raw(&person, |at, prev| {
                format!(
                    "900 0 obj\n<< /Type /XRef /Size 2000000000 /W [4 4 4] /Index [0 2000000000] /Root 1 0 R /Prev {prev} /Length 999999999999 >>\nstream\n{}\nendstream\nendobj\nstartxref\n{at}\n%%EOF\n",
                    "x".repeat(64)
                )
            }),
            Some("modified_after_signing"),
        ),
        (
            "huge-byte-range.pdf",
            b"%PDF-1.7\n1 0 obj\n<< /Type /Sig /ByteRange [0 99999999999999 99999999999999 99999999999999] /Contents <3082> >>\nendobj\n%%EOF\n".to_vec(),
            Some("byte_range"),
        ),
        (
            "huge-contents.pdf",
            {
                let mut f = b"%PDF-1.7\n1 0 obj\n<< /Type /Sig /ByteRange [0 60 16777276 10] /Contents <".to_vec();
                f.extend(std::iter::repeat_n(b'0', 16 << 20));
                f.extend_from_slice(b"> >>\nendobj\n%%EOF\n");
                f
            },
            Some("byte_range"),
        ),
    ]
}

/// What `check-pdf` said of the first signature: its result, or `None` when
/// it refused the file.
fn first_result(line: &Value) -> Option<String> {
    match line["signatures"].as_array() {
        Some(sigs) => Some(sigs.first()?["result"].as_str()?.to_string()),
        None => {
            assert!(line["error"].is_string(), "{line}");
            None
        }
    }
}

#[test]
fn hostile_pdfs_are_rejected_or_verified_in_bounded_memory() {
    let env = check_env("128MiB");
    let mut report = Vec::new();
    for (name, bytes, want) in hostile_files() {
        let path = env.logs().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let (lines, rss) = check_pdf(&env, std::slice::from_ref(&path));
        assert_eq!(lines.len(), 1, "{name}");
        let got = first_result(&lines[0]);
        assert_eq!(got.as_deref(), want, "{name}: {}", lines[0]);
        assert!(rss < MAX_RSS_KIB, "{name}: peak RSS {rss} KiB");
        report.push(format!(
            "{name} ({} bytes): {got:?}, peak RSS {rss} KiB",
            bytes.len()
        ));
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn a_200_mb_signed_pdf_is_verified_in_bounded_memory_and_refused_over_max_file_size() {
    // The person's signed file, then a 200 MB stream added by a later
    // revision: adding an object is harmless, so the signature stays valid,
    // and the whole file is read (its sha256).
    let env = check_env("256MiB");
    let path = env.logs().join("big.pdf");
    {
        let person = fixture_pdf("person.pdf");
        let len = 200 << 20;
        let mut object = format!("<< /Length {len} >>\nstream\n").into_bytes();
        object.resize(object.len() + len, b'A');
        object.extend_from_slice(b"\nendstream");
        std::fs::write(&path, append_update(&person, 900, &object)).unwrap();
    }
    let started = std::time::Instant::now();
    let (lines, rss) = check_pdf(&env, std::slice::from_ref(&path));
    eprintln!(
        "200 MB signed PDF: {:?} in {:?}, peak RSS {rss} KiB",
        first_result(&lines[0]),
        started.elapsed()
    );
    assert_eq!(
        first_result(&lines[0]).as_deref(),
        Some("valid"),
        "{}",
        lines[0]
    );
    assert!(rss < MAX_RSS_KIB, "peak RSS {rss} KiB");

    let small = check_env("128MiB");
    let (lines, _) = check_pdf(&small, std::slice::from_ref(&path));
    let error = lines[0]["error"].as_str().unwrap();
    assert!(error.contains("exceeds max_file_size"), "{error}");
    std::fs::remove_file(&path).unwrap();
}
