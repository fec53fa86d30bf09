//! `ai.create_vectorizer`'s checks and decisions, given what the catalog says about the
//! source: the resolved configuration and the objects to create. No Postgres here.

use serde_json::{json, Value};

use crate::chunking::Chunking;
use crate::ddl::{KeyColumn, Objects, Target, STORE_COLUMNS};
use crate::destination::{Destination, Names};
use crate::embedding::Embedding;
use crate::error::{ConfigError, Result, SqlState};
use crate::formatting::Formatting;
use crate::ident::qualified;
use crate::indexing::{Indexing, HNSW_MAX_DIMENSIONS};
use crate::loading::Loading;
use crate::parsing::Parsing;
use crate::part::{required, ConfigPart};
use crate::scheduling::{Processing, Scheduling};
use crate::text_indexing::TextIndexing;

/// A column of the source table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub attnum: i16,
    /// `pg_type.typname`, e.g. `text`, `varchar`, `bytea`, `int8`.
    pub type_name: String,
    /// `format_type(atttypid, atttypmod)`, e.g. `character varying(20)`.
    pub type_sql: String,
}

/// The source table as the catalog describes it.
#[derive(Debug, Clone)]
pub struct Source {
    pub schema: String,
    pub table: String,
    pub columns: Vec<Column>,
    /// Primary-key column names in key order; empty when the table has none.
    pub primary_key: Vec<String>,
}

/// The arguments of `ai.create_vectorizer`, configuration parts as given (NULL = None).
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub id: i32,
    pub name: Option<String>,
    pub destination: Option<Value>,
    pub loading: Option<Value>,
    pub parsing: Option<Value>,
    pub embedding: Option<Value>,
    pub chunking: Option<Value>,
    pub indexing: Option<Value>,
    pub formatting: Option<Value>,
    pub scheduling: Option<Value>,
    pub processing: Option<Value>,
    pub text_indexing: Option<Value>,
    pub queue_schema: Option<String>,
    pub queue_table: Option<String>,
    pub grant_to: Vec<String>,
    /// The schema pgvector is installed in, if it is installed in this database.
    pub vector_schema: Option<String>,
    /// Whether the installed catalog has the wake-up for one vectorizer (a library newer
    /// than the catalog, before `ALTER EXTENSION UPDATE`, finds only the other).
    pub wake_by_id: bool,
    /// The extension's version, recorded in the configuration.
    pub version: String,
    /// The largest row the server keeps in a page (see `Objects::inline_row_bytes`).
    pub inline_row_bytes: u32,
}

/// What `create_vectorizer` records and creates.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub config: Value,
    /// pgai's `source_pk`: `[{attnum, pknum, attname, typname}]`.
    pub source_pk: Value,
    pub objects: Objects,
    /// Relations the plan creates, which must not exist yet (schema, name).
    pub new_relations: Vec<(String, String)>,
}

/// Parses an optional part: omitted or NULL means the builder's default.
fn optional<T: ConfigPart>(value: &Option<Value>, default: T) -> Result<T> {
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(v) => T::from_json(v),
    }
}

const LOADABLE_TYPES: &[&str] = &["text", "varchar", "bpchar", "char", "name", "bytea"];

