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
    Migration {
        from: 4,
        what: "verified signatures of signed PDF files (signature_verdict keys), covered by the commit record",
        run: v4_to_v5,
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

/// v4 → v5: nothing is rewritten. Layout 5 adds the verified signatures of
/// PDF files (`V` keys) and their tally in the commit record, which docflowd
/// of layout 4 cannot read: the version bump is what makes it refuse such a
/// store. The commit record is summed again so that it names the new kind.
fn v4_to_v5(db: &sled::Db, batch: &mut sled::Batch) -> Result<StepCounts, StoreError> {
    record_step(db, batch, 4)?;
    let mut proof = super::verify::tally_all(db)?;
    if let Some(old) = db.get(super::keys::KEY_COMMIT)? {
        proof.seq = super::proof::Proof::decode(&old)?.seq;
    }
    batch.insert(super::keys::KEY_COMMIT, proof.encode());
    Ok(StepCounts::new())
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
mod tests;
