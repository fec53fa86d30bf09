//! A row of `ai.vectorizer`, decoded once: what the worker, `ai.search`,
//! `ai.vectorizer_embed`, `ai.drop_vectorizer` and the upgrade all read of it.

use serde_json::Value;

use crate::ddl::{KeyColumn, TriggerFunction};
use crate::destination::{Destination, Names};
use crate::formatting::Formatting;
use crate::loading::Loading;
use crate::part::ConfigPart;
use crate::vectorizer::relevant;

/// The columns of `ai.vectorizer` a `Recorded` is made of, as `v`, named as its fields
/// are (names as text).
pub const COLUMNS: &str = "v.id, v.name, v.source_schema::pg_catalog.text AS source_schema, \
     v.source_table::pg_catalog.text AS source_table, v.source_pk, \
     v.trigger_name::pg_catalog.text AS trigger_name, v.queue_schema::pg_catalog.text AS queue_schema, \
     v.queue_table::pg_catalog.text AS queue_table, \
     v.queue_failed_table::pg_catalog.text AS failed_table, v.config";

/// The catalog tables of vectorizers and of S3 syncs.
pub const VECTORIZERS: &str = "ai.vectorizer";
pub const SYNCS: &str = "ai.s3_sync";

/// The version of ai_loader installed in this database (no row if it is not).
pub const INSTALLED_VERSION: &str =
    "SELECT e.extversion::pg_catalog.text FROM pg_catalog.pg_extension e
  WHERE e.extname OPERATOR(pg_catalog.=) 'ai_loader'";

/// Whether vectorizer `$1` is enabled and, if it acts with the server's AWS identity
/// (`$2`), its owner still may (no row once it is dropped).
pub const ENABLED: &str = "SELECT NOT v.disabled AND (NOT $2 OR ai._may_load_uris(v.owner)) \
     FROM ai.vectorizer v WHERE v.id OPERATOR(pg_catalog.=) $1";

/// Locks row `$1` of the catalog table `table` against a concurrent drop, until the end
/// of the transaction; no row once it is gone.
pub fn hold_row(table: &str) -> String {
    format!("SELECT FROM {table} WHERE id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE")
}

/// A vectorizer as its catalog row records it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub id: i32,
    pub name: String,
    pub source: (String, String),
    /// The source's primary key, in order, each column's type as recorded when the
    /// vectorizer was made (`source_pk`'s `typname`).
    pub key: Vec<KeyColumn>,
    pub trigger_name: String,
    pub queue: (String, String),
    pub failed: (String, String),
    /// Where the embeddings go, every name resolved.
    pub destination: Names,
    /// The whole configuration, as stored; `part` reads one part of it.
    pub config: Value,
}

/// The columns of [`COLUMNS`], as a row gives them.
pub struct Columns {
    pub id: i32,
    pub name: String,
    pub source_schema: String,
    pub source_table: String,
    pub source_pk: Value,
    pub trigger_name: String,
    pub queue_schema: String,
    pub queue_table: String,
    pub failed_table: String,
    pub config: Value,
}

