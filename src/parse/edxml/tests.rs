use chrono_tz::Tz;

use super::*;
use crate::model::{Channel, Confidentiality, Direction, Event, ExchangeEvent};
use crate::parse::time::parse_time;

const TZ: Tz = chrono_tz::Asia::Ho_Chi_Minh;

fn parse(s: &str) -> Result<Message, EdxmlError> {
    read_message(s.as_bytes(), u64::MAX)
}

fn doc(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">{body}</edXML:edXMLEnvelope>"#
    )
}

#[test]
fn the_root_must_be_edxml_and_doctype_is_refused() {
    assert_eq!(
        parse("<foo/>").unwrap_err(),
        EdxmlError::NotEdxml("foo".into())
    );
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]><edXML>&x;</edXML>"#;
    assert_eq!(parse(xxe).unwrap_err(), EdxmlError::DocType);
    let undeclared = r#"<edXML><edXMLEnvelope><edXMLHeader><MessageHeader><Subject>&x;</Subject></MessageHeader></edXMLHeader></edXMLEnvelope></edXML>"#;
    assert_eq!(
        parse(undeclared).unwrap_err(),
        EdxmlError::UnknownEntity("x".into())
    );
}

#[test]
fn nesting_is_capped() {
    let deep = format!("<edXML>{}{}</edXML>", "<a>".repeat(100), "</a>".repeat(100));
    assert_eq!(parse(&deep).unwrap_err(), EdxmlError::TooDeep);
}

#[test]
fn truncation_anywhere_is_an_error_never_a_panic() {
    let full = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/edxml/status_rejection_02.edxml"
    ))
    .unwrap();
    assert!(parse(&full).is_ok());
    let end = full.trim_end().len();
    for cut in (0..end).step_by(7) {
        assert!(
            read_message(&full.as_bytes()[..cut], u64::MAX).is_err(),
            "cut at {cut} accepted"
        );
    }
}

#[test]
fn text_outside_the_root_is_not_well_formed() {
    let e = parse("1212<?xml version=\"1.0\"?><edXML></edXML>").unwrap_err();
    assert!(matches!(e, EdxmlError::Syntax { .. }), "{e:?}");
}

#[test]
fn status_direction_follows_who_sends_the_status() {
    let status = |from: &str, to: &str, code: &str| Message {
        from: Organ {
            id: from.into(),
            ..Organ::default()
        },
        response_for_organ: to.into(),
        response_for_document: "D".into(),
        status_code: code.into(),
        status_timestamp: "2026/06/14 09:00:00".into(),
        ..Message::default()
    };
    let dir = |m: Message| match m.to_event("US", TZ).unwrap() {
        Event::Status(s) => s.direction,
        other => panic!("{other:?}"),
    };
    // The receiver reports on a document we sent.
    assert_eq!(dir(status("THEM", "US", "02")), Direction::Outgoing);
    // We report on a document we received.
    assert_eq!(dir(status("US", "THEM", "03")), Direction::Incoming);
    // The sender asks to take back (13): from them, about a document we received.
    assert_eq!(dir(status("THEM", "US", "13")), Direction::Incoming);
    assert_eq!(dir(status("US", "THEM", "13")), Direction::Outgoing);
    assert!(status("A", "B", "02").to_event("US", TZ).is_err());
    assert!(status("THEM", "US", "07").to_event("US", TZ).is_err());
    let e = doc("");
    assert!(parse(&e).is_err(), "root is not edXML");
}

const G22: &str = "000.00.00.G22";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/edxml/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn exchange(text: &str, agency: &str) -> (ExchangeEvent, u8) {
    match parse(text).unwrap().to_event(agency, TZ) {
        Ok(Event::EdxmlExchange(e, b, _)) => (e, b),
        other => panic!("{other:?}"),
    }
}

fn local(s: &str) -> i64 {
    parse_time(s, TZ).unwrap()
}

