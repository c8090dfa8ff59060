//! edXML messages of the national document-exchange axis (QCVN 102:2016/BTTTT):
//! one message per file, read as a stream (attachments are hashed while they
//! are decoded, never held whole), then turned into an exchange or status event.
//! `text` streams element text, `event` interprets a message read here.

mod event;
mod text;

use std::io::BufRead;

use quick_xml::events::Event as XmlEvent;
use quick_xml::Reader;

use super::normalize::normalize_unit;
use text::{stream_text, Base64Hasher, Sink, TextCollector};

/// Deepest element nesting accepted (edXML needs about 8).
pub const MAX_DEPTH: usize = 64;
/// Longest text kept for one header field.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Status codes of QCVN 102 that a status message may carry.
pub const STATUS_CODES: [u8; 9] = [1, 2, 3, 4, 5, 6, 13, 15, 16];
/// The status code "rejected by the receiver".
pub const STATUS_REJECTED: u8 = 2;

/// Vietnamese label of a QCVN 102 status code, for the document list.
pub fn status_label(code: u8) -> &'static str {
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

/// Why a file is not a usable edXML message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdxmlError {
    #[error("not well-formed XML at byte {position}: {message}")]
    Syntax { position: u64, message: String },
    #[error("file ends before the message is complete (truncated at byte {0})")]
    Truncated(u64),
    #[error("a DOCTYPE declaration is not allowed in edXML (entities are never expanded)")]
    DocType,
    #[error("elements nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("text of element `{0}` is longer than {MAX_FIELD_BYTES} bytes")]
    FieldTooLong(String),
    #[error("text of element `{0}` is not valid UTF-8")]
    BadUtf8(String),
    #[error("undeclared entity `&{0};`")]
    UnknownEntity(String),
    #[error("root element is `{0}`, not `edXML`")]
    NotEdxml(String),
    #[error("read error: {0}")]
    Io(String),
    #[error("{0}")]
    Invalid(String),
}

/// An organisation named in a message header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Organ {
    pub id: String,
    pub name: String,
    pub in_charge: String,
}

impl Organ {
    /// How the document list shows it: "name (id)", or the id alone.
    pub fn label(&self) -> String {
        let name = if self.name.is_empty() {
            &self.in_charge
        } else {
            &self.name
        };
        if name.is_empty() {
            self.id.clone()
        } else {
            format!("{name} ({})", self.id)
        }
    }
}

/// An attachment: its name, decoded size and sha256 (hex), computed while streaming.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub bytes: u64,
    /// `None` when the content is not valid base64.
    pub sha256: Option<String>,
}

/// Everything read from one edXML file, before interpretation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub from: Organ,
    pub to: Vec<Organ>,
    pub document_id: String,
    pub code_number: String,
    pub code_notation: String,
    pub promulgation_date: String,
    pub type_name: String,
    pub subject: String,
    pub response_for_organ: String,
    pub response_for_document: String,
    pub status_code: String,
    pub status_timestamp: String,
    pub trace_timestamps: Vec<String>,
    pub business_doc_type: String,
    pub paper: String,
    pub attachments: Vec<Attachment>,
}

/// A header field that keeps its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    FromId,
    FromName,
    FromInCharge,
    ToId,
    ToName,
    ToInCharge,
    DocumentId,
    CodeNumber,
    CodeNotation,
    PromulgationDate,
    TypeName,
    Subject,
    ResponseOrgan,
    ResponseDocument,
    StatusCode,
    StatusTimestamp,
    TraceTimestamp,
    BusinessDocType,
    Paper,
    AttachmentName,
}

