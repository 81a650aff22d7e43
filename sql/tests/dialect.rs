//! The rest of the KDA dialect: offset functions, DISTINCT and ORDER BY per ROWTIME bucket,
//! stream-to-stream joins, log parsing and table functions. Rows go in with a ROWTIME from a
//! virtual clock and the rows out are compared exactly (statistically where AWS's are).

use tributary_sql::time::{format_timestamp, parse_timestamp};
use tributary_sql::{Application, Column, SqlType, Value};

fn at(hms: &str) -> i64 {
    parse_timestamp(&format!("2017-05-01 {hms}")).expect("valid test time")
}

fn trades() -> Vec<(String, Vec<Column>)> {
    vec![(
        "SOURCE_SQL_STREAM_001".into(),
        vec![
            Column::new("TICKER", SqlType::Varchar(4)),
            Column::new("PRICE", SqlType::Double),
        ],
    )]
}

fn trade(app: &mut Application, hms: &str, ticker: &str, price: f64) {
    let row = vec![Value::Varchar(ticker.into()), Value::Double(price)];
    app.insert("SOURCE_SQL_STREAM_001", at(hms), row).unwrap();
}

/// Rows as `HH:MM:SS | v1 | v2`.
fn take(app: &mut Application, stream: &str) -> Vec<String> {
    app.take(stream)
        .into_iter()
        .map(|r| {
            let t = format_timestamp(r.rowtime);
            let mut parts = vec![t[11..19].to_string()];
            parts.extend(r.values.iter().map(|v| {
                if v.is_null() {
                    "NULL".into()
                } else {
                    v.to_text()
                }
            }));
            parts.join(" | ")
        })
        .collect()
}

fn app(code: &str, inputs: Vec<(String, Vec<Column>)>, taps: &[&str]) -> Application {
    let mut app = Application::new(code, &inputs).unwrap_or_else(|e| panic!("{e}"));
    for t in taps {
        app.tap(t).unwrap();
    }
    app
}

fn create_error(code: &str, inputs: Vec<(String, Vec<Column>)>) -> String {
    match Application::new(code, &inputs) {
        Ok(_) => panic!("expected a create-time error"),
        Err(e) => e.to_string(),
    }
}

const OUT: &str = "DESTINATION_SQL_STREAM";

#[test]
fn lag_reads_earlier_rows_of_the_partition_with_a_default() {
    // AWS's LAG example: the change from the ticker's previous price.
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker VARCHAR(4), price DOUBLE, prev DOUBLE, change DOUBLE, two_back DOUBLE);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM ticker, price,
                   LAG(price) OVER w,
                   price - LAG(price, 1, price) OVER w,
                   LAG(price, 2) OVER w
            FROM "SOURCE_SQL_STREAM_001"
            WINDOW w AS (PARTITION BY ticker ROWS 3 PRECEDING);
    "#;
    let mut a = app(code, trades(), &[OUT]);
    trade(&mut a, "11:00:01", "AMZN", 100.0);
    trade(&mut a, "11:00:02", "TGT", 50.0);
    trade(&mut a, "11:00:03", "AMZN", 104.0);
    trade(&mut a, "11:00:04", "AMZN", 101.0);
    assert_eq!(
        take(&mut a, OUT),
        [
            "11:00:01 | AMZN | 100.0 | NULL | 0.0 | NULL",
            "11:00:02 | TGT | 50.0 | NULL | 0.0 | NULL",
            "11:00:03 | AMZN | 104.0 | 100.0 | 4.0 | NULL",
            "11:00:04 | AMZN | 101.0 | 104.0 | -3.0 | 100.0",
        ]
    );
}

