//! Every labelled metric family docflowd computes at scrape time, in one
//! table: name, labels and help (the README's "Metrics" table lists the
//! same). Collectors ask the scrape for a family by its entry here.

/// A metric family: its name, its labels and its help text.
pub(crate) struct Family {
    pub name: &'static str,
    pub(crate) labels: &'static [&'static str],
    pub(crate) help: &'static str,
}

macro_rules! families {
    ($($id:ident = $name:literal, $labels:expr, $help:literal;)*) => {
        $(pub const $id: Family = Family { name: $name, labels: &$labels, help: $help };)*
    };
}

families! {
    DOCUMENTS = "docflow_documents", ["direction", "class", "window"], "Documents by direction, class and time window (local days).";
    COMPLIANCE_RATIO = "docflow_compliance_ratio", ["direction", "window"], "Electronic signed documents / (total - secret exempt); absent when the denominator is 0.";
    UNIT_DOCUMENTS = "docflow_unit_documents", ["unit", "direction", "class", "window"], "Documents by internal unit, direction, class and window (month, year).";
    SOURCE_EVENTS = "docflow_source_events_total", ["source", "result"], "Events read per source by result.";
    SIGNATURE_VERDICTS = "docflow_signature_verdicts_total", ["source", "result"], "Signatures of PDF files verified and committed since the start, by result (valid or the reason code).";
    SOURCE_UP = "docflow_source_up", ["source"], "1 when the source can be read.";
    SOURCE_LAST_EVENT = "docflow_source_last_event_timestamp_seconds", ["source"], "Time of the newest event accepted from the source.";
    ALERT_FIRING = "docflow_alert_firing", ["rule"], "1 while the alert rule is firing.";
    ALERT_NOTIFICATIONS = "docflow_alert_notifications_total", ["rule", "state", "result"], "Alert mails by rule, state (firing, resolved) and result (sent, failed: one per failed try).";
    AGENCY_INFO = "docflow_agency_info", ["code", "name"], "The agency this docflowd measures.";
    BUILD_INFO = "docflow_build_info", ["version"], "docflowd build.";
}
