//! Following files (SPEC §3.3): rename rotation, copy-truncate, files that
//! appear later, and half-written last lines.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

use crate::common::*;

fn exchange_only(glob: &str) -> Env {
    Env::new(&source("exchange", "exchange", glob))
}

fn wait_accepted(d: &Daemon, n: u64) {
    let s = d.wait_caught_up();
    assert_eq!(counts(&s, "exchange"), (n, 0, 0), "{s}");
    assert_eq!(d.report("")["outgoing"]["total"], n);
}

#[test]
fn rename_rotation_while_running_loses_and_repeats_nothing() {
    let env = exchange_only("{logs}/exchange.jsonl");
    let path = env.log("exchange.jsonl");
    let d = env.start();
    // The writer keeps its handle open, as a logging application does.
    let mut old = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    old.write_all(exchange_lines("R", 1..=3).as_bytes())
        .unwrap();
    wait_accepted(&d, 3);

    // Lines written through the old handle just before the rename, then rotation.
    old.write_all(exchange_lines("R", 4..=5).as_bytes())
        .unwrap();
    std::fs::rename(&path, env.log("exchange.jsonl.1")).unwrap();
    env.append("exchange.jsonl", &exchange_lines("R", 6..=7));
    wait_accepted(&d, 7);
    env.append("exchange.jsonl", &exchange_lines("R", 8..=8));
    wait_accepted(&d, 8);

    // A second rotation, logrotate style: .1 -> .2, current -> .1, new current.
    std::fs::rename(env.log("exchange.jsonl.1"), env.log("exchange.jsonl.2")).unwrap();
    env.append("exchange.jsonl", &exchange_lines("R", 9..=9));
    std::fs::rename(&path, env.log("exchange.jsonl.1")).unwrap();
    env.append("exchange.jsonl", &exchange_lines("R", 10..=10));
    wait_accepted(&d, 10);

    // After a restart the rotated files are not read again.
    d.stop();
    let d = env.start();
    env.append("exchange.jsonl", &exchange_lines("R", 11..=11));
    wait_accepted(&d, 11);
    d.stop();
}

#[test]
fn rename_rotation_reads_lines_written_through_the_old_handle_after_the_rename() {
    let env = exchange_only("{logs}/exchange.jsonl");
    let path = env.log("exchange.jsonl");
    let d = env.start();
    let mut old = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    old.write_all(exchange_lines("R", 1..=1).as_bytes())
        .unwrap();
    wait_accepted(&d, 1);
    std::fs::rename(&path, env.log("exchange.jsonl.1")).unwrap();
    env.append("exchange.jsonl", &exchange_lines("R", 2..=2));
    wait_accepted(&d, 2);
    // The application has not reopened its log yet: one more line goes to the old file.
    old.write_all(exchange_lines("R", 3..=3).as_bytes())
        .unwrap();
    env.append("exchange.jsonl", &exchange_lines("R", 4..=4));
    let s = d.wait_status(Duration::from_secs(20), "4 accepted", |s| {
        counts(s, "exchange").0 >= 4
    });
    assert_eq!(counts(&s, "exchange"), (4, 0, 0));
    d.stop();
}

/// copy-truncate with the copy inside (`exchange*.jsonl`) or outside (`exchange.jsonl`) the glob.
fn copytruncate(glob: &str, copy_name: &str, copy_in_glob: bool) {
    let env = exchange_only(glob);
    let path = env.log("exchange.jsonl");
    let d = env.start();
    env.append("exchange.jsonl", &exchange_lines("C", 1..=3));
    wait_accepted(&d, 3);
    env.append("exchange.jsonl", &exchange_lines("C", 4..=5));
    if !copy_in_glob {
        // Lines not read before the truncation are lost when the copy is not followed.
        wait_accepted(&d, 5);
    }
    // The copy appears whole (see copytruncate_with_a_slow_copy_counts_nothing_twice
    // for a copy that is seen while still being written).
    install(&path, &env.log(copy_name));
    truncate(&path);
    env.append("exchange.jsonl", &exchange_lines("C", 6..=7));
    wait_accepted(&d, 7);
    env.append("exchange.jsonl", &exchange_lines("C", 8..=8));
    wait_accepted(&d, 8);

    // A second cycle, then a restart.
    install(&path, &env.log(&copy_name.replace('1', "2")));
    truncate(&path);
    env.append("exchange.jsonl", &exchange_lines("C", 9..=9));
    wait_accepted(&d, 9);
    d.stop();
    let d = env.start();
    env.append("exchange.jsonl", &exchange_lines("C", 10..=10));
    wait_accepted(&d, 10);
    d.stop();
}

