//! PDF signature sources: the real binary over exchange events and the
//! signed PDF fixtures (tests/fixtures/pdf, cases.json says what each file
//! was built to be). Required roles are the default: person and organization.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pdf")
}

fn cases() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sha256_of(file: &str) -> String {
    hex::encode(Sha256::digest(
        std::fs::read(fixtures().join(file)).unwrap(),
    ))
}

/// Exchange events from `exchange.jsonl` and a PDF source over `{logs}/pdfs`.
fn pdf_env() -> Env {
    let pki = fixtures().join("pki");
    let env = Env::new(&format!(
        "{}\n[[sources]]\nname = \"signed-pdfs\"\nkind = \"signature\"\nformat = \"pdf\"\npath = \"{{logs}}/pdfs/*.pdf\"\n\
         poll_interval = \"100ms\"\nsettle = \"100ms\"\ntrust_anchors = [\"{root}\"]\nintermediates = [\"{inter}\"]\ncrl_files = [\"{crl}\"]\n\
         [[sources.role_rules]]\nrole = \"tổ chức\"\nsubject_matches = 'OU=Văn thư'\n\
         [[sources.role_rules]]\nrole = \"person\"\nsubject_matches = 'OU=Lãnh đạo'\n",
        source("exchange", "exchange", "{logs}/exchange*.jsonl"),
        root = pki.join("root.pem").display(),
        inter = pki.join("intermediate.pem").display(),
        crl = pki.join("*.crl").display(),
    ));
    std::fs::create_dir_all(env.log("pdfs")).unwrap();
    env
}

/// An electronic outgoing document whose exchange event carries `sha`.
fn exchange_with_sha(doc_id: &str, event: &str, sha: &str) -> String {
    format!(
        "{{\"event_id\":\"{event}\",\"time\":\"2026-11-20T09:00:00+07:00\",\"doc_id\":\"{doc_id}\",\"direction\":\"đi\",\"channel\":\"điện tử\",\"unit\":\"Văn phòng\",\"sha256\":\"{sha}\"}}\n"
    )
}

fn documents(d: &Daemon) -> BTreeMap<String, Value> {
    let page = d.json("/api/v1/documents?limit=1000");
    page["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| (doc["doc_id"].as_str().unwrap().to_string(), doc.clone()))
        .collect()
}

/// The class a document must have: signed when some valid signature of
/// each required role (person, organization) is on one of its files.
fn expected_class(files: &[&str], cases: &BTreeMap<String, Value>) -> &'static str {
    let mut roles = std::collections::BTreeSet::new();
    for f in files {
        for s in cases[*f]["signatures"].as_array().into_iter().flatten() {
            if s["valid"] == true {
                roles.insert(s["role"].as_str().unwrap().to_string());
            }
        }
    }
    if roles.contains("person") && roles.contains("organization") {
        "electronic_signed"
    } else {
        "electronic_unsigned"
    }
}

/// `doc`, whose one file is the fixture `file`, has the class its signatures
/// give and shows every signature of the file with the verdict cases.json states.
fn assert_file_verdicts(doc: &Value, file: &str, cases: &BTreeMap<String, Value>) {
    assert_eq!(
        doc["class"],
        expected_class(&[file], cases),
        "{file}: {doc}"
    );
    let reasons = |list: &Value| -> Vec<Value> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["reason"].clone())
            .collect()
    };
    assert_eq!(
        reasons(&doc["verified_signatures"]),
        reasons(&cases[file]["signatures"]),
        "{file}: every signature shown with its verdict"
    );
}

