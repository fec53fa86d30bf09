//! The parts of the SQL surface written in SQL: first the incremental files, which make
//! the catalog tables and convert what earlier versions made (each runs once), and last
//! the functions and views built on the Rust functions, made again by every upgrade.
//! `scripts/upgrade_script.py` makes the upgrade scripts from the same files.

pgrx::extension_sql_file!(
    "../sql/incremental/0.1.0.sql",
    name = "incremental_0_1_0",
    bootstrap
);
pgrx::extension_sql_file!(
    "../sql/incremental/0.2.0.sql",
    name = "incremental_0_2_0",
    requires = ["incremental_0_1_0"]
);
pgrx::extension_sql_file!("../sql/management.sql", name = "management", finalize);