#[test]
fn lag_ignore_nulls_and_nth_value_skip_or_count_rows_in_the_window() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (price DOUBLE, last_known DOUBLE, first_in_window DOUBLE, second_in_window DOUBLE);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM price,
                   LAG(price) IGNORE NULLS OVER (RANGE INTERVAL '10' SECOND PRECEDING),
                   NTH_VALUE(price, 1) OVER (RANGE INTERVAL '10' SECOND PRECEDING),
                   NTH_VALUE(price, 2) OVER (RANGE INTERVAL '10' SECOND PRECEDING)
            FROM "SOURCE_SQL_STREAM_001";
    "#;
    let mut a = app(code, trades(), &[OUT]);
    trade(&mut a, "11:00:01", "AMZN", 100.0);
    a.insert(
        "SOURCE_SQL_STREAM_001",
        at("11:00:05"),
        vec![Value::Varchar("AMZN".into()), Value::Null],
    )
    .unwrap();
    trade(&mut a, "11:00:09", "AMZN", 102.0);
    trade(&mut a, "11:00:12", "AMZN", 103.0);
    assert_eq!(
        take(&mut a, OUT),
        [
            "11:00:01 | 100.0 | NULL | 100.0 | NULL",
            "11:00:05 | NULL | 100.0 | 100.0 | NULL",
            "11:00:09 | 102.0 | 100.0 | 100.0 | NULL",
            // 11:00:01 has left the 10-second window.
            "11:00:12 | 103.0 | 102.0 | NULL | 102.0",
        ]
    );
}

#[test]
fn select_distinct_emits_each_row_once_per_rowtime_bucket() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (minute_start TIMESTAMP, ticker VARCHAR(4));
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM DISTINCT FLOOR(s.ROWTIME TO MINUTE) AS minute_start, ticker
            FROM "SOURCE_SQL_STREAM_001" AS s;
    "#;
    let mut a = app(code, trades(), &[OUT]);
    trade(&mut a, "11:00:01", "AMZN", 100.0);
    trade(&mut a, "11:00:02", "TGT", 50.0);
    trade(&mut a, "11:00:30", "AMZN", 101.0);
    trade(&mut a, "11:01:10", "AMZN", 102.0);
    trade(&mut a, "11:01:20", "AMZN", 103.0);
    assert_eq!(
        take(&mut a, OUT),
        [
            "11:00:01 | 2017-05-01 11:00:00.000 | AMZN",
            "11:00:02 | 2017-05-01 11:00:00.000 | TGT",
            "11:01:10 | 2017-05-01 11:01:00.000 | AMZN",
        ]
    );
}

#[test]
fn order_by_sorts_a_tumbling_window_by_its_rowtime_then_by_count() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker VARCHAR(4), trades BIGINT);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM ticker, COUNT(*) AS trade_count
            FROM "SOURCE_SQL_STREAM_001"
            GROUP BY ticker, FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO MINUTE)
            ORDER BY FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO MINUTE), trade_count DESC, ticker;
    "#;
    let mut a = app(code, trades(), &[OUT]);
    trade(&mut a, "11:00:01", "AMZN", 100.0);
    trade(&mut a, "11:00:02", "TGT", 50.0);
    trade(&mut a, "11:00:03", "MSFT", 80.0);
    trade(&mut a, "11:00:04", "TGT", 51.0);
    trade(&mut a, "11:00:05", "MSFT", 81.0);
    trade(&mut a, "11:00:06", "TGT", 52.0);
    a.advance_to(at("11:01:00"));
    assert_eq!(
        take(&mut a, OUT),
        [
            "11:01:00 | TGT | 3",
            "11:01:00 | MSFT | 2",
            "11:01:00 | AMZN | 1"
        ]
    );
}

#[test]
fn order_by_holds_rows_until_their_second_is_over_then_sorts_them() {
    // The anomaly-detection example's `ORDER BY FLOOR(ROWTIME TO SECOND), ANOMALY_SCORE DESC`.
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker VARCHAR(4), price DOUBLE);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM ticker, price FROM "SOURCE_SQL_STREAM_001"
            ORDER BY FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO SECOND), price DESC;
    "#;
    let mut a = app(code, trades(), &[OUT]);
    let row = |p: f64| vec![Value::Varchar("AMZN".into()), Value::Double(p)];
    a.insert("SOURCE_SQL_STREAM_001", at("11:00:01") + 100, row(1.0))
        .unwrap();
    a.insert("SOURCE_SQL_STREAM_001", at("11:00:01") + 200, row(3.0))
        .unwrap();
    a.insert("SOURCE_SQL_STREAM_001", at("11:00:01") + 900, row(2.0))
        .unwrap();
    assert!(take(&mut a, OUT).is_empty(), "the second is not over yet");
    a.insert("SOURCE_SQL_STREAM_001", at("11:00:02") + 10, row(9.0))
        .unwrap();
    assert_eq!(
        take(&mut a, OUT),
        [
            "11:00:01 | AMZN | 3.0",
            "11:00:01 | AMZN | 2.0",
            "11:00:01 | AMZN | 1.0"
        ]
    );
    a.advance_to(at("11:00:03"));
    assert_eq!(take(&mut a, OUT), ["11:00:02 | AMZN | 9.0"]);
}

