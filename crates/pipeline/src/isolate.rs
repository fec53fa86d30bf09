//! Running a parser in a child process of its own. A crafted document can make a parser
//! allocate without bound (a zip or flate bomb), recurse past its stack or run for
//! minutes; inside the worker, each of those ends the process by a signal — and a
//! Postgres process that dies by a signal makes the postmaster reset the whole
//! cluster. The child is forked by the thread that parses, so it has the document
//! without copying it; it is not a child of the postmaster, and its death costs one
//! document. It gets an address-space limit (the worker's own size plus
//! `Limits::memory`), a CPU-time limit and a deadline, and its text comes back through
//! a pipe, read up to `Limits::text` bytes (the answer says its length: a pipe end
//! another child inherited does not keep the reader waiting). It touches nothing of Postgres and ends
//! with `_exit`, which runs none of the worker's exit handlers.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// What a parser may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of address space beyond what the worker already has.
    pub memory: u64,
    /// Wall-clock time, and (rounded up) CPU time.
    pub time: Duration,
    /// Bytes of text a document may yield.
    pub text: usize,
}

/// Runs `work` in a child process within `limits`; its result, or why there is none.
pub fn isolated(
    limits: &Limits,
    work: impl FnOnce() -> Result<String, String>,
) -> Result<String, String> {
    let mut fds = [0; 2];
    // SAFETY: a two-element array for the pipe's ends.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!(
            "cannot start the parser: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the pipe's ends, owned from here on.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let address_space = address_space() + limits.memory;
    // SAFETY: the child runs `child` only, which ends with `_exit`.
    match unsafe { libc::fork() } {
        -1 => Err(format!(
            "cannot start the parser: {}",
            std::io::Error::last_os_error()
        )),
        0 => {
            drop(read);
            child(write, address_space, limits, work)
        }
        pid => {
            drop(write);
            parent(pid, std::fs::File::from(read), limits)
        }
    }
}

/// The worker's address space now, in bytes (the first field of /proc/self/statm).
fn address_space() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64
}

fn child(
    write: OwnedFd,
    address_space: u64,
    limits: &Limits,
    work: impl FnOnce() -> Result<String, String>,
) -> ! {
    // SAFETY: this process's own signal dispositions and limits; the postmaster's
    // signals to the worker's process group (a shutdown) end the child at once.
    unsafe {
        for signal in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGALRM,
            libc::SIGPIPE,
        ] {
            libc::signal(signal, libc::SIG_DFL);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // A dying parser's last words (an allocation failure, a stack overflow) are
        // told in the document's error row, not in the server log.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        if null >= 0 {
            libc::dup2(null, 2);
        }
        // Other parsers' pipes, forked by other threads, were inherited too: holding
        // their write ends would keep their readers waiting. The child needs none.
        let fd = std::os::fd::AsRawFd::as_raw_fd(&write) as u32;
        if fd > 3 {
            libc::close_range(3, fd - 1, 0);
        }
        libc::close_range(fd + 1, u32::MAX, 0);
        limit(libc::RLIMIT_AS, address_space);
        limit(libc::RLIMIT_CPU, limits.time.as_secs() + 1);
        limit(libc::RLIMIT_CORE, 0);
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err("the parser failed on this document".into()));
    let (tag, body) = match &result {
        Ok(text) => (b'T', text.as_bytes()),
        Err(message) => (b'E', message.as_bytes()),
    };
    let mut out = std::fs::File::from(write);
    let header = [&[tag][..], &(body.len() as u64).to_le_bytes()].concat();
    let written = out.write_all(&header).and_then(|_| out.write_all(body));
    // SAFETY: ends the child without the worker's exit handlers.
    unsafe { libc::_exit(if written.is_ok() { 0 } else { 1 }) }
}

/// Lowers a resource limit of this process to `value` (never raises it).
unsafe fn limit(resource: libc::__rlimit_resource_t, value: u64) {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit to fill, then to set.
    unsafe {
        libc::getrlimit(resource, &mut current);
        let value = value.min(current.rlim_max);
        libc::setrlimit(
            resource,
            &libc::rlimit {
                rlim_cur: value.min(current.rlim_cur),
                rlim_max: value,
            },
        );
    }
}