#[test]
fn sample_edoc_with_a_placeholder_attachment_is_incoming_for_its_receiver() {
    let (e, business) = exchange(&fixture("edoc.edxml"), "000.00.15.H51");
    assert_eq!(e.doc_id, "9fbfbad2-f1f8-4256-a2eb-50fb1061cddb");
    assert_eq!(e.doc_number, "12234555512/PRO-TEST-CASE1");
    assert_eq!(e.doc_type, "Thông tư");
    assert_eq!(e.subject, "Văn bản liên thông chỉ đạo - 190701");
    assert_eq!(e.direction, Direction::Incoming);
    assert_eq!(e.counterpart, "Văn phòng Chính phủ (002.00.20.H13)");
    assert_eq!(e.channel, Channel::Electronic);
    assert_eq!(e.confidentiality, Confidentiality::Normal);
    // TraceHeader/Timestamp wins over PromulgationDate (2019/01/17).
    assert_eq!(e.time, local("2018-06-20 16:35:56"));
    assert_eq!(business, 0, "no Bussiness block: a new document");
    // `${__StringFromFile(test.txt,,,)}` is not base64: no sha256.
    assert_eq!(e.sha256, None);
    let msg = parse(&fixture("edoc.edxml")).unwrap();
    assert_eq!(msg.attachments.len(), 1);
    assert_eq!(msg.attachments[0].name, "GUIDE_INSTALL OPENVPN.SIGNED.PDF");
    // The sender's own archive copy is outgoing; a third agency's is refused.
    assert_eq!(
        exchange(&fixture("edoc.edxml"), "002.00.20.H13")
            .0
            .direction,
        Direction::Outgoing
    );
    let err = parse(&fixture("edoc.edxml"))
        .unwrap()
        .to_event(G22, TZ)
        .unwrap_err();
    assert!(err.contains("neither from nor to"), "{err}");
}

#[test]
fn sample_business_messages_keep_their_type_and_hash_the_first_attachment() {
    // sha256 of the base64-decoded attachment, computed independently (Python hashlib).
    let cases = [
        (
            "edoc_revocation.edxml",
            1,
            "22100d39101238b750bc39a24ff6994cb2c0cf08f4edbf5f3c34d4700857d378",
        ),
        (
            "edoc_update.edxml",
            2,
            "51653b9613f7f0275b43f80704033299740c702f354f44a06f55770cfbb0b135",
        ),
        (
            "edoc_replacement.edxml",
            3,
            "57634d6539d79c5935c12fabd7d8fa513d81d84a5fad4c82258a31ffa741aba5",
        ),
    ];
    for (file, business_type, sha) in cases {
        let (e, business) = exchange(&fixture(file), G22);
        assert_eq!(business, business_type, "{file}");
        assert_eq!(
            e.doc_id, "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT",
            "{file}"
        );
        assert_eq!(e.doc_number, "7816/VPCP-TTĐT", "{file}");
        assert_eq!(e.doc_type, "Công văn", "{file}");
        assert_eq!(
            e.subject, "V/v kết nối, liên thông phần mềm quản lý văn bản",
            "{file}"
        );
        assert_eq!(e.direction, Direction::Outgoing, "{file}");
        assert_eq!(
            e.counterpart,
            "UBND Tỉnh Nghệ An (000.00.00.H41); UBND Tỉnh Cao Bằng (000.00.00.H14); Sở Thông tin truyền thông Hải Phòng (000.00.00.G17)",
            "{file}"
        );
        assert_eq!(e.time, local("2018-09-28 00:00:00"), "{file}");
        assert_eq!(e.sha256.as_deref(), Some(sha), "{file}");
        let msg = parse(&fixture(file)).unwrap();
        assert_eq!(msg.attachments[0].bytes, 270_823, "{file}");
        // Every To is a receiver: each sees the message as incoming.
        for to in ["000.00.00.H41", "000.00.00.H14", "000.00.00.G17"] {
            assert_eq!(
                exchange(&fixture(file), to).0.direction,
                Direction::Incoming
            );
        }
    }
}

#[test]
fn sample_edoc_new_has_text_before_the_xml_declaration_and_is_rejected() {
    let text = fixture("edoc_new.edxml");
    assert!(text.starts_with("1212<?xml"));
    let e = parse(&text).unwrap_err();
    assert!(matches!(e, EdxmlError::Syntax { .. }), "{e}");
    assert!(e.to_string().contains("1212"), "{e}");
    // Without the stray bytes it is a new document (BussinessDocType 0).
    let clean = text.trim_start_matches("1212");
    let (e, business) = exchange(clean, "28.22.H17");
    assert_eq!(business, 0);
    assert_eq!(e.direction, Direction::Incoming);
    assert_eq!(e.doc_number, "74fass22/VPCP-TTĐT");
    assert_eq!(
        e.sha256.as_deref(),
        Some("7ab7c43a02a3cf2cedd14ebf2545a37e7a1307e0091b4ba94c2ef1e842a763aa")
    );
}