#[test]
fn count_distinct_counts_each_value_once_per_window() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (tickers BIGINT, trades BIGINT);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM COUNT(DISTINCT ticker), COUNT(*)
            FROM "SOURCE_SQL_STREAM_001"
            GROUP BY FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO MINUTE);
    "#;
    let mut a = app(code, trades(), &[OUT]);
    for (t, s) in [
        ("11:00:01", "AMZN"),
        ("11:00:02", "TGT"),
        ("11:00:03", "AMZN"),
    ] {
        trade(&mut a, t, s, 1.0);
    }
    a.advance_to(at("11:01:00"));
    assert_eq!(take(&mut a, OUT), ["11:01:00 | 2 | 3"]);
}

#[test]
fn order_by_and_distinct_need_a_rowtime_expression_and_lag_an_over_clause() {
    let stream = r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker VARCHAR(4));
"#;
    let err = create_error(
        &format!("{stream}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\nSELECT STREAM ticker FROM \"SOURCE_SQL_STREAM_001\" ORDER BY ticker;"),
        trades(),
    );
    assert_eq!(err, "From line 3, column 60 to line 3, column 65: Streaming ORDER BY must start with a monotonic expression based on ROWTIME, such as ROWTIME or FLOOR(\"S\".ROWTIME TO SECOND)");
    let err = create_error(
        &format!("{stream}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\nSELECT STREAM DISTINCT ticker FROM \"SOURCE_SQL_STREAM_001\";"),
        trades(),
    );
    assert!(
        err.contains("Streaming SELECT DISTINCT needs a monotonic expression based on ROWTIME"),
        "{err}"
    );
    let err = create_error(
        &format!("{stream}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\nSELECT STREAM CAST(LAG(price) AS VARCHAR(4)) FROM \"SOURCE_SQL_STREAM_001\";"),
        trades(),
    );
    assert_eq!(
        err,
        "From line 3, column 20 to line 3, column 29: Function 'LAG' requires an OVER clause"
    );
}

/// One input carrying orders and trades, split into two in-application streams by pumps, as in
/// AWS's two-record-types example, then joined as in the stream-joins concepts page.
fn order_trade_source() -> Vec<(String, Vec<Column>)> {
    vec![(
        "SOURCE_SQL_STREAM_001".into(),
        vec![
            Column::new("RecordType", SqlType::Varchar(8)),
            Column::new("orderId", SqlType::Integer),
            Column::new("ticker", SqlType::Varchar(4)),
            Column::new("amount", SqlType::Integer),
        ],
    )]
}

fn order_trade(app: &mut Application, hms: &str, kind: &str, order: i64, amount: i64) {
    let row = vec![
        Value::Varchar(kind.into()),
        Value::Integer(order),
        Value::Varchar("AMZN".into()),
        Value::Integer(amount),
    ];
    app.insert("SOURCE_SQL_STREAM_001", at(hms), row).unwrap();
}

const SPLIT: &str = r#"
    CREATE OR REPLACE STREAM "OrderStream" ("orderId" INTEGER, "ticker" VARCHAR(4), "amount" INTEGER);
    CREATE OR REPLACE STREAM "TradeStream" ("orderId" INTEGER, "ticker" VARCHAR(4), "amount" INTEGER);
    CREATE OR REPLACE PUMP "ORDER_PUMP" AS INSERT INTO "OrderStream"
        SELECT STREAM "orderId", "ticker", "amount" FROM "SOURCE_SQL_STREAM_001" WHERE "RecordType" = 'Order';
    CREATE OR REPLACE PUMP "TRADE_PUMP" AS INSERT INTO "TradeStream"
        SELECT STREAM "orderId", "ticker", "amount" FROM "SOURCE_SQL_STREAM_001" WHERE "RecordType" = 'Trade';
    CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (order_time TIMESTAMP, order_id INTEGER, ticker VARCHAR(4), order_amount INTEGER, trade_amount INTEGER);
