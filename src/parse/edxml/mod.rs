//! edXML messages of the national document-exchange axis (QCVN 102:2016/BTTTT),
//! one per file, read as a stream in bounded memory whatever the file holds
//! (`input` caps the file and each piece of markup, `text` streams element
//! text and CDATA), then interpreted as exchange or status events (`event`).

mod event;
mod input;
mod spool;
mod text;

use std::io::{self, BufRead};
use std::path::Path;

use quick_xml::events::{BytesStart, Event as XmlEvent};
use quick_xml::Reader;

use super::normalize::normalize_unit;
use input::{Input, Limit};
pub(crate) use spool::{SpooledPdf, MAX_SPOOLED};
use text::{stream_text, Base64Hasher, Sink, TextCollector};

/// Deepest element nesting accepted (edXML needs about 8).
pub(crate) const MAX_DEPTH: usize = 64;
/// Longest text kept for one header field.
pub(crate) const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Most header text kept for one message, all fields together.
pub(crate) const MAX_HEADER_BYTES: usize = 1024 * 1024;
/// Longest piece of markup quick-xml may buffer: a tag with its attributes, a
/// comment, a processing instruction, a declaration, or text outside the root.
pub(crate) const MAX_MARKUP_BYTES: u64 = 1024 * 1024;
/// Longest element name.
pub(crate) const MAX_NAME_BYTES: usize = 256;
/// Most `To` recipients of one message.
pub(crate) const MAX_RECIPIENTS: usize = 1000;
/// Most `TraceHeader/Timestamp`s of one message.
pub(crate) const MAX_TRACE_HEADERS: usize = 1000;
/// Most attachments of one message.
pub(crate) const MAX_ATTACHMENTS: usize = 1000;
/// Why a file is not a usable edXML message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EdxmlError {
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
    #[error("file is {size} bytes, larger than max_file_size ({max} bytes): not read")]
    FileTooLarge { size: u64, max: u64 },
    #[error("more than max_file_size ({0} bytes) to read: the file grew while it was read")]
    ReadPastMax(u64),
    #[error("a tag, comment, processing instruction, declaration or text outside the root is longer than {0} bytes")]
    MarkupTooLong(u64),
    #[error("an element name is longer than {MAX_NAME_BYTES} bytes")]
    NameTooLong,
    #[error("more than {max} `{element}` elements")]
    TooMany { element: &'static str, max: usize },
    #[error("header fields hold more than {MAX_HEADER_BYTES} bytes of text in total")]
    HeaderTooLarge,
    #[error("read error: {0}")]
    Io(String),
}

/// An organisation named in a message header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Organ {
    pub(crate) id: String,
    pub name: String,
    pub(crate) in_charge: String,
}

impl Organ {
    /// How the document list shows it: "name (id)", or the id alone.
    pub(crate) fn label(&self) -> String {
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
pub(crate) struct Attachment {
    pub name: String,
    pub(crate) bytes: u64,
    /// `None` when the content is not valid base64.
    pub(crate) sha256: Option<String>,
}

/// Everything read from one edXML file, before interpretation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) from: Organ,
    pub(crate) to: Vec<Organ>,
    pub(crate) document_id: String,
    pub(crate) code_number: String,
    pub(crate) code_notation: String,
    pub(crate) promulgation_date: String,
    pub(crate) type_name: String,
    pub(crate) subject: String,
    pub(crate) response_for_organ: String,
    pub(crate) response_for_document: String,
    pub(crate) status_code: String,
    pub(crate) status_timestamp: String,
    pub(crate) trace_timestamps: Vec<String>,
    pub(crate) business_doc_type: String,
    pub(crate) paper: String,
    pub(crate) attachments: Vec<Attachment>,
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
    fn set(&mut self, target: Target, text: String) -> Result<(), EdxmlError> {
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
            TraceTimestamp => {
                capped(
                    self.trace_timestamps.len(),
                    "TraceHeader/Timestamp",
                    MAX_TRACE_HEADERS,
                )?;
                self.trace_timestamps.push(text)
            }
            BusinessDocType => first(&mut self.business_doc_type, text),
            Paper => first(&mut self.paper, text),
            AttachmentName => {
                if let Some(a) = self.attachments.last_mut() {
                    first(&mut a.name, text)
                }
            }
        }
        Ok(())
    }
}

/// Refuses one more `element` when `len` of them are already kept.
fn capped(len: usize, element: &'static str, max: usize) -> Result<(), EdxmlError> {
    if len >= max {
        return Err(EdxmlError::TooMany { element, max });
    }
    Ok(())
}

