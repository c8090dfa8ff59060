//! The make-believe commune office: its units, counterparts, document types
//! and subjects, signers and certificate issuers, and the spellings its
//! exports use for directions, channels, roles and time formats.

use super::event::TimeStyle;

pub(super) const AGENCY_NAME: &str = "UBND xã Hương Bình";

/// Internal units with the code used in công văn numbers.
pub(super) const UNITS: [((&str, &str), u32); 4] = [
    (("Văn phòng HĐND và UBND", "VP"), 35),
    (("Phòng Kinh tế", "KT"), 22),
    (("Phòng Văn hóa - Xã hội", "VHXH"), 20),
    (("Trung tâm Phục vụ hành chính công", "TTPVHCC"), 13),
];

/// Counterparts with the code they put in their own document numbers.
pub(super) const COUNTERPARTS: [(&str, &str, u32); 14] = [
    ("Sở Nội vụ tỉnh", "SNV", 16),
    ("UBND tỉnh", "UBND", 12),
    ("UBND huyện", "UBND", 14),
    ("Văn phòng UBND tỉnh", "VPUBND", 8),
    ("Sở Tài chính tỉnh", "STC", 6),
    ("Sở Khoa học và Công nghệ tỉnh", "SKHCN", 6),
    ("Sở Văn hóa, Thể thao và Du lịch tỉnh", "SVHTTDL", 4),
    ("Bảo hiểm xã hội tỉnh", "BHXH", 4),
    ("Công an xã", "CAX", 8),
    ("Ban Chỉ huy Quân sự xã", "BCHQS", 5),
    ("Đảng ủy xã Hương Bình", "ĐU", 6),
    ("Ủy ban MTTQ Việt Nam xã Hương Bình", "MTTQ", 5),
    ("Trạm Y tế xã", "TYT", 3),
    ("Trường Tiểu học Hương Bình", "THHB", 3),
];

#[derive(Debug, Clone, Copy)]
pub(super) struct DocType {
    pub(super) name: &'static str,
    /// Empty for a công văn, whose number reads `245/UBND-VP`.
    pub(super) abbr: &'static str,
    pub(super) weight: u32,
    pub(super) subjects: &'static [&'static str],
}

pub(super) const DOC_TYPES: [DocType; 6] = [
    DocType {
        name: "Công văn",
        abbr: "",
        weight: 35,
        subjects: &[
            "V/v triển khai thực hiện Quyết định số 534/QĐ-TTg của Thủ tướng Chính phủ",
            "V/v đôn đốc cập nhật dữ liệu dân cư trên ứng dụng VNeID",
            "V/v góp ý dự thảo Quy chế làm việc của UBND xã",
            "V/v cử cán bộ tham dự tập huấn chuyển đổi số",
            "V/v tăng cường công tác phòng, chống thiên tai mùa mưa bão",
            "V/v rà soát, thống kê hộ nghèo, hộ cận nghèo năm 2026",
        ],
    },
    DocType {
        name: "Quyết định",
        abbr: "QĐ",
        weight: 15,
        subjects: &[
            "Về việc ban hành Quy chế công tác văn thư, lưu trữ của UBND xã Hương Bình",
            "Về việc thành lập Tổ công nghệ số cộng đồng",
            "Về việc phê duyệt danh sách hộ gia đình được hỗ trợ nhà ở",
            "Về việc kiện toàn Ban Chỉ đạo phong trào \"Toàn dân đoàn kết xây dựng đời sống văn hóa\"",
        ],
    },
    DocType {
        name: "Kế hoạch",
        abbr: "KH",
        weight: 12,
        subjects: &[
            "Kế hoạch chuyển đổi số xã Hương Bình năm 2026",
            "Kế hoạch tổ chức \"Tết trồng cây đời đời nhớ ơn Bác Hồ\"",
            "Kế hoạch cải cách hành chính năm 2026",
            "Kế hoạch phòng, chống dịch bệnh trên gia súc, gia cầm",
        ],
    },
    DocType {
        name: "Báo cáo",
        abbr: "BC",
        weight: 18,
        subjects: &[
            "Báo cáo kết quả thực hiện nhiệm vụ 6 tháng đầu năm 2026",
            "Báo cáo tình hình gửi, nhận văn bản điện tử có ký số",
            "Báo cáo công tác cải cách hành chính quý II năm 2026",
            "Báo cáo kết quả giải quyết thủ tục hành chính trên môi trường điện tử",
        ],
    },
    DocType {
        name: "Thông báo",
        abbr: "TB",
        weight: 12,
        subjects: &[
            "Thông báo lịch tiếp công dân tháng 6/2026",
            "Thông báo kết luận của Chủ tịch UBND xã tại cuộc họp giao ban",
            "Thông báo tạm ngừng cung cấp điện để bảo dưỡng lưới điện",
        ],
    },
    DocType {
        name: "Tờ trình",
        abbr: "TTr",
        weight: 8,
        subjects: &[
            "Tờ trình đề nghị phê duyệt dự toán kinh phí chuyển đổi số",
            "Tờ trình đề nghị khen thưởng tập thể, cá nhân có thành tích xuất sắc",
            "Tờ trình về việc điều chỉnh kế hoạch đầu tư công năm 2026",
        ],
    },
];

