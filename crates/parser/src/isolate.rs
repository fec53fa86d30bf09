//! Running a parser in a process of its own. A crafted document can make a parser
//! allocate without bound (a zip or flate bomb), recurse past its stack or run for
//! minutes; inside the worker, each of those ends the process by a signal — and a
//! Postgres process that dies by a signal makes the postmaster reset the whole
//! cluster. So the parser is a program of its own, `ai_loader_parse` (`src/bin/`),
//! installed beside the library, and its death costs one document.
//!
//! It is started by `posix_spawn` (what `Command` uses when nothing runs between fork
//! and exec), never by a bare fork: the worker runs threads, and a child forked from a
//! threaded process without exec can wait forever on a lock another thread held at the
//! fork — and a bare fork copies the worker's page tables, which costs more the larger
//! the worker is (see `examples/parse_cost.rs`). The document is the program's standard
//! input (an in-memory file); before it parses, the program closes every other
//! descriptor it inherited and gives itself an address-space limit (its size with the
//! document read, plus `Limits::memory`), a CPU-time limit, a lower CPU priority
//! (`NICENESS`) and no core file; a worker runs at most `Limits::parsers` at once. Its
//! answer comes back through a pipe, read within a deadline and up to `Limits::text`
//! bytes: a line `T <length>` (text), `E <length>` (why there is none: the document's
//! doing) or `P <length>` (why there is none: not the document's), then that many
//! bytes.

use std::ffi::OsStr;
use std::io::{Read, Seek, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Why a document has no text, and whether reading the same bytes again could end
/// otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// The document's own doing (its type, its bytes, its size): the same bytes fail
    /// the same way. Otherwise the moment's (a deadline under load, a parser that could
    /// not start or was stopped from outside).
    pub lasting: bool,
}

impl ParseError {
    /// A failure that is not the document's: reading it again may succeed.
    pub fn passing(message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            lasting: false,
        }
    }
}

/// A message alone is the document's failure.
impl From<String> for ParseError {
    fn from(message: String) -> ParseError {
        ParseError {
            message,
            lasting: true,
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a parser may use, and the program that parses.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of address space beyond what the parser has with the document read.
    pub memory: u64,
    /// Wall-clock time, and (rounded up) CPU time.
    pub time: Duration,
    /// Bytes of text a document may yield.
    pub text: usize,
    /// The parser program (`ai_loader_parse`).
    pub program: &'static Path,
    /// PDFium's library, which the parser program loads to read a PDF.
    pub pdfium: &'static Path,
    /// Parser programs this process runs at once; more wait for one to end.
    pub parsers: usize,
}

/// PDFium's library, under the server's library directory (`pg_config --pkglibdir`),
/// where make setup puts it.
pub const PDFIUM_LIBRARY: &str = "ai_loader/libpdfium.so";

/// How much lower than the worker's a parser's CPU priority is (its nice value above
/// the worker's): parsing yields the cores to the database's own processes.
pub const NICENESS: i32 = 10;

/// Parser programs running now in this process, and the signal that one ended.
static RUNNING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// A parser's place among the `limits.parsers` that may run at once, held while it runs.
struct Slot;

impl Slot {
    fn take(limits: &Limits) -> Slot {
        let (running, ended) = &RUNNING;
        let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= limits.parsers.max(1) {
            running = ended.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (running, ended) = &RUNNING;
        *running.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        ended.notify_one();
    }
}

/// Runs the parser program with `args`, then its limits as arguments, `document` as its
/// standard input; its text, or why there is none.
pub fn isolated<S: AsRef<OsStr>>(
    limits: &Limits,
    args: &[S],
    document: &[u8],
) -> Result<String, ParseError> {
    let start = |e: std::io::Error| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => " (make install puts it beside the library)",
            _ => "",
        };
        ParseError::passing(format!(
            "cannot start the parser {}: {e}{hint}",
            limits.program.display()
        ))
    };
    let _slot = Slot::take(limits);
    let input = in_memory(document).map_err(start)?;
    let (read, write) = pipe().map_err(start)?;
    let mut command = Command::new(limits.program);
    command
        .args(args)
        .arg(limits.memory.to_string())
        .arg((limits.time.as_secs() + 1).to_string())
        .stdin(Stdio::from(input))
        .stdout(Stdio::from(write))
        .stderr(Stdio::null());
    let child = command.spawn().map_err(start)?;
    // The write end must be the child's alone: a child that dies unanswered is seen at once.
    drop(command);
    parent(child, std::fs::File::from(read), limits)
}

/// `bytes` in an in-memory file, read from its start.
fn in_memory(bytes: &[u8]) -> std::io::Result<std::fs::File> {
    // SAFETY: a NUL-terminated name and a flag.
    let fd = unsafe { libc::memfd_create(c"ai_loader_document".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor, owned from here on.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(bytes)?;
    file.rewind()?;
    Ok(file)
}

/// A pipe, both ends closed on exec (the child's end is given to it as its stdout).
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: a two-element array for the pipe's ends.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the pipe's ends, owned from here on.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The parser program's side: reads the document from standard input within the
/// limits its last two arguments give (address space beyond its size with the document
/// read, CPU seconds), and `parse`s it with the arguments before them. Writes the
/// answer to standard output and exits.
pub fn serve(parse: impl FnOnce(&[String], &[u8]) -> Result<String, ParseError>) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = (|| {
        let [rest @ .., memory, cpu] = args.as_slice() else {
            return Err(ParseError::passing(
                "usage: ai_loader_parse KIND [LIBRARY] MEMORY_BYTES CPU_SECONDS < document",
            ));
        };
        let number = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| ParseError::passing(format!("not a number: {s}")))
        };
        let (memory, cpu) = (number(memory)?, number(cpu)?);
        // SAFETY: this process's own descriptors, signals and limits.
        unsafe {
            // The signals the worker's thread blocked or ignored reach the parser: the
            // postmaster's shutdown, sent to the worker's process group, ends it.
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
            // Nothing of the worker's but the document and the answer's pipe.
            libc::close_range(3, u32::MAX, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            libc::nice(NICENESS);
            limit(libc::RLIMIT_CORE, 0);
            limit(libc::RLIMIT_CPU, cpu);
        }
        let document = read_document()?;
        // SAFETY: as above.
        unsafe { limit(libc::RLIMIT_AS, address_space() + memory) };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(rest, &document)))
            .unwrap_or_else(|_| Err("the parser failed on this document".to_string().into()))
    })();
    let (tag, body) = match &result {
        Ok(text) => ('T', text.as_bytes()),
        Err(e) if e.lasting => ('E', e.message.as_bytes()),
        Err(e) => ('P', e.message.as_bytes()),
    };
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{tag} {}", body.len())
        .and_then(|_| out.write_all(body))
        .and_then(|_| out.flush());
    std::process::exit(if written.is_ok() { 0 } else { 1 })
}

