//! A prepared batch on its way to the committer, and what the batch in
//! flight tells the preparation of the next one.

use std::collections::{HashMap, HashSet};

use super::Shared;
use crate::aggregate::{Day, DayCounts, Slot};
use crate::model::Direction;
use crate::store::{Commit, PendingSha, SourceState};

/// A batch ready to commit.
pub(super) struct Prepared {
    /// Everything but the pages, which the committer compresses from `raw_pages`.
    pub(super) commit: Commit,
    /// Pages to assemble and compress (sharing their parts with the writer's cache).
    pub(super) raw_pages: Vec<crate::store::pages::PageDraft>,
    pub(super) states: Vec<(usize, SourceState)>,
    /// The last batch sequence number of each source in the batch.
    pub(super) seqs: Vec<(usize, u64)>,
    pub(super) delta: HashMap<Slot, i64>,
    pub(super) rejected_delta: HashMap<(Day, Direction), i64>,
    pub(super) verdict_results: Vec<(usize, &'static str)>,
}

/// What the batch in flight (prepared, handed to the committer, perhaps not
/// yet durable) changed that the next batch's preparation reads: the store
/// and the published state do not show it until it is committed.
#[derive(Default)]
pub(super) struct InFlight {
    pub(super) states: Vec<(usize, SourceState)>,
    pub(super) days: Vec<(Day, DayCounts)>,
    pub(super) rejected_days: Vec<(Day, [u64; 2])>,
    pub(super) sha_log: Vec<(String, String)>,
    pub(super) pending_put: Vec<(String, PendingSha)>,
    pub(super) pending_remove: Vec<String>,
    /// Pages the cache must keep until they are durable.
    pub(super) pages: HashSet<String>,
}

impl InFlight {
    pub(super) fn of(p: &Prepared) -> InFlight {
        InFlight {
            states: p.states.clone(),
            days: p.commit.days.clone(),
            rejected_days: p.commit.rejected_days.clone(),
            sha_log: p.commit.sha_log.clone(),
            pending_put: p.commit.pending_put.clone(),
            pending_remove: p.commit.pending_remove.clone(),
            pages: p.page_keys(),
        }
    }
}

impl Prepared {
    /// The keys of the pages this batch writes: the cache keeps them until they are durable.
    pub(super) fn page_keys(&self) -> HashSet<String> {
        self.raw_pages.iter().map(|d| d.key.clone()).collect()
    }

    /// After its commit: the published state (counts, positions) follows the store.
    pub(super) fn publish(&self, shared: &Shared) {
        {
            let mut agg = shared.aggregates.write().expect("aggregates lock");
            for (slot, n) in &self.delta {
                agg.apply(slot, *n);
            }
            for ((day, d), n) in &self.rejected_delta {
                agg.apply_rejected(*day, *d, *n);
            }
        }
        for (i, result) in &self.verdict_results {
            shared.sources[*i].count_verdict(result);
        }
        for (i, state) in &self.states {
            let seq = self
                .seqs
                .iter()
                .find(|(s, _)| s == i)
                .map_or(0, |(_, seq)| *seq);
            shared.sources[*i].committed(state.clone(), seq);
        }
    }
}
