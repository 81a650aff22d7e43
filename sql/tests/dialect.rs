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

/// A small deterministic generator for test data.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

#[test]
fn top_k_items_tumbling_reports_the_most_frequent_tickers_per_window() {
    // AWS's TOP_K_ITEMS_TUMBLING example: the five most traded tickers per minute.
    let code = r#"
        CREATE OR REPLACE STREAM DESTINATION_SQL_STREAM ("TICKER" VARCHAR(4), "MOST_FREQUENT_VALUES" BIGINT);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM * FROM TABLE (TOP_K_ITEMS_TUMBLING(
                CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"),
                'TICKER',  -- name of column in single quotes
                5,         -- number of the most frequently occurring values
                60         -- tumbling window size in seconds
            ));
    "#;
    let mut a = app(code, trades(), &[OUT]);
    let mix = [
        ("AMZN", 7),
        ("TGT", 3),
        ("MSFT", 5),
        ("AAPL", 1),
        ("QXL", 2),
        ("WMT", 4),
    ];
    let mut second = 0;
    for round in 0..7 {
        for (ticker, n) in mix {
            if round < n {
                trade(&mut a, &format!("11:00:{second:02}"), ticker, 1.0);
                second += 1;
            }
        }
    }
    trade(&mut a, "11:01:05", "AAPL", 1.0);
    assert_eq!(
        take(&mut a, OUT),
        [
            "11:01:00 | AMZN | 7",
            "11:01:00 | MSFT | 5",
            "11:01:00 | WMT | 4",
            "11:01:00 | TGT | 3",
            "11:01:00 | QXL | 2",
        ]
    );
    a.advance_to(at("11:02:00"));
    assert_eq!(take(&mut a, OUT), ["11:02:00 | AAPL | 1"]);
}

