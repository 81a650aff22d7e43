//! Application code that KDA would reject is rejected when the application is created, with the
//! position of the mistake and Calcite's wording.

use tributary_sql::{Application, Column, Pos, SqlErrorKind, SqlType};

fn create(code: &str) -> tributary_sql::SqlError {
    let inputs = vec![(
        "SOURCE_SQL_STREAM_001".to_string(),
        vec![
            Column::new("TICKER_SYMBOL", SqlType::Varchar(4)),
            Column::new("PRICE", SqlType::Real),
        ],
    )];
    match Application::new(code, &inputs) {
        Ok(_) => panic!("code was accepted:\n{code}"),
        Err(e) => e,
    }
}

const DEST: &str =
    "CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\" (ticker VARCHAR(4), price DOUBLE);\n";

#[test]
fn malformed_sql_is_a_syntax_error_at_the_offending_token() {
    let e = create(&format!("{DEST}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\nSELECT STREAM ticker_symbol, price FROM \"SOURCE_SQL_STREAM_001\" WHERE > 1;"));
    assert_eq!(e.kind, SqlErrorKind::Syntax);
    assert_eq!(e.pos(), Pos::new(3, 71));
    assert!(
        e.to_string()
            .starts_with("Encountered \">\" at line 3, column 71."),
        "{e}"
    );
}

#[test]
fn an_unknown_column_names_the_column_and_where_it_is() {
    let e = create(&format!("{DEST}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\n  SELECT STREAM ticker_symbol, cost FROM \"SOURCE_SQL_STREAM_001\";"));
    assert_eq!(
        e.to_string(),
        "From line 3, column 32 to line 3, column 35: Column 'COST' not found in any table"
    );
}

#[test]
fn an_unknown_stream_is_an_object_not_found_error() {
    let e = create(&format!("{DEST}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\n  SELECT STREAM ticker_symbol, price FROM \"SOURCE_SQL_STREAM_002\";"));
    assert_eq!(e.kind, SqlErrorKind::UnknownObject);
    assert_eq!(e.message, "Object 'SOURCE_SQL_STREAM_002' not found");
    assert_eq!(e.pos(), Pos::new(3, 43));
}

#[test]
fn inserting_text_into_a_numeric_column_is_a_type_error() {
    let e = create(&format!("{DEST}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\n  SELECT STREAM ticker_symbol, ticker_symbol FROM \"SOURCE_SQL_STREAM_001\";"));
    assert_eq!(e.kind, SqlErrorKind::Type);
    assert_eq!(e.message, "Cannot assign to target field 'PRICE' of type DOUBLE from source field 'TICKER_SYMBOL' of type VARCHAR(4)");
}

#[test]
fn a_select_list_of_the_wrong_width_is_rejected() {
    let e = create(&format!("{DEST}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\n  SELECT STREAM ticker_symbol FROM \"SOURCE_SQL_STREAM_001\";"));
    assert_eq!(
        e.message,
        "Number of INSERT target columns (2) does not equal number of source items (1)"
    );
}

#[test]
fn a_where_clause_that_is_not_a_condition_is_rejected() {
    let e = create(&format!("{DEST}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\n  SELECT STREAM ticker_symbol, price FROM \"SOURCE_SQL_STREAM_001\" WHERE price * 2;"));
    assert_eq!(e.message, "WHERE clause must be a condition");
    assert_eq!(e.pos(), Pos::new(3, 73));
}

#[test]
fn quoted_names_are_case_sensitive_like_kda() {
    let e = create(&format!("{DEST}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"destination_sql_stream\"\n  SELECT STREAM ticker_symbol, price FROM \"SOURCE_SQL_STREAM_001\";"));
    assert_eq!(e.message, "Object 'destination_sql_stream' not found");
}

#[test]
fn pumps_that_feed_their_own_input_are_rejected() {
    let e = create(
        "CREATE STREAM A (x INTEGER); CREATE STREAM B (x INTEGER);\n\
         CREATE PUMP P1 AS INSERT INTO B SELECT STREAM x FROM A;\n\
         CREATE PUMP P2 AS INSERT INTO A SELECT STREAM x FROM B;",
    );
    assert!(e.message.contains("cycle"), "{e}");
}

#[test]
fn error_stream_cannot_be_queried() {
    let e = create(&format!("{DEST}CREATE PUMP P AS INSERT INTO \"DESTINATION_SQL_STREAM\" SELECT STREAM ERROR_NAME, 1.0 FROM \"error_stream\";"));
    assert!(e.message.contains("cannot be read"), "{e}");
}

#[test]
fn joining_two_streams_without_a_window_is_rejected_at_the_join() {
    let e = create(&format!(
        "{DEST}CREATE STREAM S2 (ticker VARCHAR(4));\nCREATE PUMP P AS INSERT INTO \"DESTINATION_SQL_STREAM\"\n  SELECT STREAM s.ticker_symbol, s.price FROM \"SOURCE_SQL_STREAM_001\" AS s JOIN S2 ON s.ticker_symbol = S2.ticker;"
    ));
    assert_eq!(e.to_string(), "From line 4, column 81 to line 4, column 113: A join of two streams needs a window on at least one side, such as JOIN \"S\" OVER (RANGE INTERVAL '1' MINUTE PRECEDING) AS s");
}

#[test]
fn an_ambiguous_column_in_a_join_must_be_qualified() {
    let inputs = vec![(
        "SOURCE_SQL_STREAM_001".to_string(),
        vec![Column::new("TICKER", SqlType::Varchar(4))],
    )];
    let tables = vec![(
        "T".to_string(),
        vec![Column::new("TICKER", SqlType::Varchar(4))],
    )];
    let code = "CREATE STREAM D (t VARCHAR(4));\nCREATE PUMP P AS INSERT INTO D SELECT STREAM ticker FROM SOURCE_SQL_STREAM_001 LEFT JOIN T ON SOURCE_SQL_STREAM_001.ticker = T.ticker;";
    let e = Application::with_tables(code, &inputs, &tables)
        .err()
        .expect("ambiguous column accepted");
    assert_eq!(e.message, "Column 'TICKER' is ambiguous");
    assert_eq!(e.pos(), Pos::new(2, 46));
}
