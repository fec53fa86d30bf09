//! The little shared memory ai_loader uses: where the launcher is, and a counter that
//! `CREATE EXTENSION` bumps so the launcher looks at the databases again at once.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PgAtomic};

static LAUNCHER_PID: PgAtomic<AtomicI32> = unsafe { PgAtomic::new(c"ai_loader_launcher_pid") };
static GENERATION: PgAtomic<AtomicU64> = unsafe { PgAtomic::new(c"ai_loader_generation") };

pub fn init() {
    pg_shmem_init!(LAUNCHER_PID);
    pg_shmem_init!(GENERATION);
}

pub fn set_launcher_pid(pid: i32) {
    LAUNCHER_PID.get().store(pid, Ordering::SeqCst);
}

pub fn generation() -> u64 {
    GENERATION.get().load(Ordering::SeqCst)
}

/// Asks the launcher to look for databases to serve now.
#[pg_extern(name = "_wake_launcher", volatile, parallel_unsafe)]
fn wake_launcher() {
    GENERATION.get().fetch_add(1, Ordering::SeqCst);
    let pid = LAUNCHER_PID.get().load(Ordering::SeqCst);
    if pid > 0 {
        // SIGUSR1 sets the launcher's latch (procsignal's handler).
        // SAFETY: signalling a process of this cluster, running as the same user.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
    }
}
