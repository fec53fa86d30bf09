//! What `ALTER EXTENSION ai_loader UPDATE` does beyond its script: each vectorizer an
//! earlier version made gets what this version makes of its objects where they hold no
//! data (the source trigger's function, the store's options), and records this version
//! in its configuration.

use ai_loader_core::ddl::{refresh_statements, TriggerFunction};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::api::vectorizer::inline_row_bytes;
use crate::catalog::{self, COLUMNS};
use crate::errors::OrRaise;
use crate::roles;
use crate::LIBRARY_VERSION;

/// The vectorizers an earlier version made, with the source's columns now.
fn older_sql() -> String {
    format!(
        "SELECT {COLUMNS}, r.oid AS owner,
                v.config OPERATOR(pg_catalog.->>) 'version' AS version,
                (SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY a.attnum)
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid OPERATOR(pg_catalog.=) s.source AND a.attnum OPERATOR(pg_catalog.>) 0
                    AND NOT a.attisdropped) AS source_columns
           FROM ai.vectorizer v
           LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) v.owner
          CROSS JOIN LATERAL (SELECT pg_catalog.to_regclass(
                                         pg_catalog.format('%I.%I', v.source_schema, v.source_table)) AS source) s
          WHERE (v.config OPERATOR(pg_catalog.->>) 'version') IS DISTINCT FROM $1
          ORDER BY v.id"
    )
}

/// One vectorizer to bring up to date.
struct Older {
    id: i32,
    owner: pg_sys::Oid,
    version: String,
    trigger: TriggerFunction,
}

#[pg_extern(create_or_replace, name = "_refresh_vectorizers")]
fn refresh_vectorizers() {
    Spi::connect_mut(|client| {
        let older: Vec<Result<Older, (i32, String)>> = client
            .select(&older_sql(), None, &[LIBRARY_VERSION.into()])
            .or_raise()
            .map(|row| {
                let id = row
                    .get_by_name::<i32, _>("id")
                    .or_raise()
                    .unwrap_or_default();
                read(&row).map_err(|e| (id, e))
            })
            .collect();
        for vectorizer in older {
            match vectorizer {
                Ok(v) => refresh(client, &v),
                Err((id, reason)) => warning!(
                    "vectorizer {id} keeps the trigger and store options an earlier version made: {reason}"
                ),
            }
        }
    })
}

fn read(row: &pgrx::spi::SpiHeapTupleData<'_>) -> Result<Older, String> {
    let recorded = catalog::decode(row)?;
    let source_columns: Vec<String> = row
        .get_by_name("source_columns")
        .map_err(|e| e.to_string())?
        .ok_or("its source table no longer exists")?;
    Ok(Older {
        id: recorded.id,
        owner: row
            .get_by_name::<pg_sys::Oid, _>("owner")
            .map_err(|e| e.to_string())?
            .ok_or("its owner no longer exists")?,
        version: row
            .get_by_name::<String, _>("version")
            .ok()
            .flatten()
            .unwrap_or_else(|| "an unknown version".into()),
        trigger: recorded.trigger_function(&source_columns, true)?,
    })
}

/// Makes the vectorizer's trigger function and store options again, each with the
/// rights that made it (the function in schema `ai` is the catalog owner's to replace,
/// the rest its owner's), and records this version. What is made is the vectorizer's,
/// not the extension's, as at its creation.
fn refresh(client: &mut SpiClient<'_>, v: &Older) {
    let statements = refresh_statements(&v.trigger, inline_row_bytes());
    let (function, store) = statements.split_at(2);
    let run = |client: &mut SpiClient<'_>, sql: &[String]| {
        for statement in sql {
            client.update(statement, None, &[]).or_raise();
        }
    };
    outside_the_extension(|| {
        match v.trigger.name.0 == "ai" {
            true => roles::as_catalog_owner(|| run(client, function)),
            false => roles::as_role(v.owner, || run(client, function)),
        }
        roles::as_role(v.owner, || run(client, store));
    });
    client
        .update(
            "UPDATE ai.vectorizer
                SET config = pg_catalog.jsonb_set(config, '{version}', pg_catalog.to_jsonb($2::pg_catalog.text))
              WHERE id OPERATOR(pg_catalog.=) $1",
            None,
            &[v.id.into(), LIBRARY_VERSION.into()],
        )
        .or_raise();
    notice!(
        "vectorizer {}: trigger function and store options of {} made again as {LIBRARY_VERSION} makes them",
        v.id,
        v.version
    );
}

/// Runs `work` as if no extension script were running: the objects it replaces belong to
/// a vectorizer's owner, and an extension script may neither replace an object that is
/// not its member nor make one that is not to become one.
fn outside_the_extension(work: impl FnOnce()) {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: a backend global, on the main thread; put back as it was.
            unsafe { pg_sys::creating_extension = self.0 }
        }
    }
    // SAFETY: as above. An ERROR inside ends the extension script, which clears it too.
    let _restore = Restore(unsafe {
        let was = pg_sys::creating_extension;
        pg_sys::creating_extension = false;
        was
    });
    work();
}
