//! A vectorizer as the worker reads it from `ai.vectorizer`: its objects, typed
//! configuration and the pipeline it runs.

use std::sync::Arc;

use tokio::sync::Semaphore;

use ai_loader_core::chunking::Chunking;
use ai_loader_core::ddl::KeyColumn;
use ai_loader_core::embedding::{Embedding, Purpose};
use ai_loader_core::formatting::Formatting;
use ai_loader_core::indexing::{IndexBuild, Indexing};
use ai_loader_core::loading::Loading;
use ai_loader_core::parsing::Parsing;
use ai_loader_core::queue::VectorizerSql;
use ai_loader_core::scheduling::Processing;
use ai_loader_pipeline::batch::{Loader, Pipeline};
use ai_loader_pipeline::embedding;
use ai_loader_pipeline::loading::{LoadError, Loaded, UriLoader};
use futures::future::BoxFuture;
use pgrx::prelude::*;
use serde_json::Value;

use crate::catalog::{self, COLUMNS};
use crate::gucs;

pub struct Vectorizer {
    pub id: i32,
    pub name: String,
    pub sql: VectorizerSql,
    pub loading: Loading,
    pub processing: Processing,
    /// The configuration as stored, to notice a change.
    pub config: Value,
    /// The role that created it, and its OID (none once the role is gone).
    pub owner: String,
    pub owner_oid: Option<pg_sys::Oid>,
    /// The source table's owner now.
    pub source_owner: Option<pg_sys::Oid>,
    /// Whether the owner may still have the server load URIs (a superuser, or a
    /// member of ai_loader_s3_reader).
    pub owner_may_load_uris: bool,
    /// The vector index the worker is to build, and pgvector's schema: none once
    /// built, for `indexing_none`, or without pgvector.
    pub index: Option<(IndexBuild, String)>,
    parsing: Parsing,
    chunking: Chunking,
    formatting: Formatting,
    embedding: Embedding,
}

impl crate::roles::Owned for Vectorizer {
    fn owner_oid(&self) -> Option<pg_sys::Oid> {
        self.owner_oid
    }
    fn describe(&self) -> String {
        format!("vectorizer \"{}\"", self.name)
    }
}

impl Vectorizer {
    /// Whether its model is reached with the server's AWS identity (Bedrock).
    pub fn embeds_with_aws(&self) -> bool {
        self.embedding.uses_aws()
    }

    /// Whether it acts with the server's AWS identity: loading URIs, or Bedrock.
    pub fn uses_aws_identity(&self) -> bool {
        matches!(self.loading, Loading::Uri { .. }) || self.embeds_with_aws()
    }

    /// The pipeline this vectorizer runs, with the provider it names and, for
    /// `loading_uri`, the worker's loader acting with the vectorizer's role.
    pub fn pipeline(&self, uris: &Arc<UriLoader>) -> Result<Arc<Pipeline>, String> {
        let settings = gucs::provider_settings(&self.embedding, Some(Arc::clone(uris)));
        let provider = embedding::provider(&self.embedding, Purpose::Store, &settings)
            .map_err(|e| e.to_string())?;
        let concurrency = self.processing.concurrency().max(1) as usize;
        Ok(Arc::new(Pipeline {
            parsing: self.parsing,
            chunking: self.chunking.clone(),
            formatting: self.formatting.clone(),
            dimensions: self.embedding.dimensions() as usize,
            loading_slots: Arc::new(Semaphore::new(concurrency)),
            request_slots: Arc::new(Semaphore::new(concurrency)),
            limits: gucs::parse_limits(),
            max_document_bytes: gucs::max_object_bytes(),
            provider: provider.into(),
            loader: match &self.loading {
                Loading::Uri { aws_role_arn, .. } => Some(Arc::new(WithRole {
                    loader: Arc::clone(uris),
                    role: aws_role_arn.clone(),
                })),
                Loading::Column { .. } => None,
            },
        }))
    }
}

/// The worker's URI loader, with a vectorizer's `aws_role_arn`.
struct WithRole {
    loader: Arc<UriLoader>,
    role: Option<String>,
}

impl Loader for WithRole {
    fn load<'a>(
        &'a self,
        uri: &'a str,
        etag: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Loaded, LoadError>> {
        Box::pin(self.loader.load(uri, self.role.as_deref(), etag))
    }
}