impl Source {
    fn column(&self, name: &str, role: &str) -> Result<&Column> {
        self.columns.iter().find(|c| c.name == name).ok_or_else(|| {
            ConfigError::new(
                SqlState::UndefinedColumn,
                format!(
                    "{role} column \"{name}\" does not exist in table {}",
                    qualified(&self.schema, &self.table)
                ),
            )
            .with_hint(format!(
                "columns of the table: {}",
                self.columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }
}

/// The configuration parts of a request, each given or its builder's default.
struct Parts {
    embedding: Embedding,
    loading: Loading,
    destination: Destination,
    parsing: Parsing,
    chunking: Chunking,
    indexing: Indexing,
    formatting: Formatting,
    scheduling: Scheduling,
    processing: Processing,
    text_indexing: TextIndexing,
}

fn parts(req: &Request) -> Result<Parts> {
    let default_chunking = Chunking::from_json(
        &json!({"implementation": "recursive_character_text_splitter", "config_type": "chunking"}),
    )?;
    Ok(Parts {
        embedding: required(req.embedding.as_ref())?,
        loading: required(req.loading.as_ref())?,
        destination: optional(&req.destination, Destination::default_table())?,
        parsing: optional(&req.parsing, Parsing::Auto)?,
        chunking: optional(&req.chunking, default_chunking)?,
        indexing: optional(&req.indexing, Indexing::Default)?,
        formatting: optional(
            &req.formatting,
            Formatting::PythonTemplate {
                template: "$chunk".into(),
            },
        )?,
        scheduling: optional(&req.scheduling, Scheduling::Default)?,
        processing: optional(
            &req.processing,
            Processing::Default {
                batch_size: None,
                concurrency: None,
            },
        )?,
        text_indexing: optional(&req.text_indexing, TextIndexing::None)?,
    })
}

/// The source's primary-key columns: there is a key, and no column of it is named like
/// a store column.
fn key_columns(source: &Source) -> Result<Vec<&Column>> {
    let source_name = qualified(&source.schema, &source.table);
    if source.primary_key.is_empty() {
        return Err(ConfigError::new(
            SqlState::ObjectNotInPrerequisiteState,
            format!("source table {source_name} has no primary key"),
        )
        .with_hint(format!(
            "add one, e.g. ALTER TABLE {source_name} ADD PRIMARY KEY (id)"
        )));
    }
    let key = (source.primary_key.iter())
        .map(|k| source.column(k, "primary key"))
        .collect::<Result<Vec<_>>>()?;
    if let Some(clash) = key
        .iter()
        .find(|k| STORE_COLUMNS.contains(&k.name.as_str()))
    {
        return Err(ConfigError::new(
            SqlState::DuplicateColumn,
            format!(
                "primary key column \"{}\" of {source_name} has the name of a store column",
                clash.name
            ),
        )
        .with_hint(format!(
            "the store's own columns are {}",
            STORE_COLUMNS.join(", ")
        )));
    }
    Ok(key)
}

/// The loading column: it exists and holds text (or bytea, read as a document).
fn check_loading_column(source: &Source, parts: &Parts) -> Result<()> {
    let column = source.column(parts.loading.column_name(), "loading")?;
    let is_bytea = column.type_name == "bytea";
    if !LOADABLE_TYPES.contains(&column.type_name.as_str()) {
        return Err(ConfigError::new(
            SqlState::DatatypeMismatch,
            format!(
                "loading column \"{}\" is of type {}, not text or bytea",
                column.name, column.type_sql
            ),
        )
        .with_hint("load from a text, varchar, char or bytea column"));
    }
    if matches!(parts.loading, Loading::Uri { .. }) && is_bytea {
        return Err(ConfigError::new(
            SqlState::DatatypeMismatch,
            format!(
                "loading_uri column \"{}\" is bytea, but a URI is text",
                column.name
            ),
        )
        .with_hint("use ai.loading_column() to read documents stored in a bytea column"));
    }
    if matches!(parts.loading, Loading::Column { .. }) && is_bytea && parts.parsing == Parsing::None
    {
        return Err(ConfigError::invalid(format!(
            "parsing_none cannot read the bytea column \"{}\"",
            column.name
        ))
        .with_hint("use parsing => ai.parsing_auto() to turn binary documents into text"));
    }
    if let (Loading::Column { .. }, false, Some(builder)) =
        (&parts.loading, is_bytea, parts.parsing.binary_only())
    {
        return Err(ConfigError::invalid(format!(
            "{builder} reads binary documents, but the column \"{}\" is text",
            column.name
        ))
        .with_hint(
            "use parsing => ai.parsing_auto() for text columns, or load from a bytea column",
        ));
    }
    Ok(())
}

/// The columns whose change re-embeds a row: those feeding the embedding (every column
/// the template names exists). For a document behind a URI, which can change while the
/// URI does not, any change to the row re-queues it (an object whose ETag is the one
/// embedded is then not embedded again).
fn relevant_columns(source: &Source, parts: &Parts) -> Result<Vec<String>> {
    for column in parts.formatting.columns()? {
        source.column(&column, "template")?;
    }
    let columns: Vec<String> = source.columns.iter().map(|c| c.name.clone()).collect();
    relevant(&parts.loading, &parts.formatting, &columns)
}

/// The columns whose change re-embeds a row: the loading column, the template's, and
/// for URIs every column of the source (its other columns may name or describe the
/// object).
pub fn relevant(
    loading: &Loading,
    formatting: &Formatting,
    source_columns: &[String],
) -> Result<Vec<String>> {
    let mut relevant = vec![loading.column_name().to_string()];
    let uri_columns = match loading {
        Loading::Uri { .. } => source_columns,
        Loading::Column { .. } => &[],
    };
    for column in formatting
        .columns()?
        .into_iter()
        .chain(uri_columns.iter().cloned())
    {
        if !relevant.contains(&column) {
            relevant.push(column);
        }
    }
    Ok(relevant)
}

/// An embedding column holds one embedding per row.
fn check_destination(destination: &Destination, chunking: &Chunking) -> Result<()> {
    if matches!(destination, Destination::Column { .. }) && *chunking != Chunking::None {
        return Err(ConfigError::invalid(
            "destination_column stores one embedding per row and needs chunking => ai.chunking_none()",
        )
        .with_hint("use ai.destination_table() to store several chunks per row"));
    }
    Ok(())
}

/// Refuses a column destination whose column the source already has. Checked after the
/// name (as pgai does), so that `if_not_exists` finds the vectorizer that made it.
pub fn check_column_free(source: &Source, plan: &Plan) -> Result<()> {
    let Target::Column(column) = &plan.objects.target else {
        return Ok(());
    };
    if source.columns.iter().any(|c| &c.name == column) {
        return Err(ConfigError::new(
            SqlState::DuplicateColumn,
            format!(
                "column \"{column}\" already exists in {}",
                qualified(&source.schema, &source.table)
            ),
        )
        .with_hint("name a new column for the embedding"));
    }
    Ok(())
}

/// Full text search keeps a `tsvector` of each chunk: there must be a store.
fn check_text_indexing(destination: &Destination, text_indexing: &TextIndexing) -> Result<()> {
    if text_indexing.language().is_some() && matches!(destination, Destination::Column { .. }) {
        return Err(ConfigError::new(
            SqlState::FeatureNotSupported,
            "text_indexing_fts keeps the text of each chunk in a store table, and destination_column has none",
        )
        .with_hint("use destination => ai.destination_table(), or text_indexing => ai.text_indexing_none()"));
    }
    Ok(())
}

/// The index to build: `indexing_default` is HNSW with pgvector, none without; HNSW
/// needs pgvector and at most `HNSW_MAX_DIMENSIONS`. (DiskANN needs pgvectorscale, which
/// may come later, as in pgai: the worker builds the index once it is there.)
/// `create_vectorizer` and `set_scheduling` resolve it.
pub fn resolve_index(indexing: &Indexing, pgvector: bool, dimensions: i32) -> Result<Indexing> {
    let indexing = match indexing {
        Indexing::Default if pgvector => Indexing::hnsw_default(),
        Indexing::Default => Indexing::None,
        i => i.clone(),
    };
    if let Indexing::Hnsw { .. } = indexing {
        if !pgvector {
            return Err(ConfigError::new(
                SqlState::FeatureNotSupported,
                "indexing_hnsw needs the pgvector extension, which is not installed in this database",
            )
            .with_hint("run CREATE EXTENSION vector, or use indexing => ai.indexing_none()"));
        }
        if dimensions > HNSW_MAX_DIMENSIONS {
            return Err(ConfigError::invalid(format!(
                "an HNSW index supports up to {HNSW_MAX_DIMENSIONS} dimensions, the embedding has {dimensions}"
            ))
            .with_hint("use fewer dimensions, or indexing => ai.indexing_none()"));
        }
    }
    Ok(indexing)
}

/// The vectorizer's default name and its target, from its resolved destination.
fn name_and_target(source: &Source, names: Names) -> (String, Target) {
    match names {
        Names::Table { store, view } => (
            format!("{}_{}", store.0, store.1),
            Target::Table {
                store,
                view,
                source_columns: source.columns.iter().map(|c| c.name.clone()).collect(),
            },
        ),
        Names::Column(column) => (
            format!("{}_{}_{column}", source.schema, source.table),
            Target::Column(column),
        ),
    }
}

pub fn plan(req: &Request, source: &Source) -> Result<Plan> {
    let parts = parts(req)?;
    let key = key_columns(source)?;
    check_loading_column(source, &parts)?;
    let relevant = relevant_columns(source, &parts)?;
    let destination = parts.destination.resolve(&source.schema, &source.table);
    check_destination(&destination, &parts.chunking)?;
    check_text_indexing(&destination, &parts.text_indexing)?;
    let indexing = resolve_index(
        &parts.indexing,
        req.vector_schema.is_some(),
        parts.embedding.dimensions(),
    )?;

    let queue_schema = req.queue_schema.clone().unwrap_or_else(|| "ai".into());
    let queue_table =
        (req.queue_table.clone()).unwrap_or_else(|| format!("_vectorizer_q_{}", req.id));
    let failed_table = format!("_vectorizer_q_failed_{}", req.id);
    let mut new_relations = vec![
        (queue_schema.clone(), queue_table.clone()),
        (queue_schema.clone(), failed_table.clone()),
    ];
    let names = destination
        .names()
        .expect("resolve() names every destination");
    if let Names::Table { store, view } = &names {
        new_relations.push(store.clone());
        new_relations.push(view.clone());
    }
    let (name, target) = name_and_target(source, names);
    let name = req.name.clone().unwrap_or(name);
    if name.is_empty() {
        return Err(ConfigError::invalid("vectorizer name must not be empty"));
    }

    let embedding = &parts.embedding;
    let embedding_type = match &req.vector_schema {
        Some(schema) => format!(
            "{}.vector({})",
            crate::ident::quote_ident(schema),
            embedding.dimensions()
        ),
        None => "real[]".to_string(),
    };
    let config = json!({
        "version": req.version,
        "loading": parts.loading.to_json(),
        "parsing": parts.parsing.to_json(),
        "embedding": embedding.to_json(),
        "chunking": parts.chunking.to_json(),
        "indexing": indexing.to_json(),
        "formatting": parts.formatting.to_json(),
        "scheduling": parts.scheduling.to_json(),
        "processing": parts.processing.to_json(),
        "destination": destination.to_json(),
        "text_indexing": parts.text_indexing.to_json(),
    });
    let source_pk = Value::Array(
        key.iter()
            .enumerate()
            .map(|(i, c)| {
                json!({"attnum": c.attnum, "pknum": i + 1, "attname": c.name, "typname": c.type_sql})
            })
            .collect(),
    );
    let objects = Objects {
        wake: req.wake_by_id.then_some(req.id),
        source: (source.schema.clone(), source.table.clone()),
        key: key
            .iter()
            .map(|c| KeyColumn {
                name: c.name.clone(),
                type_sql: c.type_sql.clone(),
            })
            .collect(),
        relevant,
        queue_schema,
        queue_table,
        failed_table,
        trigger_name: format!("_vectorizer_src_trg_{}", req.id),
        embedding_type,
        dimensions: embedding.dimensions(),
        target,
        grant_to: req.grant_to.clone(),
        text_search: parts.text_indexing.language().map(str::to_string),
        inline_row_bytes: req.inline_row_bytes,
    };
    Ok(Plan {
        name,
        config,
        source_pk,
        objects,
        new_relations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relevant_columns_are_the_loaded_and_the_templates_and_for_uris_all() {
        let column = Loading::from_json(
            &json!({"implementation": "column", "config_type": "loading",
                                                "column_name": "body"}),
        )
        .unwrap();
        let uri = Loading::from_json(&json!({"implementation": "uri", "config_type": "loading",
                                             "column_name": "uri"}))
        .unwrap();
        let template = Formatting::from_json(&json!({"implementation": "python_template",
            "config_type": "formatting", "template": "$title: $chunk"}))
        .unwrap();
        let all = ["id".to_string(), "uri".into(), "title".into()];
        assert_eq!(
            relevant(&column, &template, &all).unwrap(),
            ["body", "title"]
        );
        assert_eq!(
            relevant(&uri, &template, &all).unwrap(),
            ["uri", "title", "id"]
        );
    }

    fn col(name: &str, attnum: i16, t: &str) -> Column {
        Column {
            name: name.into(),
            attnum,
            type_name: t.into(),
            type_sql: match t {
                "int8" => "bigint".into(),
                other => other.into(),
            },
        }
    }

    fn source() -> Source {
        Source {
            schema: "public".into(),
            table: "document".into(),
            columns: vec![
                col("id", 1, "int8"),
                col("title", 2, "text"),
                col("uri", 3, "text"),
                col("body", 4, "bytea"),
            ],
            primary_key: vec!["id".into()],
        }
    }

    fn request() -> Request {
        Request {
            id: 7,
            loading: Some(Loading::uri("uri", 6, None).to_json()),
            embedding: Some(json!({"implementation": "local", "config_type": "embedding"})),
            version: "0.1.0".into(),
            ..Default::default()
        }
    }

    fn err(req: &Request, src: &Source) -> ConfigError {
        plan(req, src).unwrap_err()
    }

    #[test]
    fn defaults() {
        let p = plan(&request(), &source()).unwrap();
        assert_eq!(p.name, "public_document_embedding_store");
        assert_eq!(p.config["indexing"]["implementation"], "none");
        assert_eq!(p.config["chunking"]["chunk_size"], 800);
        assert_eq!(p.config["destination"]["view_name"], "document_embedding");
        assert_eq!(p.objects.embedding_type, "real[]");
        assert_eq!(
            p.objects.relevant,
            vec!["uri", "id", "title", "body"],
            "any column, for a URI"
        );
        assert_eq!(
            p.source_pk,
            json!([{"attnum": 1, "pknum": 1, "attname": "id", "typname": "bigint"}])
        );
        assert_eq!(p.new_relations.len(), 4);
    }

    #[test]
    fn pgvector_resolves_default_index() {
        let mut r = request();
        r.vector_schema = Some("public".into());
        let p = plan(&r, &source()).unwrap();
        assert_eq!(p.config["indexing"]["implementation"], "hnsw");
        assert_eq!(p.objects.embedding_type, "\"public\".vector(384)");
    }

    #[test]
    fn required_parts() {
        let mut r = request();
        r.embedding = None;
        let e = err(&r, &source());
        assert_eq!(
            (e.state, e.message.as_str()),
            (
                SqlState::NullValueNotAllowed,
                "embedding configuration is required"
            )
        );
        let mut r = request();
        r.loading = Some(Value::Null);
        assert_eq!(
            err(&r, &source()).message,
            "loading configuration is required"
        );
    }

    #[test]
    fn source_checks() {
        let mut s = source();
        s.primary_key.clear();
        assert_eq!(
            err(&request(), &s).state,
            SqlState::ObjectNotInPrerequisiteState
        );

        let mut r = request();
        r.loading = Some(Loading::uri("nope", 6, None).to_json());
        let e = err(&r, &source());
        assert_eq!(e.state, SqlState::UndefinedColumn);
        assert_eq!(
            e.hint.unwrap(),
            "columns of the table: id, title, uri, body"
        );

        r.loading = Some(Loading::uri("body", 6, None).to_json());
        assert_eq!(err(&r, &source()).state, SqlState::DatatypeMismatch);
        r.loading = Some(Loading::column("id", 6).to_json());
        assert_eq!(err(&r, &source()).state, SqlState::DatatypeMismatch);
        r.loading = Some(Loading::column("body", 6).to_json());
        r.parsing = Some(Parsing::None.to_json());
        assert_eq!(err(&r, &source()).state, SqlState::InvalidParameterValue);
    }

    #[test]
    fn template_columns_feed_the_update_trigger() {
        let mut r = request();
        r.loading = Some(Loading::column("title", 6).to_json());
        r.formatting = Some(
            json!({"implementation": "python_template", "config_type": "formatting",
                                   "template": "$title - $uri: $chunk"}),
        );
        assert_eq!(
            plan(&r, &source()).unwrap().objects.relevant,
            vec!["title", "uri"]
        );
        r.formatting = Some(
            json!({"implementation": "python_template", "config_type": "formatting",
                                   "template": "$author: $chunk"}),
        );
        let e = err(&r, &source());
        assert_eq!(
            e.message,
            "template column \"author\" does not exist in table \"public\".\"document\""
        );
    }

    #[test]
    fn destination_column_needs_chunking_none() {
        let mut r = request();
        r.destination = Some(
            json!({"implementation": "column", "config_type": "destination",
                                    "embedding_column": "emb"}),
        );
        assert!(err(&r, &source()).message.contains("chunking_none"));
        r.chunking = Some(Chunking::None.to_json());
        let p = plan(&r, &source()).unwrap();
        assert_eq!(p.name, "public_document_emb");
        assert_eq!(p.new_relations.len(), 2);
        r.destination = Some(
            json!({"implementation": "column", "config_type": "destination",
                                    "embedding_column": "title"}),
        );
        let p = plan(&r, &source()).unwrap();
        let e = check_column_free(&source(), &p).unwrap_err();
        assert_eq!(e.state, SqlState::DuplicateColumn);
    }

    #[test]
    fn text_indexing_needs_a_store() {
        let fts = json!({"implementation": "fts", "config_type": "text_indexing",
                         "language": "pg_catalog.english"});
        let mut r = request();
        r.text_indexing = Some(fts.clone());
        let p = plan(&r, &source()).unwrap();
        assert_eq!(p.config["text_indexing"], fts);
        let statements = p.objects.destination_statements();
        assert!(statements[0].contains(
            "chunk_tsvector tsvector GENERATED ALWAYS AS \
             (pg_catalog.to_tsvector('pg_catalog.english'::pg_catalog.regconfig, chunk)) STORED"
        ));
        assert_eq!(
            statements.last().unwrap(),
            "CREATE INDEX ON \"public\".\"document_embedding_store\" USING gin (chunk_tsvector)"
        );
        assert_eq!(
            plan(&request(), &source()).unwrap().config["text_indexing"]["implementation"],
            "none"
        );
        r.chunking = Some(Chunking::None.to_json());
        r.destination = Some(
            json!({"implementation": "column", "config_type": "destination",
                                    "embedding_column": "emb"}),
        );
        assert_eq!(err(&r, &source()).state, SqlState::FeatureNotSupported);
    }

    #[test]
    fn hnsw_needs_pgvector() {
        let mut r = request();
        r.indexing = Some(Indexing::hnsw_default().to_json());
        assert_eq!(err(&r, &source()).state, SqlState::FeatureNotSupported);
        r.vector_schema = Some("public".into());
        assert!(plan(&r, &source()).is_ok());
    }
}