/// The error for an I/O failure while reading, or for a limit of [`Input`].
fn io_error(e: &io::Error) -> EdxmlError {
    match Limit::of(e) {
        Some(Limit::File(max)) => EdxmlError::ReadPastMax(max),
        Some(Limit::Markup(max)) => EdxmlError::MarkupTooLong(max),
        None => EdxmlError::Io(e.to_string()),
    }
}

/// Reads one edXML message from `input`, streaming: memory stays bounded
/// whatever the file holds, and more than `max_file_size` bytes are never read.
#[cfg(test)]
pub(crate) fn read_message<R: BufRead>(
    input: R,
    max_file_size: u64,
) -> Result<Message, EdxmlError> {
    read_message_spooling(input, max_file_size, None).map(|(msg, _)| msg)
}

/// [`read_message`], also writing the first [`MAX_SPOOLED`] PDF attachments
/// to temporary files in `spool_dir` (when given) as they are decoded.
pub(crate) fn read_message_spooling<R: BufRead>(
    input: R,
    max_file_size: u64,
    spool_dir: Option<&Path>,
) -> Result<(Message, Vec<SpooledPdf>), EdxmlError> {
    let mut reader = Reader::from_reader(Input::new(input, max_file_size, MAX_MARKUP_BYTES));
    let mut buf = Vec::new();
    let mut state = Reading {
        spool_dir,
        ..Reading::default()
    };
    let mut seen_root = false;
    loop {
        buf.clear();
        let position = reader.buffer_position();
        reader.get_mut().begin_markup();
        let event = reader.read_event_into(&mut buf);
        reader.get_mut().end_markup();
        let event =
            event.map_err(|e| match e {
                quick_xml::Error::Io(io) => io_error(&io),
                quick_xml::Error::Syntax(_)
                | quick_xml::Error::IllFormed(quick_xml::errors::IllFormedError::MissingEndTag(
                    _,
                )) if !state.path.is_empty() => EdxmlError::Truncated(reader.buffer_position()),
                other => EdxmlError::Syntax {
                    position,
                    message: describe(other),
                },
            })?;
        let outside = |what: &str| EdxmlError::Syntax {
            position,
            message: format!("{what} outside the root element"),
        };
        match event {
            XmlEvent::Start(e) => {
                if state.path.is_empty() && seen_root {
                    return Err(EdxmlError::Syntax {
                        position,
                        message: "a second root element".into(),
                    });
                }
                if state.path.len() >= MAX_DEPTH {
                    return Err(EdxmlError::TooDeep);
                }
                let name = element_name(&e)?;
                if state.path.is_empty() && name != "edXML" {
                    return Err(EdxmlError::NotEdxml(name));
                }
                seen_root = true;
                state.path.push(name);
                state.start_element()?;
                state.field.bytes.clear();
                state.field.entity = None;
            }
            XmlEvent::Empty(e) => {
                let name = element_name(&e)?;
                if state.path.is_empty() {
                    return Err(EdxmlError::NotEdxml(name));
                }
                state.path.push(name);
                state.start_element()?;
                state.end_element()?;
                state.path.pop();
            }
            XmlEvent::End(_) => {
                state.end_element()?;
                state.path.pop();
            }
            // Inside the root, CDATA is text, streamed below.
            XmlEvent::CData(_) => return Err(outside("a CDATA section")),
            XmlEvent::Text(t) => {
                // Only outside the root: inside, text is streamed below.
                if !t.trim().is_empty() {
                    let text = t.chars().take(20).collect::<String>();
                    return Err(outside(&format!("text {text:?}")));
                }
            }
            XmlEvent::GeneralRef(_) => return Err(outside("entity reference")),
            XmlEvent::DocType(_) => return Err(EdxmlError::DocType),
            XmlEvent::Decl(_) | XmlEvent::PI(_) | XmlEvent::Comment(_) => {}
            XmlEvent::Eof => {
                if !state.path.is_empty() || !seen_root {
                    return Err(EdxmlError::Truncated(reader.buffer_position()));
                }
                return Ok((state.msg, state.spooled));
            }
        }
        if !state.path.is_empty() {
            stream_text(&mut reader, state.sink())?;
        }
    }
}

