use super::*;
use crate::model::Direction;
use crate::model::Document;
use crate::model::ExchangeEvent;
use crate::model::{Channel, Confidentiality};
use encoding::*;
use std::path::Path;

fn doc() -> Document {
    let mut d = Document::from_event(&ExchangeEvent {
        event_id: None,
        time: 1_781_000_000,
        doc_id: "12/QĐ-UBND".into(),
        direction: Direction::Incoming,
        channel: Channel::Electronic,
        confidentiality: Confidentiality::Normal,
        unit: "Văn phòng".into(),
        doc_number: "12/QĐ-UBND".into(),
        doc_type: "Quyết định".into(),
        subject: "Về việc chuyển đổi số".into(),
        counterpart: "UBND tỉnh".into(),
        sha256: Some("ab".repeat(32)),
    });
    d.add_signatures(3, &["Nguyễn Văn A".into()]);
    d
}

#[test]
fn pages_of_the_previous_format_still_decode_and_index() {
    use super::codec::Writer;
    use super::encoding::{decode_group, encode_group, index_page};
    let groups: Vec<(String, DocGroup)> = ["A-1", "A-2", "B-7"]
        .iter()
        .map(|id| {
            let mut d = doc();
            d.doc_id = id.to_string();
            let mut g = DocGroup {
                incoming: Some(d),
                ..DocGroup::default()
            };
            g.signatures.signers.push(format!("signer of {id}"));
            (id.to_string(), g)
        })
        .collect();
    // Format 2: doc_id then the group, without the group's length.
    let mut w = Writer::new(2);
    w.uvar(groups.len() as u64);
    for (id, g) in &groups {
        w.str(id).raw(&encode_group(g));
    }
    let legacy = w.buf;
    assert_eq!(decode_page(&legacy).unwrap(), groups);
    let index = index_page(&legacy).unwrap();
    for ((id, g), e) in groups.iter().zip(&index) {
        let range = |r: &std::ops::Range<u32>| r.start as usize..r.end as usize;
        assert_eq!(&legacy[range(&e.id)], id.as_bytes());
        assert_eq!(&decode_group(&legacy[range(&e.group)], id).unwrap(), g);
    }
    // A page cut short is an error, not a panic.
    assert!(index_page(&legacy[..legacy.len() - 3]).is_err());
    let current = encode_page(&groups);
    assert!(index_page(&current[..current.len() - 1]).is_err());
}

