//! Reconcile-time validation of an AnalyticsApp's SQL: the application code is parsed and
//! planned with `tributary-sql` against the in-application streams its inputs create and its
//! reference tables, exactly as the data plane compiles it, so a bad query is reported in the
//! `QueryValid` condition (with its line and column) instead of a crash-looping pod.

use tributary_api::{analytics::SourceSchema, AnalyticsAppSpec};
use tributary_sql::{
    format::parse_sql_type, Application, Column, SqlErrorKind, SqlType, ERROR_STREAM,
};

/// Column every in-application input stream has besides the schema's.
const APPROXIMATE_ARRIVAL_TIME: &str = "APPROXIMATE_ARRIVAL_TIME";

/// Why the application code cannot run, for the `QueryValid` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// CamelCase reason: `SyntaxError`, `UnknownObject`, `TypeError`, `SemanticError` or
    /// `InvalidConfiguration`.
    pub reason: &'static str,
    /// The message, with the position in the code.
    pub message: String,
}

fn columns(schema: &SourceSchema, what: &str) -> Result<Vec<Column>, QueryError> {
    schema
        .record_columns
        .iter()
        .map(|c| {
            parse_sql_type(&c.sql_type)
                .map(|t| Column::new(c.name.clone(), t))
                .ok_or_else(|| QueryError {
                    reason: "InvalidConfiguration",
                    message: format!(
                        "Invalid SqlType '{}' for column '{}' in the {what}.",
                        c.sql_type, c.name
                    ),
                })
        })
        .collect()
}

/// Parses and plans the application code of `spec`; `Ok` means the data plane will accept it.
pub fn validate(spec: &AnalyticsAppSpec) -> Result<(), QueryError> {
    let mut streams = Vec::new();
    for input in &spec.inputs {
        let mut cols = columns(&input.input_schema, "input schema")?;
        cols.push(Column::new(APPROXIMATE_ARRIVAL_TIME, SqlType::Timestamp));
        let count = input
            .input_parallelism
            .as_ref()
            .map(|p| p.count)
            .unwrap_or(1)
            .clamp(1, 64);
        for i in 1..=count {
            streams.push((format!("{}_{i:03}", input.name_prefix), cols.clone()));
        }
    }
    let mut tables = Vec::new();
    for r in &spec.reference_data_sources {
        tables.push((
            r.table_name.clone(),
            columns(&r.reference_schema, "reference schema")?,
        ));
    }
    let code = spec.application_code.as_deref().unwrap_or("");
    let app = Application::with_tables(code, &streams, &tables).map_err(|e| {
        let at = e.pos();
        QueryError {
            reason: match e.kind {
                SqlErrorKind::Syntax => "SyntaxError",
                SqlErrorKind::UnknownObject => "UnknownObject",
                SqlErrorKind::Type => "TypeError",
                SqlErrorKind::Semantic => "SemanticError",
            },
            message: match e.kind {
                // Calcite's syntax messages carry no position; the others start with it.
                SqlErrorKind::Syntax => {
                    format!("At line {}, column {}: {}", at.line, at.column, e.message)
                }
                _ => e.to_string(),
            },
        }
    })?;
    for o in &spec.outputs {
        if o.name != ERROR_STREAM && app.stream(&o.name).is_none() {
            return Err(QueryError {
                reason: "InvalidConfiguration",
                message: format!(
                    "Output {} names in-application stream {}, which the application code does not create.",
                    o.name, o.name
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::analytics_app;

    const GOOD: &str = r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (TICKER VARCHAR(4), PRICE DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
SELECT STREAM TICKER, PRICE FROM "SOURCE_SQL_STREAM_001" WHERE PRICE > 10;
"#;

    #[test]
    fn a_valid_application_passes() {
        assert_eq!(validate(&analytics_app("a", GOOD).spec), Ok(()));
    }

    #[test]
    fn an_unknown_column_is_reported_with_its_position() {
        let code = GOOD.replace("WHERE PRICE", "WHERE PRIZE");
        let e = validate(&analytics_app("a", &code).spec).unwrap_err();
        assert_eq!(e.reason, "UnknownObject");
        assert!(
            e.message.starts_with("From line 3, column "),
            "{}",
            e.message
        );
        assert!(e.message.contains("PRIZE"), "{}", e.message);
    }

    #[test]
    fn a_syntax_error_is_reported_with_its_position() {
        let code = GOOD.replace("SELECT STREAM", "SELEKT STREAM");
        let e = validate(&analytics_app("a", &code).spec).unwrap_err();
        assert_eq!(e.reason, "SyntaxError");
        assert!(
            e.message.starts_with("At line 3, column 1: "),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_unknown_column_in_the_select_list_is_reported_from_its_line() {
        // The application tests/e2e/kind.sh applies.
        let code = "CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\" (TICKER VARCHAR(4));\nCREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\nSELECT STREAM NOPE FROM \"SOURCE_SQL_STREAM_001\";\n";
        let e = validate(&analytics_app("a", code).spec).unwrap_err();
        assert_eq!(e.reason, "UnknownObject");
        assert!(
            e.message.starts_with("From line 3, column 15"),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_output_the_code_does_not_create_is_invalid() {
        let code = GOOD.replace("\"DESTINATION_SQL_STREAM\"", "\"OTHER\"");
        let e = validate(&analytics_app("a", &code).spec).unwrap_err();
        assert_eq!(e.reason, "InvalidConfiguration");
        assert!(e.message.contains("DESTINATION_SQL_STREAM"));
    }
}
