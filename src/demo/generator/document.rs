//! One synthetic document: its kind, number and recipients, its exchange
//! copies and its signatures. The draws happen in a fixed order (the order
//! of the functions below), which is what keeps a seed's bytes unchanged.

use chrono::{DateTime, Datelike};

use super::event::{
    DocNumber, DocRef, Event, ExchangeEvent, Line, Link, Role, SignatureEvent, Signer,
};
use super::population::{
    DocType, AGENCY_NAME, CHANNEL_ELECTRONIC, CHANNEL_PAPER, CONFIDENTIALITY_NORMAL,
    CONFIDENTIALITY_SECRET, COUNTERPARTS, DIRECTION_INCOMING, DIRECTION_OUTGOING, DOC_TYPES,
    EXTERNAL_SIGNERS, LEADERS, ROLE_ORGANIZATION, ROLE_PERSON, TIME_STYLES, UNITS,
};
use super::rng::{mix, SplitMix64};
use super::shape::{Class, Shape};
use super::text::LOCAL_OFFSET;
use super::Generator;

/// What is drawn about a document before any of its lines.
struct Draft {
    /// Unix time of the first exchange.
    time: i64,
    shape: Shape,
    doc: DocRef,
    traits: Traits,
    /// The recipient of each copy (outgoing), or the sender of every copy (incoming).
    counterparts: [&'static str; 4],
    number: DocNumber,
}

/// The fields every exchange copy of a document shares.
#[derive(Debug, Clone, Copy)]
struct Traits {
    type_index: usize,
    doc_type: DocType,
    subject: &'static str,
    /// Unit name and the code used in công văn numbers.
    unit: Option<(&'static str, &'static str)>,
    electronic: bool,
    channel: &'static str,
    confidentiality: Option<&'static str>,
    direction: &'static str,
}

/// A signature to write: role, unix time, whether valid, whether it arrives late.
#[derive(Debug, Clone, Copy)]
struct PlannedSignature {
    role: Role,
    at: i64,
    valid: bool,
    late: bool,
}

impl Generator {
    /// Appends the events of the next document, first exchanged at `time`, to `out`.
    pub(super) fn produce(&mut self, time: i64, out: &mut Vec<Event>) {
        let shape = Shape::draw(&mut self.shape_rng, self.noise);
        let doc = self.next_doc_ref(shape.outgoing);
        self.follow_numbering_year(time);
        let traits = Traits::draw(&mut self.rng, &shape);
        let counterparts = draw_counterparts(&mut self.rng, &shape);
        let number = self.doc_number(&shape, &traits, counterparts[0]);
        let draft = Draft {
            time,
            shape,
            doc,
            traits,
            counterparts,
            number,
        };
        self.push_exchange_copies(&draft, out);
        self.push_signatures(&draft, out);
    }