impl Recorded {
    pub fn decode(c: Columns) -> Result<Recorded, String> {
        let key = c
            .source_pk
            .as_array()
            .ok_or("source_pk is not an array")?
            .iter()
            .map(|k| {
                Some(KeyColumn {
                    name: k.get("attname")?.as_str()?.to_string(),
                    type_sql: k
                        .get("typname")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or("source_pk lacks attname")?;
        let destination = part::<Destination>(&c.config, "destination")?
            .names()
            .ok_or("the destination has no resolved names")?;
        Ok(Recorded {
            id: c.id,
            name: c.name,
            source: (c.source_schema, c.source_table),
            key,
            trigger_name: c.trigger_name,
            queue: (c.queue_schema.clone(), c.queue_table),
            failed: (c.queue_schema, c.failed_table),
            destination,
            config: c.config,
        })
    }

    /// One part of the configuration (`loading`, `embedding`, …), typed.
    pub fn part<T: ConfigPart>(&self, key: &str) -> Result<T, String> {
        part(&self.config, key)
    }

    /// The table that holds the embeddings (the store, or the source for an embedding
    /// column) and the column.
    pub fn embeddings(&self) -> ((String, String), &str) {
        match &self.destination {
            Names::Table { store, .. } => (store.clone(), "embedding"),
            Names::Column(column) => (self.source.clone(), column.as_str()),
        }
    }

    /// The store, for a vectorizer that has one.
    pub fn store(&self) -> Option<&(String, String)> {
        match &self.destination {
            Names::Table { store, .. } => Some(store),
            Names::Column(_) => None,
        }
    }

    /// The source trigger's function, given the source's columns now (a URI's row is
    /// embedded again when any of them changes).
    /// `wake_by_id`: the installed catalog has the wake-up for one vectorizer.
    pub fn trigger_function(
        &self,
        source_columns: &[String],
        wake_by_id: bool,
    ) -> Result<TriggerFunction, String> {
        let loading: Loading = self.part("loading")?;
        let formatting: Formatting = self.part("formatting")?;
        Ok(TriggerFunction {
            wake: wake_by_id.then_some(self.id),
            name: (self.queue.0.clone(), self.trigger_name.clone()),
            key: self.key.clone(),
            relevant: relevant(&loading, &formatting, source_columns).map_err(|e| e.to_string())?,
            queue: self.queue.clone(),
            failed: self.failed.clone(),
            store: self.store().cloned(),
        })
    }
}

fn part<T: ConfigPart>(config: &Value, key: &str) -> Result<T, String> {
    T::from_json(config.get(key).unwrap_or(&Value::Null)).map_err(|e| format!("{key}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn columns(destination: Value) -> Columns {
        Columns {
            id: 7,
            name: "docs".into(),
            source_schema: "public".into(),
            source_table: "doc".into(),
            source_pk: json!([{"attnum": 1, "pknum": 1, "attname": "id", "typname": "integer"}]),
            trigger_name: "_vectorizer_src_trg_7".into(),
            queue_schema: "ai".into(),
            queue_table: "_vectorizer_q_7".into(),
            failed_table: "_vectorizer_q_failed_7".into(),
            config: json!({
                "version": "0.2.0",
                "destination": destination,
                "loading": {"implementation": "column", "config_type": "loading", "column_name": "body"},
                "formatting": {"implementation": "python_template", "config_type": "formatting",
                               "template": "$title: $chunk"},
            }),
        }
    }

    #[test]
    fn a_store_and_an_embedding_column() {
        let table = Recorded::decode(columns(json!({
            "implementation": "table", "config_type": "destination", "target_schema": "s",
            "target_table": "doc_store", "view_schema": "s", "view_name": "doc_view"})))
        .unwrap();
        assert_eq!(
            table.embeddings(),
            (("s".into(), "doc_store".into()), "embedding")
        );
        assert_eq!(
            table.key,
            [KeyColumn {
                name: "id".into(),
                type_sql: "integer".into()
            }]
        );
        assert_eq!(table.failed, ("ai".into(), "_vectorizer_q_failed_7".into()));
        let trigger = table
            .trigger_function(&["id".into(), "body".into(), "title".into()], true)
            .unwrap();
        assert_eq!(trigger.relevant, ["body", "title"]);
        assert_eq!(trigger.store, Some(("s".into(), "doc_store".into())));
        assert_eq!(trigger.name, ("ai".into(), "_vectorizer_src_trg_7".into()));

        let column = Recorded::decode(columns(json!({
            "implementation": "column", "config_type": "destination", "embedding_column": "emb"})))
        .unwrap();
        assert_eq!(
            column.embeddings(),
            (("public".into(), "doc".into()), "emb")
        );
        assert_eq!(column.store(), None);
    }

    #[test]
    fn every_operator_is_pg_catalogs() {
        for sql in [COLUMNS, INSTALLED_VERSION, ENABLED, &hold_row(VECTORIZERS)] {
            crate::ident::assert_qualified(sql);
        }
    }

    #[test]
    fn a_held_row_is_locked_against_a_drop() {
        assert_eq!(
            hold_row(SYNCS),
            "SELECT FROM ai.s3_sync WHERE id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE"
        );
    }

    #[test]
    fn what_cannot_be_read_says_what() {
        let unresolved = Recorded::decode(columns(
            json!({"implementation": "table", "config_type": "destination"}),
        ));
        assert_eq!(
            unresolved.unwrap_err(),
            "the destination has no resolved names"
        );
        let mut no_key = columns(
            json!({"implementation": "column", "config_type": "destination",
                                        "embedding_column": "emb"}),
        );
        no_key.source_pk = json!([{"attnum": 1}]);
        assert_eq!(
            Recorded::decode(no_key).unwrap_err(),
            "source_pk lacks attname"
        );
    }
}