/// What quick-xml says is wrong, with any name it quotes cut short (a name
/// can be as long as [`MAX_MARKUP_BYTES`]).
fn describe(e: quick_xml::Error) -> String {
    use quick_xml::errors::IllFormedError::*;
    let cut = |name: &str| -> String {
        match name.char_indices().nth(64) {
            Some((i, _)) => format!("{}…", &name[..i]),
            None => name.to_string(),
        }
    };
    match e {
        quick_xml::Error::IllFormed(MismatchedEndTag { expected, found }) => {
            format!(
                "expected `</{}>`, but `</{}>` was found",
                cut(&expected),
                cut(&found)
            )
        }
        quick_xml::Error::IllFormed(UnmatchedEndTag(name)) => {
            format!("close tag `</{}>` does not match any open tag", cut(&name))
        }
        quick_xml::Error::IllFormed(MissingEndTag(name)) => {
            format!("start tag not closed: `</{}>` not found", cut(&name))
        }
        quick_xml::Error::IllFormed(MissingDeclVersion(Some(attr))) => {
            format!(
                "an XML declaration must start with `version`, not `{}`",
                cut(&attr)
            )
        }
        other => other.to_string(),
    }
}

fn element_name(e: &BytesStart) -> Result<String, EdxmlError> {
    let name = e.local_name();
    if name.as_ref().len() > MAX_NAME_BYTES {
        return Err(EdxmlError::NameTooLong);
    }
    Ok(name.as_ref().to_string())
}

/// A message being read: where the reader is and what it has kept.
#[derive(Default)]
struct Reading<'d> {
    /// Where PDF attachments are spooled; `None`: they are only hashed.
    spool_dir: Option<&'d Path>,
    spooled: Vec<SpooledPdf>,
    /// Local names of the open elements, the root first.
    path: Vec<String>,
    msg: Message,
    field: TextCollector,
    attachment: Option<Base64Hasher>,
    /// Bytes of header text kept in `msg` so far.
    kept: usize,
}

impl Reading<'_> {
    /// Where the text of the innermost open element goes.
    fn sink(&mut self) -> Sink<'_> {
        let Some(element) = self.path.last() else {
            return Sink::Discard;
        };
        if is_attachment_content(&self.path) {
            match self.attachment.as_mut() {
                Some(h) => Sink::Attachment(h, &mut self.field.entity),
                None => Sink::Discard,
            }
        } else if target_for(&self.path).is_some() {
            Sink::Field(&mut self.field, element)
        } else {
            Sink::Discard
        }
    }

    fn start_element(&mut self) -> Result<(), EdxmlError> {
        let n = self.path.len();
        let name = self.path[n - 1].as_str();
        let parent = if n >= 2 {
            self.path[n - 2].as_str()
        } else {
            ""
        };
        let msg = &mut self.msg;
        match (parent, name) {
            ("MessageHeader", "To") => {
                capped(msg.to.len(), "To", MAX_RECIPIENTS)?;
                msg.to.push(Organ::default());
            }
            ("AttachmentEncoded", "Attachment") => {
                capped(msg.attachments.len(), "Attachment", MAX_ATTACHMENTS)?;
                msg.attachments.push(Attachment::default());
            }
            ("Attachment", "ContentTransferEncoded") => {
                let spool = self
                    .spool_dir
                    .filter(|_| self.spooled.len() < MAX_SPOOLED)
                    .map(spool::PdfSpool::new);
                self.attachment = Some(Base64Hasher::new(spool));
            }
            _ => {}
        }
        Ok(())
    }

    fn end_element(&mut self) -> Result<(), EdxmlError> {
        let path = &self.path;
        let field = &mut self.field;
        if is_attachment_content(path) {
            if let Some(mut h) = self.attachment.take() {
                if field.entity.take().is_some() {
                    h.invalidate();
                }
                let (bytes, sha, spooled) = h.finish_spooled();
                let index = self.msg.attachments.len().saturating_sub(1);
                if let Some(a) = self.msg.attachments.last_mut() {
                    if a.sha256.is_none() && a.bytes == 0 {
                        if let (Some(file), Some(sha256)) = (spooled, &sha) {
                            let sha256 = sha256.clone();
                            self.spooled.push(SpooledPdf {
                                index,
                                sha256,
                                file,
                            });
                        }
                        a.bytes = bytes;
                        a.sha256 = sha;
                    }
                }
            }
            return Ok(());
        }
        if let Some(target) = target_for(path) {
            let element = path.last().cloned().unwrap_or_default();
            if let Some(name) = field.entity.take() {
                return Err(EdxmlError::UnknownEntity(
                    String::from_utf8_lossy(&name).into_owned(),
                ));
            }
            let bytes = std::mem::take(&mut field.bytes);
            let text = String::from_utf8(bytes).map_err(|_| EdxmlError::BadUtf8(element))?;
            let text = normalize_unit(&text);
            if !text.is_empty() {
                self.kept += text.len();
                if self.kept > MAX_HEADER_BYTES {
                    return Err(EdxmlError::HeaderTooLarge);
                }
                self.msg.set(target, text)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
