//! The little shared memory ai_loader uses: where the launcher is, a counter that
//! `CREATE EXTENSION` bumps so the launcher looks at the databases again at once, and
//! which workers serve which database — its worker, and the helpers the launcher adds
//! while it has a backlog — so that `DROP DATABASE` can stop them first, a transaction
//! that queued rows can wake the worker when it commits, and the launcher knows when
//! to add a helper.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use pgrx::{pg_shmem_init, PgAtomic, PgLwLock};

static LAUNCHER_PID: PgAtomic<AtomicI32> = unsafe { PgAtomic::new(c"ai_loader_launcher_pid") };
static GENERATION: PgAtomic<AtomicU64> = unsafe { PgAtomic::new(c"ai_loader_generation") };
static WORKERS: PgLwLock<Workers> = unsafe { PgLwLock::new(c"ai_loader_workers") };
/// How many workers ended without giving back what they had claimed (an error).
static LEFT_CLAIMS: PgAtomic<AtomicU64> = unsafe { PgAtomic::new(c"ai_loader_left_claims") };

/// One entry per worker process, and per database whose workers were stopped.
#[derive(Copy, Clone, Default)]
struct Slot {
    /// The database's OID; 0 for a free slot.
    database: u32,
    /// The pid of the worker; 0 when none runs.
    pid: i32,
    /// The database's worker rather than a helper.
    primary: bool,
    /// The worker's last round found more queued than it took.
    backlog: bool,
    /// No worker may start there before this time (a `DROP DATABASE` in progress).
    paused_until: pg_sys::TimestampTz,
    /// A transaction that queued rows committed since the worker last looked: for
    /// which vectorizers.
    woken: Woken,
    /// Its last worker found ai_loader installed there (rather than exiting for lack
    /// of it).
    installed: bool,
    /// Its worker left because nothing was queued (`ai_loader.idle_timeout`).
    left_idle: bool,
}

const SLOTS: usize = 256;

/// The vectorizers a wake-up names, at most this many; more: every vectorizer.
const WOKEN_IDS: usize = 32;

/// The vectorizers a worker is woken for, in shared memory.
#[derive(Copy, Clone, Default)]
struct Woken {
    any: bool,
    all: bool,
    count: u8,
    ids: [i32; WOKEN_IDS],
}

/// What commits woke a worker for: every vectorizer, or those named.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Wake {
    pub any: bool,
    pub all: bool,
    pub ids: Vec<i32>,
}

impl Wake {
    /// Adds vectorizer `id`; past `WOKEN_IDS` of them, every vectorizer.
    pub fn add(&mut self, id: i32) {
        self.any = true;
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
        if self.ids.len() > WOKEN_IDS {
            self.all = true;
            self.ids.clear();
        }
    }

    pub fn merge(&mut self, other: Wake) {
        self.any |= other.any;
        self.all |= other.all;
        other.ids.into_iter().for_each(|id| self.add(id));
        if self.all {
            self.ids.clear();
        }
    }
}

impl Woken {
    fn note(&mut self, wake: &Wake) {
        self.any = true;
        self.all |= wake.all;
        for &id in &wake.ids {
            if self.ids[..self.count as usize].contains(&id) {
                continue;
            }
            match (self.count as usize) < WOKEN_IDS {
                true => {
                    self.ids[self.count as usize] = id;
                    self.count += 1;
                }
                false => self.all = true,
            }
        }
    }

    fn take(&mut self) -> Wake {
        let woken = std::mem::take(self);
        Wake {
            any: woken.any,
            all: woken.all,
            ids: match woken.all {
                true => vec![],
                false => woken.ids[..woken.count as usize].to_vec(),
            },
        }
    }
}

#[derive(Copy, Clone)]
struct Workers {
    slots: [Slot; SLOTS],
    /// Databases where a transaction queued rows since their worker's last round: the
    /// launcher starts a worker for one that has none (0: a free entry).
    wanted: [u32; SLOTS],
    /// Databases with queued rows that wait for a worker slot (set by the launcher).
    waiting: [u32; SLOTS],
}

// SAFETY: plain old data, no pointers.
unsafe impl PGRXSharedMemory for Workers {}

impl Workers {
    /// Notes `db` as wanted (once).
    fn want(&mut self, db: u32) {
        if !self.wanted.contains(&db) {
            if let Some(free) = self.wanted.iter().position(|w| *w == 0) {
                self.wanted[free] = db;
            }
        }
    }

    /// Forgets that `db` was wanted; whether it was.
    fn unwant(&mut self, db: u32) -> bool {
        let mut was = false;
        for w in self.wanted.iter_mut().filter(|w| **w == db) {
            *w = 0;
            was = true;
        }
        was
    }
}

pub fn init() {
    pg_shmem_init!(LAUNCHER_PID);
    pg_shmem_init!(GENERATION);
    pg_shmem_init!(LEFT_CLAIMS);
    pg_shmem_init!(
        WORKERS = Workers {
            slots: [Slot::default(); SLOTS],
            wanted: [0; SLOTS],
            waiting: [0; SLOTS],
        }
    );
}

