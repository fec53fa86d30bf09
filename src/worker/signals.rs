//! A database worker's signals. SIGTERM (a fast shutdown, `pg_terminate_backend`, a
//! `DROP DATABASE` of its database) also cancels the statement running, so that a
//! worker waiting for a lock or in a long statement stops within moments; the worker
//! notices the request between its steps and exits cleanly, its claims given back.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys;

static STOP: AtomicBool = AtomicBool::new(false);

/// Installs the handlers: pgrx's for SIGHUP, ours for SIGTERM.
pub fn attach() {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // SAFETY: replaces the SIGTERM handler pgrx installed, in the worker's main thread.
    unsafe {
        #[cfg(not(feature = "pg18"))]
        pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(on_sigterm));
        #[cfg(feature = "pg18")]
        pg_sys::pqsignal_be(pg_sys::SIGTERM as i32, Some(on_sigterm));
    }
}

unsafe extern "C-unwind" fn on_sigterm(_signal: std::ffi::c_int) {
    STOP.store(true, Ordering::SeqCst);
    // SAFETY: flags a signal handler may set; the latch wakes a waiting worker.
    unsafe {
        (&raw mut pg_sys::ShutdownRequestPending).write_volatile(1);
        (&raw mut pg_sys::QueryCancelPending).write_volatile(1);
        (&raw mut pg_sys::InterruptPending).write_volatile(1);
        pg_sys::SetLatch(pg_sys::MyLatch);
    }
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
