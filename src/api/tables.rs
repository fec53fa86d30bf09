//! The tables `ai.create_vectorizer` and `ai.create_s3_sync` act on: found by OID, and
//! only if the caller owns them.

use ai_loader_core::ident::qualified;
use ai_loader_core::{ConfigError, SqlState};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::errors::{raise, OrRaise};

/// What the caller wants to do with the table, for the errors.
pub struct Purpose {
    /// "create a vectorizer on it"
    pub action: &'static str,
    /// The function to run as the owner: "ai.create_vectorizer".
    pub function: &'static str,
    /// Why it must be a table.
    pub table_hint: &'static str,
}

/// A table `ai.create_vectorizer` or `ai.create_s3_sync` acts on.
pub struct Owned {
    pub schema: String,
    pub name: String,
    /// Its owner, who will own what is made for it and with whose rights the worker
    /// acts on it, whoever made it (as an index belongs to its table's owner).
    pub owner: pg_sys::Oid,
}

/// `table`, a table (or partitioned table), not a temporary one, the current user owns
/// (or is a member of the owner of) or, for a superuser, any; 42704, 42809 or 42501
/// otherwise.
pub fn owned_table(client: &SpiClient<'_>, table: pg_sys::Oid, purpose: &Purpose) -> Owned {
    let row = client
        .select(
            "SELECT n.nspname::text AS schema, c.relname::text AS name, c.relkind::text AS kind,
                    c.relpersistence::text AS persistence, c.relowner AS owner,
                    pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER')
                    OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r
                         WHERE r.rolname OPERATOR(pg_catalog.=) current_user) AS owned
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid OPERATOR(pg_catalog.=) $1",
            None,
            &[table.into()],
        )
        .or_raise();
    if row.is_empty() {
        raise(ConfigError::new(
            SqlState::UndefinedObject,
            format!("relation with OID {} does not exist", table.to_u32()),
        ));
    }
    let row = row.first();
    let text = |c: &str| -> String {
        row.get_by_name::<String, _>(c)
            .or_raise()
            .unwrap_or_default()
    };
    let (schema, name, kind) = (text("schema"), text("name"), text("kind"));
    let shown = qualified(&schema, &name);
    if kind != "r" && kind != "p" {
        raise(
            ConfigError::new(SqlState::WrongObjectType, format!("{shown} is not a table"))
                .with_hint(purpose.table_hint),
        );
    }
    if text("persistence") == "t" {
        raise(
            ConfigError::new(
                SqlState::WrongObjectType,
                format!("{shown} is a temporary table"),
            )
            .with_hint(
                "a temporary table is its session's alone and ends with it, and the worker is \
                 another session: use a regular or unlogged table",
            ),
        );
    }
    if !row
        .get_by_name::<bool, _>("owned")
        .or_raise()
        .unwrap_or(false)
    {
        raise(
            ConfigError::new(
                SqlState::InsufficientPrivilege,
                format!(
                    "only a superuser or the owner of table {shown} may {}",
                    purpose.action
                ),
            )
            .with_hint(format!("run {} as the table's owner", purpose.function)),
        );
    }
    Owned {
        schema,
        name,
        owner: row
            .get_by_name::<pg_sys::Oid, _>("owner")
            .or_raise()
            .unwrap_or(pg_sys::InvalidOid),
    }
}
