//! The hand-over between source threads and the writer: one small bounded
//! queue per source, drained oldest event time first. Keeping the sources
//! aligned in time keeps a document's exchange and signature events close
//! together, so the writer finds them in its caches.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::SourceBatch;

/// Batches a source may have waiting before its reader blocks.
const PER_SOURCE: usize = 8;

struct State {
    queues: Vec<VecDeque<SourceBatch>>,
    open: Vec<bool>,
    /// Set by [`MergeQueue::discard_queued`]: later batches would skip the dropped ones.
    discarding: bool,
}

/// Closes a source's queue when dropped (see [`MergeQueue::close_on_drop`]).
pub(crate) struct CloseOnDrop<'a>(&'a MergeQueue, usize);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close(self.1);
    }
}

/// Bounded per-source queues with a time-ordered drain.
pub(crate) struct MergeQueue {
    state: Mutex<State>,
    changed: Condvar,
}

/// Earliest event time in a batch (batches without events go first).
fn first_time(b: &SourceBatch) -> i64 {
    b.items
        .iter()
        .filter_map(|i| match i {
            super::Item::Event(e) => Some(e.time()),
            super::Item::Invalid(_) => None,
        })
        .min()
        .unwrap_or(i64::MIN)
}

impl MergeQueue {
    pub(crate) fn new(sources: usize) -> MergeQueue {
        MergeQueue {
            state: Mutex::new(State {
                queues: (0..sources).map(|_| VecDeque::new()).collect(),
                open: vec![true; sources],
                discarding: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a batch, waiting while the source's queue is full; false once
    /// `stop` says to give up.
    pub(crate) fn push(&self, batch: SourceBatch, stop: impl Fn() -> bool) -> bool {
        let source = batch.source;
        let mut state = self.lock();
        while state.queues[source].len() >= PER_SOURCE || state.discarding {
            if stop() || state.discarding {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.queues[source].push_back(batch);
        self.changed.notify_all();
        true
    }

    /// Drops every queued batch and refuses later ones (at shutdown): their
    /// positions were never committed, so the next start reads them again.
    pub(crate) fn discard_queued(&self) -> usize {
        let mut state = self.lock();
        state.discarding = true;
        let n = state.queues.iter().map(VecDeque::len).sum();
        for q in &mut state.queues {
            q.clear();
        }
        self.changed.notify_all();
        n
    }

    /// A source will send nothing more.
    pub(crate) fn close(&self, source: usize) {
        self.lock().open[source] = false;
        self.changed.notify_all();
    }

    /// Closes `source` when the returned guard drops, however its reader
    /// thread ends, so that the writer never waits for it forever.
    pub(crate) fn close_on_drop(&self, source: usize) -> CloseOnDrop<'_> {
        CloseOnDrop(self, source)
    }

    /// Up to about `max_events` events of batches, oldest first; waits up to
    /// `timeout` for the first. `None` once every source is closed and drained.
    pub(crate) fn pop(&self, max_events: usize, timeout: Duration) -> Option<Vec<SourceBatch>> {
        let mut state = self.lock();
        if state.queues.iter().all(VecDeque::is_empty) {
            if !state.open.iter().any(|o| *o) {
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let mut out = Vec::new();
        let mut events = 0;
        while events < max_events {
            let next = state
                .queues
                .iter()
                .enumerate()
                .filter_map(|(i, q)| q.front().map(|b| (first_time(b), i)))
                .min();
            let Some((_, i)) = next else { break };
            let batch = state.queues[i].pop_front().expect("non-empty queue");
            events += batch.items.len().max(1);
            out.push(batch);
        }
        if !out.is_empty() {
            self.changed.notify_all();
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Role, SignatureEvent};
    use crate::sources::Item;

    fn batch(source: usize, time: i64) -> SourceBatch {
        SourceBatch {
            source,
            seq: 1,
            items: vec![Item::Event(Event::Signature(SignatureEvent {
                event_id: None,
                time,
                doc_id: Some("D".into()),
                sha256: None,
                role: Some(Role::Person),
                valid: true,
                signer: String::new(),
                verdict: None,
            }))],
            files: vec![],
            retired: vec![],
            feed: None,
        }
    }

    #[test]
    fn batches_come_out_oldest_first_across_sources() {
        let q = MergeQueue::new(2);
        assert!(q.push(batch(0, 30), || false));
        assert!(q.push(batch(0, 40), || false));
        assert!(q.push(batch(1, 10), || false));
        assert!(q.push(batch(1, 35), || false));
        let out = q.pop(100, Duration::ZERO).unwrap();
        let times: Vec<i64> = out.iter().map(first_time).collect();
        assert_eq!(times, vec![10, 30, 35, 40]);
        q.close(0);
        q.close(1);
        assert!(q.pop(100, Duration::ZERO).is_none());
    }

    #[test]
    fn discarded_batches_are_not_handed_out() {
        let q = MergeQueue::new(2);
        assert!(q.push(batch(0, 1), || false));
        assert!(q.push(batch(1, 2), || false));
        assert_eq!(q.discard_queued(), 2);
        assert!(
            !q.push(batch(0, 3), || false),
            "no batch after the dropped ones"
        );
        q.close(0);
        q.close(1);
        assert!(q.pop(100, Duration::ZERO).is_none());
    }

    #[test]
    fn a_full_queue_blocks_only_until_stop() {
        let q = MergeQueue::new(1);
        for _ in 0..PER_SOURCE {
            assert!(q.push(batch(0, 1), || false));
        }
        assert!(!q.push(batch(0, 1), || true));
    }
}
