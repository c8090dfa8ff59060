//! edXML directory sources: the real binary over a directory of messages
//! (the public SDK samples plus variants built from them).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::*;

/// The sender of the SDK samples' document: the samples are its archive.
const G22: &str = "000.00.00.G22";
const DOC_7816: &str = "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT";

fn sample(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/edxml")
            .join(name),
    )
    .unwrap()
}

/// An env whose agency is `code` and whose only source reads `{logs}/inbox`.
fn edxml_env(code: &str, settle: &str) -> Env {
    let env = Env::new(&format!(
        "[[sources]]\nname = \"truc\"\nkind = \"exchange\"\nformat = \"edxml\"\npath = \"{{logs}}/inbox\"\npoll_interval = \"100ms\"\nsettle = \"{settle}\"\n"
    ));
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, text.replace("H40.27.01", code)).unwrap();
    std::fs::create_dir_all(env.log("inbox")).unwrap();
    env
}

fn inbox(env: &Env, name: &str) -> PathBuf {
    env.log("inbox").join(name)
}

/// Writes a message the way a careful producer does: `.tmp`, then rename.
fn deliver(env: &Env, name: &str, text: &str) {
    let tmp = inbox(env, &format!("{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, inbox(env, name)).unwrap();
}

fn docs(d: &Daemon, query: &str) -> Vec<Value> {
    d.json(&format!("/api/v1/documents?{query}"))["documents"]
        .as_array()
        .unwrap()
        .clone()
}

fn block(report: &Value, direction: &str) -> (u64, u64, u64, u64) {
    let b = &report[direction];
    (
        b["total"].as_u64().unwrap(),
        b["electronic_signed"].as_u64().unwrap(),
        b["electronic_unsigned"].as_u64().unwrap(),
        b["rejected_by_receiver"].as_u64().unwrap(),
    )
}

/// An incoming document built from a sample: sent by H99 to us (G22) among others.
fn incoming_update() -> String {
    sample("edoc_update.edxml")
        .replace("000.00.00.G22", "000.00.00.H99")
        .replace(
            "<edXML:OrganId>000.00.00.G17</edXML:OrganId>",
            "<edXML:OrganId>000.00.00.G22</edXML:OrganId>",
        )
}

/// A new outgoing document in June 2026, other spellings and no prefix.
fn outgoing_new_2026() -> String {
    sample("edoc_update.edxml")
        .replace("edXML:", "")
        .replace("Bussiness", "Business")
        .replace("OrganizationInCharge", "OrganInCharge")
        .replace("<BusinessDocType>2<", "<BusinessDocType>0<")
        .replace("7816/VPCP-TTĐT</DocumentId>", "901/UBND-VP</DocumentId>")
        .replace("2018/09/28 00:00:00", "2026/06/14 09:00:00")
}

/// We (G22, a receiver) refuse the H99 document: a status 02 about an incoming document.
fn our_rejection_of_h99() -> String {
    sample("status_rejection_02.edxml")
        // ResponseFor/OrganId: the document's sender, H99 ...
        .replace(
            "<edXML:OrganId>000.00.00.G22</edXML:OrganId>",
            "<edXML:OrganId>000.00.00.H99</edXML:OrganId>",
        )
        // ... and we send the status.
        .replace(
            "<edXML:OrganId>000.00.00.H41</edXML:OrganId>",
            "<edXML:OrganId>000.00.00.G22</edXML:OrganId>",
        )
        .replace(DOC_7816, "000.00.00.H99,2015/09/30,7816/VPCP-TTĐT")
}

#[test]
fn edxml_directory_gives_exact_report_counts_with_statuses_and_revocations() {
    let env = edxml_env(G22, "300ms");
    let samples = [
        "edoc.edxml",
        "edoc_new.edxml",
        "edoc_replacement.edxml",
        "edoc_revocation.edxml",
        "edoc_update.edxml",
        "status.edxml",
        "status_acceptance_03.edxml",
        "status_assignment_04.edxml",
        "status_cancellation_13.edxml",
        "status_change-acceptance_15.edxml",
        "status_change-rejection_16.edxml",
        "status_finish_06.edxml",
        "status_inbox__01.edxml",
        "status_processing_05.edxml",
        "status_rejection_02.edxml",
    ];
    for s in samples {
        deliver(&env, s, &sample(s));
    }
    deliver(&env, "h99_update.edxml", &incoming_update());
    deliver(&env, "new_2026.xml", &outgoing_new_2026());
    deliver(&env, "z_status_02_ours.edxml", &our_rejection_of_h99());
    let full = sample("edoc_revocation.edxml");
    deliver(&env, "truncated.edxml", &full[..full.len() / 2]);
    // A status about a document we never saw: kept aside, counts nothing.
    deliver(
        &env,
        "status_unknown.edxml",
        &sample("status_rejection_02.edxml").replace(DOC_7816, "000.00.00.G22,2026/01/01,1/X"),
    );
    // Not read: still being written (.tmp), hidden, or not a message name.
    std::fs::write(inbox(&env, "later.edxml.tmp"), "<edXML>").unwrap();
    std::fs::write(inbox(&env, ".hidden.edxml"), "junk").unwrap();
    std::fs::write(inbox(&env, "notes.txt"), "junk").unwrap();

    let d = env.start();
    let status = d.wait_caught_up();
    // 3 document messages of 7816 + 10 statuses + H99 + 2026 + our 02 + unknown status.
    assert_eq!(counts(&status, "truc"), (17, 0, 3), "{status}");

    let all = d.report("");
    // Outgoing: 7816 (sent 2018, revoked/updated/replaced, rejected by a receiver)
    // and 901 (2026); both electronic without signature events.
    assert_eq!(block(&all, "outgoing"), (2, 0, 2, 1), "{all}");
    // Incoming: the H99 document, which we rejected.
    assert_eq!(block(&all, "incoming"), (1, 0, 1, 1), "{all}");
    let h1 = d.report("period=2026-H1");
    assert_eq!(block(&h1, "outgoing"), (1, 0, 1, 0), "{h1}");
    assert_eq!(block(&h1, "incoming"), (0, 0, 0, 0), "{h1}");
    let y2018 = d.report("from=2018-09-28&to=2018-09-28");
    assert_eq!(block(&y2018, "outgoing"), (1, 0, 1, 1), "{y2018}");

    let out = docs(&d, "direction=outgoing");
    let doc = out.iter().find(|x| x["doc_id"] == DOC_7816).expect("7816");
    assert_eq!(doc["revoked"], true, "{doc}");
    assert_eq!(
        doc["edxml_business"],
        serde_json::json!(["revoke", "update", "replace"])
    );
    assert_eq!(doc["rejected_by_receiver"], true);
    // The latest status is status.edxml's 01 of 2018-09-28 17:25:11 (+07:00).
    assert_eq!(doc["exchange_status"]["code"], "01", "{doc}");
    assert_eq!(
        doc["exchange_status"]["time"], "2018-09-28T17:25:11+07:00",
        "{doc}"
    );
    assert_eq!(doc["channel"], "electronic");
    assert_eq!(doc["doc_number"], "7816/VPCP-TTĐT");
    assert_eq!(doc["exchange_events"], 3);
    let new = out
        .iter()
        .find(|x| x["doc_id"] == "000.00.00.G22,2015/09/30,901/UBND-VP")
        .expect("901");
    assert_eq!(new["revoked"], false);
    assert_eq!(new["edxml_business"], serde_json::json!(["new"]));
    assert_eq!(new["exchange_status"], Value::Null);
    assert_eq!(new["date"], "2026-06-14");

    let rejected = rejected_lines(&env.rejected("truc"));
    let mut files: Vec<String> = rejected
        .iter()
        .map(|r| {
            Path::new(r["file"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert_eq!(files, ["edoc.edxml", "edoc_new.edxml", "truncated.edxml"]);
    for r in &rejected {
        let reason = r["reason"].as_str().unwrap();
        let file = r["file"].as_str().unwrap();
        if file.ends_with("truncated.edxml") {
            assert!(reason.contains("truncated"), "{reason}");
        } else if file.ends_with("edoc.edxml") {
            assert!(reason.contains("neither from nor to"), "{reason}");
        } else {
            assert!(reason.contains("outside the root"), "{reason}");
        }
    }

    // Restart: nothing is read twice; a file renamed in later is read once.
    d.stop();
    let d = env.start();
    std::fs::rename(inbox(&env, "later.edxml.tmp"), inbox(&env, "later.edxml")).unwrap();
    let status = d.wait_status(CATCH_UP, "later.edxml read", |s| {
        s["sources"][0]["events"]["invalid"] == 4 && s["caught_up"] == true
    });
    assert_eq!(counts(&status, "truc"), (17, 0, 4), "{status}");
    assert_eq!(block(&d.report(""), "outgoing"), (2, 0, 2, 1));
    assert_eq!(rejected_lines(&env.rejected("truc")).len(), 4);

    // The report command reads the store itself once the daemon is gone.
    d.stop();
    let config = env.config.display().to_string();
    let out = env.cli(&["report", "-c", &config, "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offline: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(block(&offline, "outgoing"), (2, 0, 2, 1), "{offline}");
    assert_eq!(block(&offline, "incoming"), (1, 0, 1, 1), "{offline}");
    let out = env.cli(&["report", "-c", &config]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("bị bên nhận từ chối tiếp nhận")
            && table.contains("văn bản đi 1, văn bản đến 1"),
        "{table}"
    );
}

/// README (edXML, Status messages): code 13 (take back) comes from the
/// document's sender, every other code from its receiver, so 13 is read the
/// other way round: from us, it is about a document we sent; to us, about
/// one we received.
#[test]
fn edxml_take_back_request_13_is_about_the_senders_document_at_both_ends() {
    let take_back = sample("status_cancellation_13.edxml");
    assert!(take_back.contains("<edXML:StatusCode>13<"));
    // At the sender (G22): our own request, about our outgoing document.
    let sender = edxml_env(G22, "100ms");
    deliver(&sender, "edoc_update.edxml", &sample("edoc_update.edxml"));
    deliver(&sender, "status_13.edxml", &take_back);
    // At a receiver (H41): the sender's request, about our incoming document.
    let receiver = edxml_env("000.00.00.H41", "100ms");
    deliver(&receiver, "edoc_update.edxml", &sample("edoc_update.edxml"));
    deliver(&receiver, "status_13.edxml", &take_back);
    for (env, direction, other) in [
        (&sender, "outgoing", "incoming"),
        (&receiver, "incoming", "outgoing"),
    ] {
        let d = env.start();
        let status = d.wait_caught_up();
        assert_eq!(counts(&status, "truc"), (2, 0, 0), "{direction}: {status}");
        let listed = docs(&d, &format!("direction={direction}"));
        assert_eq!(listed.len(), 1, "{direction}: {listed:?}");
        let doc = &listed[0];
        assert_eq!(doc["doc_id"], DOC_7816);
        assert_eq!(doc["exchange_status"]["code"], "13", "{direction}: {doc}");
        assert_eq!(doc["exchange_status"]["label"], "Yêu cầu lấy lại");
        assert_eq!(
            doc["exchange_status"]["time"], "2015-09-20T11:08:36+07:00",
            "{doc}"
        );
        assert_eq!(doc["rejected_by_receiver"], false, "{doc}");
        assert!(docs(&d, &format!("direction={other}")).is_empty());
        d.stop();
    }
}

/// README (edXML, Hostile files): "a header field at 64 KiB" — a Subject of
/// 65,536 bytes is read, one of 65,537 rejects its file naming the cap.
#[test]
fn edxml_header_field_over_64_kib_rejects_the_file_at_exactly_the_cap() {
    let env = edxml_env(G22, "100ms");
    let original = "V/v kết nối, liên thông phần mềm quản lý văn bản";
    let with_subject = |n: usize, number: &str| {
        sample("edoc_update.edxml")
            .replace(original, &"x".repeat(n))
            .replace(
                "7816/VPCP-TTĐT</edXML:DocumentId>",
                &format!("{number}/VPCP-TTĐT</edXML:DocumentId>"),
            )
    };
    deliver(&env, "at_cap.edxml", &with_subject(64 * 1024, "1"));
    deliver(&env, "over_cap.edxml", &with_subject(64 * 1024 + 1, "2"));
    let d = env.start();
    let status = d.wait_caught_up();
    assert_eq!(counts(&status, "truc"), (1, 0, 1), "{status}");
    let listed = docs(&d, "direction=outgoing");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["doc_id"], "000.00.00.G22,2015/09/30,1/VPCP-TTĐT");
    assert_eq!(listed[0]["subject"].as_str().map(str::len), Some(64 * 1024));
    let rejected = rejected_lines(&env.rejected("truc"));
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("over_cap.edxml"),
        "{}",
        rejected[0]
    );
    let reason = rejected[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("`Subject`") && reason.contains("longer than 65536 bytes"),
        "{reason}"
    );
    d.stop();
}

#[test]
fn edxml_file_written_slowly_is_read_once_when_complete() {
    let env = edxml_env(G22, "1s");
    let d = env.start();
    d.wait_caught_up();
    let text = sample("edoc_revocation.edxml");
    let bytes = text.as_bytes();
    let path = inbox(&env, "slow.edxml");
    let mut f = std::fs::File::create(&path).unwrap();
    // Ten pieces, 150 ms apart: never quiet for the settle time until complete.
    for piece in bytes.chunks(bytes.len() / 10 + 1) {
        f.write_all(piece).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let s = d.status();
        assert_eq!(
            s["sources"][0]["events"]["invalid"], 0,
            "a partial file was read: {s}"
        );
    }
    drop(f);
    let status = d.wait_status(CATCH_UP, "slow file read", |s| {
        s["sources"][0]["events"]["accepted"] == 1 && s["caught_up"] == true
    });
    assert_eq!(counts(&status, "truc"), (1, 0, 0), "{status}");
    assert_eq!(block(&d.report(""), "outgoing").0, 1);
    let doc = &docs(&d, "direction=outgoing")[0];
    assert_eq!(doc["revoked"], true);
}

/// Standard base64 of `data`.
fn base64(data: &[u8], out: &mut Vec<u8>) {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63]);
        out.push(T[(n >> 12) as usize & 63]);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63]
        } else {
            b'='
        });
    }
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Writes a message whose attachment decodes to `size` bytes; returns their sha256.
fn write_big_message(path: &Path, size: usize) -> String {
    let text = sample("edoc_revocation.edxml");
    let start = text.find("UEsDBBQ").expect("attachment start");
    let end = start + text[start..].find('<').unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&text.as_bytes()[..start]).unwrap();
    let mut hasher = Sha256::new();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut chunk = vec![0u8; 3 * 1024 * 19];
    let mut left = size;
    let mut encoded = Vec::new();
    while left > 0 {
        let n = left.min(chunk.len());
        for b in &mut chunk[..n] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        hasher.update(&chunk[..n]);
        encoded.clear();
        base64(&chunk[..n], &mut encoded);
        // Lines of 76 characters, CRLF, as MIME producers write them.
        for line in encoded.chunks(76) {
            f.write_all(line).unwrap();
            f.write_all(b"\r\n").unwrap();
        }
        left -= n;
    }
    f.write_all(&text.as_bytes()[end..]).unwrap();
    f.flush().unwrap();
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// README ("edXML archive source", Files): "a 50 MiB attachment leaves peak
/// RSS within 2 MiB of a small file's". Both daemons run the same two
/// sources (edXML, and signatures naming a sha256), so the difference is the
/// attachment's alone.
#[test]
fn edxml_50mb_attachment_is_hashed_with_flat_memory() {
    // Baseline: the daemon after reading the small sample.
    let small = edxml_env(G22, "200ms");
    deliver(&small, "small.edxml", &sample("edoc_revocation.edxml"));
    sign_by_sha256(&small, &"0".repeat(64));
    let d = small.start();
    d.wait_caught_up();
    let baseline = vm_hwm_kib(d.pid());
    d.stop();

    let env = edxml_env(G22, "200ms");
    let size = 50 * 1024 * 1024;
    let tmp = inbox(&env, "big.edxml.tmp");
    let sha = write_big_message(&tmp, size);
    let file_len = std::fs::metadata(&tmp).unwrap().len();
    std::fs::rename(&tmp, inbox(&env, "big.edxml")).unwrap();
    // A signature naming the attachment's sha256 joins the document.
    sign_by_sha256(&env, &sha);
    let started = Instant::now();
    let d = env.start();
    let status = d.wait_caught_up();
    let took = started.elapsed();
    assert_eq!(counts(&status, "truc"), (1, 0, 0), "{status}");
    let hwm = vm_hwm_kib(d.pid());
    eprintln!(
        "50 MiB attachment ({file_len} bytes of edXML): read in {took:?}, VmHWM {hwm} KiB (baseline {baseline} KiB)"
    );
    // The attachment's sha256 was computed: the signatures joined by it sign the document.
    let report = d.report("");
    assert_eq!(block(&report, "outgoing"), (1, 1, 0, 0), "{report}");
    assert!(
        hwm < baseline + 2 * 1024,
        "peak RSS {hwm} KiB: more than 2 MiB over the small file's {baseline} KiB"
    );
}

#[test]
fn edxml_kill_9_during_ingestion_then_restart_counts_every_file_once() {
    let env = edxml_env(G22, "50ms");
    let text = sample("edoc_update.edxml");
    let (a, b) = (
        text.find("<AttachmentEncoded>").unwrap(),
        text.find("</AttachmentEncoded>").unwrap() + "</AttachmentEncoded>".len(),
    );
    let small = format!("{}{}", &text[..a], &text[b..]);
    let n = 400;
    for i in 0..n {
        let message = small.replace(
            "7816/VPCP-TTĐT</edXML:DocumentId>",
            &format!("{i}/VPCP-TTĐT</edXML:DocumentId>"),
        );
        deliver(&env, &format!("m{i:04}.edxml"), &message);
    }
    let d = env.start();
    let s = d.wait_status(CATCH_UP, "a quarter of the files read", |s| {
        s["sources"][0]["events"]["accepted"].as_u64().unwrap_or(0) >= n / 4
    });
    d.crash();
    let accepted = s["sources"][0]["events"]["accepted"].as_u64().unwrap();
    assert!(
        accepted < n && s["caught_up"] == false,
        "killed after reading finished; deliver more files: {s}"
    );
    // What the killed daemon had made durable, read from the store itself
    // (less than `accepted`: sled's last writes die with the process, and
    // the source positions with them).
    let config = env.config.display().to_string();
    let out = env.cli(&["report", "-c", &config, "--format", "json"]);
    assert!(out.status.success(), "{}", printed(&out));
    let committed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed = committed["outgoing"]["total"].as_u64().unwrap();
    assert!(
        committed < n,
        "the kill came after the last file was committed ({committed} of {n})"
    );
    eprintln!("killed at {committed} of {n} files");
    let d = env.start();
    let status = d.wait_caught_up();
    assert_eq!(counts(&status, "truc"), (n, 0, 0), "{status}");
    assert_eq!(block(&d.report(""), "outgoing"), (n, 0, n, 0));
}

/// An edXML env whose inbox is a new directory under the cargo target dir (on
/// disk even where /tmp is a tmpfs), removed when the returned guard drops.
fn big_file_env(max_file_size: &str) -> (Env, tempfile::TempDir) {
    let inbox = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("inbox dir");
    let env = Env::new(&format!(
        "[[sources]]\nname = \"truc\"\nkind = \"exchange\"\nformat = \"edxml\"\npath = \"{}\"\npoll_interval = \"100ms\"\nsettle = \"200ms\"\nmax_file_size = \"{max_file_size}\"\n",
        inbox.path().display()
    ));
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, text.replace("H40.27.01", G22)).unwrap();
    (env, inbox)
}

