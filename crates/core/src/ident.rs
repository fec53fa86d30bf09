//! Quoting of SQL identifiers and literals. Every name that reaches generated SQL goes
//! through here: names are always quoted, so spaces, capitals and quotes are safe.

/// `"name"`, with embedded double quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."name"`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// `'text'`, with embedded single quotes doubled; a text holding a backslash becomes
/// `E'…'` with the backslashes doubled too, as Postgres' own `quote_literal` does, so the
/// literal reads the same whatever `standard_conforming_strings` says.
pub fn quote_literal(text: &str) -> String {
    let quoted = text.replace('\'', "''");
    if text.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// Panics unless every operator of `sql` is named with its schema (`OPERATOR(pg_catalog.=)`):
/// a bare `=`, `<`, `>`, `+` or `-` between spaces is resolved through the search path,
/// where a user's schema may come first. (`column = value` in a SET list is an
/// assignment, not an operator.)
#[cfg(test)]
pub fn assert_qualified(sql: &str) {
    for op in [" = ", " < ", " > ", " <= ", " >= ", " <> ", " + ", " - "] {
        for (at, _) in sql.match_indices(op) {
            let before =
                sql[..at].trim_end_matches(|c: char| c.is_alphanumeric() || "_\"".contains(c));
            let before = before.trim_end();
            let assignment = op == " = " && (before.ends_with(',') || before.ends_with("SET"));
            assert!(assignment, "bare operator `{}` in: {sql}", op.trim());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "bare operator `=`")]
    fn a_bare_operator_is_found() {
        assert_qualified("UPDATE t SET a = 1 WHERE b = 2");
    }

    #[test]
    fn assignments_are_not_operators() {
        assert_qualified("UPDATE t SET a = 1,\n  \"b\" = 2 WHERE c OPERATOR(pg_catalog.=) 3");
    }

    #[test]
    fn quotes_every_identifier() {
        assert_eq!(quote_ident("id"), "\"id\"");
        assert_eq!(quote_ident("My Table"), "\"My Table\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(qualified("s p", "T\"x"), "\"s p\".\"T\"\"x\"");
    }

    #[test]
    fn quotes_literals() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
        assert_eq!(quote_literal("it's a\\b"), "E'it''s a\\\\b'");
    }
}
