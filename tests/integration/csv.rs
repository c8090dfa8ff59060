//! CSV sources (SPEC §3.3): BOM, `;`, RFC 4180 quoting and Vietnamese
//! headers mapped to canonical fields by `[sources.fields]`.

use crate::common::*;

const SOURCES: &str = r#"[[sources]]
name = "vanban"
kind = "exchange"
format = "csv"
path = "{logs}/so-van-ban*.csv"
csv_delimiter = ";"
poll_interval = "100ms"
[sources.fields]
event_id = "Mã sự kiện"
time = "Thời gian"
doc_id = "Số ký hiệu"
direction = "Hướng"
channel = "Hình thức"
confidentiality = "Độ mật"
unit = "Đơn vị"
subject = "Trích yếu"

[[sources]]
name = "chu-ky-so"
kind = "signature"
format = "csv"
path = "{logs}/chu-ky-so*.csv"
csv_delimiter = ";"
poll_interval = "100ms"
[sources.fields]
doc_id = "Mã văn bản"
role = "Vai trò"
time = "Thời điểm ký"
valid = "Hợp lệ"
"#;

fn doc<'a>(docs: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    docs["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["doc_id"] == id)
        .unwrap_or_else(|| panic!("no document {id}: {docs}"))
}

#[test]
fn csv_with_bom_semicolons_and_vietnamese_headers_mapped_by_config() {
    let env = Env::new(SOURCES);
    // "Hướng" is written decomposed (NFD), as Windows exports often are.
    let huong_nfd = "Hu\u{031b}o\u{031b}\u{0301}ng";
    let exchange = format!(
        "\u{feff}Mã sự kiện;Thời gian;Số ký hiệu;{huong_nfd};Hình thức;Độ mật;Đơn vị;Trích yếu\r\n\
         csv-1;14/06/2026 09:00;12/UBND-VP;Văn bản đi;Điện tử;;Văn phòng;\"Về việc A; B và C\"\r\n\
         csv-2;14/06/2026 10:00;13/UBND-VP;đi;điện tử;Thường;Văn phòng;\"Dòng một\nDòng hai; có dấu chấm phẩy\"\r\n\
         csv-3;bad time;14/UBND-VP;đi;điện tử;;Văn phòng;x\r\n\
         csv-4;15/06/2026;15/UBND-VP;đến;giấy;;\"Phòng \"\"Kinh tế\"\"\";y\r\n"
    );
    let signatures = "\u{feff}Mã văn bản;Vai trò;Thời điểm ký;Hợp lệ\r\n\
         12/UBND-VP;Cá nhân;14/06/2026 09:30;1\r\n\
         12/UBND-VP;Cơ quan;14/06/2026 09:31;true\r\n\
         13/UBND-VP;Cá nhân;14/06/2026 10:30;1\r\n\
         13/UBND-VP;Cơ quan;14/06/2026 10:31;0\r\n";
    env.append("so-van-ban.csv", &exchange);
    env.append("chu-ky-so.csv", signatures);
    let d = env.start();
    let s = d.wait_caught_up();
    assert_eq!(counts(&s, "vanban"), (3, 0, 1), "{s}");
    assert_eq!(counts(&s, "chu-ky-so"), (4, 0, 0), "{s}");

    let docs = d.json("/api/v1/documents");
    let d12 = doc(&docs, "12/UBND-VP");
    assert_eq!(d12["class"], "electronic_signed");
    assert_eq!(d12["subject"], "Về việc A; B và C");
    assert_eq!(d12["unit"], "Văn phòng");
    assert_eq!(d12["direction"], "outgoing");
    let d13 = doc(&docs, "13/UBND-VP");
    assert_eq!(
        d13["class"], "electronic_unsigned",
        "Hợp lệ = 0 adds nothing"
    );
    assert_eq!(d13["subject"], "Dòng một\nDòng hai; có dấu chấm phẩy");
    let d15 = doc(&docs, "15/UBND-VP");
    assert_eq!(d15["class"], "paper");
    assert_eq!(d15["direction"], "incoming");
    assert_eq!(d15["unit"], "Phòng \"Kinh tế\"");
    assert_eq!(docs["documents"].as_array().unwrap().len(), 3);

    // The bad record starts on line 5: the quoted newline of record 2 counts as a line.
    let rejected = rejected_lines(&env.rejected("vanban"));
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["line"], 5, "{rejected:?}");
    assert!(rejected[0]["reason"].as_str().unwrap().contains("time"));

    // Appended records use the file's header; after a restart too.
    env.append(
        "so-van-ban.csv",
        "csv-5;16/06/2026 08:00;16/UBND-VP;đi;edxml;;Văn phòng;z\r\n",
    );
    let s = d.wait_caught_up();
    assert_eq!(counts(&s, "vanban"), (4, 0, 1), "{s}");
    d.stop();
    env.append(
        "so-van-ban.csv",
        "csv-6;16/06/2026 09:00;17/UBND-VP;đi;edxml;;Văn phòng;\"w;\"\r\n",
    );
    let d = env.start();
    let s = d.wait_caught_up();
    assert_eq!(counts(&s, "vanban"), (5, 0, 1), "{s}");
    let docs = d.json("/api/v1/documents");
    assert_eq!(doc(&docs, "17/UBND-VP")["subject"], "w;");
    let r = d.report("");
    assert_eq!(r["outgoing"]["total"], 4, "{r}");
    assert_eq!(r["outgoing"]["electronic_signed"], 1, "{r}");
    assert_eq!(r["incoming"]["paper"], 1, "{r}");
    d.stop();
}
