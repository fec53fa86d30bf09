//! `ai.create_s3_sync` and the functions that manage a sync: checked here, carried out
//! in the caller's transaction; the worker does the listing and the events.

use std::time::Duration;

use ai_loader_core::ident::qualified;
use ai_loader_core::s3_sync::{check_destination, Attribute, Definition, TableColumn};
use ai_loader_core::{ConfigError, SqlState};
use ai_loader_pipeline::loading::guard;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;

use super::tables::{owned_table, Purpose};
use super::vectorizer::{require_s3_reader, require_s3_reader_of};
use crate::errors::{raise, OrRaise};
use crate::{gucs, roles};

/// The destination as the catalog describes it; checks it is a table the caller owns.
struct Table {
    schema: String,
    name: String,
    /// The table's owner, who owns the sync: the worker writes the table as it.
    owner: pg_sys::Oid,
    columns: Vec<(TableColumn, pg_sys::Oid)>,
    /// The columns with a unique, non-partial index of their own.
    unique: Vec<String>,
}

fn describe(client: &SpiClient<'_>, table: pg_sys::Oid) -> Table {
    let owned = owned_table(
        client,
        table,
        &Purpose {
            action: "sync it with S3",
            function: "ai.create_s3_sync",
            table_hint: "a sync writes one row per object into a table",
        },
    );
    let columns = client
        .select(
            "SELECT a.attname::text AS name, a.attnotnull AS not_null,
                    a.atthasdef OR a.attidentity <> '' AS has_default,
                    a.attgenerated <> '' AS generated, a.atttypid AS type
               FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            None,
            &[table.into()],
        )
        .or_raise()
        .map(|r| {
            let flag = |c: &str| r.get_by_name::<bool, _>(c).or_raise().unwrap_or(false);
            (
                TableColumn {
                    name: r
                        .get_by_name::<String, _>("name")
                        .or_raise()
                        .unwrap_or_default(),
                    not_null: flag("not_null"),
                    has_default: flag("has_default"),
                    generated: flag("generated"),
                },
                r.get_by_name::<pg_sys::Oid, _>("type")
                    .or_raise()
                    .unwrap_or(pg_sys::InvalidOid),
            )
        })
        .collect();
    let unique = client
        .select(
            "SELECT a.attname::text AS name
               FROM pg_catalog.pg_index i
               JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
              WHERE i.indrelid = $1 AND i.indisunique AND i.indnkeyatts = 1
                AND i.indpred IS NULL AND i.indexprs IS NULL",
            None,
            &[table.into()],
        )
        .or_raise()
        .map(|r| {
            r.get_by_name::<String, _>("name")
                .or_raise()
                .unwrap_or_default()
        })
        .collect();
    Table {
        schema: owned.schema,
        name: owned.name,
        owner: owned.owner,
        columns,
        unique,
    }
}

/// Raises 42804 unless a value of SQL type `from` can be assigned to `column`.
fn check_assignable(client: &SpiClient<'_>, table: &Table, column: &str, from: &str, what: &str) {
    let Some((_, to)) = table.columns.iter().find(|(c, _)| c.name == column) else {
        return;
    };
    let from_oid = client
        .select("SELECT $1::pg_catalog.regtype::oid", None, &[from.into()])
        .or_raise()
        .first()
        .get_one::<pg_sys::Oid>()
        .or_raise()
        .unwrap_or(pg_sys::InvalidOid);
    let to = *to;
    // SAFETY: two type OIDs, read by the catalog lookup inside.
    let ok = unsafe {
        pg_sys::can_coerce_type(
            1,
            &from_oid,
            &to,
            pg_sys::CoercionContext::COERCION_ASSIGNMENT,
        )
    };
    if !ok {
        let type_name = client
            .select(
                "SELECT pg_catalog.format_type($1, NULL)",
                None,
                &[to.into()],
            )
            .or_raise()
            .first()
            .get_one::<String>()
            .or_raise()
            .unwrap_or_default();
        raise(
            ConfigError::new(
                SqlState::DatatypeMismatch,
                format!(
                    "column \"{column}\" of {} is of type {type_name}, which cannot hold {what} ({from})",
                    qualified(&table.schema, &table.name)
                ),
            )
            .with_hint("map the attribute to a column of a type it can be assigned to"),
        );
    }
}

fn strings(list: Option<Vec<Option<String>>>) -> Vec<String> {
    list.unwrap_or_default().into_iter().flatten().collect()
}

fn required<T>(value: Option<T>, name: &str) -> T {
    value.unwrap_or_else(|| {
        raise(ConfigError::new(
            SqlState::NullValueNotAllowed,
            format!("{name} must not be NULL"),
        ))
    })
}