/// Reads the child's answer within the deadline and the text limit, then reaps it.
fn parent(pid: libc::pid_t, mut read: std::fs::File, limits: &Limits) -> Result<String, String> {
    let deadline = Instant::now() + limits.time;
    let mut answer = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Some(format!(
                "parsing took longer than ai_loader.parse_timeout ({:.1} s)",
                limits.time.as_secs_f64()
            ));
        }
        let mut poll = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&read),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, left.as_millis().min(1000) as i32) };
        if ready <= 0 {
            continue; // a timeout slice or EINTR: look at the deadline again
        }
        match read.read(&mut buffer) {
            Ok(0) => break None,
            Ok(n) => {
                answer.extend_from_slice(&buffer[..n]);
                if answer.len() > limits.text + HEADER {
                    break Some(format!(
                        "the document's text is larger than ai_loader.max_document_text ({} bytes)",
                        limits.text
                    ));
                }
                if complete(&answer) {
                    break None;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Some(format!("reading the parser's answer: {e}")),
        }
    };
    if outcome.is_some() {
        // SAFETY: our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let end = reap(pid);
    if let Some(message) = outcome {
        return Err(message);
    }
    let body = complete(&answer).then(|| &answer[HEADER..]);
    match (answer.first(), body, end) {
        (Some(b'T'), Some(text), End::Exited(0)) => {
            String::from_utf8(text.to_vec()).map_err(|_| "the parser's text is not UTF-8".into())
        }
        (Some(b'E'), Some(message), End::Exited(0)) => {
            Err(String::from_utf8_lossy(message).into_owned())
        }
        (_, _, End::Exited(code)) => Err(format!(
            "the parser ended without an answer (exit code {code})"
        )),
        (_, _, End::Signaled(libc::SIGXCPU)) => {
            Err("parsing used more CPU time than ai_loader.parse_timeout".into())
        }
        (_, _, End::Signaled(signal)) => Err(format!(
            "the parser was stopped by signal {signal}: the document needs more memory than \
             ai_loader.parse_memory, or crashed it"
        )),
    }
}

/// The answer's header: a tag (`T`ext or `E`rror) and the body's length.
const HEADER: usize = 9;

/// Whether `answer` holds its header and the whole body the header announces.
fn complete(answer: &[u8]) -> bool {
    answer.len() >= HEADER && {
        let length = u64::from_le_bytes(answer[1..HEADER].try_into().expect("eight bytes"));
        (answer.len() - HEADER) as u64 >= length
    }
}

/// How the child ended.
enum End {
    Exited(i32),
    Signaled(i32),
}

/// Waits for the child to end.
fn reap(pid: libc::pid_t) -> End {
    let mut status = 0;
    loop {
        // SAFETY: our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r == -1 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return End::Exited(-1);
        }
    }
    match libc::WIFEXITED(status) {
        true => End::Exited(libc::WEXITSTATUS(status)),
        false => End::Signaled(libc::WTERMSIG(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        memory: 256 << 20,
        time: Duration::from_secs(5),
        text: 1000,
    };

    #[test]
    fn answers_come_back() {
        assert_eq!(isolated(&LIMITS, || Ok("text".into())), Ok("text".into()));
        assert_eq!(isolated(&LIMITS, || Err("bad".into())), Err("bad".into()));
    }

    #[test]
    fn a_runaway_parser_costs_its_document_only() {
        let hog = isolated(&LIMITS, || {
            let mut kept = Vec::new();
            loop {
                kept.push(vec![1u8; 16 << 20]);
                if kept.len() > 1000 {
                    return Ok(String::new());
                }
            }
        });
        assert!(hog.unwrap_err().contains("ai_loader.parse_memory"));

        let fast = Limits {
            time: Duration::from_millis(300),
            ..LIMITS
        };
        let started = Instant::now();
        let slow = isolated(&fast, || {
            std::thread::sleep(Duration::from_secs(30));
            Ok(String::new())
        });
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(
            slow.unwrap_err(),
            "parsing took longer than ai_loader.parse_timeout (0.3 s)"
        );

        let long = isolated(&LIMITS, || Ok("x".repeat(5000)));
        assert_eq!(
            long.unwrap_err(),
            "the document's text is larger than ai_loader.max_document_text (1000 bytes)"
        );

        // A parser recursing without end, as on deeply nested markup.
        fn deep(depth: &mut [u8; 4096]) -> u8 {
            let mut next = std::hint::black_box([depth[0].wrapping_add(1); 4096]);
            if next[0] == u8::MAX && std::hint::black_box(false) {
                return 0;
            }
            deep(&mut next).wrapping_add(next[7])
        }
        let crash = isolated(&LIMITS, || Ok(deep(&mut [0; 4096]).to_string()));
        assert!(crash.unwrap_err().contains("stopped by signal"));
    }
}