/// The enabled vectorizers, with what the worker needs to know of their tables now.
fn enabled_sql() -> String {
    format!(
        "
    SELECT {COLUMNS},
           (SELECT pg_catalog.array_agg(pg_catalog.format('%I.%I', n.nspname, t.typname) ORDER BY k.n)
              FROM pg_catalog.jsonb_array_elements(v.source_pk) WITH ORDINALITY AS k(key_column, n)
              JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) o.source AND NOT a.attisdropped
                   AND a.attname OPERATOR(pg_catalog.=) (k.key_column OPERATOR(pg_catalog.->>) 'attname')::pg_catalog.name
              JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
              JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace) AS key_types,
           (SELECT t.typname::pg_catalog.text FROM pg_catalog.pg_attribute a
              JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
             WHERE a.attrelid OPERATOR(pg_catalog.=) o.source AND NOT a.attisdropped
               AND a.attname OPERATOR(pg_catalog.=) (v.config OPERATOR(pg_catalog.->) 'loading'
                   OPERATOR(pg_catalog.->>) 'column_name')::pg_catalog.name) AS loading_type,
           (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a
             WHERE NOT a.attisdropped
               AND a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(emb.embedding_table)
               AND a.attname OPERATOR(pg_catalog.=) emb.embedding_column) AS embedding_type,
           coalesce(r.rolname::pg_catalog.text, pg_catalog.concat('role with OID ', v.owner::pg_catalog.oid)) AS owner,
           ai._may_load_uris(v.owner) AS may_load_uris, r.oid AS owner_oid,
           (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) o.source) AS source_owner,
           EXISTS (SELECT FROM pg_catalog.pg_trigger t
                    WHERE t.tgrelid OPERATOR(pg_catalog.=) o.source
                      AND t.tgfoid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(
                              pg_catalog.format('%I.%I()', v.queue_schema, v.trigger_name))) AS has_trigger,
           EXISTS (SELECT FROM ai.vectorizer_worker_progress p
                    WHERE p.vectorizer_id OPERATOR(pg_catalog.=) v.id
                      AND p.vector_index_built_at IS NOT NULL) AS index_built,
           (SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_extension e
              JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
             WHERE e.extname OPERATOR(pg_catalog.=) 'vector') AS vector_schema,
           EXISTS (SELECT FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(emb.embedding_table)
                      AND a.attname OPERATOR(pg_catalog.=) 'chunk_page' AND NOT a.attisdropped) AS has_pages
      FROM ai.vectorizer v
     CROSS JOIN LATERAL (
           SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', v.source_schema, v.source_table)) AS source) o
     CROSS JOIN LATERAL ai._embeddings(v.source_schema, v.source_table, v.config OPERATOR(pg_catalog.->) 'destination') emb
      LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) v.owner
     WHERE NOT v.disabled
       AND ($1::pg_catalog.int4[] IS NULL OR v.id OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int4[]))
     ORDER BY v.id"
    )
}

/// The enabled vectorizers (of those `among`, when given); those whose objects are
/// missing or whose configuration cannot be read are returned as errors with their id.
pub fn enabled(among: Option<&[i32]>) -> Vec<Result<Vectorizer, (i32, String)>> {
    Spi::connect(|client| {
        let among = among.map(<[i32]>::to_vec);
        let rows = match client.select(&enabled_sql(), None, &[among.into()]) {
            Ok(rows) => rows,
            Err(e) => return vec![Err((0, format!("reading ai.vectorizer: {e}")))],
        };
        rows.map(|row| {
            let id: i32 = row.get_by_name("id").ok().flatten().unwrap_or_default();
            read(&row).map_err(|e| (id, e))
        })
        .collect()
    })
}

fn read(row: &pgrx::spi::SpiHeapTupleData<'_>) -> Result<Vectorizer, String> {
    let recorded = catalog::decode(row)?;
    let text = |name: &str| catalog::text(row, name);
    let loading: Loading = recorded.part("loading")?;
    let formatting: Formatting = recorded.part("formatting")?;
    // Each key column's type by its schema-qualified name, read from the source table
    // (not as recorded: the worker names no type a user could have made since).
    let types: Vec<String> = row
        .get_by_name::<Vec<String>, _>("key_types")
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    if recorded.key.len() != types.len() {
        let names: Vec<&str> = recorded.key.iter().map(|k| k.name.as_str()).collect();
        return Err(format!(
            "a key column of the source ({}) is missing",
            names.join(", ")
        ));
    }
    let key = (recorded.key.iter().zip(types))
        .map(|(k, type_sql)| KeyColumn {
            name: k.name.clone(),
            type_sql,
        })
        .collect();
    let loading_type = text("loading_type").map_err(|_| {
        format!(
            "the loading column \"{}\" or the source table is missing",
            loading.column_name()
        )
    })?;
    // A restore creates triggers last, after every table's data: until then the store
    // may still be filling, and nothing of it may be written.
    if row.get_by_name::<bool, _>("has_trigger").ok().flatten() != Some(true) {
        return Err("the source has no trigger of this vectorizer (a restore in progress?)".into());
    }
    let embedding_type = text("embedding_type")
        .map_err(|_| "the store (or embedding column) is missing".to_string())?;
    let index = match (
        row.get_by_name::<bool, _>("index_built"),
        text("vector_schema"),
    ) {
        (Ok(Some(false)), Ok(vector_schema)) => {
            let indexing: Indexing = recorded.part("indexing")?;
            let (table, column) = recorded.embeddings();
            indexing
                .index_build(table, column)
                .map(|build| (build, vector_schema))
        }
        _ => None,
    };
    Ok(Vectorizer {
        id: recorded.id,
        sql: VectorizerSql {
            id: recorded.id,
            source: recorded.source.clone(),
            key,
            queue: recorded.queue.clone(),
            failed: recorded.failed.clone(),
            target: recorded.destination.clone(),
            loading_column: loading.column_name().to_string(),
            loading_is_bytea: loading_type == "bytea",
            template_columns: formatting.columns().map_err(|e| e.to_string())?,
            etags: matches!(loading, Loading::Uri { .. }),
            embedding_type,
            pages: row.get_by_name::<bool, _>("has_pages").ok().flatten() == Some(true),
        },
        parsing: recorded.part("parsing")?,
        chunking: recorded.part("chunking")?,
        embedding: recorded.part("embedding")?,
        processing: recorded.part("processing")?,
        formatting,
        loading,
        owner: text("owner")?,
        owner_may_load_uris: row
            .get_by_name::<bool, _>("may_load_uris")
            .map_err(|e| e.to_string())?
            .unwrap_or(false),
        owner_oid: (row.get_by_name::<pg_sys::Oid, _>("owner_oid")).map_err(|e| e.to_string())?,
        source_owner: (row.get_by_name::<pg_sys::Oid, _>("source_owner"))
            .map_err(|e| e.to_string())?,
        index,
        name: recorded.name,
        config: recorded.config,
    })
}
