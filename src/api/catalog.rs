//! The parts of the SQL surface written in SQL: the catalog tables first, and last the
//! functions and views built on the Rust functions.

pgrx::extension_sql_file!("../sql/catalog.sql", name = "catalog", bootstrap);
pgrx::extension_sql_file!("../sql/management.sql", name = "management", finalize);
