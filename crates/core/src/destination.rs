//! `ai.destination_table` and `ai.destination_column`: where embeddings are stored.

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Result};
use crate::part::ConfigPart;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "implementation", rename_all = "snake_case", deny_unknown_fields)]
pub enum Destination {
    /// A store table `<target>` and a view joining it to the source.
    Table {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        destination: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_schema: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_table: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view_schema: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view_name: Option<String>,
    },
    /// A column of the source table (one chunk per row).
    Column { embedding_column: String },
}

/// Where a resolved destination puts embeddings, every name filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// The store table and the view, each as (schema, name).
    Table {
        store: (String, String),
        view: (String, String),
    },
    /// The embedding column of the source.
    Column(String),
}

impl Destination {
    /// The names of a destination that `resolve` has filled in; `None` before that.
    pub fn names(&self) -> Option<Names> {
        match self {
            Destination::Column { embedding_column } => {
                Some(Names::Column(embedding_column.clone()))
            }
            Destination::Table {
                target_schema: Some(ts),
                target_table: Some(tt),
                view_schema: Some(vs),
                view_name: Some(vn),
                ..
            } => Some(Names::Table {
                store: (ts.clone(), tt.clone()),
                view: (vs.clone(), vn.clone()),
            }),
            Destination::Table { .. } => None,
        }
    }

    pub fn default_table() -> Self {
        Destination::Table {
            destination: None,
            target_schema: None,
            target_table: None,
            view_schema: None,
            view_name: None,
        }
    }

    /// Fills in the names a table destination leaves out: the store
    /// `<source>_embedding_store` and the view `<source>_embedding` in the source's
    /// schema, or `<destination>_store` and `<destination>` when `destination` is given.
    /// The result names all four and no longer needs `destination`.
    pub fn resolve(&self, source_schema: &str, source_table: &str) -> Destination {
        match self {
            Destination::Column { .. } => self.clone(),
            Destination::Table {
                destination,
                target_schema,
                target_table,
                view_schema,
                view_name,
            } => {
                let base = destination
                    .clone()
                    .unwrap_or_else(|| format!("{source_table}_embedding"));
                Destination::Table {
                    destination: None,
                    target_schema: Some(target_schema.clone().unwrap_or(source_schema.into())),
                    target_table: Some(target_table.clone().unwrap_or(format!("{base}_store"))),
                    view_schema: Some(view_schema.clone().unwrap_or(source_schema.into())),
                    view_name: Some(view_name.clone().unwrap_or(base)),
                }
            }
        }
    }
}

impl ConfigPart for Destination {
    const CONFIG_TYPE: &'static str = "destination";
    const BUILDERS: &'static str = "ai.destination_table(…) or ai.destination_column(…)";

    fn validate(&self) -> Result<()> {
        match self {
            Destination::Table {
                destination: Some(_),
                target_table,
                view_name,
                ..
            } if target_table.is_some() || view_name.is_some() => Err(ConfigError::invalid(
                "destination cannot be combined with target_table or view_name",
            )
            .with_hint(
                "destination => 'x' names the store x_store and the view x; or name both yourself",
            )),
            Destination::Column { embedding_column } if embedding_column.is_empty() => {
                Err(ConfigError::invalid("embedding_column must not be empty"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_pgai_names() {
        let d = Destination::default_table().resolve("public", "Doc");
        assert_eq!(
            d.to_json(),
            json!({"implementation": "table", "config_type": "destination",
                   "target_schema": "public", "target_table": "Doc_embedding_store",
                   "view_schema": "public", "view_name": "Doc_embedding"})
        );
        let d = Destination::from_json(
            &json!({"implementation": "table", "config_type": "destination",
                                              "destination": "emb", "target_schema": "s"}),
        )
        .unwrap()
        .resolve("public", "doc");
        assert_eq!(
            d,
            Destination::Table {
                destination: None,
                target_schema: Some("s".into()),
                target_table: Some("emb_store".into()),
                view_schema: Some("public".into()),
                view_name: Some("emb".into()),
            }
        );
    }

    #[test]
    fn destination_excludes_names() {
        let d = Destination::Table {
            destination: Some("a".into()),
            target_schema: None,
            target_table: Some("b".into()),
            view_schema: None,
            view_name: None,
        };
        assert!(d.validate().is_err());
    }
}
