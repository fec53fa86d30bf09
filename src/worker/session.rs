//! The worker's session is the worker's. It sets the settings its statements rely on
//! when it connects — over whatever `ALTER DATABASE … SET` or `ALTER ROLE … SET` gave
//! it — and checks them at the top of every round: should anything have changed them
//! (a user's code run as an owner is sealed, see `crate::roles::as_role`, so nothing
//! should), they are set back, with a LOG line naming what had changed. The same for the
//! user the session acts as.

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::roles::SAFE_SEARCH_PATH;

/// How long the worker's statements wait for a lock.
pub const LOCK_TIMEOUT: &str = "2s";

/// The worker's settings: the search path first (its statements name every object with
/// its schema, and nothing a user made is found through it); no statement waits long
/// for a lock (the batch is given back and tried next round) or runs long; writes are
/// possible and fire triggers; text forms of keys and values read back the same.
const SETTINGS: &[(&str, &str)] = &[
    ("search_path", SAFE_SEARCH_PATH),
    ("lock_timeout", LOCK_TIMEOUT),
    ("statement_timeout", "60s"),
    ("idle_in_transaction_session_timeout", "0"),
    ("default_transaction_read_only", "off"),
    ("default_transaction_isolation", "read committed"),
    ("default_transaction_deferrable", "off"),
    ("session_replication_role", "origin"),
    ("row_security", "on"),
    ("transform_null_equals", "off"),
    ("standard_conforming_strings", "on"),
    ("exit_on_error", "off"),
    ("default_tablespace", ""),
    ("temp_tablespaces", ""),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
];

/// The settings as the worker set them, read back (as Postgres shows them), and the
/// user it connected as.
pub struct Session {
    settings: Vec<(&'static str, String)>,
    user: pg_sys::Oid,
}

/// Sets the worker's settings, in a transaction of their own; `None` if that failed.
pub fn open() -> Option<Session> {
    let settings = super::transaction::run(|| {
        SETTINGS
            .iter()
            .map(|(name, value)| Ok((*name, set(name, value)?)))
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .ok()?;
    Some(Session {
        settings,
        user: crate::roles::current(),
    })
}

impl Session {
    /// Checks the session at the top of a round and sets back what changed.
    pub fn check(&self) {
        self.check_user();
        let changed = super::transaction::run(|| {
            let names: Vec<String> = self.settings.iter().map(|(n, _)| n.to_string()).collect();
            let mut changed = Vec::new();
            for ((name, want), now) in self.settings.iter().zip(current(names)?) {
                if now != *want {
                    set(name, want)?;
                    changed.push(format!("{name} was \"{now}\""));
                }
            }
            Ok::<_, pgrx::spi::Error>(changed)
        });
        match changed {
            Ok(changed) if changed.is_empty() => {}
            Ok(changed) => log!(
                "ai_loader: the worker's session had been changed ({}); set back",
                changed.join(", ")
            ),
            Err(e) => warning!("ai_loader: checking the worker's session: {e}"),
        }
    }

    /// The user and security context are the ones the worker connected with.
    fn check_user(&self) {
        let (mut user, mut context) = (pg_sys::InvalidOid, 0);
        // SAFETY: the main thread, outside a transaction; reads and sets backend globals.
        unsafe {
            pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
            if user != self.user || context != 0 {
                pg_sys::SetUserIdAndSecContext(self.user, 0);
            }
        }
        if user != self.user || context != 0 {
            log!(
                "ai_loader: the worker's session acted as role {} (security context {context}); set back",
                user.to_u32()
            );
        }
    }
}

/// Sets `name` for the session; returns the value as Postgres shows it.
fn set(name: &str, value: &str) -> Result<String, pgrx::spi::Error> {
    Spi::get_one_with_args::<String>(
        "SELECT pg_catalog.set_config($1, $2, false)",
        &[name.into(), value.into()],
    )
    .map(Option::unwrap_or_default)
}

/// The settings `names` as Postgres shows them, in one statement.
fn current(names: Vec<String>) -> Result<Vec<String>, pgrx::spi::Error> {
    Spi::get_one_with_args::<Vec<String>>(
        "SELECT pg_catalog.array_agg(pg_catalog.current_setting(s.name) ORDER BY s.n)
           FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS s(name, n)",
        &[names.into()],
    )
    .map(Option::unwrap_or_default)
}