/// Standard input, read whole into one allocation of its size.
fn read_document() -> Result<Vec<u8>, ParseError> {
    let mut input = std::io::stdin().lock();
    let mut document = Vec::new();
    // SAFETY: a stat buffer for fd 0.
    let size = unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        (libc::fstat(0, &mut stat) == 0).then_some(stat.st_size.max(0) as usize)
    };
    document.reserve_exact(size.unwrap_or(0));
    input
        .read_to_end(&mut document)
        .map_err(|e| ParseError::passing(format!("reading the document: {e}")))?;
    Ok(document)
}

/// This process's address space now, in bytes (the first field of /proc/self/statm).
fn address_space() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64
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
fn parent(
    mut child: Child,
    mut read: std::fs::File,
    limits: &Limits,
) -> Result<String, ParseError> {
    let deadline = Instant::now() + limits.time;
    let mut answer = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Under load a document may take longer than on an idle machine.
            break Some(ParseError::passing(format!(
                "parsing took longer than ai_loader.parse_timeout ({:.1} s)",
                limits.time.as_secs_f64()
            )));
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
                if answer.len() > limits.text + MAX_HEADER {
                    break Some(ParseError::from(format!(
                        "the document's text is larger than ai_loader.max_document_text ({} bytes)",
                        limits.text
                    )));
                }
                if body(&answer).is_some() {
                    break None;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                break Some(ParseError::passing(format!(
                    "reading the parser's answer: {e}"
                )))
            }
        }
    };
    if outcome.is_some() {
        let _ = child.kill();
    }
    let end = child.wait();
    if let Some(error) = outcome {
        return Err(error);
    }
    let end = end.map_err(|e| ParseError::passing(format!("waiting for the parser: {e}")))?;
    let said = |message: &[u8]| String::from_utf8_lossy(message).into_owned();
    match (answer.first(), body(&answer), end.code(), end.signal()) {
        (Some(b'T'), Some(text), Some(0), _) => String::from_utf8(text.to_vec())
            .map_err(|_| "the parser's text is not UTF-8".to_string().into()),
        (Some(b'E'), Some(message), Some(0), _) => Err(said(message).into()),
        (Some(b'P'), Some(message), Some(0), _) => Err(ParseError::passing(said(message))),
        (_, _, Some(code), _) => Err(ParseError::passing(format!(
            "the parser ended without an answer (exit code {code})"
        ))),
        (_, _, _, Some(libc::SIGXCPU)) => {
            Err("parsing used more CPU time than ai_loader.parse_timeout"
                .to_string()
                .into())
        }
        // Stopped from outside: the server's shutdown, or the kernel short of memory.
        (
            _,
            _,
            _,
            Some(signal @ (libc::SIGKILL | libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)),
        ) => Err(ParseError::passing(format!(
            "the parser was stopped by signal {signal}"
        ))),
        (_, _, _, signal) => Err(format!(
            "the parser was stopped by signal {}: the document needs more memory than \
             ai_loader.parse_memory, or crashed it",
            signal.unwrap_or(0)
        )
        .into()),
    }
}