#[test]
fn count_distinct_items_tumbling_is_exact_for_small_windows_and_close_for_large_ones() {
    let code = r#"
        CREATE OR REPLACE STREAM DESTINATION_SQL_STREAM (NUMBER_OF_DISTINCT_ITEMS BIGINT);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM * FROM TABLE(COUNT_DISTINCT_ITEMS_TUMBLING(
                CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"), 'TICKER', 60));
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
    assert_eq!(take(&mut a, OUT), ["11:01:00 | 2"]);

    // 30,000 distinct values (each twice) in one window: HyperLogLog, within 3 %.
    let code = r#"
        CREATE OR REPLACE STREAM DESTINATION_SQL_STREAM (NUMBER_OF_DISTINCT_ITEMS BIGINT);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM NUMBER_OF_DISTINCT_ITEMS FROM TABLE(COUNT_DISTINCT_ITEMS_TUMBLING(
                CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"), 'PRICE', 60));
    "#;
    let mut a = app(code, trades(), &[OUT]);
    let start = at("11:00:00");
    for i in 0..60_000 {
        let row = vec![
            Value::Varchar("AMZN".into()),
            Value::Double((i % 30_000) as f64),
        ];
        a.insert("SOURCE_SQL_STREAM_001", start + i / 1_001, row)
            .unwrap();
    }
    a.advance_to(at("11:01:00"));
    let rows = a.take(OUT);
    assert_eq!(rows.len(), 1);
    let Value::Integer(n) = rows[0].values[0] else {
        panic!("{rows:?}")
    };
    assert!((29_100..=30_900).contains(&n), "estimate {n}");
}

fn heart_rate_source() -> Vec<(String, Vec<Column>)> {
    vec![(
        "SOURCE_SQL_STREAM_001".into(),
        vec![
            Column::new("heartRate", SqlType::Integer),
            Column::new("rateType", SqlType::Varchar(20)),
        ],
    )]
}

#[test]
fn random_cut_forest_scores_outlying_heart_rates_well_above_normal_ones() {
    // AWS's anomaly-detection example: heart rates, 99 % normal (60-100) and 1 % high
    // (150-200), scored with AWS's parameters and sorted per second by score.
    let code = r#"
        CREATE OR REPLACE STREAM "TEMP_STREAM" ("heartRate" INTEGER, "rateType" VARCHAR(20), "ANOMALY_SCORE" DOUBLE);
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" ("heartRate" INTEGER, "rateType" VARCHAR(20), "ANOMALY_SCORE" DOUBLE);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "TEMP_STREAM"
            SELECT STREAM "heartRate", "rateType", ANOMALY_SCORE
            FROM TABLE(RANDOM_CUT_FOREST(
                CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"), 100, 256, 100000, 1));
        CREATE OR REPLACE PUMP "OUTPUT_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM * FROM "TEMP_STREAM"
            ORDER BY FLOOR("TEMP_STREAM".ROWTIME TO SECOND), ANOMALY_SCORE DESC;
    "#;
    let mut a = app(code, heart_rate_source(), &[OUT]);
    let mut rng = Lcg(7);
    let start = at("11:00:00");
    for i in 0..3_000 {
        let (rate, kind) = if rng.unit() < 0.01 {
            (rng.between(150.0, 200.0), "HIGH")
        } else {
            (rng.between(60.0, 100.0), "NORMAL")
        };
        let row = vec![Value::Integer(rate as i64), Value::Varchar(kind.into())];
        a.insert("SOURCE_SQL_STREAM_001", start + i * 100, row)
            .unwrap();
    }
    a.advance_to(start + 400_000);
    let rows = a.take(OUT);
    assert_eq!(rows.len(), 3_000);
    // Within each second the highest score comes first.
    for pair in rows.windows(2) {
        if pair[0].rowtime / 1000 == pair[1].rowtime / 1000 {
            assert!(pair[0].values[2].as_f64() >= pair[1].values[2].as_f64());
        }
    }
    let mean = |kind: &str| {
        let scores: Vec<f64> = rows
            .iter()
            .skip(500) // past the warm-up
            .filter(|r| r.values[1].as_str() == Some(kind))
            .map(|r| r.values[2].as_f64().unwrap())
            .collect();
        assert!(!scores.is_empty());
        scores.iter().sum::<f64>() / scores.len() as f64
    };
    let (high, normal) = (mean("HIGH"), mean("NORMAL"));
    assert!(
        high > 2.0 * normal,
        "HIGH scores {high} are not clearly above NORMAL {normal}"
    );
    assert!(normal > 0.3 && normal < 1.5, "NORMAL mean {normal}");
}

#[test]
fn random_cut_forest_with_explanation_attributes_the_score_to_columns() {
    // AWS's blood-pressure example with `100, 256, 100000, 1, true`.
    let inputs = vec![(
        "SOURCE_SQL_STREAM_001".to_string(),
        vec![
            Column::new("Systolic", SqlType::Integer),
            Column::new("Diastolic", SqlType::Integer),
            Column::new("BloodPressureLevel", SqlType::Varchar(20)),
        ],
    )];
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" ("Systolic" INTEGER, "Diastolic" INTEGER, "BloodPressureLevel" VARCHAR(20), ANOMALY_SCORE DOUBLE, ANOMALY_EXPLANATION VARCHAR(512));
        CREATE OR REPLACE PUMP "OUTPUT_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM "Systolic", "Diastolic", "BloodPressureLevel", ANOMALY_SCORE, ANOMALY_EXPLANATION
            FROM TABLE(RANDOM_CUT_FOREST_WITH_EXPLANATION(
                CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"), 100, 256, 100000, 1, true));
    "#;
    let mut a = app(code, inputs, &[OUT]);
    let mut rng = Lcg(11);
    let start = at("11:00:00");
    for i in 0..1_500 {
        let (s, d, level) = if i > 600 && i % 100 == 0 {
            (rng.between(180.0, 200.0), rng.between(80.0, 90.0), "HIGH")
        } else {
            (rng.between(90.0, 120.0), rng.between(60.0, 80.0), "NORMAL")
        };
        let row = vec![
            Value::Integer(s as i64),
            Value::Integer(d as i64),
            Value::Varchar(level.into()),
        ];
        a.insert("SOURCE_SQL_STREAM_001", start + i * 100, row)
            .unwrap();
    }
    let rows = a.take(OUT);
    assert_eq!(rows.len(), 1_500);
    for r in rows.iter().skip(600) {
        let score = r.values[3].as_f64().unwrap();
        let e: serde_json::Value =
            serde_json::from_str(r.values[4].as_str().unwrap()).expect("explanation is JSON");
        let part =
            |col: &str, field: &str| -> f64 { e[col][field].as_str().unwrap().parse().unwrap() };
        let sum = part("Systolic", "ATTRIBUTION_SCORE") + part("Diastolic", "ATTRIBUTION_SCORE");
        assert!((sum - score).abs() < 0.001, "{sum} vs {score}: {e}");
        if r.values[2].as_str() == Some("HIGH") {
            // Systolic is the outlying column, and it is high.
            assert!(
                part("Systolic", "ATTRIBUTION_SCORE") > part("Diastolic", "ATTRIBUTION_SCORE"),
                "{e}"
            );
            assert_eq!(e["Systolic"]["DIRECTION"], "HIGH", "{e}");
            let strength = part("Systolic", "STRENGTH");
            assert!((0.0..=1.0).contains(&strength));
        }
    }
}

#[test]
fn hotspots_finds_the_dense_square_among_scattered_points() {
    // AWS's hotspots example: (x, y) points, most scattered over [0, 10]², some packed into a
    // small square; `HOTSPOTS(cursor, 1000, 0.2, 17)`.
    let inputs = vec![(
        "SOURCE_SQL_STREAM_001".to_string(),
        vec![
            Column::new("x", SqlType::Double),
            Column::new("y", SqlType::Double),
            Column::new("is_hot", SqlType::Varchar(4)),
        ],
    )];
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" ("x" DOUBLE, "y" DOUBLE, "is_hot" VARCHAR(4), HOTSPOTS_RESULT VARCHAR(10000));
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT "x", "y", "is_hot", HOTSPOTS_RESULT
            FROM TABLE(HOTSPOTS(CURSOR(SELECT STREAM "x", "y", "is_hot" FROM "SOURCE_SQL_STREAM_001"), 1000, 0.2, 17));
    "#;
    let mut a = app(code, inputs, &[OUT]);
    let mut rng = Lcg(3);
    let start = at("11:00:00");
    for i in 0..1_200 {
        let (x, y, hot) = if i % 10 == 0 {
            (rng.between(5.0, 5.5), rng.between(5.0, 5.5), "Y")
        } else {
            (rng.between(0.0, 10.0), rng.between(0.0, 10.0), "N")
        };
        let row = vec![
            Value::Double(x),
            Value::Double(y),
            Value::Varchar(hot.into()),
        ];
        a.insert("SOURCE_SQL_STREAM_001", start + i * 10, row)
            .unwrap();
    }
    let rows = a.take(OUT);
    assert_eq!(rows.len(), 1_200);
    let last: serde_json::Value =
        serde_json::from_str(rows.last().unwrap().values[3].as_str().unwrap()).unwrap();
    let spots = last["hotspots"].as_array().expect("a hotspots array");
    assert!(!spots.is_empty(), "{last}");
    let top = &spots[0];
    let v = |k: &str, i: usize| top[k][i].as_f64().unwrap();
    // The densest hotspot is the square (give or take a scan radius) and much denser than
    // the window on average.
    for d in 0..2 {
        assert!(
            v("minValues", d) >= 4.6 && v("minValues", d) <= 5.1,
            "{top}"
        );
        assert!(
            v("maxValues", d) >= 5.4 && v("maxValues", d) <= 5.9,
            "{top}"
        );
    }
    assert!(top["density"].as_f64().unwrap() > 5.0, "{top}");
}

#[test]
fn table_function_parameters_are_checked_when_the_application_is_created() {
    let dest = "CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\" (t VARCHAR(4), n BIGINT);\n";
    let err = create_error(
        &format!("{dest}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\nSELECT STREAM * FROM TABLE(TOP_K_ITEMS_TUMBLING(CURSOR(SELECT STREAM * FROM \"SOURCE_SQL_STREAM_001\"), 'ticker', 5, 60));"),
        trades(),
    );
    assert_eq!(
        err,
        "From line 3, column 103 to line 3, column 110: Column 'ticker' not found in any table; did you mean 'TICKER'?"
    );
    let err = create_error(
        &format!("{dest}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\nSELECT STREAM * FROM TABLE(TOP_K_ITEMS_TUMBLING(CURSOR(SELECT STREAM * FROM \"SOURCE_SQL_STREAM_001\"), 'TICKER', 5, 7200));"),
        trades(),
    );
    assert!(
        err.ends_with(
            "Parameter 'windowSize' of 'TOP_K_ITEMS_TUMBLING' must be between 1 and 3600, not 7200"
        ),
        "{err}"
    );
    let err = create_error(
        &format!("{dest}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\nSELECT STREAM * FROM TABLE(RANDOM_CUT_FOREST(CURSOR(SELECT STREAM \"TICKER\" FROM \"SOURCE_SQL_STREAM_001\")));"),
        trades(),
    );
    assert!(
        err.ends_with("'RANDOM_CUT_FOREST' needs at least one numeric column in its cursor"),
        "{err}"
    );
    let err = create_error(
        &format!("{dest}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\nSELECT STREAM * FROM TABLE(NO_SUCH_FUNCTION(CURSOR(SELECT STREAM * FROM \"SOURCE_SQL_STREAM_001\"), 1));"),
        trades(),
    );
    assert_eq!(err, "From line 3, column 28 to line 3, column 43: No match found for function signature NO_SUCH_FUNCTION(<CURSOR>, ...)");
}

fn log_source() -> Vec<(String, Vec<Column>)> {
    vec![(
        "SOURCE_SQL_STREAM_001".into(),
        vec![Column::new("LOGENTRY", SqlType::Varchar(512))],
    )]
}

fn log_lines(code: &str, lines: &[&str]) -> Vec<String> {
    let mut a = app(code, log_source(), &[OUT]);
    for (i, l) in lines.iter().enumerate() {
        a.insert(
            "SOURCE_SQL_STREAM_001",
            at("11:00:00") + i as i64 * 1000,
            vec![Value::Varchar(l.to_string())],
        )
        .unwrap();
    }
    take(&mut a, OUT)
}

#[test]
fn regex_log_parse_returns_capture_groups_as_record_columns() {
    // AWS's REGEX_LOG_PARSE example 2, over sector names.
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (sector VARCHAR(24), match1 VARCHAR(24), match2 VARCHAR(24));
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM T.LOGENTRY, T.REC.COLUMN1, T.REC.COLUMN2
            FROM (SELECT STREAM LOGENTRY,
                         REGEX_LOG_PARSE(LOGENTRY, '.*([E].).*([R].*)') AS REC
                  FROM SOURCE_SQL_STREAM_001) AS T;
    "#;
    assert_eq!(
        log_lines(code, &["ENERGY", "HEALTHCARE", "TECHNOLOGY"]),
        [
            "11:00:00 | ENERGY | EN | RGY",
            "11:00:01 | HEALTHCARE | EA | RE",
            "11:00:02 | TECHNOLOGY | NULL | NULL",
        ]
    );
}

#[test]
fn fast_regex_log_parse_matches_lazily_and_fields_read_without_a_table_alias() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (greedy VARCHAR(24), lazy VARCHAR(24));
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM G.COLUMN1, F.COLUMN1
            FROM (SELECT STREAM REGEX_LOG_PARSE(LOGENTRY, '(.*) (.*)') AS G,
                                FAST_REGEX_LOG_PARSE(LOGENTRY, '(.*) (.*)') AS F
                  FROM SOURCE_SQL_STREAM_001);
    "#;
    assert_eq!(log_lines(code, &["a b c"]), ["11:00:00 | a b | a"]);
}

#[test]
fn w3c_log_parse_common_splits_an_apache_line_into_seven_columns() {
    // The W3C_LOG_PARSE reference example: `AS l(r)` and `l.r.COLUMNn`.
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (host VARCHAR(16), logname VARCHAR(8), usr VARCHAR(8), t VARCHAR(32), request VARCHAR(64), status INTEGER, bytes BIGINT);
        CREATE OR REPLACE PUMP "WEBLOG" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM l.r.COLUMN1, l.r.COLUMN2, l.r.COLUMN3, l.r.COLUMN4, l.r.COLUMN5, l.r.COLUMN6, l.r.COLUMN7
            FROM (SELECT STREAM W3C_LOG_PARSE(LOGENTRY, 'COMMON') FROM "SOURCE_SQL_STREAM_001") AS l(r);
    "#;
    assert_eq!(
        log_lines(
            code,
            &[
                r#"192.168.254.30 - John [24/May/2004:22:01:02 -0700] "GET /icons/apache_pb.gif HTTP/1.1" 304 0"#,
                r#"192.168.254.30 - Jane [24/May/2004:22:01:02 -0700] "GET /icons/small/dir.gif HTTP/1.1" 304 -"#,
                "not a log line",
            ]
        ),
        [
            "11:00:00 | 192.168.254.30 | - | John | [24/May/2004:22:01:02 -0700] | GET /icons/apache_pb.gif HTTP/1.1 | 304 | 0",
            "11:00:01 | 192.168.254.30 | - | Jane | [24/May/2004:22:01:02 -0700] | GET /icons/small/dir.gif HTTP/1.1 | 304 | NULL",
            "11:00:02 | NULL | NULL | NULL | NULL | NULL | NULL | NULL",
        ]
    );
}

#[test]
fn w3c_log_parse_reads_the_combined_format_and_custom_specifiers() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (referer VARCHAR(64), agent VARCHAR(64), method VARCHAR(8), path VARCHAR(64));
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM c.r.COLUMN8, c.r.COLUMN9, m.r.COLUMN1, m.r.COLUMN2
            FROM (SELECT STREAM W3C_LOG_PARSE(LOGENTRY, 'NCSA EXTENDED') AS r FROM "SOURCE_SQL_STREAM_001") AS c,
                 (SELECT STREAM W3C_LOG_PARSE(LOGENTRY, '%m %U') AS r FROM "SOURCE_SQL_STREAM_001") AS m;
    "#;
    // Two FROM items are not a KDA form; this checks the error, then each format alone.
    assert!(Application::new(code, &log_source()).is_err());
    let combined = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (referer VARCHAR(64), agent VARCHAR(64));
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM c.r.COLUMN8, c.r.COLUMN9
            FROM (SELECT STREAM W3C_LOG_PARSE(LOGENTRY, 'NCSA EXTENDED') AS r FROM "SOURCE_SQL_STREAM_001") AS c;
    "#;
    assert_eq!(
        log_lines(
            combined,
            &[
                r#"10.0.0.1 - - [01/May/2017:11:00:00 +0000] "GET / HTTP/1.1" 200 512 "http://example.com/" "curl/7.58""#
            ]
        ),
        ["11:00:00 | http://example.com/ | curl/7.58"]
    );
    let custom = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (method VARCHAR(8), path VARCHAR(64), micros BIGINT);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM m.r.COLUMN1, m.r.COLUMN2, m.r.COLUMN3
            FROM (SELECT STREAM W3C_LOG_PARSE(LOGENTRY, '%m %U %D') AS r FROM "SOURCE_SQL_STREAM_001") AS m;
    "#;
    assert_eq!(
        log_lines(custom, &["POST /orders 1534"]),
        ["11:00:00 | POST | /orders | 1534"]
    );
}

#[test]
fn variable_and_fixed_column_log_parse_split_and_convert_fields() {
    // AWS's VARIABLE_COLUMN_LOG_PARSE example: three comma-separated fields.
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (c1 VARCHAR(16), c2 VARCHAR(16), c3 VARCHAR(16));
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM t.r.COL_1, t.r.COL_2, t.r.COL_3
            FROM (SELECT STREAM VARIABLE_COLUMN_LOG_PARSE(LOGENTRY,
                      'COL_1 TYPE VARCHAR(16), COL_2 TYPE VARCHAR(16), COL_3 TYPE VARCHAR(16)', ',') AS r
                  FROM "SOURCE_SQL_STREAM_001") AS t;
    "#;
    assert_eq!(
        log_lines(code, &["aaa,bbb,ccc", "x,y"]),
        ["11:00:00 | aaa | bbb | ccc", "11:00:01 | x | y | NULL"]
    );
    let typed = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (n INTEGER, amount DOUBLE, seen TIMESTAMP, note VARCHAR(16));
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM t.r.N, t.r.AMOUNT * 2, t.r.SEEN, t.r.NOTE
            FROM (SELECT STREAM VARIABLE_COLUMN_LOG_PARSE(LOGENTRY,
                      'N TYPE INTEGER, AMOUNT TYPE DOUBLE, SEEN TYPE TIMESTAMP ''dd/MMM/yyyy:HH:mm:ss'', NOTE TYPE VARCHAR(16)',
                      '|', '\', '"') AS r
                  FROM "SOURCE_SQL_STREAM_001") AS t;
    "#;
    assert_eq!(
        log_lines(typed, &[r#"7|1.25|24/May/2004:22:01:02|"a|b" c\|d"#]),
        ["11:00:00 | 7 | 2.5 | 2004-05-24 22:01:02.000 | a|b c|d"]
    );
    let fixed = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (id INTEGER, name VARCHAR(8), amount DOUBLE);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM t.r.ID, TRIM(t.r.NAME), t.r.AMOUNT
            FROM (SELECT STREAM FIXED_COLUMN_LOG_PARSE(LOGENTRY,
                      'ID TYPE INTEGER START 0 FOR 4, NAME TYPE VARCHAR(8) START 4 FOR 8, AMOUNT TYPE DOUBLE START 12') AS r
                  FROM "SOURCE_SQL_STREAM_001") AS t;
    "#;
    assert_eq!(
        log_lines(fixed, &["0042Widget  12.5"]),
        ["11:00:00 | 42 | Widget | 12.5"]
    );
}

#[test]
fn sys_log_parse_reads_the_timestamp_and_the_message() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (logged TIMESTAMP, message VARCHAR(64));
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM t.r.COLUMN1, t.r.COLUMN2
            FROM (SELECT STREAM SYS_LOG_PARSE(LOGENTRY) AS r FROM "SOURCE_SQL_STREAM_001") AS t;
    "#;
    assert_eq!(
        log_lines(
            code,
            &["Mar  3 10:15:00 host1 sshd[22]: Accepted publickey"]
        ),
        ["11:00:00 | 2017-03-03 10:15:00.000 | host1 sshd[22]: Accepted publickey"]
    );
}

#[test]
fn log_parse_errors_name_the_bad_argument_or_field() {
    let dest = "CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\" (a VARCHAR(8));\n";
    let err = create_error(
        &format!("{dest}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\nSELECT STREAM t.r.COLUMN9 FROM (SELECT STREAM W3C_LOG_PARSE(LOGENTRY, 'COMMON') AS r FROM \"SOURCE_SQL_STREAM_001\") AS t;"),
        log_source(),
    );
    assert_eq!(
        err,
        "From line 3, column 19 to line 3, column 25: Unknown field 'COLUMN9' of 'T.R'"
    );
    let err = create_error(
        &format!("{dest}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\nSELECT STREAM t.r.COLUMN1 FROM (SELECT STREAM REGEX_LOG_PARSE(LOGENTRY, '([a-z') AS r FROM \"SOURCE_SQL_STREAM_001\") AS t;"),
        log_source(),
    );
    assert!(
        err.starts_with("From line 3, column 73 to line 3, column 79: Invalid regular expression '([a-z' in 'REGEX_LOG_PARSE'"),
        "{err}"
    );
    let err = create_error(
        &format!("{dest}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\nSELECT STREAM t.r.COLUMN1 FROM (SELECT STREAM W3C_LOG_PARSE(LOGENTRY, 'APACHE') AS r FROM \"SOURCE_SQL_STREAM_001\") AS t;"),
        log_source(),
    );
    assert!(
        err.contains("Unknown log format 'APACHE' for 'W3C_LOG_PARSE'"),
        "{err}"
    );
    // A row cannot be stored in a stream column.
    let err = create_error(
        &format!("{dest}CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\nSELECT STREAM SYS_LOG_PARSE(LOGENTRY) FROM \"SOURCE_SQL_STREAM_001\";"),
        log_source(),
    );
    assert!(
        err.contains("Cannot assign to target field 'A' of type VARCHAR(8)"),
        "{err}"
    );
}

fn demo_source() -> Vec<(String, Vec<Column>)> {
    vec![(
        "SOURCE_SQL_STREAM_001".into(),
        vec![
            Column::new("TICKER_SYMBOL", SqlType::Varchar(4)),
            Column::new("SECTOR", SqlType::Varchar(16)),
            Column::new("CHANGE", SqlType::Real),
            Column::new("PRICE", SqlType::Real),
        ],
    )]
}

fn demo(app: &mut Application, at_ms: i64, ticker: &str, change: f64, price: f64) {
    let row = vec![
        Value::Varchar(ticker.into()),
        Value::Varchar("TECH".into()),
        Value::Double(change),
        Value::Double(price),
    ];
    app.insert("SOURCE_SQL_STREAM_001", at_ms, row).unwrap();
}

#[test]
fn the_order_by_reference_example_sorts_distinct_tickers_within_each_rowtime() {
    // `SELECT STREAM DISTINCT rowtime, ticker FROM trades ORDER BY ROWTIME, ticker`.
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker VARCHAR(4));
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM DISTINCT rowtime, ticker_symbol FROM "SOURCE_SQL_STREAM_001"
            ORDER BY ROWTIME, ticker_symbol;
    "#;
    let mut a = app(code, demo_source(), &[OUT]);
    let t = at("11:00:00");
    for s in ["TGT", "AMZN", "TGT", "MSFT"] {
        demo(&mut a, t, s, 0.0, 1.0);
    }
    demo(&mut a, t + 1, "AMZN", 0.0, 1.0);
    a.advance_to(t + 2);
    assert_eq!(
        take(&mut a, OUT),
        [
            "11:00:00 | AMZN",
            "11:00:00 | MSFT",
            "11:00:00 | TGT",
            "11:00:00 | AMZN"
        ]
    );
}

#[test]
fn the_count_distinct_reference_example_counts_exactly_over_a_distinct_subquery() {
    // The exact-count alternative on the COUNT_DISTINCT_ITEMS_TUMBLING reference page: a
    // DISTINCT subquery keeps ROWTIME as `window_time`, and the outer query steps that column.
    let code = r#"
        CREATE OR REPLACE STREAM output_stream (ticker_symbol VARCHAR(4), unique_count BIGINT);
        CREATE OR REPLACE PUMP stream_pump AS INSERT INTO output_stream
            SELECT STREAM TICKER_SYMBOL, COUNT(distinct_stream.price) AS unique_count
            FROM (
                SELECT STREAM DISTINCT rowtime as window_time,
                    TICKER_SYMBOL,
                    CHANGE,
                    PRICE,
                    STEP((SOURCE_SQL_STREAM_001.rowtime) BY INTERVAL '5' SECOND)
                FROM SOURCE_SQL_STREAM_001) as distinct_stream
            GROUP BY TICKER_SYMBOL,
                STEP((distinct_stream.window_time) BY INTERVAL '5' SECOND);
    "#;
    let mut a = app(code, demo_source(), &["OUTPUT_STREAM"]);
    let t = at("11:00:00");
    demo(&mut a, t, "AMZN", 1.0, 10.0);
    demo(&mut a, t, "AMZN", 1.0, 10.0); // a duplicate row: dropped by DISTINCT
    demo(&mut a, t + 1000, "AMZN", 1.0, 11.0);
    demo(&mut a, t + 2000, "TGT", 1.0, 5.0);
    a.advance_to(t + 5000);
    assert_eq!(
        take(&mut a, "OUTPUT_STREAM"),
        ["11:00:05 | AMZN | 2", "11:00:05 | TGT | 1"]
    );
}

#[test]
fn a_join_window_can_be_named_in_the_window_clause() {
    // The stream-joins page's second form: `OVER t ... WINDOW t AS (RANGE ...)`.
    let code = format!(
        r#"{SPLIT}
        CREATE OR REPLACE PUMP "JOIN_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM ROWTIME AS order_time, o."orderId", o."ticker", o."amount", t."amount"
            FROM "OrderStream" AS o
            JOIN "TradeStream" OVER t
            ON o."orderId" = t."orderId"
            WINDOW t AS (RANGE INTERVAL '1' MINUTE PRECEDING);
    "#
    );
    let mut a = app(&code, order_trade_source(), &[OUT]);
    order_trade(&mut a, "11:00:00", "Trade", 1, 10);
    order_trade(&mut a, "11:00:30", "Order", 1, 100);
    assert_eq!(
        take(&mut a, OUT),
        ["11:00:30 | 2017-05-01 11:00:30.000 | 1 | AMZN | 100 | 10"]
    );
}

#[test]
fn right_and_full_outer_stream_joins_keep_unmatched_rows_of_their_sides() {
    let query = |kind: &str| {
        format!(
            r#"{SPLIT}
        CREATE OR REPLACE PUMP "JOIN_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM o.ROWTIME AS order_time, o."orderId", t."ticker", o."amount", t."amount"
            FROM "OrderStream" OVER (RANGE INTERVAL '10' SECOND PRECEDING) AS o
            {kind} JOIN "TradeStream" AS t
            ON o."orderId" = t."orderId";
    "#
        )
    };
    let feed = |a: &mut Application| {
        order_trade(a, "11:00:00", "Order", 1, 100);
        order_trade(a, "11:00:02", "Order", 2, 200);
        order_trade(a, "11:00:05", "Trade", 1, 10);
        // No order 3 in the window: an unmatched trade.
        order_trade(a, "11:00:06", "Trade", 3, 30);
        a.advance_to(at("11:00:20"));
    };
    let mut right = app(&query("RIGHT OUTER"), order_trade_source(), &[OUT]);
    feed(&mut right);
    assert_eq!(
        take(&mut right, OUT),
        [
            "11:00:05 | 2017-05-01 11:00:00.000 | 1 | AMZN | 100 | 10",
            "11:00:06 | NULL | NULL | AMZN | NULL | 30",
        ]
    );
    let mut full = app(&query("FULL"), order_trade_source(), &[OUT]);
    feed(&mut full);
    assert_eq!(
        take(&mut full, OUT),
        [
            "11:00:05 | 2017-05-01 11:00:00.000 | 1 | AMZN | 100 | 10",
            "11:00:06 | NULL | NULL | AMZN | NULL | 30",
            "11:00:12 | 2017-05-01 11:00:02.000 | 2 | NULL | 200 | NULL",
        ]
    );
    let cross = format!(
        r#"{SPLIT}
        CREATE OR REPLACE PUMP "JOIN_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM o.ROWTIME AS order_time, o."orderId", t."ticker", o."amount", t."amount"
            FROM "OrderStream" OVER (RANGE INTERVAL '10' SECOND PRECEDING) AS o
            CROSS JOIN "TradeStream" AS t;
    "#
    );
    let mut c = app(&cross, order_trade_source(), &[OUT]);
    feed(&mut c);
    assert_eq!(
        take(&mut c, OUT).len(),
        4,
        "every order pairs with every trade"
    );
}

#[test]
fn union_all_merges_the_rows_of_its_queries_into_the_pump_target() {
    let code = r#"
        CREATE OR REPLACE STREAM "ORDERS" (TICKER VARCHAR(4), QTY INTEGER);
        CREATE OR REPLACE STREAM "ALERTS" (TICKER VARCHAR(4), REASON VARCHAR(8));
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "ALERTS"
          SELECT STREAM TICKER, 'PRICE' FROM "SOURCE_SQL_STREAM_001" WHERE PRICE > 100
          UNION ALL
          SELECT STREAM TICKER, 'VOLUME' FROM "ORDERS" WHERE QTY > 10
          UNION ALL
          SELECT STREAM TICKER, 'ANY' FROM "SOURCE_SQL_STREAM_001";
        CREATE OR REPLACE PUMP "FEED" AS INSERT INTO "ORDERS"
          SELECT STREAM TICKER, CAST(PRICE AS INTEGER) FROM "SOURCE_SQL_STREAM_001";
    "#;
    let mut app = app(code, trades(), &["ALERTS"]);
    trade(&mut app, "10:00:01", "AMZN", 150.0);
    trade(&mut app, "10:00:02", "XOM", 5.0);
    let mut rows = take(&mut app, "ALERTS");
    rows.sort();
    assert_eq!(
        rows,
        vec![
            "10:00:01 | AMZN | ANY",
            "10:00:01 | AMZN | PRICE",
            "10:00:01 | AMZN | VOLUME",
            "10:00:02 | XOM | ANY",
        ]
    );
}

#[test]
fn union_all_branches_are_checked_against_the_target_each() {
    let code = r#"
        CREATE OR REPLACE STREAM "D" (TICKER VARCHAR(4), PRICE DOUBLE);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "D"
          SELECT STREAM TICKER, PRICE FROM "SOURCE_SQL_STREAM_001"
          UNION ALL
          SELECT STREAM TICKER FROM "SOURCE_SQL_STREAM_001";
    "#;
    assert_eq!(
        create_error(code, trades()),
        "From line 6, column 11 to line 6, column 59: Number of INSERT target columns (2) does not equal number of source items (1)"
    );
    let plain_union = r#"
        CREATE OR REPLACE STREAM "D" (TICKER VARCHAR(4), PRICE DOUBLE);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "D"
          SELECT STREAM TICKER, PRICE FROM "SOURCE_SQL_STREAM_001"
          UNION SELECT STREAM TICKER, PRICE FROM "SOURCE_SQL_STREAM_001";
    "#;
    assert!(create_error(plain_union, trades())
        .starts_with("Encountered \"SELECT\" at line 5, column 17."));
}

#[test]
fn replacing_a_union_all_pump_replaces_every_branch() {
    let code = r#"
        CREATE OR REPLACE STREAM "D" (TICKER VARCHAR(4));
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "D"
          SELECT STREAM TICKER FROM "SOURCE_SQL_STREAM_001"
          UNION ALL
          SELECT STREAM TICKER FROM "SOURCE_SQL_STREAM_001";
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "D"
          SELECT STREAM TICKER FROM "SOURCE_SQL_STREAM_001";
    "#;
    let mut app = app(code, trades(), &["D"]);
    trade(&mut app, "10:00:01", "AMZN", 1.0);
    assert_eq!(take(&mut app, "D"), vec!["10:00:01 | AMZN"]);
}