/// Adds a signature source whose two signatures (person, organization) name `sha`.
fn sign_by_sha256(env: &Env, sha: &str) {
    std::fs::write(
        env.log("signatures.jsonl"),
        format!(
            "{{\"time\":\"2018-09-28T09:00:00+07:00\",\"sha256\":\"{sha}\",\"role\":\"person\"}}\n{{\"time\":\"2018-09-28T09:00:00+07:00\",\"sha256\":\"{sha}\",\"role\":\"organization\"}}\n"
        ),
    )
    .unwrap();
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        format!(
            "{text}\n{}",
            source("sig", "signature", "{logs}/signatures*.jsonl")
                .replace("{logs}", &env.logs().display().to_string())
        ),
    )
    .unwrap();
}

/// Writes `prefix`, `body` `times` times, then `suffix`, streaming to disk.
fn write_repeated(path: &Path, prefix: &[u8], body: &[u8], times: usize, suffix: &[u8]) -> u64 {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    f.write_all(prefix).unwrap();
    for _ in 0..times {
        f.write_all(body).unwrap();
    }
    f.write_all(suffix).unwrap();
    f.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// The sample revocation with its attachment replaced by `blocks` copies of a
/// random block, base64 in 76-character CRLF lines inside one CDATA section.
/// Returns the file's size and the attachment's sha256.
fn write_cdata_message(path: &Path, blocks: usize) -> (u64, String) {
    let text = sample("edoc_revocation.edxml");
    let start = text.find("UEsDBBQ").expect("attachment start");
    let end = start + text[start..].find('<').unwrap();
    // 57 bytes encode to one 76-character line: a block is 1024 whole lines.
    let mut block = vec![0u8; 57 * 1024];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for b in &mut block {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = state as u8;
    }
    let mut encoded = Vec::new();
    base64(&block, &mut encoded);
    let lines: Vec<u8> = encoded
        .chunks(76)
        .flat_map(|line| line.iter().chain(b"\r\n"))
        .copied()
        .collect();
    let prefix = format!("{}<![CDATA[", &text[..start]);
    let suffix = format!("]]>{}", &text[end..]);
    let len = write_repeated(path, prefix.as_bytes(), &lines, blocks, suffix.as_bytes());
    let mut hasher = Sha256::new();
    for _ in 0..blocks {
        hasher.update(&block);
    }
    let sha = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (len, sha)
}

/// Bytes the process has read through read(2) and the like (`rchar`).
fn read_chars(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("rchar")
}

#[test]
fn edxml_300mb_cdata_attachment_is_read_with_bounded_memory() {
    let (env, inbox) = big_file_env("512MiB");
    let tmp = inbox.path().join("big.edxml.tmp");
    let (file_len, sha) = write_cdata_message(&tmp, 3800);
    std::fs::rename(&tmp, inbox.path().join("big.edxml")).unwrap();
    sign_by_sha256(&env, &sha);
    let started = Instant::now();
    let d = env.start();
    let status = d.wait_caught_up();
    let took = started.elapsed();
    let hwm = vm_hwm_kib(d.pid());
    eprintln!(
        "{file_len} bytes of edXML, attachment in CDATA: read in {took:?}, daemon VmHWM {hwm} KiB"
    );
    assert_eq!(counts(&status, "truc"), (1, 0, 0), "{status}");
    // The sha256 is exact: the signatures naming it sign the document.
    let report = d.report("");
    assert_eq!(block(&report, "outgoing"), (1, 1, 0, 0), "{report}");
    assert!(
        hwm < 100 * 1024,
        "peak RSS {hwm} KiB for a {file_len}-byte file"
    );
}

#[test]
fn edxml_200mb_of_recipients_is_rejected_with_bounded_memory() {
    let (env, inbox) = big_file_env("512MiB");
    let text = sample("edoc_revocation.edxml");
    let at = text.find("<edXML:To>").unwrap();
    let to = "<edXML:To><edXML:OrganId>000.00.00.H41</edXML:OrganId><edXML:OrganName>UBND Tỉnh Nghệ An</edXML:OrganName></edXML:To>\n";
    let times = 200_000_000 / to.len() + 1;
    let tmp = inbox.path().join("to.edxml.tmp");
    let file_len = write_repeated(
        &tmp,
        &text.as_bytes()[..at],
        to.as_bytes(),
        times,
        &text.as_bytes()[at..],
    );
    std::fs::rename(&tmp, inbox.path().join("to.edxml")).unwrap();
    let d = env.start();
    let status = d.wait_caught_up();
    let hwm = vm_hwm_kib(d.pid());
    eprintln!("{file_len} bytes of edXML with {times} `To`: daemon VmHWM {hwm} KiB");
    assert_eq!(counts(&status, "truc"), (0, 0, 1), "{status}");
    let rejected = rejected_lines(&env.rejected("truc"));
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0]["file"].as_str().unwrap().ends_with("to.edxml"));
    assert_eq!(rejected[0]["reason"], "more than 1000 `To` elements");
    assert!(
        hwm < 100 * 1024,
        "peak RSS {hwm} KiB for a {file_len}-byte file"
    );
}