#[test]
fn exchange_events_and_signed_pdfs_end_in_the_exact_classes() {
    let cases = cases();
    let env = pdf_env();
    let readable: Vec<&String> = cases
        .keys()
        .filter(|f| cases[*f]["signatures"].is_array())
        .collect();
    // One document per readable fixture, plus one whose two files carry the
    // leader's and the agency's signatures separately.
    let mut lines = String::new();
    for (i, file) in readable.iter().enumerate() {
        lines += &exchange_with_sha(&format!("DOC-{file}"), &format!("ev-{i}"), &sha256_of(file));
    }
    lines += &exchange_with_sha("DOC-two-files", "ev-a", &sha256_of("person.pdf"));
    lines += &exchange_with_sha("DOC-two-files", "ev-b", &sha256_of("organization.pdf"));
    env.append("exchange.jsonl", &lines);
    for file in cases.keys() {
        std::fs::copy(fixtures().join(file), env.log("pdfs").join(file)).unwrap();
    }
    let d = env.start();
    d.wait_caught_up();

    let docs = documents(&d);
    for file in &readable {
        let doc = &docs[&format!("DOC-{file}")];
        assert_file_verdicts(doc, file, &cases);
    }
    let two = &docs["DOC-two-files"];
    assert_eq!(
        two["class"],
        expected_class(&["person.pdf", "organization.pdf"], &cases)
    );
    assert_eq!(
        two["class"], "electronic_signed",
        "each file brings one required role"
    );

    // An invalid signature says which and why, in Vietnamese; a valid one has no reason.
    let changed = docs["DOC-content-changed.pdf"]["verified_signatures"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(changed[0]["role"], "person");
    assert_eq!(changed[0]["signer"], "Nguyễn Văn An");
    assert_eq!(changed[0]["valid"], false);
    assert_eq!(
        changed[0]["reason_text"],
        "Tài liệu bị sửa đổi nội dung sau khi ký"
    );
    assert_eq!(changed[1]["role"], "organization");
    assert_eq!(changed[1]["valid"], true);
    assert_eq!(changed[1]["reason"], Value::Null);

    // The console's document page says the same in words: which signature, which file, why.
    let (code, page) = d.get("/documents/outgoing/DOC-content-changed.pdf");
    assert_eq!(code, 200, "{page}");
    let short_sha = &sha256_of("content-changed.pdf")[..12];
    assert!(
        page.contains(&format!(
            "<li>Chữ ký số của Nguyễn Văn An trong tệp {short_sha} không hợp lệ: Tài liệu bị sửa đổi nội dung sau khi ký</li>"
        )),
        "{page}"
    );
    let verified_table = page
        .split("(docflowd đã kiểm tra)</h2>")
        .nth(1)
        .unwrap_or_default();
    let cells: Vec<&str> = verified_table
        .split("<td class=\"")
        .skip(1)
        .map(|c| c.split("</td>").next().unwrap())
        .collect();
    assert_eq!(
        cells,
        [
            "bad\">Không hợp lệ: Tài liệu bị sửa đổi nội dung sau khi ký",
            "good\">Hợp lệ"
        ],
        "one verdict per signature, in file order"
    );

    // Broken files are rejected, naming the file.
    let rejected = rejected_lines(&env.rejected("signed-pdfs"));
    let named: Vec<&str> = rejected
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    for broken in ["not-a-pdf.pdf", "truncated.pdf"] {
        assert!(
            named.iter().any(|r| r.contains(broken)),
            "{broken} in {named:?}"
        );
    }
    assert_eq!(rejected.len(), 2, "{named:?}");

    // Each signature counted once by result.
    let mut by_result: BTreeMap<String, u64> = BTreeMap::new();
    for file in &readable {
        for s in cases[*file]["signatures"].as_array().unwrap() {
            *by_result
                .entry(s["reason"].as_str().unwrap_or("valid").to_string())
                .or_default() += 1;
        }
    }
    let (_, metrics) = d.get("/metrics");
    for (result, n) in &by_result {
        let line = format!(
            "docflow_signature_verdicts_total{{result=\"{result}\",source=\"signed-pdfs\"}} {n}"
        );
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }

    // A restart reads no file twice: the same verdicts, the same classes.
    d.stop();
    let d = env.start();
    d.wait_caught_up();
    let again = documents(&d);
    assert_eq!(again, docs);
    let (_, metrics) = d.get("/metrics");
    assert!(metrics
        .contains("docflow_signature_verdicts_total{result=\"valid\",source=\"signed-pdfs\"} 0"));
}

#[test]
fn a_signature_whose_subject_matches_no_rule_has_no_role() {
    let env = pdf_env();
    // Only the organization rule remains: the leader's signature plays no role.
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text = text.replace(
        "[[sources.role_rules]]\nrole = \"person\"\nsubject_matches = 'OU=Lãnh đạo'\n",
        "",
    );
    std::fs::write(&env.config, text).unwrap();
    env.append(
        "exchange.jsonl",
        &exchange_with_sha("D1", "e1", &sha256_of("person-organization.pdf")),
    );
    std::fs::copy(
        fixtures().join("person-organization.pdf"),
        env.log("pdfs/a.pdf"),
    )
    .unwrap();
    let d = env.start();
    d.wait_caught_up();
    let doc = &documents(&d)["D1"];
    assert_eq!(doc["class"], "electronic_unsigned", "{doc}");
    assert_eq!(doc["signature_roles"], serde_json::json!(["organization"]));
    let sigs = doc["verified_signatures"].as_array().unwrap();
    assert_eq!(
        (sigs[0]["valid"].clone(), sigs[0]["role"].clone()),
        (Value::Bool(true), Value::Null)
    );
}

/// pyHanko's CLI: `$DOCFLOW_PYHANKO`, else the venv `.ci/run` makes; panics
/// (never skips) when it is missing.
fn pyhanko() -> PathBuf {
    let path = std::env::var_os("DOCFLOW_PYHANKO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/pyhanko-venv/bin/pyhanko"));
    assert!(
        path.is_file(),
        "pyhanko not found at {} (set DOCFLOW_PYHANKO, or run .ci/run, which pip-installs pyhanko and pyhanko-cli)",
        path.display()
    );
    path
}