/// Creates a sync: the caller owns the destination and may read S3 with the server's
/// credentials (`ai_loader_s3_reader`); every parameter is checked here.
#[allow(clippy::too_many_arguments)]
#[pg_extern(create_or_replace, name = "_create_s3_sync")]
fn create_s3_sync(
    destination: Option<pg_sys::Oid>,
    uri_prefix: Option<&str>,
    column_name: Option<&str>,
    aws_role_arn: Option<&str>,
    sqs_queue_url: Option<&str>,
    include: Option<Vec<Option<String>>>,
    exclude: Option<Vec<Option<String>>>,
    columns: Option<JsonB>,
    reconcile_seconds: Option<f64>,
    name: Option<&str>,
    if_not_exists: Option<bool>,
) -> i32 {
    let destination = required(destination, "destination");
    require_s3_reader("create an S3 sync (ai.create_s3_sync)");
    let definition = Definition {
        uri_prefix: required(uri_prefix, "uri_prefix").to_string(),
        column_name: required(column_name, "column_name").to_string(),
        aws_role_arn: aws_role_arn.map(str::to_string),
        sqs_queue_url: sqs_queue_url.map(str::to_string),
        include: strings(include),
        exclude: strings(exclude),
        columns: columns.map(|j| j.0),
        reconcile_interval: Duration::from_secs_f64(
            required(reconcile_seconds, "reconcile_interval").clamp(0.0, 1e12),
        ),
    };
    let sync = definition.check().or_raise();
    if let Err(refused) = guard::check_s3(
        &gucs::loading_settings().s3_allowed,
        &sync.prefix.bucket,
        &sync.prefix.prefix,
    ) {
        raise(
            ConfigError::new(SqlState::InsufficientPrivilege, refused)
                .with_hint("a superuser can add the bucket (or a prefix that covers it) to ai_loader.s3_allowed_buckets"),
        );
    }
    Spi::connect_mut(|client| {
        let table = describe(client, destination);
        let shown = qualified(&table.schema, &table.name);
        let plain: Vec<TableColumn> = table.columns.iter().map(|(c, _)| c.clone()).collect();
        check_destination(&sync, &shown, &plain, table.unique.contains(&sync.column)).or_raise();
        check_assignable(client, &table, &sync.column, "text", "the object's URI");
        for (column, attribute) in &sync.columns {
            check_assignable(
                client,
                &table,
                column,
                attribute.sql_type(),
                attribute_what(*attribute),
            );
        }
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}_{}_s3_sync", table.schema, table.name));
        if let Some(existing) = id_of_name(client, &name) {
            if if_not_exists.unwrap_or(false) {
                notice!("an S3 sync named \"{name}\" already exists, skipping");
                return existing;
            }
            raise(
                ConfigError::new(
                    SqlState::DuplicateObject,
                    format!("an S3 sync named \"{name}\" already exists"),
                )
                .with_hint("pass another name => …, or if_not_exists => true"),
            );
        }
        if let Some(url) = &sync.queue_url {
            refuse_taken_queue(client, url, None);
        }
        if table.owner != roles::current() {
            require_s3_reader_of(
                table.owner,
                "create an S3 sync (ai.create_s3_sync)",
                Some(format!(
                    "The sync belongs to the owner of table {shown}: the worker writes the table, and reads S3, as that role."
                )),
            );
        }
        let id = roles::as_catalog_owner(|| {
            let id: i32 = client
                .update(
                    "INSERT INTO ai.s3_sync (id, name, destination, column_name, uri_prefix, aws_role_arn,
                         sqs_queue_url, include, exclude, columns, reconcile_interval, owner, home)
                     VALUES (pg_catalog.nextval('ai.s3_sync_id_seq'::pg_catalog.regclass), $1,
                             $2::pg_catalog.oid::pg_catalog.regclass, $3, $4, $5, $6, $7, $8, $9,
                             pg_catalog.make_interval(secs => $10), $11::pg_catalog.oid::pg_catalog.regrole, $12)
                     RETURNING id",
                    None,
                    &[
                        name.as_str().into(),
                        destination.into(),
                        sync.column.as_str().into(),
                        definition.uri_prefix.as_str().into(),
                        definition.aws_role_arn.clone().into(),
                        definition.sqs_queue_url.clone().into(),
                        non_empty(&definition.include).into(),
                        non_empty(&definition.exclude).into(),
                        definition.columns.clone().map(JsonB).into(),
                        definition.reconcile_interval.as_secs_f64().into(),
                        table.owner.into(),
                        crate::worker::home().into(),
                    ],
                )
                .or_raise()
                .first()
                .get_one()
                .or_raise()
                .expect("RETURNING id");
            client
                .update(
                    "INSERT INTO ai._s3_sync_progress (sync_id) VALUES ($1)",
                    None,
                    &[id.into()],
                )
                .or_raise();
            id
        });
        crate::api::wake::wake_worker_at_commit();
        id
    })
}

/// A list, or NULL for none (as the catalog keeps "no include patterns").
fn non_empty(list: &[String]) -> Option<Vec<String>> {
    (!list.is_empty()).then(|| list.to_vec())
}

fn attribute_what(a: Attribute) -> &'static str {
    match a {
        Attribute::Basename => "the key's last segment",
        Attribute::Key => "the object key",
        Attribute::Size => "the object's size",
        Attribute::Etag => "the object's ETag",
        Attribute::LastModified => "the object's last modification time",
    }
}