pub fn set_launcher_pid(pid: i32) {
    LAUNCHER_PID.get().store(pid, Ordering::SeqCst);
}

pub fn generation() -> u64 {
    GENERATION.get().load(Ordering::SeqCst)
}

fn now() -> pg_sys::TimestampTz {
    // SAFETY: reads the clock.
    unsafe { pg_sys::GetCurrentTimestamp() }
}

/// Whether a worker may run in `database` now (no `DROP DATABASE` under way).
pub fn may_start(database: pg_sys::Oid) -> bool {
    !paused(&WORKERS.share(), database.to_u32(), now())
}

fn paused(workers: &Workers, db: u32, now: pg_sys::TimestampTz) -> bool {
    (workers.slots.iter()).any(|s| s.database == db && s.paused_until > now)
}

/// This process's pid.
fn my_pid() -> i32 {
    // SAFETY: this process's own pid.
    unsafe { pg_sys::MyProcPid }
}

/// Records this process as a worker of `database` (its `primary` worker or a helper),
/// and forgets it when the process exits however it exits. False when the database is
/// being dropped.
pub fn register_worker(database: pg_sys::Oid, primary: bool) -> bool {
    let now = now();
    let mut workers = WORKERS.exclusive();
    let db = database.to_u32();
    if paused(&workers, db, now) {
        return false;
    }
    let pid = my_pid();
    let free = |s: &Slot| s.database == 0 || (s.pid == 0 && s.paused_until <= now);
    let slot = match (workers.slots.iter())
        .position(|s| s.database == db && s.pid == 0)
        .or_else(|| workers.slots.iter().position(free))
    {
        Some(i) => i,
        None => return true, // more workers than slots: served, just not stoppable early
    };
    workers.slots[slot] = Slot {
        database: db,
        pid,
        primary,
        backlog: false,
        paused_until: 0,
        woken: Woken::default(),
        installed: false,
        left_idle: false,
    };
    drop(workers);
    // SAFETY: registers a callback with a plain integer argument.
    unsafe { pg_sys::before_shmem_exit(Some(forget_worker), pg_sys::Datum::from(pid)) };
    true
}

#[pg_guard]
unsafe extern "C-unwind" fn forget_worker(code: std::ffi::c_int, pid: pg_sys::Datum) {
    let pid = pid.value() as i32;
    for slot in WORKERS
        .exclusive()
        .slots
        .iter_mut()
        .filter(|s| s.pid == pid)
    {
        slot.pid = 0;
        slot.backlog = false;
    }
    if code != 0 {
        LEFT_CLAIMS.get().fetch_add(1, Ordering::SeqCst);
    }
}

/// How many workers ended on an error so far: when it changes, the claims they left
/// are given back (`VectorizerSql::release_left_claims`).
pub fn left_claims() -> u64 {
    LEFT_CLAIMS.get().load(Ordering::SeqCst)
}

/// Keeps workers out of `database` for `seconds` and returns the pids of those
/// running there.
pub fn pause(database: pg_sys::Oid, seconds: i64) -> Vec<i32> {
    let until = now() + seconds * 1_000_000;
    let mut workers = WORKERS.exclusive();
    let db = database.to_u32();
    if !workers.slots.iter().any(|s| s.database == db) {
        let Some(free) = workers.slots.iter().position(|s| s.database == 0) else {
            return vec![];
        };
        workers.slots[free].database = db;
    }
    let mut pids = vec![];
    for slot in workers.slots.iter_mut().filter(|s| s.database == db) {
        slot.paused_until = until;
        if slot.pid != 0 {
            pids.push(slot.pid);
        }
    }
    pids
}

/// Notes that `database`'s worker found ai_loader installed.
pub fn set_installed(database: pg_sys::Oid) {
    let db = database.to_u32();
    for slot in WORKERS
        .exclusive()
        .slots
        .iter_mut()
        .filter(|s| s.database == db)
    {
        slot.installed = true;
    }
}

/// Whether `database`'s last worker found ai_loader installed.
pub fn was_installed(database: pg_sys::Oid) -> bool {
    let db = database.to_u32();
    WORKERS
        .share()
        .slots
        .iter()
        .any(|s| s.database == db && s.installed)
}

/// Whether `pid` is still registered as a worker.
pub fn running(pid: i32) -> bool {
    WORKERS.share().slots.iter().any(|s| s.pid == pid)
}

pub fn wake_launcher() {
    GENERATION.get().fetch_add(1, Ordering::SeqCst);
    signal_launcher();
}

/// Sets the launcher's latch, so that it looks at the workers' backlogs now.
fn signal_launcher() {
    let pid = LAUNCHER_PID.get().load(Ordering::SeqCst);
    if pid > 0 {
        // SIGUSR1 sets the launcher's latch (procsignal's handler).
        // SAFETY: signalling a process of this cluster, running as the same user.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
    }
}