#[test]
fn sample_status_messages_give_code_time_and_direction() {
    let cases = [
        ("status.edxml", 1, "2018-09-28 17:25:11"),
        ("status_inbox__01.edxml", 1, "2015-09-20 11:08:36"),
        ("status_rejection_02.edxml", 2, "2015-09-20 11:08:36"),
        ("status_acceptance_03.edxml", 3, "2015-09-20 11:08:36"),
        ("status_assignment_04.edxml", 4, "2015-09-20 11:08:36"),
        ("status_processing_05.edxml", 5, "2015-09-20 11:08:36"),
        ("status_finish_06.edxml", 6, "2015-09-20 11:08:36"),
        ("status_cancellation_13.edxml", 13, "2015-09-20 11:08:36"),
        (
            "status_change-acceptance_15.edxml",
            15,
            "2015-09-20 11:08:36",
        ),
        (
            "status_change-rejection_16.edxml",
            16,
            "2015-09-20 11:08:36",
        ),
    ];
    for (file, code, time) in cases {
        let msg = parse(&fixture(file)).unwrap();
        assert!(msg.is_status(), "{file}");
        // The document was sent by G22: every status is about an outgoing document
        // (13 is G22's own request; the others come from the receiver H41).
        for (agency, direction) in [
            (G22, Direction::Outgoing),
            ("000.00.00.H41", Direction::Incoming),
        ] {
            match msg.to_event(agency, TZ).unwrap() {
                Event::Status(s) => {
                    assert_eq!(s.code, code, "{file}");
                    assert_eq!(
                        s.doc_id, "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT",
                        "{file}"
                    );
                    assert_eq!(s.time, local(time), "{file}");
                    assert_eq!(s.direction, direction, "{file} for {agency}");
                }
                other => panic!("{file}: {other:?}"),
            }
        }
    }
}

#[test]
fn other_spellings_and_no_prefix_read_the_same() {
    let original = fixture("edoc_revocation.edxml");
    let expected = exchange(&original, G22);
    let respelled = original
        .replace("Bussiness", "Business")
        .replace("OrganizationInCharge", "OrganInCharge");
    assert!(respelled.contains("<edXML:BusinessDocType>1<"));
    assert_eq!(exchange(&respelled, G22), expected);
    let unprefixed = original
        .replace("edXML:", "")
        .replace("xmlns:edXML=", "xmlns:x=");
    assert!(!unprefixed.contains("<edXML:"));
    assert_eq!(exchange(&unprefixed, G22), expected);
    // Another prefix bound to the same namespace.
    let other_prefix = original
        .replace("edXML:", "ns2:")
        .replace("xmlns:edXML=", "xmlns:ns2=");
    assert_eq!(exchange(&other_prefix, G22), expected);
    // Names differ only by OrganInCharge: counterparts use OrganName first anyway.
    let no_names = respelled.replace("OrganName>", "Unused>");
    let (e, _) = exchange(&no_names, G22);
    assert!(
        e.counterpart
            .starts_with("UBND Tỉnh Nghệ An (000.00.00.H41)"),
        "{}",
        e.counterpart
    );
}

#[test]
fn a_truncated_sample_is_rejected_as_truncated() {
    let full = fixture("edoc_update.edxml");
    for cut in [full.len() / 2, full.len() - 40, 1000] {
        let cut = (0..=cut).rev().find(|&i| full.is_char_boundary(i)).unwrap();
        let e = parse(&full[..cut]).unwrap_err();
        assert!(matches!(e, EdxmlError::Truncated(_)), "cut {cut}: {e}");
    }
}

#[test]
fn a_message_for_nobody_here_or_without_time_is_refused_with_a_reason() {
    let text = fixture("edoc_update.edxml");
    let no_time = text
        .replace("<edXML:Timestamp>2018/09/28 00:00:00</edXML:Timestamp>", "")
        .replace(
            "<edXML:PromulgationDate>2018/09/28</edXML:PromulgationDate>",
            "",
        );
    let err = parse(&no_time).unwrap().to_event(G22, TZ).unwrap_err();
    assert!(err.contains("no time"), "{err}");
    // Without a trace header, the promulgation date (local midnight) is the time.
    let promulgated = text
        .replace("<edXML:Timestamp>2018/09/28 00:00:00</edXML:Timestamp>", "")
        .replace(
            "<edXML:PromulgationDate>2018/09/28<",
            "<edXML:PromulgationDate>2018/09/27<",
        );
    assert_eq!(
        exchange(&promulgated, G22).0.time,
        local("2018-09-27 00:00:00")
    );
    let bad_type = text.replace("<edXML:BussinessDocType>2<", "<edXML:BussinessDocType>7<");
    let err = parse(&bad_type).unwrap().to_event(G22, TZ).unwrap_err();
    assert!(err.contains("BussinessDocType"), "{err}");
}