    fn next_doc_ref(&mut self, outgoing: bool) -> DocRef {
        let seq = self.next_document;
        self.next_document += 1;
        DocRef {
            seq,
            outgoing,
            sha_seed: mix(self.sha_key ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        }
    }

    /// Restarts outgoing numbers when the local year changes.
    fn follow_numbering_year(&mut self, time: i64) {
        let local = DateTime::from_timestamp(time + LOCAL_OFFSET, 0).unwrap_or_default();
        if local.year() != self.numbering_year {
            // A feed that starts mid-year continues that year's numbering rather than starting at 1.
            let resumed = self.numbering_year == i32::MIN;
            self.numbering_year = local.year();
            self.outgoing_numbers = DOC_TYPES.map(|t| {
                if resumed {
                    local.ordinal() * t.weight / 50
                } else {
                    0
                }
            });
        }
    }

    /// "Số, ký hiệu": the agency's own sequence when outgoing, the sender's when incoming.
    fn doc_number(&mut self, shape: &Shape, traits: &Traits, sender: &'static str) -> DocNumber {
        let rng = &mut self.rng;
        let doc_type = &traits.doc_type;
        if shape.outgoing {
            self.outgoing_numbers[traits.type_index] += 1;
            let issuer = if doc_type.abbr == "TB" && rng.chance(0.4) {
                "VP"
            } else {
                "UBND"
            };
            DocNumber {
                n: self.outgoing_numbers[traits.type_index],
                abbr: doc_type.abbr,
                issuer,
                office: traits.unit.map_or("VP", |(_, code)| code),
            }
        } else {
            let code = COUNTERPARTS
                .iter()
                .find(|(name, _, _)| *name == sender)
                .map_or("UBND", |(_, code, _)| code);
            DocNumber {
                n: rng.range(1, 1500) as u32,
                abbr: doc_type.abbr,
                issuer: code,
                office: "VP",
            }
        }
    }

    /// One exchange line per copy, the copies a few seconds (outgoing) or minutes (incoming) apart.
    fn push_exchange_copies(&mut self, draft: &Draft, out: &mut Vec<Event>) {
        let (shape, traits) = (&draft.shape, &draft.traits);
        let lead_cap = self.lead_cap;
        let mut exchange_time = draft.time;
        for (copy, noise) in shape.noise.iter().enumerate().take(shape.copies) {
            if copy > 0 {
                exchange_time += if shape.outgoing {
                    self.rng.range(5, (lead_cap / 8).clamp(5, 300))
                } else {
                    self.rng.range(60, lead_cap)
                };
            }
            let event = ExchangeEvent {
                id: self.next_exchange_id,
                time: exchange_time,
                style: self.rng.weighted(&TIME_STYLES),
                doc: draft.doc,
                direction: traits.direction,
                channel: traits.channel,
                confidentiality: traits.confidentiality,
                unit: traits.unit.map(|(name, _)| name),
                number: draft.number,
                doc_type: traits.doc_type.name,
                subject: traits.subject,
                counterpart: draft.counterparts[copy],
                line: Line::Valid,
            };
            self.next_exchange_id += 1;
            self.push_exchange_line(event, *noise, out);
        }
    }

    /// The document's signatures, by the agency's leaders (outgoing) or the sender's (incoming).
    fn push_signatures(&mut self, draft: &Draft, out: &mut Vec<Event>) {
        let (person, organization) = if draft.shape.outgoing {
            (self.rng.pick(&LEADERS), AGENCY_NAME)
        } else {
            (self.rng.pick(&EXTERNAL_SIGNERS), draft.counterparts[0])
        };
        let planned = plan_signatures(&mut self.rng, draft, self.lead_cap);
        for signature in planned.into_iter().flatten() {
            let rng = &mut self.rng;
            let (name, spellings) = if signature.role == Role::Person {
                (person, &ROLE_PERSON)
            } else {
                (organization, &ROLE_ORGANIZATION)
            };
            let event = SignatureEvent {
                id: self.next_signature_id,
                time: signature.at,
                style: rng.weighted(&TIME_STYLES),
                doc: draft.doc,
                link: rng.weighted(&[(Link::Both, 80), (Link::Sha, 15), (Link::DocId, 5)]),
                role: rng.weighted(spellings),
                valid: if !signature.valid {
                    Some(false)
                } else if rng.chance(0.1) {
                    None
                } else {
                    Some(true)
                },
                signer: Signer {
                    name,
                    organization,
                    distinguished: rng.chance(0.05),
                },
                late: signature.late,
                line: Line::Valid,
            };
            self.next_signature_id += 1;
            self.push_signature_line(event, out);
        }
    }
}

impl Traits {
    fn draw(rng: &mut SplitMix64, shape: &Shape) -> Self {
        let type_index = rng.weighted_index(&DOC_TYPES.map(|t| t.weight));
        let doc_type = DOC_TYPES[type_index];
        let subject = rng.pick(doc_type.subjects);
        let unit = if rng.chance(0.10) {
            if rng.chance(0.3) {
                Some(("", "VP"))
            } else {
                None
            }
        } else {
            Some(rng.weighted(&UNITS))
        };
        let electronic = match shape.class {
            Class::Paper => false,
            Class::Secret => rng.chance(0.15),
            _ => true,
        };
        let channel = if electronic {
            rng.weighted(&CHANNEL_ELECTRONIC)
        } else {
            rng.weighted(&CHANNEL_PAPER)
        };
        let confidentiality = if shape.class == Class::Secret {
            Some(rng.weighted(&CONFIDENTIALITY_SECRET))
        } else {
            rng.weighted(&CONFIDENTIALITY_NORMAL)
        };
        let direction = if shape.outgoing {
            rng.weighted(&DIRECTION_OUTGOING)
        } else {
            rng.weighted(&DIRECTION_INCOMING)
        };
        Traits {
            type_index,
            doc_type,
            subject,
            unit,
            electronic,
            channel,
            confidentiality,
            direction,
        }
    }
}

/// Outgoing copies go to distinct recipients; a second incoming copy is a re-delivery by the same sender.
fn draw_counterparts(rng: &mut SplitMix64, shape: &Shape) -> [&'static str; 4] {
    let mut counterparts = [COUNTERPARTS[0].0; 4];
    let mut chosen = 0;
    while chosen < if shape.outgoing { shape.copies } else { 1 } {
        let candidate = rng.weighted(&COUNTERPARTS.map(|(name, _, w)| (name, w)));
        if !counterparts[..chosen].contains(&candidate) {
            counterparts[chosen] = candidate;
            chosen += 1;
        }
    }
    if !shape.outgoing {
        counterparts = [counterparts[0]; 4];
    }
    counterparts
}

/// The signatures a document of this class gets: both roles when signed
/// (sometimes after an invalid attempt), one role when a signature is
/// missing or late (the late one hours to days after), rarely one on paper.
fn plan_signatures(
    rng: &mut SplitMix64,
    draft: &Draft,
    lead_cap: i64,
) -> [Option<PlannedSignature>; 3] {
    let (shape, time) = (&draft.shape, draft.time);
    // Outgoing documents are signed before they are sent, the person first.
    let signing_time = |rng: &mut SplitMix64, role: Role| {
        if !shape.outgoing {
            time + rng.range(1, 60)
        } else if role == Role::Person {
            time - rng.range(lead_cap / 2, lead_cap)
        } else {
            time - rng.range(1, lead_cap / 2)
        }
    };
    let mut planned: [Option<PlannedSignature>; 3] = [None; 3];
    let mut count = 0;
    let mut sign = |role, at, valid, late| {
        planned[count] = Some(PlannedSignature {
            role,
            at,
            valid,
            late,
        });
        count += 1;
    };
    let electronic_signed =
        shape.class == Class::Signed || (shape.class == Class::Secret && draft.traits.electronic);
    if electronic_signed {
        if rng.chance(0.015) {
            let role = rng.pick(&[Role::Person, Role::Organization]);
            sign(role, time - lead_cap, false, false);
        }
        sign(Role::Person, signing_time(rng, Role::Person), true, false);
        sign(
            Role::Organization,
            signing_time(rng, Role::Organization),
            true,
            false,
        );
    } else if shape.class == Class::MissingSignature || shape.class == Class::LateSignature {
        let (present, absent) = if rng.chance(0.5) {
            (Role::Person, Role::Organization)
        } else {
            (Role::Organization, Role::Person)
        };
        sign(present, signing_time(rng, present), true, false);
        if shape.class == Class::LateSignature {
            sign(absent, time + rng.range(2 * 3600, 72 * 3600), true, true);
        } else if rng.chance(0.3) {
            sign(absent, signing_time(rng, absent), false, false);
        }
    } else if shape.class == Class::Paper && rng.chance(0.05) {
        sign(Role::Person, signing_time(rng, Role::Person), true, false);
    }
    planned
}