/// pyHanko's judgement of a file: `None` when it cannot read it, else each
/// signature's validity in field order (`--executive-summary` lines `Field:hash:VALID`).
fn pyhanko_verdicts(tool: &Path, file: &Path) -> Option<Vec<bool>> {
    let pki = fixtures().join("pki");
    let out = std::process::Command::new(tool)
        .args(["sign", "validate", "--trust"])
        .arg(pki.join("root.pem"))
        .arg("--trust-replace")
        .arg("--other-certs")
        .arg(pki.join("intermediate.pem"))
        // Validation at the signing time, as docflowd does; pyHanko then checks no revocation.
        .args(["--validation-time", "claimed", "--executive-summary"])
        .arg(file)
        .output()
        .expect("run pyhanko");
    let text = String::from_utf8_lossy(&out.stdout);
    let verdicts: Vec<bool> = text
        .lines()
        .filter_map(|l| l.rsplit(':').next())
        .filter_map(|v| match v.trim() {
            "VALID" => Some(true),
            "INVALID" => Some(false),
            _ => None,
        })
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if verdicts.is_empty() && stderr.contains("Failed to read PDF file") {
        return None;
    }
    Some(verdicts)
}

#[test]
#[ignore = "needs pyhanko"]
fn docflowd_and_pyhanko_agree_on_every_fixture() {
    let tool = pyhanko();
    let env = pdf_env();
    // pyHanko's CLI takes no CRL file, so both verify without revocation
    // data: there revoked.pdf is valid for both (its `revoked` verdict with
    // the CRL is checked against cases.json by the fixture tests). pyHanko's
    // summary says only VALID / INVALID, so the reasons are not compared.
    let config = env.config.display().to_string();
    let glob = format!("{}/*.pdf", fixtures().display());
    let out = env.cli(&["check-pdf", "-c", &config, "--without-crls", &glob]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut compared = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let file = PathBuf::from(v["file"].as_str().unwrap());
        let ours: Option<Vec<bool>> = v["signatures"]
            .as_array()
            .map(|sigs| sigs.iter().map(|s| s["result"] == "valid").collect());
        let theirs = pyhanko_verdicts(&tool, &file);
        assert_eq!(ours, theirs, "{}: docflowd {line}", file.display());
        compared += 1;
    }
    assert_eq!(compared, cases().len(), "every fixture compared");
}

/// An outgoing edXML message of ours (G22) for document number `number`,
/// whose one attachment is `attachment`, base64-encoded in lines of 76.
fn edxml_with_attachment(number: &str, attachment: &[u8]) -> String {
    edxml_with_attachments(number, &[attachment])
}

/// The same with one `<Attachment>` element per file, in order.
fn edxml_with_attachments(number: &str, files: &[&[u8]]) -> String {
    use base64::Engine;
    let sample = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/edxml/edoc_update.edxml"),
    )
    .unwrap()
    .replace("<edXML:BussinessDocType>2<", "<edXML:BussinessDocType>0<")
    .replace(
        "7816/VPCP-TTĐT</edXML:DocumentId>",
        &format!("{number}</edXML:DocumentId>"),
    )
    .replace("2018/09/28 00:00:00", "2026/06/14 09:00:00");
    let first = sample.find("<Attachment>").unwrap();
    let last = sample.find("</Attachment>").unwrap() + "</Attachment>".len();
    let element = &sample[first..last];
    let open = element.find("<edXML:ContentTransferEncoded").unwrap();
    let start = open + element[open..].find('>').unwrap() + 1;
    let end = element.find("</edXML:ContentTransferEncoded>").unwrap();
    let mut attachments = String::new();
    for (i, file) in files.iter().enumerate() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(file);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        attachments += &format!(
            "{}{}{}",
            &element[..start],
            lines.join("\r\n"),
            &element[end..]
        )
        .replace("cid:209", &format!("cid:{}", 209 + i));
    }
    format!("{}{}{}", &sample[..first], attachments, &sample[last..])
}