fn target_for(path: &[String]) -> Option<Target> {
    let n = path.len();
    let last = |k: usize| -> &str { path.get(n.wrapping_sub(k)).map_or("", String::as_str) };
    let in_charge = |s: &str| s == "OrganizationInCharge" || s == "OrganInCharge";
    let business = |s: &str| s == "Bussiness" || s == "Business";
    use Target::*;
    let t = match (last(3), last(2), last(1)) {
        ("MessageHeader", "From", "OrganId") => FromId,
        ("MessageHeader", "From", "OrganName") => FromName,
        ("MessageHeader", "From", s) if in_charge(s) => FromInCharge,
        ("MessageHeader", "To", "OrganId") => ToId,
        ("MessageHeader", "To", "OrganName") => ToName,
        ("MessageHeader", "To", s) if in_charge(s) => ToInCharge,
        ("MessageHeader", "Code", "CodeNumber") => CodeNumber,
        ("MessageHeader", "Code", "CodeNotation") => CodeNotation,
        ("MessageHeader", "PromulgationInfo", "PromulgationDate") => PromulgationDate,
        ("MessageHeader", "DocumentType", "TypeName") => TypeName,
        ("MessageHeader", "ResponseFor", "OrganId") => ResponseOrgan,
        ("MessageHeader", "ResponseFor", "DocumentId") => ResponseDocument,
        ("TraceHeaderList", "TraceHeader", "Timestamp") => TraceTimestamp,
        ("TraceHeaderList", b, "BussinessDocType" | "BusinessDocType") if business(b) => {
            BusinessDocType
        }
        ("TraceHeaderList", b, "Paper") if business(b) => Paper,
        ("AttachmentEncoded", "Attachment", "AttachmentName") => AttachmentName,
        (_, "MessageHeader", "DocumentId") => DocumentId,
        (_, "MessageHeader", "Subject") => Subject,
        (_, "MessageHeader", "StatusCode") => StatusCode,
        (_, "MessageHeader", "Timestamp") => StatusTimestamp,
        _ => return None,
    };
    Some(t)
}

fn is_attachment_content(path: &[String]) -> bool {
    let n = path.len();
    n >= 2 && path[n - 1] == "ContentTransferEncoded" && path[n - 2] == "Attachment"
}

impl Message {
    fn set(&mut self, target: Target, text: String) {
        use Target::*;
        let first = |slot: &mut String, text: String| {
            if slot.is_empty() {
                *slot = text;
            }
        };
        match target {
            FromId => first(&mut self.from.id, text),
            FromName => first(&mut self.from.name, text),
            FromInCharge => first(&mut self.from.in_charge, text),
            ToId | ToName | ToInCharge => {
                if let Some(to) = self.to.last_mut() {
                    match target {
                        ToId => first(&mut to.id, text),
                        ToName => first(&mut to.name, text),
                        _ => first(&mut to.in_charge, text),
                    }
                }
            }
            DocumentId => first(&mut self.document_id, text),
            CodeNumber => first(&mut self.code_number, text),
            CodeNotation => first(&mut self.code_notation, text),
            PromulgationDate => first(&mut self.promulgation_date, text),
            TypeName => first(&mut self.type_name, text),
            Subject => first(&mut self.subject, text),
            ResponseOrgan => first(&mut self.response_for_organ, text),
            ResponseDocument => first(&mut self.response_for_document, text),
            StatusCode => first(&mut self.status_code, text),
            StatusTimestamp => first(&mut self.status_timestamp, text),
            TraceTimestamp => self.trace_timestamps.push(text),
            BusinessDocType => first(&mut self.business_doc_type, text),
            Paper => first(&mut self.paper, text),
            AttachmentName => {
                if let Some(a) = self.attachments.last_mut() {
                    first(&mut a.name, text)
                }
            }
        }
    }
}

