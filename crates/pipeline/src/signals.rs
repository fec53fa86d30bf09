//! The threads a Postgres process starts for the pipeline take no signal: the process's
//! handlers are Postgres's, written for its main thread, whose state (interrupt flags,
//! hold-off counts, the latch) they change without locks. A signal sent to the process
//! is then always delivered to the main thread.

/// Blocks every signal in the calling thread: a runtime's `on_thread_start`, which tokio
/// runs first in each thread it starts, worker or blocking.
pub fn block_all() {
    // SAFETY: changes only the calling thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &all(), std::ptr::null_mut()) };
}

/// Runs `start` with every signal blocked in the calling thread, then puts its mask
/// back: the threads `start` creates (a library's own pool) inherit the blocked mask.
pub fn blocked_while<T>(start: impl FnOnce() -> T) -> T {
    // SAFETY: changes only the calling thread's mask, and puts it back.
    unsafe {
        let mut before: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &all(), &mut before);
        let result = start();
        libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
        result
    }
}

fn all() -> libc::sigset_t {
    // SAFETY: sigfillset initialises the set.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(signal: libc::c_int) -> bool {
        // SAFETY: reads the calling thread's mask.
        unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
            libc::sigismember(&mask, signal) == 1
        }
    }

    #[test]
    fn a_runtimes_threads_take_no_signal() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .on_thread_start(block_all)
            .build()
            .unwrap();
        let (worker, pooled) = runtime.block_on(async {
            let worker = tokio::spawn(async { blocked(libc::SIGUSR1) })
                .await
                .unwrap();
            let pooled = tokio::task::spawn_blocking(|| blocked(libc::SIGTERM))
                .await
                .unwrap();
            (worker, pooled)
        });
        assert!(worker && pooled);
        assert!(!blocked(libc::SIGUSR1), "the caller's mask is its own");
    }

    #[test]
    fn threads_started_while_blocked_take_no_signal_and_the_caller_gets_its_mask_back() {
        let started = blocked_while(|| std::thread::spawn(|| blocked(libc::SIGHUP)));
        assert!(started.join().unwrap());
        assert!(!blocked(libc::SIGHUP));
    }
}
