//! Which S3 sync of the cluster reads each SQS queue: one at a time, so that no two
//! syncs — in one database or in two, by mistake or on purpose — split a queue's events
//! between them (each would delete what it received, and the other never see it).
//! A worker takes a queue before it polls it and gives it back when it stops; an entry
//! whose worker is gone is free.

use std::hash::{DefaultHasher, Hash, Hasher};

use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use pgrx::{pg_shmem_init, PgLwLock};

static QUEUES: PgLwLock<Readers> = unsafe { PgLwLock::new(c"ai_loader_queues") };

/// A sync that reads a queue.
#[derive(Copy, Clone, Default, PartialEq, Eq, Debug)]
pub struct Reader {
    /// The database's OID.
    pub database: u32,
    /// The sync's id in that database.
    pub sync: i32,
}

#[derive(Copy, Clone, Default)]
struct Slot {
    /// The queue URL's hash; 0 for a free slot.
    queue: u64,
    reader: Reader,
    /// The worker that polls it.
    pid: i32,
}

const SLOTS: usize = 256;

#[derive(Copy, Clone)]
struct Readers {
    slots: [Slot; SLOTS],
}

// SAFETY: plain old data, no pointers.
unsafe impl PGRXSharedMemory for Readers {}

pub fn init() {
    pg_shmem_init!(
        QUEUES = Readers {
            slots: [Slot::default(); SLOTS]
        }
    );
}

/// The queue as the registry knows it: a hash of its URL.
fn hash(url: &str) -> u64 {
    let mut h = DefaultHasher::new();
    url.hash(&mut h);
    h.finish().max(1)
}

fn live(slot: &Slot) -> bool {
    slot.queue != 0 && super::shared::running(slot.pid)
}

/// The sync that reads `url` now, if any.
pub fn reader(url: &str) -> Option<Reader> {
    let queue = hash(url);
    (QUEUES.share().slots.iter())
        .find(|s| s.queue == queue && live(s))
        .map(|s| s.reader)
}

/// Takes `url` for `reader`, polled by this process; the sync that reads it already,
/// if it is another.
pub fn take(url: &str, reader: Reader) -> Result<(), Reader> {
    let queue = hash(url);
    let mut readers = QUEUES.exclusive();
    if let Some(other) = (readers.slots.iter())
        .find(|s| s.queue == queue && live(s) && s.reader != reader)
        .map(|s| s.reader)
    {
        return Err(other);
    }
    // SAFETY: this process's own pid.
    let pid = unsafe { pg_sys::MyProcPid };
    let slot = (readers.slots.iter())
        .position(|s| s.queue == queue && s.reader == reader)
        .or_else(|| readers.slots.iter().position(|s| !live(s)));
    if let Some(i) = slot {
        readers.slots[i] = Slot { queue, reader, pid };
    }
    // More queues than slots: read, just not guarded.
    Ok(())
}

/// Gives back what `reader` took.
pub fn give_back(reader: Reader) {
    for slot in (QUEUES.exclusive().slots.iter_mut()).filter(|s| s.reader == reader) {
        *slot = Slot::default();
    }
}