fn id_of_name(client: &SpiClient<'_>, name: &str) -> Option<i32> {
    roles::as_catalog_owner(|| {
        client
            .select(
                "SELECT id FROM ai.s3_sync WHERE name = $1",
                None,
                &[name.into()],
            )
            .or_raise()
            .next()
            .and_then(|r| r.get_by_name::<i32, _>("id").or_raise())
    })
}

/// Checks that the caller may manage sync `id` (it has its owner's privileges), and
/// locks its catalog row; 42704 otherwise, whether it does not exist or the caller may
/// not see it.
fn managed(client: &mut SpiClient<'_>, id: i32) {
    let owner = roles::as_catalog_owner(|| {
        client
            .update(
                "SELECT r.oid AS owner_oid
                   FROM ai.s3_sync s LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) s.owner
                  WHERE s.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE OF s",
                None,
                &[id.into()],
            )
            .or_raise()
            .next()
            .map(|r| r.get_by_name::<pg_sys::Oid, _>("owner_oid").or_raise())
    });
    if !owner.is_some_and(roles::may_manage) {
        raise(
            ConfigError::new(
                SqlState::UndefinedObject,
                format!("S3 sync {id} does not exist"),
            )
            .with_hint("SELECT id, name FROM ai.s3_sync lists the S3 syncs"),
        );
    }
}

/// Drops a sync and what it knew; the destination's rows stay.
#[pg_extern(create_or_replace)]
fn drop_s3_sync(id: i32) {
    Spi::connect_mut(|client| {
        managed(client, id);
        roles::as_catalog_owner(|| {
            client
                .update("DELETE FROM ai.s3_sync WHERE id = $1", None, &[id.into()])
                .or_raise()
        });
    })
}

/// Asks the worker for a complete listing of the sync's prefix as soon as it can.
#[pg_extern(create_or_replace)]
fn s3_sync_now(id: i32) {
    set(id, "reconcile_requested_at = pg_catalog.now()");
}

/// Pauses or resumes a sync. Resuming makes this database the sync's home (a restored
/// copy starts paused, see the worker), unless another sync reads its queue.
#[pg_extern(create_or_replace, name = "_s3_sync_set_paused")]
fn set_paused(id: i32, paused: bool) {
    if paused {
        set(id, "paused = true");
        return;
    }
    Spi::connect_mut(|client| {
        managed(client, id);
        let url = roles::as_catalog_owner(|| {
            client
                .select(
                    "SELECT s.sqs_queue_url FROM ai.s3_sync s WHERE s.id OPERATOR(pg_catalog.=) $1",
                    None,
                    &[id.into()],
                )
                .or_raise()
                .first()
                .get_one::<String>()
                .or_raise()
        });
        if let Some(url) = url {
            refuse_taken_queue(client, &url, Some(id));
        }
        roles::as_catalog_owner(|| {
            client
                .update(
                    "UPDATE ai.s3_sync SET paused = false, home = $2 WHERE id OPERATOR(pg_catalog.=) $1",
                    None,
                    &[id.into(), crate::worker::home().into()],
                )
                .or_raise()
        });
    });
    crate::api::wake::wake_worker_at_commit();
}

/// Raises 42710 if the SQS queue `url` feeds another sync (than `this`): of this
/// database (the catalog says so, paused or not), or of another database of the cluster
/// (its worker reads it now). Two syncs on one queue would split its events.
fn refuse_taken_queue(client: &SpiClient<'_>, url: &str, this: Option<i32>) {
    let here = roles::as_catalog_owner(|| {
        client
            .select(
                "SELECT s.id FROM ai.s3_sync s
                  WHERE s.sqs_queue_url OPERATOR(pg_catalog.=) $1
                    AND s.id IS DISTINCT FROM $2",
                None,
                &[url.into(), this.into()],
            )
            .or_raise()
            .next()
            .is_some()
    });
    // SAFETY: reads a backend global.
    let database = unsafe { pg_sys::MyDatabaseId };
    let elsewhere = crate::worker::queue_reader(url)
        .map(|(db, _)| db)
        .filter(|db| *db != database);
    let whose = match (here, elsewhere) {
        (true, _) => "another S3 sync of this database".to_string(),
        (false, Some(db)) => format!(
            "an S3 sync of database \"{}\"",
            crate::worker::database_name(db)
        ),
        (false, None) => return,
    };
    raise(
        ConfigError::new(
            SqlState::DuplicateObject,
            format!("the SQS queue {url} already feeds {whose}"),
        )
        .with_hint(
            "a queue feeds one sync (each deletes the messages it receives): give each sync its own \
             queue, e.g. one per prefix in the bucket's notification configuration",
        ),
    );
}

fn set(id: i32, assignment: &str) {
    Spi::connect_mut(|client| {
        managed(client, id);
        roles::as_catalog_owner(|| {
            client
                .update(
                    &format!("UPDATE ai.s3_sync SET {assignment} WHERE id = $1"),
                    None,
                    &[id.into()],
                )
                .or_raise()
        });
    });
    crate::api::wake::wake_worker_at_commit();
}