#[test]
fn copytruncate_is_followed() {
    copytruncate("{logs}/exchange*.jsonl", "exchange-1.jsonl", true);
    copytruncate("{logs}/exchange.jsonl", "exchange.jsonl.1", false);
}

#[test]
fn copytruncate_with_a_slow_copy_counts_nothing_twice() {
    let env = exchange_only("{logs}/exchange*.jsonl");
    let path = env.log("exchange.jsonl");
    let d = env.start();
    env.append("exchange.jsonl", &exchange_lines("C", 1..=3));
    wait_accepted(&d, 3);
    // cp creates the copy first and fills it afterwards; the daemon looks in between.
    let copy = env.log("exchange-1.jsonl");
    truncate(&copy);
    d.wait_caught_up();
    append(&copy, &std::fs::read(&path).unwrap());
    truncate(&path);
    env.append("exchange.jsonl", &exchange_lines("C", 4..=5));
    let s = d.wait_caught_up();
    assert_eq!(counts(&s, "exchange"), (5, 0, 0), "{s}");
    d.stop();
}

#[test]
fn a_file_that_appears_after_start_is_read() {
    // Neither the file nor its directory exists at start.
    let env = exchange_only("{logs}/incoming/exchange*.jsonl");
    let d = env.start();
    let s = d.wait_caught_up();
    assert_eq!(counts(&s, "exchange"), (0, 0, 0));
    std::fs::create_dir(env.log("incoming")).unwrap();
    append(
        &env.log("incoming/exchange-2026.jsonl"),
        exchange_lines("L", 1..=2).as_bytes(),
    );
    wait_accepted(&d, 2);
    append(
        &env.log("incoming/exchange-2027.jsonl"),
        exchange_lines("L", 3..=5).as_bytes(),
    );
    wait_accepted(&d, 5);
    // A file outside the glob is ignored.
    append(
        &env.log("incoming/other.jsonl"),
        exchange_lines("L", 6..=6).as_bytes(),
    );
    append(
        &env.log("incoming/exchange-2027.jsonl"),
        exchange_lines("L", 7..=7).as_bytes(),
    );
    wait_accepted(&d, 6);
    d.stop();
}

#[test]
fn half_written_last_line_is_read_once_complete() {
    let env = exchange_only("{logs}/exchange.jsonl");
    let d = env.start();
    let line = exchange_line("h-3", "H-3", "2026-05-04T09:00:00+07:00", "điện tử");
    let (head, rest) = line.split_at(40);
    env.append("exchange.jsonl", &exchange_lines("H", 1..=2));
    env.append("exchange.jsonl", head);
    wait_accepted(&d, 2);
    let s = d.status();
    assert_eq!(
        counts(&s, "exchange"),
        (2, 0, 0),
        "the partial line is neither counted nor rejected"
    );

    // Still partial across a restart.
    d.stop();
    let d = env.start();
    wait_accepted(&d, 2);
    env.append("exchange.jsonl", rest);
    wait_accepted(&d, 3);
    assert!(rejected_lines(&env.rejected("exchange")).is_empty());

    // A partial line split inside a multi-byte character.
    let line = exchange_line("h-4", "H-4", "2026-05-04T09:00:00+07:00", "điện tử");
    let cut = line.find('đ').unwrap() + 1;
    let bytes = line.as_bytes();
    append(&env.log("exchange.jsonl"), &bytes[..cut]);
    wait_accepted(&d, 3);
    append(&env.log("exchange.jsonl"), &bytes[cut..]);
    wait_accepted(&d, 4);
    d.stop();
}