#[test]
fn values_round_trip_through_the_encodings() {
    let g = DocGroup {
        signatures: Signatures {
            roles: 2,
            signers: vec!["UBND xã".into()],
        },
        sha_signatures: vec![(
            "ab".repeat(32),
            Signatures {
                roles: 1,
                signers: vec![],
            },
        )],
        outgoing: None,
        incoming: Some(doc()),
        pending_status: Default::default(),
    };
    let page = vec![("12/QĐ-UBND".to_string(), g)];
    assert_eq!(decode_page(&encode_page(&page)).unwrap(), page);
    let s = SourceState {
        accepted: 5,
        duplicate: 1,
        invalid: 2,
        last_event_time: Some(-3),
        rejected_len: 99,
        files: vec![FilePos {
            path: "/x".into(),
            dev: 1,
            ino: 2,
            offset: 3,
            line: 4,
            head_len: 5,
            head_hash: u64::MAX,
            shadow_of: 7,
        }],
        retired: vec![],
        feed: FeedPos::default(),
    };
    assert_eq!(decode_source(&encode_source(&s)).unwrap(), s);
    let http = SourceState {
        accepted: 1,
        feed: FeedPos {
            cursor: Some("c-42".into()),
            skip: 3,
            pages: 9,
        },
        ..SourceState::default()
    };
    assert_eq!(decode_source(&encode_source(&http)).unwrap(), http);
    for day in [i32::MIN, -1, 0, 739_000, i32::MAX] {
        assert_eq!(day_of_key(&day_key(day)).unwrap(), day);
    }
    assert!(day_key(-1) < day_key(0), "day keys sort in day order");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A page (format 2) of one plain group, as written before edXML data existed.
const PLAIN_PAGE_V2: &str = "02010b31322f51c4902d55424e4400000002809dbfa20d010003010b56c4836e207068c3b26e670b31322f51c4902d55424e440f517579e1babf7420c491e1bb8b6e682056e1bb81207669e1bb87632063687579e1bb836e20c491e1bb95692073e1bb910b55424e442074e1bb896e68014061626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162010f4e677579e1bb856e2056c4836e2041";
/// Its group bytes: after the format, count and the 11-byte doc_id.
const PLAIN_GROUP_OFFSET: usize = 2 * (3 + 11);

#[test]
fn edxml_data_rides_behind_a_flag_and_plain_groups_keep_their_bytes() {
    use crate::model::DocStatus;
    let id = "12/QĐ-UBND".to_string();
    let plain = DocGroup {
        incoming: Some(doc()),
        ..DocGroup::default()
    };
    // Old data decodes unchanged, with no edXML data.
    let decoded = decode_page(&unhex(PLAIN_PAGE_V2)).unwrap();
    assert_eq!(decoded, vec![(id.clone(), plain.clone())]);
    assert!(decoded[0].1.incoming.as_ref().unwrap().status.is_empty());
    // A group without edXML data is still encoded exactly as before.
    assert_eq!(
        hex(&encode_group(&plain)),
        PLAIN_PAGE_V2[PLAIN_GROUP_OFFSET..]
    );
    let mut edxml = plain.clone();
    let d = edxml.incoming.as_mut().unwrap();
    d.business = 0b10;
    d.status = DocStatus::from_code(2, 1_781_000_100);
    edxml.pending_status[0] = DocStatus::from_code(1, 5);
    let bytes = encode_page(&[(id.clone(), edxml.clone())]);
    assert_eq!(
        decode_page(&bytes).unwrap(),
        vec![(id.clone(), edxml.clone())]
    );
    assert_eq!(decode_group(&encode_group(&edxml), &id).unwrap(), edxml);
}

#[test]
fn rejected_counts_and_edxml_files_are_committed_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Store::open(dir.path(), 1 << 20).unwrap();
        s.record_batch_once(&Commit {
            rejected_days: vec![(739_000, [2, 1]), (739_001, [0, 1])],
            edxml_files: vec![
                ("truc".into(), "/in/a.edxml".into()),
                ("truc".into(), "/in/b.edxml".into()),
                ("truc2".into(), "/in/c.edxml".into()),
            ],
            ..Commit::default()
        })
        .unwrap();
        // A day back to zero is removed.
        s.record_batch_once(&Commit {
            rejected_days: vec![(739_001, [0, 0])],
            ..Commit::default()
        })
        .unwrap();
        s.flush().unwrap();
    }
    let s = Store::open(dir.path(), 1 << 20).unwrap();
    let agg = s.aggregates().unwrap();
    assert_eq!(agg.rejected(None, None), [2, 1]);
    assert_eq!(agg.rejected_days().collect::<Vec<_>>(), vec![739_000]);
    let files = s.edxml_files("truc").unwrap();
    assert_eq!(files.len(), 2);
    assert!(files.contains("/in/a.edxml") && files.contains("/in/b.edxml"));
    assert_eq!(s.edxml_files("truc2").unwrap().len(), 1);
    assert!(
        s.edxml_files("tru").unwrap().is_empty(),
        "names do not prefix each other"
    );
}

#[test]
fn a_source_state_written_before_feed_positions_still_decodes() {
    // Layout 1 as written by earlier versions: format byte, counters,
    // last event time, rejected length, no files, no retired files.
    let old = [1u8, 5, 1, 2, 1, 5, 99, 0, 0];
    let s = decode_source(&old).unwrap();
    assert_eq!(s.accepted, 5);
    assert_eq!(s.last_event_time, Some(-3));
    assert_eq!(s.rejected_len, 99);
    assert_eq!(s.feed, FeedPos::default());
    // A file source's state is still written in exactly that layout.
    assert_eq!(encode_source(&s), old);
    // An unknown trailing section is an error, not a silent misread.
    let mut newer = old.to_vec();
    newer.push(77);
    assert!(decode_source(&newer).is_err());
}

#[test]
fn a_store_of_a_newer_layout_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        s.insert_raw(KEY_VERSION, &(STORE_VERSION + 1).to_le_bytes());
        s.flush().unwrap();
    }
    let e = Store::open(dir.path(), 1 << 20).err().unwrap().to_string();
    let newer = format!("layout version {}", STORE_VERSION + 1);
    assert!(
        e.contains(&newer) && e.contains("upgrade") && e.contains("docflowd rebuild"),
        "{e}"
    );
}

