//! Waiting after failures: every retry in ai_loader waits twice as long as the one
//! before, from a first wait up to a longest one, unless the other side said how long
//! (`Retry-After`).

use std::time::{Duration, Instant};

/// Waits that double after each failure, from `first` up to `longest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Doubling {
    pub first: Duration,
    pub longest: Duration,
}

impl Doubling {
    /// The wait after `failures` failures in a row (the first failure waits `first`).
    pub fn after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first
            .checked_mul(1 << doublings)
            .unwrap_or(self.longest)
            .min(self.longest)
    }
}

/// A vectorizer whose provider is down, or whose owner lost a right: 2 s, 4 s, … 60 s.
pub const PROVIDER: Doubling = Doubling {
    first: Duration::from_secs(2),
    longest: Duration::from_secs(60),
};

/// An S3 sync's failed listing or receive: 2 s, 4 s, … 60 s (and no longer than its
/// reconcile interval).
pub const SYNC: Doubling = PROVIDER;

/// A document that failed, before it is tried again: 1 s, 2 s, … 5 minutes.
pub const ROW: Doubling = Doubling {
    first: Duration::from_secs(1),
    longest: Duration::from_secs(300),
};

/// Failures in a row, and when the next attempt may start.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backoff {
    pub failures: u32,
    until: Option<Instant>,
}

impl Backoff {
    /// Notes a failure at `now`: the next attempt waits `retry_after` if the other side
    /// said, else `waits`' next wait. Returns the wait.
    pub fn failed(
        &mut self,
        waits: Doubling,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> Duration {
        self.failures += 1;
        let wait = retry_after.unwrap_or_else(|| waits.after(self.failures));
        self.until = Some(now + wait);
        wait
    }

    pub fn succeeded(&mut self) {
        *self = Backoff::default();
    }

    /// Whether the next attempt must wait still, at `now`.
    pub fn waiting(&self, now: Instant) -> bool {
        self.until.is_some_and(|t| now < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_longest() {
        let waits: Vec<u64> = (1..=7).map(|f| PROVIDER.after(f).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(ROW.after(1), Duration::from_secs(1));
        assert_eq!(ROW.after(9), Duration::from_secs(256));
        assert_eq!(ROW.after(10), Duration::from_secs(300));
        assert_eq!(ROW.after(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn a_failure_waits_and_a_success_forgets() {
        let now = Instant::now();
        let mut b = Backoff::default();
        assert!(!b.waiting(now));
        assert_eq!(b.failed(PROVIDER, None, now), Duration::from_secs(2));
        assert_eq!(
            b.failed(PROVIDER, Some(Duration::from_secs(7)), now),
            Duration::from_secs(7)
        );
        assert!(b.waiting(now + Duration::from_secs(6)));
        assert!(!b.waiting(now + Duration::from_secs(7)));
        b.succeeded();
        assert_eq!((b.failures, b.waiting(now)), (0, false));
    }
}
