//! Store layout migrations: one step per version (vN → vN+1), each applied
//! as one atomic sled batch that also bumps the version key, so a crash
//! leaves the store at a consistent version and the next start goes on.

use std::collections::BTreeMap;

use super::codec::{DecodeError, Reader, Writer};
use super::keys::{KEY_META, KEY_VERSION, PREFIX_SEEN};
use super::StoreError;

/// Format byte of the `\x00meta` value.
const FORMAT_META: u8 = 1;
/// Event-id hashes per value once compacted (512 KiB values).
pub(crate) const SEEN_CHUNK_IDS: usize = 64 * 1024;

/// Named counts of what a step rewrote.
pub(crate) type StepCounts = BTreeMap<&'static str, u64>;

/// One layout step: turns a store of version `from` into version `from + 1`.
pub(crate) struct Migration {
    pub(crate) from: u32,
    pub(crate) what: &'static str,
    run: fn(&sled::Db, &mut sled::Batch) -> Result<StepCounts, StoreError>,
}

/// Every migration, in order; `MIGRATIONS[i].from == i + 1`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        from: 1,
        what: "store metadata (creator, migration history); seen event ids packed into few values; pages may be written in format 3",
        run: v1_to_v2,
    },
    Migration {
        from: 2,
        what: "pages may be written LZ4-compressed (format 4)",
        run: v2_to_v3,
    },
    Migration {
        from: 3,
        what: "a commit record (sequence number and per-kind sums) written with every commit, checked at start",
        run: v3_to_v4,
    },
];

/// What one applied step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepReport {
    pub(crate) from: u32,
    pub(crate) to: u32,
    pub(crate) what: &'static str,
    pub(crate) counts: StepCounts,
}

/// When and by which docflowd a store was created and migrated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// docflowd version that created the store (`""` if it predates this record).
    pub(crate) created_by: String,
    /// Unix time of creation (0 if unknown).
    pub(crate) created_at: i64,
    /// Applied migrations: (from version, unix time, docflowd version).
    pub(crate) migrations: Vec<(u32, i64, String)>,
}

pub(crate) fn encode_meta(m: &Meta) -> Vec<u8> {
    let mut w = Writer::new(FORMAT_META);
    w.str(&m.created_by)
        .ivar(m.created_at)
        .uvar(m.migrations.len() as u64);
    for (from, at, by) in &m.migrations {
        w.uvar(u64::from(*from)).ivar(*at).str(by);
    }
    w.buf
}

