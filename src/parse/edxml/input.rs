//! The bytes of one edXML file as the reader sees them: a `BufRead` that fails
//! on a byte past the file-size cap or past the budget of the current piece of
//! markup (so nothing quick-xml buffers can grow beyond it), and that can look
//! a few bytes ahead across chunk boundaries.

use std::io::{self, BufRead, Read};

/// Most bytes [`Input::peek`] holds beyond the inner reader's buffer.
const AHEAD_CAP: usize = 64;

/// A limit that stopped the reading (carried inside an `io::Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum Limit {
    #[error("more than {0} bytes in the file")]
    File(u64),
    #[error("more than {0} bytes in one piece of markup")]
    Markup(u64),
}

impl Limit {
    /// The limit behind an error returned by [`Input`], if that is what it is.
    pub(super) fn of(e: &io::Error) -> Option<Limit> {
        e.get_ref()?.downcast_ref::<Limit>().copied()
    }
}

/// Wraps the file's reader; see the module doc.
pub(super) struct Input<R> {
    inner: R,
    /// Bytes taken out of `inner` by [`Input::peek`] and not consumed yet.
    ahead: Vec<u8>,
    ahead_pos: usize,
    /// Bytes consumed since the start.
    consumed: u64,
    max_bytes: u64,
    /// `consumed` when the current piece of markup began, while one is read.
    markup_start: Option<u64>,
    markup_budget: u64,
}

impl<R: BufRead> Input<R> {
    /// Reads at most `max_bytes` from `inner`, and `markup_budget` per piece of markup.
    pub(super) fn new(inner: R, max_bytes: u64, markup_budget: u64) -> Input<R> {
        Input {
            inner,
            ahead: Vec::with_capacity(AHEAD_CAP),
            ahead_pos: 0,
            consumed: 0,
            max_bytes,
            markup_start: None,
            markup_budget,
        }
    }

    /// From now until [`Input::end_markup`], reading more than the budget fails.
    pub(super) fn begin_markup(&mut self) {
        self.markup_start = Some(self.consumed);
    }

    pub(super) fn end_markup(&mut self) {
        self.markup_start = None;
    }

    /// Refuses `len` more bytes past the file-size cap: the file is too long.
    fn within_file(&self, len: usize) -> io::Result<()> {
        if len as u64 > self.max_bytes.saturating_sub(self.consumed) {
            return Err(io::Error::other(Limit::File(self.max_bytes)));
        }
        Ok(())
    }

    /// How much more the current piece of markup may take (no limit outside one).
    fn markup_room(&self) -> io::Result<usize> {
        let Some(start) = self.markup_start else {
            return Ok(usize::MAX);
        };
        match self.markup_budget.saturating_sub(self.consumed - start) {
            0 => Err(io::Error::other(Limit::Markup(self.markup_budget))),
            room => Ok(usize::try_from(room).unwrap_or(usize::MAX)),
        }
    }

    /// The next unconsumed bytes, at least `n` of them (`n` ≤ 64) unless the
    /// input ends first; consumes nothing.
    pub(super) fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        let n = n.min(AHEAD_CAP);
        if self.ahead_pos == self.ahead.len() {
            self.ahead.clear();
            self.ahead_pos = 0;
            let available = fill(&mut self.inner)?.len();
            if available >= n || available == 0 {
                self.within_file(available)?;
                return fill(&mut self.inner);
            }
        } else {
            self.ahead.drain(..self.ahead_pos);
            self.ahead_pos = 0;
        }
        while self.ahead.len() < n {
            let available = fill(&mut self.inner)?;
            if available.is_empty() {
                break;
            }
            // Take more than needed so a long lookahead run advances in steps of AHEAD_CAP.
            let take = available.len().min(AHEAD_CAP - self.ahead.len());
            self.ahead.extend_from_slice(&available[..take]);
            self.inner.consume(take);
        }
        self.within_file(self.ahead.len())?;
        Ok(&self.ahead)
    }
}

