//! A database worker's signals. SIGTERM (a fast shutdown, `pg_terminate_backend`, a
//! `DROP DATABASE` of its database) also cancels the statement running, so that a
//! worker waiting for a lock or in a long statement stops within moments; the worker
//! notices the request between its steps and exits cleanly, its claims given back.
//!
//! The pipeline's threads block every signal, but a signal can still reach one in the
//! moment between its start and its mask. The handlers here touch Postgres's state only
//! in the main thread: run in any other, they pass the signal on to the main thread.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use pgrx::pg_sys;

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);
/// The worker's main thread, the only one Postgres's state may be touched from.
static MAIN: OnceLock<libc::pthread_t> = OnceLock::new();

/// Installs the handlers for SIGHUP and SIGTERM, in the worker's main thread.
pub fn attach() {
    // SAFETY: reading the calling thread's id.
    let _ = MAIN.set(unsafe { libc::pthread_self() });
    // SAFETY: the worker's main thread, before it unblocks signals.
    unsafe {
        install(pg_sys::SIGHUP, on_sighup);
        install(pg_sys::SIGTERM, on_sigterm);
        pg_sys::BackgroundWorkerUnblockSignals();
    }
}

unsafe fn install(signal: u32, handler: unsafe extern "C-unwind" fn(std::ffi::c_int)) {
    // SAFETY: the caller is the main thread.
    unsafe {
        #[cfg(not(feature = "pg18"))]
        pg_sys::pqsignal(signal as i32, Some(handler));
        #[cfg(feature = "pg18")]
        pg_sys::pqsignal_be(signal as i32, Some(handler));
    }
}

/// Whether the handler runs in the main thread; if not, the signal is sent on to it.
fn in_main_thread(signal: std::ffi::c_int) -> bool {
    let Some(&main) = MAIN.get() else {
        return false;
    };
    // SAFETY: pthread_self and pthread_kill may be called in a signal handler; `main`
    // lives as long as the process.
    unsafe {
        if libc::pthread_equal(libc::pthread_self(), main) != 0 {
            return true;
        }
        libc::pthread_kill(main, signal);
    }
    false
}

unsafe extern "C-unwind" fn on_sighup(signal: std::ffi::c_int) {
    if !in_main_thread(signal) {
        return;
    }
    RELOAD.store(true, Ordering::SeqCst);
    // SAFETY: a flag a signal handler may set; the latch wakes a waiting worker.
    unsafe {
        (&raw mut pg_sys::ConfigReloadPending).write_volatile(1);
        pg_sys::SetLatch(pg_sys::MyLatch);
    }
}

unsafe extern "C-unwind" fn on_sigterm(signal: std::ffi::c_int) {
    if !in_main_thread(signal) {
        return;
    }
    STOP.store(true, Ordering::SeqCst);
    // SAFETY: flags a signal handler may set; the latch wakes a waiting worker.
    unsafe {
        (&raw mut pg_sys::ShutdownRequestPending).write_volatile(1);
        (&raw mut pg_sys::QueryCancelPending).write_volatile(1);
        (&raw mut pg_sys::InterruptPending).write_volatile(1);
        pg_sys::SetLatch(pg_sys::MyLatch);
    }
}

/// Whether the configuration was to be read again since the last call.
pub fn reload_requested() -> bool {
    RELOAD.swap(false, Ordering::SeqCst)
}

/// Whether the worker was asked to stop.
pub fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Withdraws the cancel SIGTERM requested, so that the worker's last statements (giving
/// its claims back) can run.
pub fn allow_last_statements() {
    // SAFETY: the main thread, outside any statement.
    unsafe { (&raw mut pg_sys::QueryCancelPending).write_volatile(0) };
}

/// Sleeps until `timeout`, a wake-up (`SIGUSR1` from a commit, SIGHUP) or a stop;
/// returns false when the worker must stop (SIGTERM, or the postmaster died).
pub fn wait(timeout: Duration) -> bool {
    if stopping() {
        return false;
    }
    let flags = pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_POSTMASTER_DEATH;
    // SAFETY: the process latch, in the main thread.
    let events = unsafe {
        let events = pg_sys::WaitLatch(
            pg_sys::MyLatch,
            flags as i32,
            timeout.as_millis().min(i32::MAX as u128) as std::ffi::c_long,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
        events
    };
    if !stopping() {
        // Barriers and catch-up requests of other backends are served here.
        pgrx::check_for_interrupts!();
    }
    events & pg_sys::WL_POSTMASTER_DEATH as i32 == 0 && !stopping()
}

/// Runs `work` on the runtime, in short slices so that a stop is noticed (`None`).
pub fn finish<F: Future>(runtime: &tokio::runtime::Runtime, work: F) -> Option<F::Output> {
    let mut work = std::pin::pin!(work);
    loop {
        let slice = runtime
            .block_on(async { tokio::time::timeout(Duration::from_millis(100), &mut work).await });
        match slice {
            Ok(out) => return Some(out),
            Err(_) if !wait(Duration::ZERO) => return None,
            Err(_) => {}
        }
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use std::time::Instant;

    use pgrx::prelude::*;

    use super::*;

    /// A signal that reaches another thread of the process is handled in the main
    /// thread, and the process lives on.
    #[pg_test]
    fn a_signal_in_another_thread_is_handled_in_the_main_thread() {
        // SAFETY: this backend's own SIGHUP disposition, put back before the end.
        let previous = unsafe {
            let mut previous: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut previous);
            let _ = MAIN.set(libc::pthread_self());
            install(pg_sys::SIGHUP, on_sighup);
            previous
        };
        RELOAD.store(false, Ordering::SeqCst);
        // SAFETY: raise() signals the calling thread: the spawned one, not the main one.
        std::thread::spawn(|| unsafe { libc::raise(libc::SIGHUP) })
            .join()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !RELOAD.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: puts back the disposition read above.
        unsafe { libc::sigaction(libc::SIGHUP, &previous, std::ptr::null_mut()) };
        assert!(reload_requested());
    }
}