#[test]
fn edxml_file_over_max_file_size_is_rejected_without_being_read() {
    let (env, inbox) = big_file_env("1MiB");
    // A valid message of about 55 MB: it would be accepted if it were read.
    let tmp = inbox.path().join("big.edxml.tmp");
    write_big_message(&tmp, 40 * 1024 * 1024);
    let file_len = std::fs::metadata(&tmp).unwrap().len();
    std::fs::rename(&tmp, inbox.path().join("big.edxml")).unwrap();
    // Under the cap: read as usual.
    std::fs::write(
        inbox.path().join("small.edxml"),
        sample("edoc_revocation.edxml"),
    )
    .unwrap();
    let d = env.start();
    let status = d.wait_caught_up();
    assert_eq!(counts(&status, "truc"), (1, 0, 1), "{status}");
    // Everything the daemon read through read(2): its store, its requests, the small file.
    let read = read_chars(d.pid());
    eprintln!("a {file_len}-byte file over max_file_size: the daemon read {read} bytes in all");
    assert!(read < 16 << 20, "{read} bytes read: the big file was read");
    let rejected = rejected_lines(&env.rejected("truc"));
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0]["file"].as_str().unwrap().ends_with("big.edxml"));
    assert_eq!(rejected[0]["line"], 0);
    assert_eq!(
        rejected[0]["reason"],
        format!("file is {file_len} bytes, larger than max_file_size (1048576 bytes): not read")
    );
    // Marked as read like any bad file: not tried again after a restart.
    d.stop();
    let d = env.start();
    let status = d.wait_caught_up();
    assert_eq!(counts(&status, "truc"), (1, 0, 1), "{status}");
    assert_eq!(rejected_lines(&env.rejected("truc")).len(), 1);
}
