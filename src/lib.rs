//! ai_loader: pgai's vectorizer API, served by a worker inside Postgres.

use pgrx::prelude::*;

/// This library's version: the SQL it serves is the install script of the same version,
/// and a vectorizer's configuration records the version that made its objects.
pub const LIBRARY_VERSION: &str = env!("CARGO_PKG_VERSION");

mod api;
mod catalog;
mod errors;
mod gucs;
mod interrupts;
mod roles;
mod utility;
mod worker;

pgrx::pg_module_magic!(name, version);

/// Loaded by the postmaster through `shared_preload_libraries`, and only so: the
/// worker that serves the vectorizers is registered here.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // SAFETY: a plain flag the postmaster sets while it preloads libraries.
    if unsafe { !pg_sys::process_shared_preload_libraries_in_progress } {
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "ai_loader must be loaded via shared_preload_libraries",
            "_PG_init",
        )
        .set_hint(
            "add ai_loader to shared_preload_libraries in postgresql.conf \
             (shared_preload_libraries = 'ai_loader') and restart the server",
        )
        .report(PgLogLevel::ERROR);
    }
    gucs::init();
    worker::init();
    utility::init();
    worker::register();
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;
    use serde_json::json;

    fn setup() {
        Spi::run(
            "CREATE TABLE public.doc (id bigserial PRIMARY KEY, title text, uri text NOT NULL, n int);
             INSERT INTO public.doc (title, uri) VALUES ('a', 's3://b/a.md'), ('b', 's3://b/b.md');",
        )
        .unwrap();
    }

    fn create() -> i32 {
        Spi::get_one::<i32>(
            "SELECT ai.create_vectorizer('public.doc'::regclass,
                 loading => ai.loading_column('uri'),
                 embedding => ai.embedding_local(),
                 formatting => ai.formatting_python_template('$title: $chunk'))",
        )
        .unwrap()
        .unwrap()
    }

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap().unwrap()
    }

    /// Rows queued for the vectorizer (ids are not reused across tests: a sequence).
    fn queued(id: i32) -> i64 {
        count(&format!(
            "SELECT ai.vectorizer_queue_pending({id}, exact_count => true)"
        ))
    }

    fn empty_queue(id: i32) {
        Spi::run(&format!(
            "DO $$ BEGIN EXECUTE (SELECT format('TRUNCATE %I.%I', queue_schema, queue_table)
                                    FROM ai.vectorizer WHERE id = {id}); END $$"
        ))
        .unwrap();
    }

    #[pg_test]
    fn builders_return_pgai_json() {
        let j = Spi::get_one::<pgrx::JsonB>(
            "SELECT ai.loading_uri('uri', aws_role_arn => 'arn:aws:iam::123456789012:role/R')",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            j.0,
            json!({"implementation": "uri", "config_type": "loading", "column_name": "uri",
                   "retries": 6, "aws_role_arn": "arn:aws:iam::123456789012:role/R"})
        );
    }

    #[pg_test]
    fn create_records_and_enqueues_existing_rows() {
        setup();
        let id = create();
        assert_eq!(
            Spi::get_one::<String>("SELECT name FROM ai.vectorizer")
                .unwrap()
                .unwrap(),
            "public_doc_embedding_store"
        );
        assert_eq!(queued(id), 2);
        assert_eq!(
            count("SELECT ai.vectorizer_queue_pending('public_doc_embedding_store', true)"),
            2
        );
        // the store's embedding column is real[] without pgvector
        assert_eq!(
            Spi::get_one::<String>(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                 WHERE attrelid = 'public.doc_embedding_store'::regclass AND attname = 'embedding'"
            )
            .unwrap()
            .unwrap(),
            "real[]"
        );
    }

    #[pg_test]
    fn update_enqueues_only_relevant_changes() {
        setup();
        let id = create();
        empty_queue(id);
        Spi::run("UPDATE public.doc SET n = 5").unwrap();
        assert_eq!(queued(id), 0);
        Spi::run("UPDATE public.doc SET title = 'c' WHERE id = 1").unwrap();
        assert_eq!(queued(id), 1);
    }

    #[pg_test]
    #[should_panic(expected = "invalid aws_role_arn \"arn:aws:iam::1:role/x\"")]
    fn bad_arn_is_an_error() {
        Spi::run("SELECT ai.loading_uri('uri', aws_role_arn => 'arn:aws:iam::1:role/x')").unwrap();
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'ai_loader'"]
    }
}
