//! Parser programs run at once within `Limits::parsers`, below the worker's CPU
//! priority. A test program of its own: no other test's parsers run beside it.

use std::time::Duration;

use ai_loader_parser::isolate::{Limits, NICENESS};

mod common;
use common::{limits, niceness, parsed_within, parsers};

#[test]
fn parsers_wait_for_a_slot_and_run_below_the_workers_priority() {
    let limits = Limits {
        parsers: 1,
        memory: 1 << 30,
        text: 16 << 20,
        ..limits()
    };
    let page = "<p>Anemones close when the water leaves the pool.</p>".repeat(50_000);
    let parses: Vec<_> = (0..3)
        .map(|_| {
            let page = page.clone().into_bytes();
            std::thread::spawn(move || parsed_within(&limits, page, "pool.html"))
        })
        .collect();
    let (mut most_at_once, mut nicest) = (0, None);
    while !parses.iter().all(|p| p.is_finished()) {
        let running = parsers();
        most_at_once = most_at_once.max(running.len());
        nicest = running
            .iter()
            .filter_map(|&pid| niceness(pid))
            .chain(nicest)
            .max();
        std::thread::sleep(Duration::from_millis(2));
    }
    for parse in parses {
        let parsed = parse.join().unwrap();
        assert!(parsed.is_ok(), "{parsed:?}");
    }
    assert_eq!(most_at_once, 1, "parsers at once");
    let mine = niceness(std::process::id() as libc::pid_t).unwrap();
    assert_eq!(nicest, Some(mine + NICENESS));
}