#[test]
fn pdf_attachments_of_edxml_messages_are_verified_and_joined_by_sha256() {
    let pki = fixtures().join("pki");
    let env = Env::new(&format!(
        "[[sources]]\nname = \"truc\"\nkind = \"exchange\"\nformat = \"edxml\"\npath = \"{{logs}}/inbox\"\n\
         poll_interval = \"100ms\"\nsettle = \"100ms\"\nverify_attachments = true\n\
         trust_anchors = [\"{root}\"]\nintermediates = [\"{inter}\"]\ncrl_files = [\"{crl}\"]\n\
         [[sources.role_rules]]\nrole = \"organization\"\nsubject_matches = 'OU=Văn thư'\n\
         [[sources.role_rules]]\nrole = \"person\"\nsubject_matches = 'OU=Lãnh đạo'\n",
        root = pki.join("root.pem").display(),
        inter = pki.join("intermediate.pem").display(),
        crl = pki.join("*.crl").display(),
    ));
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, text.replace("H40.27.01", "000.00.00.G22")).unwrap();
    std::fs::create_dir_all(env.log("inbox")).unwrap();
    let cases = cases();
    let attached = [
        ("901/UBND-VP", "person-organization.pdf"),
        ("902/UBND-VP", "content-changed.pdf"),
        ("903/UBND-VP", "person.pdf"),
        ("904/UBND-VP", "revoked.pdf"),
    ];
    for (number, file) in attached {
        let pdf = std::fs::read(fixtures().join(file)).unwrap();
        let tmp = env.log("inbox").join(format!("{file}.tmp"));
        std::fs::write(&tmp, edxml_with_attachment(number, &pdf)).unwrap();
        std::fs::rename(&tmp, env.log("inbox").join(format!("{file}.edxml"))).unwrap();
    }
    // An attachment that is not a PDF (the sample's zip) is hashed, not verified.
    let zip = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        "UEsDBAoAAAAAAA==",
    )
    .unwrap();
    std::fs::write(
        env.log("inbox").join("zip.edxml"),
        edxml_with_attachment("905/UBND-VP", &zip),
    )
    .unwrap();
    // The deputy's and the agency's signatures on the second and third files
    // of a message whose first file is unsigned: they count for its document.
    let three: [&[u8]; 3] = [
        &std::fs::read(fixtures().join("unsigned.pdf")).unwrap(),
        &std::fs::read(fixtures().join("deputy-p384.pdf")).unwrap(),
        &std::fs::read(fixtures().join("organization.pdf")).unwrap(),
    ];
    std::fs::write(
        env.log("inbox").join("three.edxml"),
        edxml_with_attachments("906/UBND-VP", &three),
    )
    .unwrap();
    let d = env.start();
    d.wait_caught_up();

    let docs = documents(&d);
    let three_doc = &docs["000.00.00.G22,2015/09/30,906/UBND-VP"];
    assert_eq!(three_doc["class"], "electronic_signed", "{three_doc}");
    let mut shown: Vec<(String, String)> = three_doc["verified_signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["file_sha256"].as_str().unwrap().to_string(),
                s["role"].to_string(),
            )
        })
        .collect();
    shown.sort();
    let mut want = vec![
        (sha256_of("deputy-p384.pdf"), "\"person\"".to_string()),
        (
            sha256_of("organization.pdf"),
            "\"organization\"".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(shown, want, "the signatures of every file of the message");
    for (number, file) in attached {
        let doc = &docs[&format!("000.00.00.G22,2015/09/30,{number}")];
        assert_file_verdicts(doc, file, &cases);
    }
    assert_eq!(
        docs["000.00.00.G22,2015/09/30,901/UBND-VP"]["class"],
        "electronic_signed"
    );
    let zip_doc = &docs["000.00.00.G22,2015/09/30,905/UBND-VP"];
    assert_eq!(zip_doc["class"], "electronic_unsigned");
    assert_eq!(zip_doc["verified_signatures"], serde_json::json!([]));

    let (_, metrics) = d.get("/metrics");
    for line in [
        "docflow_signature_verdicts_total{result=\"valid\",source=\"truc\"} 6",
        "docflow_signature_verdicts_total{result=\"modified_after_signing\",source=\"truc\"} 1",
        "docflow_signature_verdicts_total{result=\"revoked\",source=\"truc\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    // Spooled attachments live only while their message is read.
    let spool = env.store().join("spool").join(hex::encode("truc"));
    assert!(
        spool.is_dir(),
        "attachments were spooled in {}",
        spool.display()
    );
    let left: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "spool not emptied: {left:?}");
}