/// The longest header line: a tag, a space, a length, a newline.
const MAX_HEADER: usize = 24;

/// The answer's body, once `answer` holds its header line and the whole body it
/// announces.
fn body(answer: &[u8]) -> Option<&[u8]> {
    let newline = answer.iter().take(MAX_HEADER).position(|&b| b == b'\n')?;
    let length: usize = std::str::from_utf8(answer.get(2..newline)?)
        .ok()?
        .parse()
        .ok()?;
    answer
        .get(newline + 1..)
        .filter(|b| b.len() >= length)
        .map(|b| &b[..length])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shell script standing in for the parser program: it gets the same arguments
    /// and descriptors, but sets no limits of its own.
    fn sh(script: &str, time: Duration) -> Result<String, ParseError> {
        let limits = Limits {
            memory: 256 << 20,
            time,
            text: 1000,
            program: Path::new("/bin/sh"),
            pdfium: Path::new("/nonexistent/libpdfium.so"),
            parsers: 8,
        };
        isolated(&limits, &["-c", script, "sh"], b"the document")
    }

    const SECONDS: Duration = Duration::from_secs(5);

    #[test]
    fn answers_come_back() {
        assert_eq!(sh("printf 'T 4\\ntext'", SECONDS), Ok("text".into()));
        assert_eq!(
            sh("printf 'E 3\\nbad'", SECONDS),
            Err("bad".to_string().into())
        );
        assert_eq!(
            sh("printf 'P 6\\nbroken'", SECONDS),
            Err(ParseError::passing("broken"))
        );
        // The document is standard input; the limits are the last two arguments.
        assert_eq!(
            sh(
                "d=$(cat); a=\"$d $1 $2\"; printf 'T %d\\n%s' ${#a} \"$a\"",
                SECONDS
            ),
            Ok("the document 268435456 6".into())
        );
    }

    #[test]
    fn a_runaway_parser_costs_its_document_only() {
        let started = Instant::now();
        assert_eq!(
            sh("sleep 30", Duration::from_millis(300)),
            Err(ParseError::passing(
                "parsing took longer than ai_loader.parse_timeout (0.3 s)"
            ))
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(
            sh("printf 'T 5000\\n'; head -c 5000 /dev/zero", SECONDS),
            Err(
                "the document's text is larger than ai_loader.max_document_text (1000 bytes)"
                    .to_string()
                    .into()
            )
        );
        // A crash is the document's doing; a kill from outside is not.
        let crashed = sh("kill -SEGV $$", SECONDS).unwrap_err();
        assert!(crashed
            .message
            .starts_with("the parser was stopped by signal 11"));
        assert!(crashed.lasting);
        assert_eq!(
            sh("kill -KILL $$", SECONDS),
            Err(ParseError::passing("the parser was stopped by signal 9"))
        );
        assert_eq!(
            sh("exit 3", SECONDS),
            Err(ParseError::passing(
                "the parser ended without an answer (exit code 3)"
            ))
        );
        let missing = Limits {
            memory: 0,
            time: SECONDS,
            text: 10,
            program: Path::new("/nonexistent/ai_loader_parse"),
            pdfium: Path::new("/nonexistent/libpdfium.so"),
            parsers: 8,
        };
        let e = isolated::<&str>(&missing, &[], b"").unwrap_err();
        assert!(!e.lasting);
        let e = e.message;
        assert!(
            e.starts_with("cannot start the parser /nonexistent/ai_loader_parse: "),
            "{e}"
        );
        assert!(
            e.ends_with(" (make install puts it beside the library)"),
            "{e}"
        );
    }
}