pub(crate) fn decode_meta(v: &[u8]) -> Result<Meta, DecodeError> {
    let mut r = Reader::new(v, FORMAT_META)?;
    let created_by = r.str()?;
    let created_at = r.ivar()?;
    let n = r.count()?;
    let migrations = (0..n)
        .map(|_| Ok((r.uvar()? as u32, r.ivar()?, r.str()?)))
        .collect::<Result<_, DecodeError>>()?;
    Ok(Meta {
        created_by,
        created_at,
        migrations,
    })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Metadata of a store created now by this binary.
pub(crate) fn new_meta() -> Meta {
    Meta {
        created_by: env!("CARGO_PKG_VERSION").to_string(),
        created_at: now(),
        migrations: Vec::new(),
    }
}

/// Brings a store of layout `found` up to `target`, one atomic step at a time.
pub(crate) fn migrate(
    db: &sled::Db,
    found: u32,
    target: u32,
) -> Result<Vec<StepReport>, StoreError> {
    let mut reports = Vec::new();
    let mut version = found;
    while version < target {
        let step = MIGRATIONS
            .iter()
            .find(|m| m.from == version)
            .ok_or(DecodeError("no migration from this layout version"))?;
        let mut batch = sled::Batch::default();
        let counts = (step.run)(db, &mut batch)?;
        batch.insert(KEY_VERSION, &(version + 1).to_le_bytes());
        db.apply_batch(batch).map_err(StoreError::write)?;
        db.flush().map_err(StoreError::write)?;
        reports.push(StepReport {
            from: version,
            to: version + 1,
            what: step.what,
            counts,
        });
        version += 1;
    }
    Ok(reports)
}

/// Records a migration from `from` in the metadata (part of the step's batch).
fn record_step(db: &sled::Db, batch: &mut sled::Batch, from: u32) -> Result<(), StoreError> {
    let mut meta = match db.get(KEY_META)? {
        Some(v) => decode_meta(&v)?,
        None => Meta::default(),
    };
    meta.migrations
        .push((from, now(), env!("CARGO_PKG_VERSION").to_string()));
    batch.insert(KEY_META, encode_meta(&meta));
    Ok(())
}

/// v3 → v4: the commit proof, summed over the store as it is. From now on
/// every commit keeps it up to date, and a binary that would not (older
/// than layout 4) refuses the store.
fn v3_to_v4(db: &sled::Db, batch: &mut sled::Batch) -> Result<StepCounts, StoreError> {
    record_step(db, batch, 3)?;
    let proof = super::verify::tally_all(db)?;
    batch.insert(super::keys::KEY_COMMIT, proof.encode());
    let keys = super::proof::COVERED
        .iter()
        .map(|k| proof.tally(*k).count)
        .sum();
    Ok(StepCounts::from([("keys_summed", keys)]))
}

/// v2 → v3: nothing is rewritten. Layout 3 lets pages be written
/// LZ4-compressed (page format 4), which docflowd 0.2 cannot read: the
/// version bump is what makes it refuse such a store. Uncompressed pages
/// stay as they are and are compressed when next written.
fn v2_to_v3(db: &sled::Db, batch: &mut sled::Batch) -> Result<StepCounts, StoreError> {
    record_step(db, batch, 2)?;
    Ok(StepCounts::new())
}

/// v1 → v2: adds `\x00meta`, and packs the seen event ids, which v1 wrote as
/// one value per commit, into values of [`SEEN_CHUNK_IDS`] ids. Layout 2
/// also lets pages be written in format 3 (group lengths), which docflowd
/// 0.1.0 cannot read: the version bump is what makes it refuse such a store.
/// Format-2 pages stay as they are and are rewritten when next touched.
/// Packing the seen ids turns one sled key per batch ever committed, all
/// read at every start, into a few keys.
fn v1_to_v2(db: &sled::Db, batch: &mut sled::Batch) -> Result<StepCounts, StoreError> {
    record_step(db, batch, 1)?;
    let mut counts = BTreeMap::new();
    let (mut lists, mut ids, mut chunks) = (0u64, 0u64, 0u64);
    for kind in [0u8, 1u8] {
        let mut pending: Vec<u8> = Vec::new();
        let mut last_key: Option<sled::IVec> = None;
        for item in db.scan_prefix([PREFIX_SEEN, kind]) {
            let (k, v) = item?;
            if v.len() % 8 != 0 {
                return Err(DecodeError("seen id list not a multiple of 8 bytes").into());
            }
            lists += 1;
            ids += (v.len() / 8) as u64;
            batch.remove(k.clone());
            pending.extend_from_slice(&v);
            last_key = Some(k);
            // A chunk is keyed by the last list merged into it: its sequence
            // number is below every later commit's, so none is overwritten.
            if pending.len() >= SEEN_CHUNK_IDS * 8 {
                batch.insert(last_key.take().expect("key of a merged list"), pending);
                pending = Vec::new();
                chunks += 1;
            }
        }
        if let Some(k) = last_key {
            batch.insert(k, pending);
            chunks += 1;
        }
    }
    counts.insert("seen_id_lists_before", lists);
    counts.insert("seen_id_lists_after", chunks);
    counts.insert("seen_ids", ids);
    Ok(counts)
}

#[cfg(test)]
mod tests {
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
        assert_eq!(reports.len(), 3);
        let r = &reports[0];
        assert_eq!((r.from, r.to), (1, 2));
        assert_eq!((reports[1].from, reports[1].to), (2, 3));
        assert_eq!((reports[2].from, reports[2].to), (3, 4));
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
        assert_eq!(meta.migrations.len(), 3);
        assert_eq!(meta.migrations[0].0, 1);
        assert_eq!(meta.migrations[1].0, 2);
        assert_eq!(meta.migrations[2].0, 3);
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
}