/// A small message from G22 to H41: `header` goes into `MessageHeader`,
/// `traces` into `TraceHeaderList` (after one trace header), `attachments`
/// into `AttachmentEncoded`.
fn message(header: &str, traces: &str, attachments: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><edXMLEnvelope><edXMLHeader><MessageHeader>
<From><OrganId>000.00.00.G22</OrganId></From><To><OrganId>000.00.00.H41</OrganId></To>
<DocumentId>D1</DocumentId>{header}</MessageHeader><TraceHeaderList>
<TraceHeader><Timestamp>2018/09/28 00:00:00</Timestamp></TraceHeader>{traces}</TraceHeaderList>
</edXMLHeader></edXMLEnvelope><AttachmentEncoded>{attachments}</AttachmentEncoded></edXML>
"#
    )
}

fn attachment(content: &str) -> String {
    format!("<Attachment><AttachmentName>a.pdf</AttachmentName><ContentTransferEncoded>{content}</ContentTransferEncoded></Attachment>")
}

fn sha256_hex(chunks: impl IntoIterator<Item = impl AsRef<[u8]>>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for c in chunks {
        h.update(c.as_ref());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Reads `text` in chunks of at most `capacity` bytes.
fn read_in_chunks(text: &str, capacity: usize) -> Result<Message, EdxmlError> {
    read_message(
        std::io::BufReader::with_capacity(capacity, text.as_bytes()),
        u64::MAX,
    )
}

#[test]
fn cdata_attachment_is_streamed_and_hashes_like_plain_text_in_any_chunking() {
    let data: Vec<u8> = (0..700u32).map(|i| (i * 7 + i / 13) as u8).collect();
    let encoded = base64(&data);
    // MIME-style lines; the cut points below fall inside lines and inside quads.
    let lines: String = encoded
        .as_bytes()
        .chunks(76)
        .map(|l| format!("{}\r\n", std::str::from_utf8(l).unwrap()))
        .collect();
    let (a, b) = (lines.split_at(333).0, lines.split_at(333).1);
    let (b1, b2) = b.split_at(101);
    let variants = [
        lines.clone(),
        format!("<![CDATA[{lines}]]>"),
        format!("{a}<![CDATA[{b}]]>"),
        format!("<![CDATA[{a}]]><![CDATA[]]>{b1}<![CDATA[{b2}]]>\r\n"),
        format!("\r\n<![CDATA[{a}]]>&#13;&#10;<![CDATA[{b}]]>"),
    ];
    let expected = Attachment {
        name: "a.pdf".into(),
        bytes: 700,
        sha256: Some(sha256_hex([&data])),
    };
    for (i, content) in variants.iter().enumerate() {
        let text = message("", "", &attachment(content));
        for capacity in (1..=48).chain([64 * 1024]) {
            let msg = read_in_chunks(&text, capacity)
                .unwrap_or_else(|e| panic!("variant {i}, chunks of {capacity}: {e}"));
            assert_eq!(
                msg.attachments,
                std::slice::from_ref(&expected),
                "variant {i}, chunks of {capacity}"
            );
        }
    }
    // The public sample, its attachment moved into CDATA: the same sha256.
    let sample = fixture("edoc_revocation.edxml")
        .replace(
            "QCVN_102_2016\">UEsDBBQ",
            "QCVN_102_2016\"><![CDATA[UEsDBBQ",
        )
        .replace(
            "AAAAA==</edXML:ContentTransferEncoded>",
            "AAAAA==]]></edXML:ContentTransferEncoded>",
        );
    assert!(sample.contains("<![CDATA[UEsDBBQ") && sample.contains("==]]></edXML:"));
    let (e, _) = exchange(&sample, G22);
    assert_eq!(
        e.sha256.as_deref(),
        Some("22100d39101238b750bc39a24ff6994cb2c0cf08f4edbf5f3c34d4700857d378")
    );

    // 8 MiB decoded in one CDATA section: never held, not even in part.
    let block: Vec<u8> = (0..57 * 1024u32).map(|i| (i % 251) as u8).collect();
    let encoded_block = base64(&block);
    let copies = 8 * 1024 * 1024 / block.len();
    let big = message(
        "",
        "",
        &attachment(&format!("<![CDATA[{}]]>", encoded_block.repeat(copies))),
    );
    let (msg, peak) = crate::test_alloc::peak_heap(|| read_in_chunks(&big, 64 * 1024));
    let msg = msg.unwrap();
    assert_eq!(msg.attachments[0].bytes, (block.len() * copies) as u64);
    assert_eq!(
        msg.attachments[0].sha256,
        Some(sha256_hex(std::iter::repeat_n(&block, copies)))
    );
    assert!(peak < 512 * 1024, "reading held {peak} bytes at its peak");
}

#[test]
fn cdata_header_field_is_text_and_refused_over_the_field_cap_while_streaming() {
    let subject = |s: &str| {
        read_in_chunks(&message(&format!("<Subject>{s}</Subject>"), "", ""), 5).map(|m| m.subject)
    };
    assert_eq!(subject("<![CDATA[a <b> & c]]>").unwrap(), "a <b> & c");
    assert_eq!(
        subject("x&amp;<![CDATA[&amp;]]]]><![CDATA[>]]>z").unwrap(),
        "x&&amp;]]>z"
    );
    // Unterminated: the rest of the file is its content.
    let cut = message("<Subject><![CDATA[x</Subject>", "", "");
    assert_eq!(
        read_in_chunks(&cut, 5).unwrap_err(),
        EdxmlError::Truncated(cut.len() as u64)
    );
    // A reference cut by markup is never completed after it.
    assert_eq!(
        subject("&am<![CDATA[p;]]>").unwrap_err(),
        EdxmlError::UnknownEntity("am".into())
    );

    let huge = message(
        &format!("<Subject><![CDATA[{}]]></Subject>", "ạ".repeat(4 << 20)),
        "",
        "",
    );
    let (result, peak) = crate::test_alloc::peak_heap(|| read_in_chunks(&huge, 64 * 1024));
    assert_eq!(
        result.unwrap_err(),
        EdxmlError::FieldTooLong("Subject".into())
    );
    assert!(peak < 512 * 1024, "reading held {peak} bytes at its peak");
}

#[test]
fn huge_markup_is_refused_with_the_markup_cap() {
    let big = "x".repeat(2 << 20);
    let spaces = " ".repeat(2 << 20);
    let ok = message("", "", "");
    let cases = [
        ("comment before the root", format!("<!--{big}-->{ok}")),
        (
            "comment in the header",
            message(&format!("<!--{big}-->"), "", ""),
        ),
        ("processing instruction", format!("<?pi {big}?>{ok}")),
        (
            "attribute",
            message(&format!("<Subject a=\"{big}\">S</Subject>"), "", ""),
        ),
        ("element name", message(&format!("<{big}/>"), "", "")),
        ("DOCTYPE", format!("<!DOCTYPE edXML [{big}]>{ok}")),
        ("white space after the root", format!("{ok}{spaces}")),
    ];
    for (what, text) in cases {
        let (result, peak) = crate::test_alloc::peak_heap(|| read_in_chunks(&text, 64 * 1024));
        assert_eq!(
            result.unwrap_err(),
            EdxmlError::MarkupTooLong(MAX_MARKUP_BYTES),
            "{what}"
        );
        assert!(peak < 3 << 20, "{what}: reading held {peak} bytes");
    }
    // An end tag's name is never checked against the name cap, but the
    // error quoting it is cut.
    let e = parse(&message(&format!("</{}>", &big[..900 * 1024]), "", "")).unwrap_err();
    assert!(e.to_string().len() < 400, "{}", e.to_string().len());
    let name = "n".repeat(MAX_NAME_BYTES + 1);
    assert_eq!(
        parse(&message(&format!("<{name}>S</{name}>"), "", "")).unwrap_err(),
        EdxmlError::NameTooLong
    );
    // Under the cap, markup is fine.
    let half = "x".repeat(512 * 1024);
    let msg = parse(&message(
        &format!("<!--{half}--><Subject a=\"{half}\">S</Subject>"),
        "",
        "",
    ))
    .unwrap();
    assert_eq!(msg.subject, "S");
}

#[test]
fn repeated_elements_over_their_cap_are_refused() {
    let to = "<To><OrganId>000.00.00.H14</OrganId></To>";
    let trace = "<TraceHeader><Timestamp>2018/09/27 00:00:00</Timestamp></TraceHeader>";
    let attached = attachment("aGVsbG8=");
    // The message already has one `To` and one trace header.
    let count = |m: Result<Message, EdxmlError>| {
        m.map(|m| (m.to.len(), m.trace_timestamps.len(), m.attachments.len()))
    };
    assert_eq!(
        count(parse(&message(
            &to.repeat(999),
            &trace.repeat(999),
            &attached.repeat(1000)
        ))),
        Ok((1000, 1000, 1000))
    );
    let e = parse(&message(&to.repeat(1000), "", "")).unwrap_err();
    assert_eq!(
        e,
        EdxmlError::TooMany {
            element: "To",
            max: MAX_RECIPIENTS
        }
    );
    assert_eq!(e.to_string(), "more than 1000 `To` elements");
    assert_eq!(
        parse(&message("", &trace.repeat(1000), "")).unwrap_err(),
        EdxmlError::TooMany {
            element: "TraceHeader/Timestamp",
            max: MAX_TRACE_HEADERS
        }
    );
    assert_eq!(
        parse(&message("", "", &attached.repeat(1001))).unwrap_err(),
        EdxmlError::TooMany {
            element: "Attachment",
            max: MAX_ATTACHMENTS
        }
    );
    // Under the count caps, the header text kept is capped too.
    let name = "N".repeat(MAX_FIELD_BYTES - 10);
    let named = format!("<To><OrganId>X</OrganId><OrganName>{name}</OrganName></To>");
    assert_eq!(
        parse(&message(&named.repeat(17), "", "")).unwrap_err(),
        EdxmlError::HeaderTooLarge
    );
    assert_eq!(
        count(parse(&message(&named.repeat(15), "", ""))),
        Ok((16, 1, 0))
    );
}

#[test]
fn more_than_max_file_size_is_never_read() {
    let text = message("", "", &attachment("aGVsbG8="));
    let len = text.len() as u64;
    assert!(read_message(text.as_bytes(), len).is_ok());
    for capacity in [1, 7, 64 * 1024] {
        let input = std::io::BufReader::with_capacity(capacity, text.as_bytes());
        assert_eq!(
            read_message(input, len - 1).unwrap_err(),
            EdxmlError::ReadPastMax(len - 1),
            "chunks of {capacity}"
        );
    }
    // Bytes after the root count too: a file that grew after its message.
    let grown = format!("{text}\n\n");
    assert_eq!(
        read_message(grown.as_bytes(), len).unwrap_err(),
        EdxmlError::ReadPastMax(len)
    );
}

#[test]
fn pdf_attachments_are_spooled_with_their_sha256_and_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend((0..5000u32).map(|i| (i % 251) as u8));
    let other = vec![b'P'; 3000];
    let attachments = [&other, &pdf, &pdf]
        .iter()
        .map(|a| attachment(&base64(a)))
        .collect::<String>()
        + &attachment("not base64 %PDF-");
    let text = message("", "", &attachments);
    let (msg, spooled) = read_message_spooling(
        std::io::BufReader::with_capacity(100, text.as_bytes()),
        u64::MAX,
        Some(dir.path()),
    )
    .unwrap();
    assert_eq!(msg.attachments.len(), 4);
    let found: Vec<(usize, String, Vec<u8>)> = spooled
        .iter()
        .map(|s| {
            let f = s.file.as_ref().unwrap();
            (s.index, s.sha256.clone(), std::fs::read(f.path()).unwrap())
        })
        .collect();
    let sha = sha256_hex([&pdf]);
    assert_eq!(
        found,
        [(1, sha.clone(), pdf.clone()), (2, sha.clone(), pdf.clone())]
    );
    assert_eq!(msg.attachments[1].sha256.as_deref(), Some(sha.as_str()));
    drop(spooled);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "spooled files are removed when dropped"
    );
    // Without a spool directory nothing is written.
    let (_, none) = read_message_spooling(text.as_bytes(), u64::MAX, None).unwrap();
    assert!(none.is_empty());
}

#[test]
fn at_most_max_spooled_pdfs_are_spooled_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let one = attachment(&base64(b"%PDF-1.4 small"));
    let text = message("", "", &one.repeat(MAX_SPOOLED + 3));
    let (msg, spooled) =
        read_message_spooling(text.as_bytes(), u64::MAX, Some(dir.path())).unwrap();
    assert_eq!(msg.attachments.len(), MAX_SPOOLED + 3);
    assert_eq!(spooled.len(), MAX_SPOOLED);
}
