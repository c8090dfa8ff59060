//! Structural checks of a store's contents: what readers assume of the keys
//! and values holds (every page decodes and sits where a look-up searches).

use super::encoding::decode_page;
use super::keys::{PREFIX_PAGE, PREFIX_PAGE_KEY};
use super::{Store, StoreError};

impl Store {
    /// Checks that every page decodes, is listed in the page index, and
    /// holds its documents in order and within its key range, so that each
    /// document is found by a look-up; returns the numbers of pages and groups.
    pub(crate) fn check_pages(&self) -> Result<(u64, u64), StoreError> {
        let fail = |what: String| StoreError::Unreadable {
            path: self.path.clone(),
            what,
        };
        let index: Vec<Vec<u8>> = self
            .db
            .scan_prefix([PREFIX_PAGE_KEY])
            .keys()
            .map(|k| Ok(k?[1..].to_vec()))
            .collect::<Result<_, StoreError>>()?;
        let (mut pages, mut groups) = (0u64, 0u64);
        for item in self.db.scan_prefix([PREFIX_PAGE]) {
            pages += 1;
            let (k, v) = item?;
            let key = &k[1..];
            let Ok(at) = index.binary_search_by(|i| i.as_slice().cmp(key)) else {
                return Err(fail(format!(
                    "page {:?} is not in the page index",
                    String::from_utf8_lossy(key)
                )));
            };
            let upper = index.get(at + 1);
            let page = decode_page(&v)
                .map_err(|e| fail(format!("page {:?}: {e}", String::from_utf8_lossy(key))))?;
            let mut previous: Option<&str> = None;
            for (id, _) in &page {
                let in_range =
                    id.as_bytes() >= key && upper.is_none_or(|u| id.as_bytes() < u.as_slice());
                if !in_range || previous.is_some_and(|p| p >= id.as_str()) {
                    return Err(fail(format!(
                        "document {id:?} is out of place in page {:?}",
                        String::from_utf8_lossy(key)
                    )));
                }
                previous = Some(id);
            }
            groups += page.len() as u64;
        }
        Ok((pages, groups))
    }
}
