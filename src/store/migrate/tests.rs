use super::super::encoding::{encode_day, encode_page, encode_sha_log, encode_source};
use super::super::{
    day_key, DocGroup, SourceState, Store, PREFIX_PAGE, PREFIX_PAGE_KEY, PREFIX_SHA_LOG,
    PREFIX_SOURCE, STORE_VERSION,
};
use super::*;
use crate::model::SourceKind;

/// Layout 1, written key by key as docflowd 0.1.0 wrote it: version 1,
/// one seen-id list per commit, no metadata. (Pages use today's page
/// encoding, which layout 2 shares; tests/fixtures/store-v1 holds a
/// store written by docflowd 0.1.0 itself, with its format-2 pages.)
mod legacy {
    use super::*;

    pub(crate) const SEEN_LISTS: u64 = 6;

    pub(crate) fn seen_list_key(kind: u8, seq: u64) -> Vec<u8> {
        let mut k = vec![PREFIX_SEEN, kind];
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    /// Event-id hashes of commit `seq` for `kind`.
    pub(crate) fn ids(kind: u8, seq: u64) -> Vec<u64> {
        (0..3)
            .map(|i| (u64::from(kind) << 40) | (seq << 8) | i)
            .collect()
    }

    pub(crate) fn write_v1_store(path: &std::path::Path) {
        let db = sled::open(path).unwrap();
        db.insert(KEY_VERSION, &1u32.to_le_bytes()).unwrap();
        let mut settings = Writer::new(1);
        settings.str("Asia/Ho_Chi_Minh").u8(3);
        db.insert(crate::store::keys::KEY_SETTINGS, settings.buf)
            .unwrap();
        let page = vec![("D1".to_string(), DocGroup::default())];
        db.insert([PREFIX_PAGE], encode_page(&page)).unwrap();
        db.insert([PREFIX_PAGE_KEY], &[]).unwrap();
        let mut counts = crate::aggregate::DayCounts::new();
        counts.insert(
            (
                "Văn phòng".into(),
                crate::model::Direction::Outgoing,
                crate::model::Class::Paper,
            ),
            4,
        );
        db.insert(day_key(739_000), encode_day(&counts)).unwrap();
        let mut sha = vec![PREFIX_SHA_LOG, 3];
        sha.extend_from_slice(&2u64.to_be_bytes());
        db.insert(sha, encode_sha_log(&[("ab".into(), "D1".into())]))
            .unwrap();
        for seq in 0..SEEN_LISTS {
            for kind in [0u8, 1] {
                let v: Vec<u8> = ids(kind, seq)
                    .iter()
                    .flat_map(|i| i.to_le_bytes())
                    .collect();
                db.insert(seen_list_key(kind, seq), v).unwrap();
            }
        }
        let state = SourceState {
            accepted: 18,
            ..Default::default()
        };
        let mut key = vec![PREFIX_SOURCE];
        key.extend_from_slice(b"exchange");
        db.insert(key, encode_source(&state)).unwrap();
        db.flush().unwrap();
    }
}

#[test]
fn a_layout_1_store_is_migrated_with_everything_kept() {
    let dir = tempfile::tempdir().unwrap();
    legacy::write_v1_store(dir.path());
    let (mut store, reports) = Store::open_migrating(dir.path(), 1 << 20).unwrap();
    assert_eq!(reports.len(), 4);
    let r = &reports[0];
    assert_eq!((r.from, r.to), (1, 2));
    assert_eq!((reports[1].from, reports[1].to), (2, 3));
    assert_eq!((reports[2].from, reports[2].to), (3, 4));
    assert_eq!((reports[3].from, reports[3].to), (4, 5));
    // The commit proof sums what the migrations left: a sound store.
    store.check_quick().expect("quick check after migration");
    assert_eq!(r.counts["seen_id_lists_before"], 2 * legacy::SEEN_LISTS);
    assert_eq!(r.counts["seen_id_lists_after"], 2);
    assert_eq!(r.counts["seen_ids"], 2 * 3 * legacy::SEEN_LISTS);
    let version = store.db.get(KEY_VERSION).unwrap().unwrap();
    assert_eq!(version.as_ref(), &STORE_VERSION.to_le_bytes());
    let meta = store
        .meta()
        .unwrap()
        .expect("meta written by the migration");
    assert_eq!(meta.migrations.len(), 4);
    assert_eq!(meta.migrations[0].0, 1);
    assert_eq!(meta.migrations[1].0, 2);
    assert_eq!(meta.migrations[2].0, 3);
    assert_eq!(meta.migrations[3].0, 4);
    // Nothing lost: every seen id, the counts, the positions, the documents.
    for (kind, k) in [(SourceKind::Exchange, 0u8), (SourceKind::Signature, 1)] {
        let seen = store.seen_ids(kind).unwrap();
        let want: std::collections::HashSet<u64> = (0..legacy::SEEN_LISTS)
            .flat_map(|s| legacy::ids(k, s))
            .collect();
        assert_eq!(seen.len(), want.len());
        assert!(want.iter().all(|id| seen.contains(*id)));
        assert_eq!(store.db.scan_prefix([PREFIX_SEEN, k]).count(), 1);
    }
    assert_eq!(
        store
            .aggregates()
            .unwrap()
            .day_counts(739_000)
            .values()
            .sum::<u64>(),
        4
    );
    assert_eq!(store.sources().unwrap()["exchange"].accepted, 18);
    assert_eq!(store.groups_from(None).count(), 1);
    assert_eq!(store.settings().unwrap().unwrap().required_roles, 3);
    // Later commits never overwrite the packed ids.
    store
        .record_batch_once(&super::super::Commit {
            seen: [vec![u64::MAX], vec![]],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        store.seen_ids(SourceKind::Exchange).unwrap().len() as u64,
        3 * legacy::SEEN_LISTS + 1
    );
    drop(store);
    // Reopening migrates nothing more.
    let (_, again) = Store::open_migrating(dir.path(), 1 << 20).unwrap();
    assert!(again.is_empty());
}

#[test]
fn seen_ids_are_packed_into_bounded_values() {
    let dir = tempfile::tempdir().unwrap();
    legacy::write_v1_store(dir.path());
    {
        let db = sled::open(dir.path()).unwrap();
        let big: Vec<u8> = (0..SEEN_CHUNK_IDS as u64 + 10)
            .flat_map(|i| (i + 1_000_000).to_le_bytes())
            .collect();
        db.insert(legacy::seen_list_key(0, 100), big).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(
        store.seen_ids(SourceKind::Exchange).unwrap().len(),
        SEEN_CHUNK_IDS + 10 + 3 * legacy::SEEN_LISTS as usize
    );
    for item in store.db.scan_prefix([PREFIX_SEEN, 0]) {
        let (_, v) = item.unwrap();
        assert!(v.len() <= 2 * SEEN_CHUNK_IDS * 8);
    }
}

#[test]
fn migrations_form_one_chain_up_to_this_binarys_version() {
    for (i, m) in MIGRATIONS.iter().enumerate() {
        assert_eq!(
            m.from as usize,
            i + 1,
            "migration {i} starts at the wrong version"
        );
    }
    assert_eq!(MIGRATIONS.len() as u32 + 1, super::super::STORE_VERSION);
}

#[test]
fn meta_round_trips() {
    let m = Meta {
        created_by: "0.1.0".into(),
        created_at: 1_781_000_000,
        migrations: vec![(1, 1_781_000_100, "0.2.0".into())],
    };
    assert_eq!(decode_meta(&encode_meta(&m)).unwrap(), m);
    assert!(decode_meta(&[9, 1]).is_err());
}

#[test]
fn a_layout_4_store_keeps_its_commit_sequence_and_passes_its_check() {
    let dir = tempfile::tempdir().unwrap();
    let seq_before = {
        let mut store = Store::open(dir.path(), 1 << 20).unwrap();
        let commit = crate::store::Commit {
            seen: [vec![7], vec![]],
            ..Default::default()
        };
        store.record_batch_once(&commit).unwrap();
        store.record_batch_once(&commit).unwrap();
        let seq = super::super::proof::Proof::decode(
            &store
                .db
                .get(super::super::keys::KEY_COMMIT)
                .unwrap()
                .unwrap(),
        )
        .unwrap()
        .seq;
        store.db.insert(KEY_VERSION, &4u32.to_le_bytes()).unwrap();
        store.flush().unwrap();
        seq
    };
    let (store, reports) = Store::open_migrating(dir.path(), 1 << 20).unwrap();
    assert_eq!(
        reports.iter().map(|r| (r.from, r.to)).collect::<Vec<_>>(),
        [(4, 5)]
    );
    store.check_quick().expect("quick check after migration");
    let proof = super::super::proof::Proof::decode(
        &store
            .db
            .get(super::super::keys::KEY_COMMIT)
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        proof.seq, seq_before,
        "the sequence goes on from the old record"
    );
}