/// `fill_buf`, retried when interrupted.
fn fill<R: BufRead>(inner: &mut R) -> io::Result<&[u8]> {
    loop {
        match inner.fill_buf() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    inner.fill_buf()
}

impl<R: BufRead> BufRead for Input<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let room = self.markup_room()?;
        if self.ahead_pos < self.ahead.len() {
            let data = &self.ahead[self.ahead_pos..];
            return Ok(&data[..data.len().min(room)]);
        }
        let available = fill(&mut self.inner)?.len();
        self.within_file(available)?;
        let data = fill(&mut self.inner)?;
        // Never more than the markup may take: quick-xml cannot buffer past the budget.
        Ok(&data[..data.len().min(room)])
    }

    fn consume(&mut self, amt: usize) {
        self.consumed += amt as u64;
        let from_ahead = amt.min(self.ahead.len() - self.ahead_pos);
        self.ahead_pos += from_ahead;
        if self.ahead_pos == self.ahead.len() {
            self.ahead.clear();
            self.ahead_pos = 0;
        }
        if amt > from_ahead {
            self.inner.consume(amt - from_ahead);
        }
    }
}

impl<R: BufRead> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain<R: BufRead>(input: &mut Input<R>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        input.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn peek_sees_across_chunks_and_reading_resumes_where_it_was() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for capacity in 1..12 {
            let mut input = Input::new(
                io::BufReader::with_capacity(capacity, &data[..]),
                u64::MAX,
                u64::MAX,
            );
            let mut out = Vec::new();
            let mut step = 0;
            loop {
                let want = 1 + step % 9;
                let seen = input.peek(want).unwrap().to_vec();
                let rest = data.len() - out.len();
                assert!(seen.len() >= want.min(rest), "capacity {capacity}");
                assert_eq!(seen[..], data[out.len()..out.len() + seen.len()]);
                // Consume part of what was peeked, then read a little.
                let n = seen.len().min(step % 5);
                out.extend_from_slice(&seen[..n]);
                input.consume(n);
                let mut byte = [0u8; 3];
                let got = input.read(&mut byte).unwrap();
                out.extend_from_slice(&byte[..got]);
                if seen.is_empty() {
                    break;
                }
                step += 1;
            }
            assert_eq!(out, data, "capacity {capacity}");
        }
    }

    #[test]
    fn the_file_cap_and_the_markup_budget_are_exact() {
        let data = vec![b'x'; 10_000];
        for capacity in [7, 64 * 1024] {
            let exact = Input::new(io::BufReader::with_capacity(capacity, &data[..]), 10_000, 1);
            assert_eq!(drain(&mut { exact }).unwrap().len(), 10_000);
            let mut over = Input::new(io::BufReader::with_capacity(capacity, &data[..]), 9_999, 1);
            let e = drain(&mut over).unwrap_err();
            assert_eq!(Limit::of(&e), Some(Limit::File(9_999)));
            let mut peeking = Input::new(&data[9_990..], 9, 1);
            let e = peeking.peek(3).unwrap_err();
            assert_eq!(Limit::of(&e), Some(Limit::File(9)));
        }

        let mut input = Input::new(io::BufReader::with_capacity(64, &data[..]), u64::MAX, 100);
        input.begin_markup();
        let mut buf = [0u8; 64];
        assert_eq!(input.read(&mut buf).unwrap(), 64);
        // Never a byte past the budget, even when more is buffered.
        assert_eq!(input.read(&mut buf).unwrap(), 36);
        let e = input.read(&mut buf).unwrap_err();
        assert_eq!(Limit::of(&e), Some(Limit::Markup(100)));
        // Outside markup the budget does not apply.
        input.end_markup();
        assert_eq!(drain(&mut input).unwrap().len(), 10_000 - 100);
        assert_eq!(Limit::of(&io::Error::other("disk")), None);
    }
}
