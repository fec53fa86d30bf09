//! The SQL that creates a vectorizer's objects: queue, failed queue, store, view and
//! the source triggers. Every name is quoted here; nothing else builds this SQL.

use crate::catalog::Recorded;
use crate::destination::Names;
use crate::ident::{qualified, quote_ident, quote_literal};
use crate::text_indexing::TSVECTOR_COLUMN;

/// A source primary-key column as the queue and store copy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    pub name: String,
    /// The column's type as `format_type` prints it, e.g. `bigint`, `character varying(20)`.
    pub type_sql: String,
}

/// Where the embeddings go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A store table and a view joining it to the source (its columns, clashes left out).
    Table {
        store: (String, String),
        view: (String, String),
        source_columns: Vec<String>,
    },
    /// A column added to the source table.
    Column(String),
}

/// `prefix"k1", prefix"k2", …`: a key's columns, quoted, for SQL lists.
pub fn key_list(key: &[KeyColumn], prefix: &str) -> String {
    key.iter()
        .map(|k| format!("{prefix}{}", quote_ident(&k.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `left"k1" = right"k1" AND …`: two rows with the same key. With `cast`, the right
/// side's values are text, cast back to the key's types.
pub fn key_match(key: &[KeyColumn], left: &str, right: &str, cast: bool) -> String {
    key.iter()
        .map(|k| {
            let c = quote_ident(&k.name);
            match cast {
                true => format!(
                    "{left}{c} OPERATOR(pg_catalog.=) {right}{c}::{}",
                    k.type_sql
                ),
                false => format!("{left}{c} OPERATOR(pg_catalog.=) {right}{c}"),
            }
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Everything the statements need, names unquoted.
#[derive(Debug, Clone)]
pub struct Objects {
    /// The vectorizer its trigger wakes the worker for; none where the installed
    /// catalog has only the wake-up for every vectorizer (see `TriggerFunction::wake`).
    pub wake: Option<i32>,
    pub source: (String, String),
    pub key: Vec<KeyColumn>,
    /// Columns whose change re-embeds a row: the loading column and the template's.
    pub relevant: Vec<String>,
    pub queue_schema: String,
    pub queue_table: String,
    pub failed_table: String,
    pub trigger_name: String,
    /// The embedding column's type, SQL-ready: `"public".vector(384)` or `real[]`.
    pub embedding_type: String,
    pub dimensions: i32,
    pub target: Target,
    pub grant_to: Vec<String>,
    /// The text search configuration of the store's `tsvector` column, if it has one.
    pub text_search: Option<String>,
    /// The largest `toast_tuple_target` the server allows (its page size less the
    /// page's overhead): the store keeps every row that fits a page in the page.
    pub inline_row_bytes: u32,
}

/// The store's columns the view shows; a source column with one of these names is
/// left out of the view.
pub const VIEW_COLUMNS: &[&str] = &[
    "embedding_uuid",
    "chunk_seq",
    "chunk",
    "embedding",
    "chunk_page",
];
/// All the store's own columns, which a key column may not be named like.
pub const STORE_COLUMNS: &[&str] = &[
    "embedding_uuid",
    "chunk_seq",
    "chunk",
    "embedding",
    "source_etag",
    "chunk_page",
    TSVECTOR_COLUMN,
];

impl Objects {
    fn source(&self) -> String {
        qualified(&self.source.0, &self.source.1)
    }
    fn queue(&self) -> String {
        qualified(&self.queue_schema, &self.queue_table)
    }
    fn failed(&self) -> String {
        qualified(&self.queue_schema, &self.failed_table)
    }
    fn function(&self) -> String {
        qualified(&self.queue_schema, &self.trigger_name)
    }
    fn key_list(&self, prefix: &str) -> String {
        key_list(&self.key, prefix)
    }
    fn key_definitions(&self) -> String {
        self.key
            .iter()
            .map(|k| format!("{} {} NOT NULL", quote_ident(&k.name), k.type_sql))
            .collect::<Vec<_>>()
            .join(", ")
    }
    fn key_match(&self, left: &str, right: &str) -> String {
        key_match(&self.key, left, right, false)
    }
    /// The embedding column's type; without pgvector, `real[]` checked for its length.
    fn embedding_column_type(&self, column: &str) -> String {
        if self.embedding_type == "real[]" {
            format!(
                "real[] CHECK (pg_catalog.cardinality({}) = {})",
                quote_ident(column),
                self.dimensions
            )
        } else {
            self.embedding_type.clone()
        }
    }

    /// The statements, in the order they must run: the destination, the queue, the
    /// triggers. Each group is made with different rights (see `ai._create_vectorizer`).
    pub fn statements(&self) -> Vec<String> {
        let mut out = self.destination_statements();
        out.extend(self.queue_statements());
        out.extend(self.trigger_statements());
        out
    }

    /// The store and its view, or the embedding column on the source.
    pub fn destination_statements(&self) -> Vec<String> {
        match &self.target {
            Target::Table {
                store,
                view,
                source_columns,
            } => {
                let store_q = qualified(&store.0, &store.1);
                let mut select: Vec<String> =
                    VIEW_COLUMNS.iter().map(|c| format!("t.{c}")).collect();
                select.extend(
                    source_columns
                        .iter()
                        .filter(|c| !VIEW_COLUMNS.contains(&c.as_str()))
                        .map(|c| format!("s.{}", quote_ident(c))),
                );
                let tsvector = self.text_search.as_ref().map(|language| {
                    format!(
                        ", {TSVECTOR_COLUMN} tsvector GENERATED ALWAYS AS \
                         (pg_catalog.to_tsvector({}::pg_catalog.regconfig, chunk)) STORED",
                        quote_literal(language)
                    )
                });
                let mut statements = vec![
                    format!(
                        "CREATE TABLE {store_q} (embedding_uuid uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid() PRIMARY KEY, \
                         {}, chunk_seq int4 NOT NULL, chunk text NOT NULL, embedding {} NOT NULL, \
                         source_etag text, chunk_page int4{}, UNIQUE ({}, chunk_seq))",
                        self.key_definitions(),
                        self.embedding_column_type("embedding"),
                        tsvector.unwrap_or_default(),
                        self.key_list("")
                    )];
                statements.extend(store_options(store, self.inline_row_bytes));
                statements.push(format!(
                    "CREATE VIEW {} AS SELECT {} FROM {store_q} t LEFT JOIN {} s ON ({})",
                    qualified(&view.0, &view.1),
                    select.join(", "),
                    self.source(),
                    self.key_match("t.", "s.")
                ));
                if self.text_search.is_some() {
                    // Kept in the row (compressed if need be), not in the TOAST table: a
                    // text search reads it for every candidate chunk.
                    statements.push(format!(
                        "ALTER TABLE {store_q} ALTER COLUMN {TSVECTOR_COLUMN} SET STORAGE MAIN"
                    ));
                    statements.push(format!(
                        "CREATE INDEX ON {store_q} USING gin ({TSVECTOR_COLUMN})"
                    ));
                }
                statements
            }
            Target::Column(column) => vec![format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                self.source(),
                quote_ident(column),
                self.embedding_column_type(column)
            )],
        }
    }

    /// The queue, the failed queue and the trigger function, all in the queue's schema.
    /// The function runs with its owner's rights and is executable by nobody else.
    pub fn queue_statements(&self) -> Vec<String> {
        let mut out = vec![
            format!(
                "CREATE TABLE {} ({}, queued_at timestamptz NOT NULL DEFAULT pg_catalog.now(), \
                 loading_retries int4 NOT NULL DEFAULT 0, loading_retry_after timestamptz)",
                self.queue(),
                self.key_definitions()
            ),
            format!("CREATE INDEX ON {} ({})", self.queue(), self.key_list("")),
            format!(
                "CREATE TABLE {} ({}, created_at timestamptz NOT NULL DEFAULT pg_catalog.now(), \
                 failure_step text NOT NULL DEFAULT '')",
                self.failed(),
                self.key_definitions()
            ),
            format!("CREATE INDEX ON {} ({})", self.failed(), self.key_list("")),
        ];
        out.extend(self.trigger_function().statements(false));
        out
    }

    /// What the source trigger's function needs to know.
    pub fn trigger_function(&self) -> TriggerFunction {
        TriggerFunction {
            wake: self.wake,
            name: (self.queue_schema.clone(), self.trigger_name.clone()),
            key: self.key.clone(),
            relevant: self.relevant.clone(),
            queue: (self.queue_schema.clone(), self.queue_table.clone()),
            failed: (self.queue_schema.clone(), self.failed_table.clone()),
            store: match &self.target {
                Target::Table { store, .. } => Some(store.clone()),
                Target::Column(_) => None,
            },
        }
    }

    /// Gives the queue's objects to `owner`, when another role made them.
    pub fn hand_over_queue(&self, owner: &str) -> Vec<String> {
        let owner = quote_ident(owner);
        vec![
            format!("ALTER TABLE {} OWNER TO {owner}", self.queue()),
            format!("ALTER TABLE {} OWNER TO {owner}", self.failed()),
            format!("ALTER FUNCTION {}() OWNER TO {owner}", self.function()),
        ]
    }

    /// The source's triggers, then the grants of `grant_to`.
    pub fn trigger_statements(&self) -> Vec<String> {
        let mut out = vec![
            format!(
                "CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION {}()",
                quote_ident(&self.trigger_name),
                self.source(),
                self.function()
            ),
            format!(
                "CREATE TRIGGER {} AFTER TRUNCATE ON {} FOR EACH STATEMENT EXECUTE FUNCTION {}()",
                quote_ident(&format!("{}_truncate", self.trigger_name)),
                self.source(),
                self.function()
            ),
        ];
        out.extend(self.grants());
        out
    }

    fn grants(&self) -> Vec<String> {
        if self.grant_to.is_empty() {
            return Vec::new();
        }
        let roles = self
            .grant_to
            .iter()
            .map(|r| {
                if r.eq_ignore_ascii_case("public") {
                    "PUBLIC".to_string()
                } else {
                    quote_ident(r)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut relations = vec![self.source(), self.queue(), self.failed()];
        let mut schemas = vec![&self.source.0, &self.queue_schema];
        if let Target::Table { store, view, .. } = &self.target {
            relations.push(qualified(&store.0, &store.1));
            relations.push(qualified(&view.0, &view.1));
            schemas.extend([&store.0, &view.0]);
        }
        // Everyone has USAGE on schema ai; only its owner may grant it.
        schemas.retain(|s| s.as_str() != "ai");
        schemas.sort();
        schemas.dedup();
        let schemas: Vec<String> = schemas.iter().map(|s| quote_ident(s)).collect();
        vec![
            format!("GRANT USAGE ON SCHEMA {} TO {roles}", schemas.join(", ")),
            format!("GRANT SELECT ON {} TO {roles}", relations.join(", ")),
        ]
    }

    /// Queues every existing source row.
    pub fn enqueue_existing(&self) -> String {
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM {}",
            self.queue(),
            self.key_list(""),
            self.key_list(""),
            self.source()
        )
    }
}

/// A chunk's row stays whole in its page while it fits one: past the default 2 kB
/// target, Postgres would compress the chunk's text and move it to the TOAST table — for
/// every row of 512 dimensions or more, costing the write and every search that reads
/// the text.
pub fn store_options(store: &(String, String), inline_row_bytes: u32) -> Vec<String> {
    let store = qualified(&store.0, &store.1);
    vec![
        format!("ALTER TABLE {store} SET (toast_tuple_target = {inline_row_bytes})"),
        format!("ALTER TABLE {store} ALTER COLUMN embedding SET STORAGE MAIN"),
    ]
}

/// The source trigger's function: what it needs to know of the vectorizer's objects.
#[derive(Debug, Clone)]
pub struct TriggerFunction {
    /// The vectorizer a commit wakes the worker for; none: for every vectorizer, where
    /// the installed catalog is older than the library and has only that wake-up (its
    /// update makes the function again).
    pub wake: Option<i32>,
    pub name: (String, String),
    pub key: Vec<KeyColumn>,
    /// Columns whose change re-embeds a row.
    pub relevant: Vec<String>,
    pub queue: (String, String),
    pub failed: (String, String),
    /// The store, whose chunks of a deleted row go with it; none for an embedding column.
    pub store: Option<(String, String)>,
}

impl TriggerFunction {
    /// The function, made (or with `replace`, made again with the current body), and
    /// its privileges: it runs with its owner's rights and nobody else may call it.
    pub fn statements(&self, replace: bool) -> Vec<String> {
        let name = qualified(&self.name.0, &self.name.1);
        vec![
            format!(
                "CREATE {}FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql VOLATILE SECURITY DEFINER \
                 SET search_path = pg_catalog, pg_temp AS {}",
                if replace { "OR REPLACE " } else { "" },
                quote_literal(&self.body())
            ),
            format!("REVOKE ALL ON FUNCTION {name}() FROM PUBLIC"),
        ]
    }

    /// The trigger: insert enqueues; an update enqueues only when a relevant column
    /// changed, and a key change also drops the old key's embeddings; delete drops the
    /// row's embeddings; truncate empties the store and the queues.
    fn body(&self) -> String {
        let store = self.store.as_ref().map(|s| qualified(&s.0, &s.1));
        let row = |prefix: &str, cols: &mut dyn Iterator<Item = &String>| {
            let list: Vec<String> = cols
                .map(|c| format!("{prefix}{}", quote_ident(c)))
                .collect();
            format!("ROW({})", list.join(", "))
        };
        let key_names: Vec<&String> = self.key.iter().map(|k| &k.name).collect();
        let queue = qualified(&self.queue.0, &self.queue.1);
        let failed = qualified(&self.failed.0, &self.failed.1);
        let delete_old = store
            .as_ref()
            .map(|s| {
                format!(
                    "DELETE FROM {s} WHERE {};",
                    key_match(&self.key, "", "OLD.", false)
                )
            })
            .unwrap_or_default();
        let truncate = match &store {
            Some(s) => format!("TRUNCATE TABLE {s}, {queue}, {failed};"),
            None => format!("TRUNCATE TABLE {queue}, {failed};"),
        };
        format!(
            "BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        {truncate}
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        {delete_old}
        RETURN NULL;
    ELSIF TG_OP = 'UPDATE' THEN
        IF {old_key} IS DISTINCT FROM {new_key} THEN
            {delete_old}
        ELSIF {old_relevant} IS NOT DISTINCT FROM {new_relevant} THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO {queue} ({keys}) VALUES ({new_keys});
    PERFORM ai._wake_worker_at_commit({wake});
    RETURN NULL;
END;",
            old_key = row("OLD.", &mut key_names.iter().copied()),
            new_key = row("NEW.", &mut key_names.iter().copied()),
            old_relevant = row("OLD.", &mut self.relevant.iter()),
            new_relevant = row("NEW.", &mut self.relevant.iter()),
            keys = key_list(&self.key, ""),
            wake = self.wake.map(|id| id.to_string()).unwrap_or_default(),
            new_keys = key_list(&self.key, "NEW."),
        )
    }
}

/// What an upgrade makes again of a vectorizer made by an earlier version: the trigger's
/// function and the store's options, which carry no data.
pub fn refresh_statements(trigger: &TriggerFunction, inline_row_bytes: u32) -> Vec<String> {
    let mut out = trigger.statements(true);
    if let Some(store) = &trigger.store {
        out.extend(store_options(store, inline_row_bytes));
        // Stores of 0.1.0 have no page column.
        out.push(format!(
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS chunk_page int4",
            qualified(&store.0, &store.1)
        ));
    }
    out
}

/// The statements that drop a vectorizer's triggers and queues, and with `drop_all`
/// its store and view (or its embedding column). Objects already gone are skipped; so
/// are the source's, once it is gone (its triggers went with it).
pub fn drop_statements(v: &Recorded, source_exists: bool, drop_all: bool) -> Vec<String> {
    let source = qualified(&v.source.0, &v.source.1);
    let mut out = Vec::new();
    if source_exists {
        for trigger in [
            v.trigger_name.clone(),
            format!("{}_truncate", v.trigger_name),
        ] {
            out.push(format!(
                "DROP TRIGGER IF EXISTS {} ON {source}",
                quote_ident(&trigger)
            ));
        }
    }
    out.extend([
        format!(
            "DROP FUNCTION IF EXISTS {}()",
            qualified(&v.queue.0, &v.trigger_name)
        ),
        format!(
            "DROP TABLE IF EXISTS {}, {}",
            qualified(&v.queue.0, &v.queue.1),
            qualified(&v.failed.0, &v.failed.1)
        ),
    ]);
    if drop_all {
        match &v.destination {
            Names::Table { store, view } => {
                out.push(format!(
                    "DROP VIEW IF EXISTS {}",
                    qualified(&view.0, &view.1)
                ));
                out.push(format!(
                    "DROP TABLE IF EXISTS {}",
                    qualified(&store.0, &store.1)
                ));
            }
            Names::Column(column) if source_exists => out.push(format!(
                "ALTER TABLE {source} DROP COLUMN IF EXISTS {}",
                quote_ident(column)
            )),
            Names::Column(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(target: Target) -> Objects {
        Objects {
            wake: Some(1),
            source: ("public".into(), "My \"Docs\"".into()),
            key: vec![
                KeyColumn {
                    name: "Tenant".into(),
                    type_sql: "text".into(),
                },
                KeyColumn {
                    name: "id".into(),
                    type_sql: "bigint".into(),
                },
            ],
            relevant: vec!["uri".into(), "title".into()],
            queue_schema: "ai".into(),
            queue_table: "_vectorizer_q_1".into(),
            failed_table: "_vectorizer_q_failed_1".into(),
            trigger_name: "_vectorizer_src_trg_1".into(),
            embedding_type: "real[]".into(),
            dimensions: 3,
            target,
            grant_to: vec!["public".into(), "Reader".into()],
            text_search: None,
            inline_row_bytes: 8160,
        }
    }

    #[test]
    fn table_target() {
        let o = objects(Target::Table {
            store: ("public".into(), "My \"Docs\"_embedding_store".into()),
            view: ("public".into(), "My \"Docs\"_embedding".into()),
            source_columns: vec!["Tenant".into(), "id".into(), "chunk".into(), "title".into()],
        });
        let s = o.statements();
        assert_eq!(
            s[0],
            "CREATE TABLE \"public\".\"My \"\"Docs\"\"_embedding_store\" (embedding_uuid uuid NOT NULL \
             DEFAULT pg_catalog.gen_random_uuid() PRIMARY KEY, \"Tenant\" text NOT NULL, \"id\" bigint NOT NULL, \
             chunk_seq int4 NOT NULL, chunk text NOT NULL, embedding real[] CHECK (pg_catalog.cardinality(\"embedding\") = 3) \
             NOT NULL, source_etag text, chunk_page int4, UNIQUE (\"Tenant\", \"id\", chunk_seq))"
        );
        assert_eq!(
            s[1],
            "ALTER TABLE \"public\".\"My \"\"Docs\"\"_embedding_store\" SET (toast_tuple_target = 8160)"
        );
        assert_eq!(
            s[3],
            "CREATE VIEW \"public\".\"My \"\"Docs\"\"_embedding\" AS SELECT t.embedding_uuid, t.chunk_seq, t.chunk, \
             t.embedding, t.chunk_page, s.\"Tenant\", s.\"id\", s.\"title\" FROM \"public\".\"My \"\"Docs\"\"_embedding_store\" t \
             LEFT JOIN \"public\".\"My \"\"Docs\"\"\" s ON (t.\"Tenant\" OPERATOR(pg_catalog.=) s.\"Tenant\" \
             AND t.\"id\" OPERATOR(pg_catalog.=) s.\"id\")"
        );
        let function = s.iter().find(|x| x.starts_with("CREATE FUNCTION")).unwrap();
        assert!(function.contains("SECURITY DEFINER SET search_path = pg_catalog, pg_temp"));
        assert!(s.contains(
            &"REVOKE ALL ON FUNCTION \"ai\".\"_vectorizer_src_trg_1\"() FROM PUBLIC".to_string()
        ));
        assert_eq!(
            o.hand_over_queue("al\"ice"),
            [
                "ALTER TABLE \"ai\".\"_vectorizer_q_1\" OWNER TO \"al\"\"ice\"",
                "ALTER TABLE \"ai\".\"_vectorizer_q_failed_1\" OWNER TO \"al\"\"ice\"",
                "ALTER FUNCTION \"ai\".\"_vectorizer_src_trg_1\"() OWNER TO \"al\"\"ice\"",
            ]
        );
        assert!(function.contains(
            "IF ROW(OLD.\"Tenant\", OLD.\"id\") IS DISTINCT FROM ROW(NEW.\"Tenant\", NEW.\"id\")"
        ));
        assert!(function.contains("ELSIF ROW(OLD.\"uri\", OLD.\"title\") IS NOT DISTINCT FROM ROW(NEW.\"uri\", NEW.\"title\")"));
        assert!(function.contains("TRUNCATE TABLE \"public\".\"My \"\"Docs\"\"_embedding_store\", \"ai\".\"_vectorizer_q_1\", \"ai\".\"_vectorizer_q_failed_1\";"));
        assert_eq!(
            s[s.len() - 2..],
            [
                "GRANT USAGE ON SCHEMA \"public\" TO PUBLIC, \"Reader\"",
                "GRANT SELECT ON \"public\".\"My \"\"Docs\"\"\", \"ai\".\"_vectorizer_q_1\", \"ai\".\"_vectorizer_q_failed_1\", \
                 \"public\".\"My \"\"Docs\"\"_embedding_store\", \"public\".\"My \"\"Docs\"\"_embedding\" TO PUBLIC, \"Reader\""
            ]
        );
        assert_eq!(
            o.enqueue_existing(),
            "INSERT INTO \"ai\".\"_vectorizer_q_1\" (\"Tenant\", \"id\") SELECT \"Tenant\", \"id\" FROM \"public\".\"My \"\"Docs\"\"\""
        );
    }

    #[test]
    fn an_upgrade_makes_the_function_and_store_options_again() {
        let o = objects(Target::Table {
            store: ("public".into(), "docs_store".into()),
            view: ("public".into(), "docs".into()),
            source_columns: vec![],
        });
        let made = o.statements();
        let again = refresh_statements(&o.trigger_function(), 8160);
        let function = made
            .iter()
            .find(|x| x.starts_with("CREATE FUNCTION"))
            .unwrap();
        assert_eq!(
            again[0],
            function.replacen("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
        );
        assert_eq!(
            again[1],
            "REVOKE ALL ON FUNCTION \"ai\".\"_vectorizer_src_trg_1\"() FROM PUBLIC"
        );
        assert_eq!(again[2..4], made[1..3]);
        assert_eq!(
            again[4],
            "ALTER TABLE \"public\".\"docs_store\" ADD COLUMN IF NOT EXISTS chunk_page int4"
        );
        assert_eq!(
            again[2],
            "ALTER TABLE \"public\".\"docs_store\" SET (toast_tuple_target = 8160)"
        );
        let column = objects(Target::Column("e".into()));
        assert_eq!(
            refresh_statements(&column.trigger_function(), 8160).len(),
            2
        );
    }

    #[test]
    fn column_target_keeps_rows_on_delete() {
        let o = objects(Target::Column("emb".into()));
        let s = o.statements();
        assert_eq!(
            s[0],
            "ALTER TABLE \"public\".\"My \"\"Docs\"\"\" ADD COLUMN \"emb\" real[] CHECK (pg_catalog.cardinality(\"emb\") = 3)"
        );
        let function = s.iter().find(|x| x.starts_with("CREATE FUNCTION")).unwrap();
        assert!(!function.contains("DELETE FROM"));
        assert!(function.contains(
            "TRUNCATE TABLE \"ai\".\"_vectorizer_q_1\", \"ai\".\"_vectorizer_q_failed_1\";"
        ));
    }

    #[test]
    fn drops_what_it_made() {
        let r = Recorded {
            id: 1,
            name: "doc".into(),
            source: ("public".into(), "doc".into()),
            key: vec![],
            trigger_name: "_vectorizer_src_trg_1".into(),
            queue: ("ai".into(), "_vectorizer_q_1".into()),
            failed: ("ai".into(), "_vectorizer_q_failed_1".into()),
            destination: crate::destination::Destination::default_table()
                .resolve("public", "doc")
                .names()
                .unwrap(),
            config: serde_json::Value::Null,
        };
        assert_eq!(drop_statements(&r, true, false).len(), 4);
        assert_eq!(drop_statements(&r, false, false).len(), 2);
        let all = drop_statements(&r, true, true);
        assert_eq!(all[4], "DROP VIEW IF EXISTS \"public\".\"doc_embedding\"");
        assert_eq!(
            all[5],
            "DROP TABLE IF EXISTS \"public\".\"doc_embedding_store\""
        );
    }

    #[test]
    fn trigger_body_survives_quoting() {
        // A name with a quote and a dollar sign must not end the function's literal.
        let mut o = objects(Target::Column("e".into()));
        o.relevant = vec!["it's $$ x".into()];
        let function = o
            .statements()
            .into_iter()
            .find(|x| x.starts_with("CREATE FUNCTION"))
            .unwrap();
        assert!(function.contains("OLD.\"it''s $$ x\""));
    }
}
