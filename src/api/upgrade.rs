//! What `ALTER EXTENSION ai_loader UPDATE` does beyond its script: each vectorizer an
//! earlier version made gets what this version makes of its objects where they hold no
//! data (the source trigger's function, the store's options), and records this version
//! in its configuration.

use ai_loader_config::ddl::{refresh_statements, KeyColumn, TriggerFunction};
use ai_loader_config::destination::{Destination, Names};
use ai_loader_config::formatting::Formatting;
use ai_loader_config::loading::Loading;
use ai_loader_config::vectorizer::relevant;
use ai_loader_config::ConfigPart;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;
use serde_json::Value;

use crate::api::vectorizer::inline_row_bytes;
use crate::errors::OrRaise;
use crate::roles;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The vectorizers an earlier version made, with what their trigger function needs.
const OLDER: &str = "
    SELECT v.id, v.owner::pg_catalog.oid AS owner, v.config,
           v.config OPERATOR(pg_catalog.->>) 'version' AS version,
           v.queue_schema::pg_catalog.text AS queue_schema, v.queue_table::pg_catalog.text AS queue_table,
           v.queue_failed_table::pg_catalog.text AS failed_table, v.trigger_name::pg_catalog.text AS trigger_name,
           (SELECT pg_catalog.array_agg(k OPERATOR(pg_catalog.->>) 'attname' ORDER BY n)
              FROM pg_catalog.jsonb_array_elements(v.source_pk) WITH ORDINALITY AS k(k, n)) AS key_names,
           (SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY a.attnum)
              FROM pg_catalog.pg_attribute a
             WHERE a.attrelid OPERATOR(pg_catalog.=) s.source AND a.attnum OPERATOR(pg_catalog.>) 0
               AND NOT a.attisdropped) AS source_columns,
           EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) v.owner) AS owner_exists
      FROM ai.vectorizer v
     CROSS JOIN LATERAL (SELECT pg_catalog.to_regclass(
                                    pg_catalog.format('%I.%I', v.source_schema, v.source_table)) AS source) s
     WHERE (v.config OPERATOR(pg_catalog.->>) 'version') IS DISTINCT FROM $1
     ORDER BY v.id";

/// One vectorizer to bring up to date.
struct Older {
    id: i32,
    owner: pg_sys::Oid,
    version: String,
    queue_schema: String,
    trigger: TriggerFunction,
}

#[pg_extern(create_or_replace, name = "_refresh_vectorizers")]
fn refresh_vectorizers() {
    Spi::connect_mut(|client| {
        let older: Vec<Result<Older, (i32, String)>> = client
            .select(OLDER, None, &[VERSION.into()])
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
    let text = |name: &str| -> Result<String, String> {
        row.get_by_name::<String, _>(name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{name} is NULL"))
    };
    if row.get_by_name::<bool, _>("owner_exists").ok().flatten() != Some(true) {
        return Err("its owner no longer exists".into());
    }
    let source_columns: Vec<String> = row
        .get_by_name("source_columns")
        .map_err(|e| e.to_string())?
        .ok_or("its source table no longer exists")?;
    let config: Value = row
        .get_by_name::<JsonB, _>("config")
        .map_err(|e| e.to_string())?
        .map(|j| j.0)
        .unwrap_or(Value::Null);
    let part = |key: &str| config.get(key).unwrap_or(&Value::Null);
    let loading = Loading::from_json(part("loading")).map_err(|e| format!("loading: {e}"))?;
    let formatting =
        Formatting::from_json(part("formatting")).map_err(|e| format!("formatting: {e}"))?;
    let destination =
        Destination::from_json(part("destination")).map_err(|e| format!("destination: {e}"))?;
    let key: Vec<String> = row
        .get_by_name("key_names")
        .map_err(|e| e.to_string())?
        .ok_or("source_pk names no column")?;
    let queue_schema = text("queue_schema")?;
    Ok(Older {
        id: row
            .get_by_name::<i32, _>("id")
            .map_err(|e| e.to_string())?
            .unwrap_or_default(),
        owner: row
            .get_by_name::<pg_sys::Oid, _>("owner")
            .map_err(|e| e.to_string())?
            .ok_or("owner is NULL")?,
        version: text("version").unwrap_or_else(|_| "an unknown version".into()),
        trigger: TriggerFunction {
            name: (queue_schema.clone(), text("trigger_name")?),
            key: key
                .into_iter()
                .map(|name| KeyColumn {
                    name,
                    type_sql: String::new(),
                })
                .collect(),
            relevant: relevant(&loading, &formatting, &source_columns)
                .map_err(|e| e.to_string())?,
            queue: (queue_schema.clone(), text("queue_table")?),
            failed: (queue_schema.clone(), text("failed_table")?),
            store: match destination.names() {
                Some(Names::Table { store, .. }) => Some(store),
                Some(Names::Column(_)) => None,
                None => return Err("its destination has no resolved names".into()),
            },
        },
        queue_schema,
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
        match v.queue_schema == "ai" {
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
            &[v.id.into(), VERSION.into()],
        )
        .or_raise();
    notice!(
        "vectorizer {}: trigger function and store options of {} made again as {VERSION} makes them",
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