"#;

#[test]
fn a_windowed_stream_join_pairs_each_order_with_trades_of_the_minute_before() {
    // AWS's example 1: "report orders where there are trades within one minute of the order
    // being placed", with the window over TradeStream.
    let code = format!(
        r#"{SPLIT}
        CREATE OR REPLACE PUMP "JOIN_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM ROWTIME AS order_time, o."orderId", o."ticker", o."amount" AS order_amount, t."amount" AS trade_amount
            FROM "OrderStream" AS o
            JOIN "TradeStream" OVER (RANGE INTERVAL '1' MINUTE PRECEDING) AS t
            ON o."orderId" = t."orderId";
    "#
    );
    let mut a = app(&code, order_trade_source(), &[OUT]);
    order_trade(&mut a, "11:00:00", "Trade", 1, 10);
    order_trade(&mut a, "11:00:30", "Trade", 2, 20);
    order_trade(&mut a, "11:00:40", "Trade", 1, 11);
    order_trade(&mut a, "11:00:50", "Order", 1, 100);
    // The trade for order 2 is more than a minute old by now.
    order_trade(&mut a, "11:01:35", "Order", 2, 200);
    order_trade(&mut a, "11:01:36", "Order", 3, 300);
    // A trade after the order: the order has no window, so it is not joined again.
    order_trade(&mut a, "11:01:37", "Trade", 3, 30);
    assert_eq!(
        take(&mut a, OUT),
        [
            "11:00:50 | 2017-05-01 11:00:50.000 | 1 | AMZN | 100 | 10",
            "11:00:50 | 2017-05-01 11:00:50.000 | 1 | AMZN | 100 | 11",
        ]
    );
}

#[test]
fn a_left_outer_stream_join_emits_unmatched_orders_with_nulls() {
    let code = format!(
        r#"{SPLIT}
        CREATE OR REPLACE PUMP "JOIN_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM o.ROWTIME AS order_time, o."orderId", o."ticker", o."amount", t."amount"
            FROM "OrderStream" OVER (RANGE INTERVAL '10' SECOND PRECEDING) AS o
            LEFT OUTER JOIN "TradeStream" AS t
            ON o."orderId" = t."orderId";
    "#
    );
    let mut a = app(&code, order_trade_source(), &[OUT]);
    order_trade(&mut a, "11:00:00", "Order", 1, 100);
    order_trade(&mut a, "11:00:02", "Order", 2, 200);
    // Trades join the orders of the ten seconds before them.
    order_trade(&mut a, "11:00:05", "Trade", 1, 10);
    order_trade(&mut a, "11:00:05", "Trade", 1, 11);
    assert_eq!(
        take(&mut a, OUT),
        [
            "11:00:05 | 2017-05-01 11:00:00.000 | 1 | AMZN | 100 | 10",
            "11:00:05 | 2017-05-01 11:00:00.000 | 1 | AMZN | 100 | 11",
        ]
    );
    // Order 2 leaves the window at 11:00:12 unmatched.
    a.advance_to(at("11:00:20"));
    assert_eq!(
        take(&mut a, OUT),
        ["11:00:12 | 2017-05-01 11:00:02.000 | 2 | AMZN | 200 | NULL"]
    );
}

#[test]
fn a_join_of_two_streams_needs_a_window() {
    let code = format!(
        r#"{SPLIT}CREATE OR REPLACE PUMP "JOIN_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
SELECT STREAM o.ROWTIME, o."orderId", o."ticker", o."amount", t."amount"
FROM "OrderStream" AS o JOIN "TradeStream" AS t ON o."orderId" = t."orderId";"#
    );
    let err = create_error(&code, order_trade_source());
    assert!(
        err.contains("A join of two streams needs a window on at least one side"),
        "{err}"
    );
}
