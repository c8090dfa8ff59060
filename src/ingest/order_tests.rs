use super::*;
use crate::aggregate::Summary;
use crate::config::Config;
use crate::model::Direction;
use crate::model::{Channel, Confidentiality, Role};
use crate::model::{Event, ExchangeEvent, SignatureEvent, StatusEvent};
use crate::sources::Item;
use crate::sources::SourceHandle;
use crate::store::SourceState;

const CONFIG: &str = r#"
[agency]
code = "T"
[storage]
path = "/unused"
[[sources]]
name = "ex"
kind = "exchange"
format = "jsonl"
path = "/unused/ex*.jsonl"
[[sources]]
name = "sg"
kind = "signature"
format = "jsonl"
path = "/unused/sg*.jsonl"
"#;

fn exchange(id: &str, doc: &str, channel: Channel, sha: Option<&str>, time: i64) -> Event {
    Event::Exchange(ExchangeEvent {
        event_id: Some(id.into()),
        time,
        doc_id: doc.into(),
        direction: Direction::Outgoing,
        channel,
        confidentiality: Confidentiality::Normal,
        unit: "Văn phòng".into(),
        doc_number: String::new(),
        doc_type: String::new(),
        subject: String::new(),
        counterpart: String::new(),
        sha256: sha.map(str::to_string),
    })
}

fn signature(id: &str, doc: Option<&str>, sha: Option<&str>, role: Role, valid: bool) -> Event {
    Event::Signature(SignatureEvent {
        event_id: Some(id.into()),
        time: 1_780_000_000,
        doc_id: doc.map(str::to_string),
        sha256: sha.map(str::to_string),
        role: Some(role),
        valid,
        signer: String::new(),
        verdict: None,
    })
}

/// How the test feeds the writer.
#[derive(Clone, Copy, Debug)]
enum Feed {
    /// One event per commit, each committed before the next is prepared.
    OneByOne,
    /// One event per commit through the committer thread: each is prepared
    /// while the one before is being committed.
    Pipelined,
}

/// Ingests `events` one batch each (in the given order, through a
/// restart half-way) and returns the all-time summary and event counts.
fn ingest(events: &[Event], feed: Feed) -> (Summary, u64, u64) {
    let (summary, accepted, duplicate, _) = ingest_counting_rejected(events, feed);
    (summary, accepted, duplicate)
}

fn batch_of(ev: &Event, seq: usize) -> SourceBatch {
    SourceBatch {
        source: usize::from(matches!(ev, Event::Signature(_))),
        seq: seq as u64 + 1,
        items: vec![Item::Event(ev.clone())],
        files: vec![],
        retired: vec![],
        feed: None,
    }
}

/// [`ingest`], also returning the documents rejected by a receiver (outgoing, incoming).
fn ingest_counting_rejected(events: &[Event], feed: Feed) -> (Summary, u64, u64, [u64; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(std::path::Path::new("/t/d.toml"), CONFIG).unwrap();
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let halves = events.split_at(events.len() / 2);
    let mut states: Vec<SourceState> = vec![SourceState::default(); 2];
    let mut summary = Summary::default();
    let mut rejected = [0, 0];
    for part in [halves.0, halves.1] {
        // sled's background threads let go of the previous handle shortly after it is dropped.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let store = loop {
            match Store::open(&dir.path().join("store"), 1 << 20) {
                Ok(s) => break s,
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("{e}"),
            }
        };
        let aggregates = store.aggregates().unwrap();
        let handles: Vec<_> = config
            .sources
            .iter()
            .zip(&states)
            .map(|(c, s)| Arc::new(SourceHandle::new(c.clone(), s.clone())))
            .collect();
        let shared = Shared::new(aggregates, handles, Arc::default());
        let mut ingestor = Ingestor::new(store, tz, 3, dir.path().join("rejected"), shared.clone())
            .unwrap()
            .with_max_batch(1);
        let queue = MergeQueue::new(2);
        match feed {
            Feed::OneByOne => {
                for (seq, ev) in part.iter().enumerate() {
                    ingestor.commit_with_retry(vec![batch_of(ev, seq)]);
                }
                queue.close(0);
                queue.close(1);
                ingestor.run(&queue).flush().unwrap();
            }
            Feed::Pipelined => std::thread::scope(|s| {
                let queue = &queue;
                s.spawn(move || {
                    for (seq, ev) in part.iter().enumerate() {
                        assert!(queue.push(batch_of(ev, seq), || false));
                    }
                    queue.close(0);
                    queue.close(1);
                });
                ingestor.run(queue).flush().unwrap();
            }),
        }
        states = shared.sources.iter().map(|h| h.committed_state()).collect();
        summary = shared.aggregates.read().unwrap().summary(None, None);
        rejected = shared.aggregates.read().unwrap().rejected(None, None);
    }
    let accepted = states.iter().map(|s| s.accepted).sum();
    let duplicate = states.iter().map(|s| s.duplicate).sum();
    (summary, accepted, duplicate, rejected)
}