/// Reads one edXML message from `input`, streaming: memory stays bounded
/// whatever the size of its attachments.
pub fn read_message<R: BufRead>(input: R) -> Result<Message, EdxmlError> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut msg = Message::default();
    let mut field = TextCollector {
        bytes: Vec::new(),
        entity: None,
    };
    let mut attachment: Option<Base64Hasher> = None;
    let mut seen_root = false;
    loop {
        buf.clear();
        let position = reader.buffer_position();
        let event =
            reader.read_event_into(&mut buf).map_err(|e| match e {
                quick_xml::Error::Io(io) => EdxmlError::Io(io.to_string()),
                quick_xml::Error::Syntax(_)
                | quick_xml::Error::IllFormed(quick_xml::errors::IllFormedError::MissingEndTag(
                    _,
                )) if !path.is_empty() => EdxmlError::Truncated(reader.buffer_position()),
                other => EdxmlError::Syntax {
                    position,
                    message: other.to_string(),
                },
            })?;
        match event {
            XmlEvent::Start(e) => {
                if path.is_empty() && seen_root {
                    return Err(EdxmlError::Syntax {
                        position,
                        message: "a second root element".into(),
                    });
                }
                if path.len() >= MAX_DEPTH {
                    return Err(EdxmlError::TooDeep);
                }
                let name = e.local_name().as_ref().to_string();
                if path.is_empty() && name != "edXML" {
                    return Err(EdxmlError::NotEdxml(name));
                }
                seen_root = true;
                path.push(name);
                start_element(&path, &mut msg, &mut attachment);
                field.bytes.clear();
                field.entity = None;
            }
            XmlEvent::Empty(e) => {
                if path.is_empty() {
                    let name = e.local_name().as_ref().to_string();
                    return Err(EdxmlError::NotEdxml(name));
                }
                let name = e.local_name().as_ref().to_string();
                path.push(name);
                start_element(&path, &mut msg, &mut attachment);
                end_element(&path, &mut msg, &mut field, &mut attachment)?;
                path.pop();
            }
            XmlEvent::End(_) => {
                end_element(&path, &mut msg, &mut field, &mut attachment)?;
                path.pop();
            }
            XmlEvent::CData(c) => {
                let data = c.into_inner();
                if is_attachment_content(&path) {
                    if let Some(h) = attachment.as_mut() {
                        h.feed(data.as_bytes());
                    }
                } else if target_for(&path).is_some() {
                    field.bytes.extend_from_slice(data.as_bytes());
                    if field.bytes.len() > MAX_FIELD_BYTES {
                        return Err(EdxmlError::FieldTooLong(
                            path.last().cloned().unwrap_or_default(),
                        ));
                    }
                }
            }
            XmlEvent::Text(t) => {
                // Only outside the root: inside, text is streamed below.
                if !t.trim().is_empty() {
                    return Err(EdxmlError::Syntax {
                        position,
                        message: format!(
                            "text {:?} outside the root element",
                            t.chars().take(20).collect::<String>()
                        ),
                    });
                }
            }
            XmlEvent::GeneralRef(_) => {
                return Err(EdxmlError::Syntax {
                    position,
                    message: "entity reference outside the root element".into(),
                });
            }
            XmlEvent::DocType(_) => return Err(EdxmlError::DocType),
            XmlEvent::Decl(_) | XmlEvent::PI(_) | XmlEvent::Comment(_) => {}
            XmlEvent::Eof => {
                if !path.is_empty() {
                    return Err(EdxmlError::Truncated(reader.buffer_position()));
                }
                if !seen_root {
                    return Err(EdxmlError::Truncated(reader.buffer_position()));
                }
                return Ok(msg);
            }
        }
        if !path.is_empty() {
            let mut sink = if is_attachment_content(&path) {
                Sink::Attachment
            } else if target_for(&path).is_some() {
                Sink::Field
            } else {
                Sink::Discard
            };
            let element = path.last().cloned().unwrap_or_default();
            stream_text(
                &mut reader,
                &mut sink,
                &mut field,
                &mut attachment,
                &element,
            )?;
        }
    }
}

fn start_element(path: &[String], msg: &mut Message, attachment: &mut Option<Base64Hasher>) {
    let n = path.len();
    let name = path[n - 1].as_str();
    let parent = if n >= 2 { path[n - 2].as_str() } else { "" };
    match (parent, name) {
        ("MessageHeader", "To") => msg.to.push(Organ::default()),
        ("AttachmentEncoded", "Attachment") => msg.attachments.push(Attachment::default()),
        ("Attachment", "ContentTransferEncoded") => *attachment = Some(Base64Hasher::new()),
        _ => {}
    }
}

fn end_element(
    path: &[String],
    msg: &mut Message,
    field: &mut TextCollector,
    attachment: &mut Option<Base64Hasher>,
) -> Result<(), EdxmlError> {
    let element = path.last().cloned().unwrap_or_default();
    if is_attachment_content(path) {
        if let Some(mut h) = attachment.take() {
            if field.entity.take().is_some() {
                h.invalidate();
            }
            let (bytes, sha) = h.finish();
            if let Some(a) = msg.attachments.last_mut() {
                if a.sha256.is_none() && a.bytes == 0 {
                    a.bytes = bytes;
                    a.sha256 = sha;
                }
            }
        }
        return Ok(());
    }
    if let Some(target) = target_for(path) {
        if field.entity.is_some() {
            return Err(EdxmlError::UnknownEntity(
                String::from_utf8_lossy(field.entity.as_deref().unwrap_or_default()).into_owned(),
            ));
        }
        let bytes = std::mem::take(&mut field.bytes);
        let text = String::from_utf8(bytes).map_err(|_| EdxmlError::BadUtf8(element))?;
        let text = normalize_unit(&text);
        if !text.is_empty() {
            msg.set(target, text);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono_tz::Tz;

    use super::*;
    use crate::parse::normalize::{Channel, Confidentiality, Direction};
    use crate::parse::record::{Event, ExchangeEvent};
    use crate::parse::time::parse_time;

    const TZ: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn parse(s: &str) -> Result<Message, EdxmlError> {
        read_message(s.as_bytes())
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
                read_message(&full.as_bytes()[..cut]).is_err(),
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
            Ok(Event::EdxmlExchange(e, b)) => (e, b),
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
}
