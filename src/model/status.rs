//! What the exchange axis reports about a document: QCVN 102 status codes
//! (README "edXML archive source", status messages).

/// Status codes of QCVN 102 that a status message may carry.
pub(crate) const STATUS_CODES: [u8; 9] = [1, 2, 3, 4, 5, 6, 13, 15, 16];
/// The status code "rejected by the receiver".
pub(crate) const STATUS_REJECTED: u8 = 2;

/// Vietnamese label of a QCVN 102 status code, for the document list.
pub(crate) fn status_label(code: u8) -> &'static str {
    match code {
        1 => "Đã đến",
        2 => "Từ chối tiếp nhận",
        3 => "Đã tiếp nhận",
        4 => "Phân công xử lý",
        5 => "Đang xử lý",
        6 => "Hoàn thành",
        13 => "Yêu cầu lấy lại",
        15 => "Đồng ý cập nhật, lấy lại",
        16 => "Từ chối cập nhật, lấy lại",
        _ => "",
    }
}

/// What the exchange axis reported about a document: the latest status and
/// whether a receiver ever rejected it. Merging is order-independent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DocStatus {
    /// Latest QCVN 102 status code (0 = none yet).
    pub(crate) code: u8,
    /// Its time, Unix seconds.
    pub(crate) time: i64,
    /// A receiver answered 02 (rejected) at least once.
    pub(crate) rejected: bool,
}

impl DocStatus {
    pub(crate) fn is_empty(&self) -> bool {
        *self == DocStatus::default()
    }

    /// Merges another status: the latest one wins (ties: the higher code).
    pub(crate) fn merge(&mut self, other: &DocStatus) {
        if other.code != 0 && (self.code == 0 || (other.time, other.code) > (self.time, self.code))
        {
            self.code = other.code;
            self.time = other.time;
        }
        self.rejected |= other.rejected;
    }

    /// The status a single message reports.
    pub(crate) fn from_code(code: u8, time: i64) -> DocStatus {
        DocStatus {
            code,
            time,
            rejected: code == STATUS_REJECTED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_merge_keeps_the_latest_and_remembers_a_rejection() {
        let statuses = [
            DocStatus::from_code(1, 100),
            DocStatus::from_code(2, 200),
            DocStatus::from_code(3, 300),
            DocStatus::from_code(5, 300),
        ];
        let mut forward = DocStatus::default();
        statuses.iter().for_each(|s| forward.merge(s));
        let mut backward = DocStatus::default();
        statuses.iter().rev().for_each(|s| backward.merge(s));
        assert_eq!(forward, backward);
        assert_eq!(
            (forward.code, forward.time, forward.rejected),
            (5, 300, true)
        );
    }
}