/// Wakes `database`'s worker for what `wake` names; with none running (it left idle,
/// or waits for a slot), tells the launcher, which starts one (and it looks at every
/// vectorizer). The database is noted as wanted either way: a worker about to leave
/// idle may have looked at its queues before this commit.
pub fn wake_worker(database: pg_sys::Oid, wake: &Wake) {
    let db = database.to_u32();
    let pid = {
        let mut workers = WORKERS.exclusive();
        workers.want(db);
        (workers.slots.iter_mut())
            .find(|s| s.database == db && s.pid != 0 && s.primary)
            .map(|slot| {
                slot.woken.note(wake);
                slot.pid
            })
    };
    match pid {
        // SIGUSR1 sets the worker's latch (procsignal's handler).
        // SAFETY: signalling a process of this cluster, running as the same user.
        Some(pid) => unsafe {
            libc::kill(pid, libc::SIGUSR1);
        },
        None => signal_launcher(),
    }
}

/// In the worker: what the transactions that queued rows and committed since the last
/// call woke it for.
pub fn take_wake() -> Wake {
    let pid = my_pid();
    let mut workers = WORKERS.exclusive();
    let Some(slot) = workers.slots.iter_mut().find(|s| s.pid == pid) else {
        return Wake::default();
    };
    let (db, woken, primary) = (slot.database, slot.woken.take(), slot.primary);
    if primary {
        workers.unwant(db);
    }
    woken
}

/// In the launcher: whether a transaction queued rows in `database` since its worker's
/// last round (forgotten once asked).
pub fn take_wanted(database: pg_sys::Oid) -> bool {
    WORKERS.exclusive().unwant(database.to_u32())
}

/// In the launcher: the databases with queued rows that wait for a worker slot.
pub fn set_waiting(databases: &[pg_sys::Oid]) {
    let mut workers = WORKERS.exclusive();
    workers.waiting = [0; SLOTS];
    for (entry, db) in workers.waiting.iter_mut().zip(databases) {
        *entry = db.to_u32();
    }
}

/// Whether `database` has a worker, waits for one (rows queued and every slot taken),
/// or has none (it starts at the next commit that queues rows): for
/// `ai.vectorizer_status`.
pub fn worker_state(database: pg_sys::Oid) -> &'static str {
    let db = database.to_u32();
    let workers = WORKERS.share();
    if (workers.slots.iter()).any(|s| s.database == db && s.pid != 0 && s.primary) {
        "running"
    } else if workers.waiting.contains(&db) {
        "waiting for a worker slot"
    } else {
        "none"
    }
}

/// Whether databases with queued rows wait for a worker slot: a worker that has had its
/// turn gives its slot back.
pub fn others_waiting() -> bool {
    WORKERS.share().waiting.iter().any(|&db| db != 0)
}

/// In a worker that gives its slot back with rows still queued: its database waits for
/// a worker again, in line behind those that waited before it.
pub fn want_again() {
    let pid = my_pid();
    let mut workers = WORKERS.exclusive();
    if let Some(db) = (workers.slots.iter())
        .find(|s| s.pid == pid)
        .map(|s| s.database)
    {
        workers.want(db);
    }
}

/// Whether a transaction queued rows in `database` since its worker's last round.
pub fn wanted(database: pg_sys::Oid) -> bool {
    WORKERS.share().wanted.contains(&database.to_u32())
}

/// In the worker: it leaves because nothing is queued.
pub fn set_left_idle() {
    let pid = my_pid();
    for slot in (WORKERS.exclusive().slots.iter_mut()).filter(|s| s.pid == pid) {
        slot.left_idle = true;
    }
}

/// Whether `database`'s last worker left idle (rather than on an error).
pub fn left_idle(database: pg_sys::Oid) -> bool {
    let db = database.to_u32();
    (WORKERS.share().slots.iter()).any(|s| s.database == db && s.pid == 0 && s.left_idle)
}

/// In the worker: whether more is queued than it can take on alone — said as soon as a
/// turn finds it, so that the launcher adds a helper at once rather than after the
/// turn, and cleared by a round that found the queues drained. Only a database's
/// worker's backlog counts (see `backlog`): a helper's call records nothing.
pub fn set_backlog(backlog: bool) {
    let pid = my_pid();
    let raised = {
        let mut workers = WORKERS.exclusive();
        let Some(slot) = (workers.slots.iter_mut()).find(|s| s.pid == pid && s.primary) else {
            return;
        };
        let raised = backlog && !slot.backlog;
        slot.backlog = backlog;
        raised
    };
    if raised {
        signal_launcher();
    }
}

/// Whether `database`'s worker has a backlog (a helper would take part of it).
pub fn backlog(database: pg_sys::Oid) -> bool {
    let db = database.to_u32();
    (WORKERS.share().slots.iter()).any(|s| s.database == db && s.pid != 0 && s.primary && s.backlog)
}