pub(super) const LEADERS: [&str; 4] = [
    "Nguyễn Văn An",
    "Trần Thị Bích Ngọc",
    "Lê Hoàng Minh",
    "Phạm Thị Thu Hà",
];

pub(super) const EXTERNAL_SIGNERS: [&str; 6] = [
    "Hoàng Quốc Việt",
    "Đỗ Thị Lan Anh",
    "Vũ Đức Thắng",
    "Bùi Thị Hồng Nhung",
    "Ngô Văn Dũng",
    "Đặng Minh Tuấn",
];

pub(super) const ISSUERS: [(&str, u32); 3] = [
    ("Ban Cơ yếu Chính phủ", 70),
    ("VNPT-CA", 18),
    ("Viettel-CA", 12),
];

// Built-in spellings of the README ("Input", Values), weighted towards the canonical ones.
pub(super) const DIRECTION_OUTGOING: [(&str, u32); 3] =
    [("outgoing", 60), ("đi", 30), ("văn bản đi", 10)];
pub(super) const DIRECTION_INCOMING: [(&str, u32); 3] =
    [("incoming", 55), ("văn bản đến", 25), ("đến", 20)];
pub(super) const CHANNEL_ELECTRONIC: [(&str, u32); 3] =
    [("electronic", 55), ("điện tử", 25), ("edxml", 20)];
pub(super) const CHANNEL_PAPER: [(&str, u32); 3] = [("paper", 40), ("giấy", 50), ("bản giấy", 10)];
pub(super) const CONFIDENTIALITY_NORMAL: [(Option<&str>, u32); 3] =
    [(None, 70), (Some("thường"), 25), (Some("không mật"), 5)];
pub(super) const CONFIDENTIALITY_SECRET: [(&str, u32); 6] = [
    ("Mật", 40),
    ("mật", 15),
    ("Tối mật", 15),
    ("tối mật", 15),
    ("Tuyệt mật", 10),
    ("tuyệt mật", 5),
];
pub(super) const ROLE_PERSON: [(&str, u32); 3] =
    [("person", 60), ("cá nhân", 30), ("individual", 10)];
pub(super) const ROLE_ORGANIZATION: [(&str, u32); 3] =
    [("organization", 60), ("cơ quan", 30), ("tổ chức", 10)];
pub(super) const TIME_STYLES: [(TimeStyle, u32); 5] = [
    (TimeStyle::Local, 930),
    (TimeStyle::Utc, 25),
    (TimeStyle::Naive, 15),
    (TimeStyle::NaiveT, 10),
    (TimeStyle::DayFirst, 20),
];