fn corpus() -> Vec<Event> {
    vec![
        // A: signed by a person through its sha256 and by the agency through its doc_id.
        exchange("e1", "A", Channel::Electronic, Some("s-a"), 100),
        exchange("e2", "A", Channel::Electronic, Some("s-a"), 50),
        signature("g1", None, Some("s-a"), Role::Person, true),
        signature("g2", Some("A"), None, Role::Organization, true),
        // B: paper, even with signatures.
        exchange("e3", "B", Channel::Paper, None, 100),
        signature("g3", Some("B"), None, Role::Person, true),
        // C: an invalid signature adds nothing.
        exchange("e4", "C", Channel::Electronic, Some("s-c"), 100),
        signature("g4", Some("C"), None, Role::Person, true),
        signature("g5", None, Some("s-c"), Role::Organization, false),
        // D: the signatures name another doc_id but D's sha256.
        exchange("e5", "D", Channel::Electronic, Some("s-d"), 100),
        signature("g6", Some("OTHER"), Some("s-d"), Role::Person, true),
        signature("g7", Some("OTHER"), Some("s-d"), Role::Organization, true),
        // Duplicates of both kinds change nothing.
        exchange("e3", "B", Channel::Paper, None, 100),
        signature("g5", None, Some("s-c"), Role::Organization, false),
    ]
}

/// Fisher-Yates with a xorshift generator: the same orders on every run.
fn shuffle(events: &mut [Event], rng: &mut u64) {
    for i in (1..events.len()).rev() {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        events.swap(i, (*rng % (i as u64 + 1)) as usize);
    }
}

#[test]
fn the_result_does_not_depend_on_arrival_order_or_restarts() {
    let events = corpus();
    let (expected, accepted, duplicate) = ingest(&events, Feed::OneByOne);
    let out = expected.total.outgoing;
    assert_eq!(
        (out.electronic_signed, out.electronic_unsigned, out.paper),
        (2, 1, 1),
        "{out:?}"
    );
    assert_eq!((accepted, duplicate), (12, 2));
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..12 {
        let mut shuffled = events.clone();
        if round == 0 {
            shuffled.reverse();
        } else {
            shuffle(&mut shuffled, &mut rng);
        }
        for feed in [Feed::OneByOne, Feed::Pipelined] {
            let got = ingest(&shuffled, feed);
            assert_eq!(got.0.total, expected.total, "round {round}, {feed:?}");
            assert_eq!(
                (got.1, got.2),
                (accepted, duplicate),
                "round {round}, {feed:?}"
            );
        }
    }
}

fn edxml(id: &str, doc: &str, direction: Direction, business: u8, time: i64) -> Event {
    let Event::Exchange(mut e) = exchange(id, doc, Channel::Electronic, None, time) else {
        unreachable!()
    };
    e.event_id = None;
    e.direction = direction;
    Event::EdxmlExchange(e, business, Vec::new())
}

fn status(doc: &str, direction: Direction, code: u8, time: i64) -> Event {
    Event::Status(StatusEvent {
        time,
        doc_id: doc.into(),
        direction,
        code,
    })
}

#[test]
fn statuses_and_revocations_do_not_depend_on_arrival_order() {
    let day = 86_400;
    let events = vec![
        edxml("x1", "R", Direction::Outgoing, 0, 1_780_000_000),
        edxml("x2", "R", Direction::Outgoing, 1, 1_780_000_000 + 3 * day),
        status("R", Direction::Outgoing, 1, 1_780_000_100),
        status("R", Direction::Outgoing, 2, 1_780_000_200),
        status("R", Direction::Outgoing, 3, 1_780_000_300),
        edxml("x3", "S", Direction::Incoming, 0, 1_780_000_000),
        status("S", Direction::Incoming, 2, 1_780_000_500),
        // A status for the outgoing direction of S, which never comes: counts nothing.
        status("S", Direction::Outgoing, 2, 1_780_000_500),
        edxml("x4", "T", Direction::Outgoing, 2, 1_780_000_000),
        status("T", Direction::Outgoing, 4, 1_780_000_500),
    ];
    let (expected, accepted, _, rejected) = ingest_counting_rejected(&events, Feed::OneByOne);
    assert_eq!(accepted, 10);
    // A revoked document stays counted.
    assert_eq!(expected.total.outgoing.total(), 2);
    assert_eq!(expected.total.incoming.total(), 1);
    assert_eq!(rejected, [1, 1]);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for round in 0..8 {
        let mut shuffled = events.clone();
        shuffle(&mut shuffled, &mut rng);
        for feed in [Feed::OneByOne, Feed::Pipelined] {
            let (got, _, _, got_rejected) = ingest_counting_rejected(&shuffled, feed);
            assert_eq!(got.total, expected.total, "round {round}, {feed:?}");
            assert_eq!(got_rejected, rejected, "round {round}, {feed:?}");
        }
    }
}