fn store_with_one_commit(path: &Path) {
    let mut s = Store::open(path, 1 << 20).unwrap();
    s.record_batch_once(&Commit {
        sources: vec![(
            "x".into(),
            SourceState {
                accepted: 3,
                ..Default::default()
            },
        )],
        ..Commit::default()
    })
    .unwrap();
    s.flush().unwrap();
}

#[test]
fn a_store_whose_files_are_garbage_is_refused_not_opened_empty() {
    let dir = tempfile::tempdir().unwrap();
    store_with_one_commit(dir.path());
    let db = dir.path().join("db");
    let len = std::fs::metadata(&db).unwrap().len() as usize;
    std::fs::write(&db, vec![0x5a; len]).unwrap();
    let e = Store::open(dir.path(), 1 << 20).err().expect("refused");
    let text = e.to_string();
    assert!(
        text.contains(&dir.path().display().to_string()) && text.contains("docflowd rebuild"),
        "{text}"
    );
    // Truncated to nothing: the same.
    std::fs::write(&db, b"").unwrap();
    assert!(Store::open(dir.path(), 1 << 20).is_err());
}

#[test]
fn no_store_yet_is_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rejected")).unwrap();
    let s = Store::open(dir.path(), 1 << 20).unwrap();
    assert!(s.sources().unwrap().is_empty());
    assert_eq!(
        s.meta().unwrap().unwrap().created_by,
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn an_empty_data_file_left_by_a_failed_creation_is_a_fresh_start() {
    // A creation on a full disk leaves sled's files empty and no marker.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db"), b"").unwrap();
    std::fs::write(dir.path().join("conf"), b"").unwrap();
    assert!(!Store::exists(dir.path()));
    let s = Store::open(dir.path(), 1 << 20).unwrap();
    assert!(s.sources().unwrap().is_empty());
    drop(s);
    assert!(Store::exists(dir.path()), "created: marked as a store");
}

#[test]
fn an_unfinished_snapshot_left_by_a_full_disk_does_not_block_opening() {
    // sled 0.34, opened on a full disk, leaves an empty snap.*.generating
    // file and then reads it as corruption at every later open.
    let dir = tempfile::tempdir().unwrap();
    store_with_one_commit(dir.path());
    std::fs::write(dir.path().join("snap.00000000FFFFFFFF.generating"), b"").unwrap();
    let s = Store::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(s.sources().unwrap()["x"].accepted, 3);
}

#[test]
fn a_commit_is_read_back_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Store::open(dir.path(), 1 << 20).unwrap();
        let mut commit = Commit::default();
        commit.sha_log.push(("aa".into(), "D1".into()));
        commit
            .pending_put
            .push(("bb".into(), PendingSha::default()));
        commit.seen[1] = vec![7, 8];
        commit.sources.push((
            "x".into(),
            SourceState {
                accepted: 3,
                ..Default::default()
            },
        ));
        s.record_batch_once(&commit).unwrap();
        commit.sha_log[0].1 = "D2".into();
        s.record_batch_once(&commit).unwrap();
        s.flush().unwrap();
    }
    let s = Store::open(dir.path(), 1 << 20).unwrap();
    let mut pairs = Vec::new();
    s.scan_sha_log(None, |sha, id| pairs.push((sha, id)))
        .unwrap();
    assert_eq!(
        pairs,
        vec![("aa".into(), "D1".into()), ("aa".into(), "D2".into())]
    );
    assert_eq!(s.pending_shas().unwrap(), vec!["bb".to_string()]);
    assert!(s.pending("bb").unwrap().is_some());
    // A commit after reopening never overwrites an earlier commit's ids.
    let mut s = s;
    let only_seen = Commit {
        seen: [vec![], vec![9]],
        ..Commit::default()
    };
    s.record_batch_once(&only_seen).unwrap();
    drop(s);
    let mut s = Store::open(dir.path(), 1 << 20).unwrap();
    s.record_batch_once(&Commit {
        seen: [vec![], vec![10]],
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(
        s.seen_ids(crate::model::SourceKind::Signature)
            .unwrap()
            .len(),
        4
    );
    assert!(s
        .seen_ids(crate::model::SourceKind::Exchange)
        .unwrap()
        .is_empty());
    assert_eq!(s.sources().unwrap()["x"].accepted, 3);
    assert_eq!(s.sha_log_seq, 4, "one sequence number per commit");
    let mut found = Vec::new();
    s.scan_sha_log(Some("aa"), |_, id| found.push(id)).unwrap();
    assert_eq!(found, vec!["D1".to_string(), "D2".to_string()]);
}
