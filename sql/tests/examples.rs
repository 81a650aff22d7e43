//! AWS's documented Kinesis Data Analytics example applications, run as written: rows go in
//! with a ROWTIME from a virtual clock, and the rows out are compared exactly.

use tributary_sql::time::{format_timestamp, parse_timestamp};
use tributary_sql::{Application, Column, SqlType, Value};

const DAY: &str = "2017-05-01";

/// `11:00:20` on the test day, in epoch milliseconds.
fn at(hms: &str) -> i64 {
    parse_timestamp(&format!("{DAY} {hms}")).expect("valid test time")
}

/// The getting-started demo stream's schema.
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

fn demo(app: &mut Application, hms: &str, ticker: &str, sector: &str, change: f64, price: f64) {
    let row = vec![
        Value::Varchar(ticker.into()),
        Value::Varchar(sector.into()),
        Value::Double(change),
        Value::Double(price),
    ];
    app.insert("SOURCE_SQL_STREAM_001", at(hms), row).unwrap();
}

/// Rows as `HH:MM:SS | v1 | v2`, the way the AWS docs tabulate them.
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

#[test]
fn getting_started_pumps_filter_and_chain_streams_keeping_rowtime() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), sector VARCHAR(12), change DOUBLE, price DOUBLE);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM ticker_symbol, sector, change, price
            FROM "SOURCE_SQL_STREAM_001"
            WHERE sector SIMILAR TO '%TECH%';
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM_2" (ticker_symbol VARCHAR(4), price DOUBLE);
        CREATE OR REPLACE PUMP "STREAM_PUMP_2" AS INSERT INTO "DESTINATION_SQL_STREAM_2"
            SELECT STREAM ticker_symbol, price FROM "DESTINATION_SQL_STREAM";
        CREATE OR REPLACE STREAM "AMZN_STREAM" (ticker_symbol VARCHAR(4), price DOUBLE);
        CREATE OR REPLACE PUMP "AMZN_PUMP" AS INSERT INTO "AMZN_STREAM"
            SELECT STREAM ticker_symbol, price FROM "SOURCE_SQL_STREAM_001"
            WHERE ticker_symbol SIMILAR TO '%AMZN%';
        CREATE OR REPLACE STREAM "TGT_STREAM" (ticker_symbol VARCHAR(4), price DOUBLE);
        CREATE OR REPLACE PUMP "TGT_PUMP" AS INSERT INTO "TGT_STREAM"
            SELECT STREAM ticker_symbol, price FROM "SOURCE_SQL_STREAM_001"
            WHERE ticker_symbol SIMILAR TO '%TGT%';
    "#;
    let mut a = app(
        code,
        demo_source(),
        &[
            "DESTINATION_SQL_STREAM",
            "DESTINATION_SQL_STREAM_2",
            "AMZN_STREAM",
            "TGT_STREAM",
        ],
    );
    demo(&mut a, "11:00:01", "AMZN", "TECHNOLOGY", 1.5, 100.0);
    demo(&mut a, "11:00:02", "TGT", "RETAIL", -0.5, 50.0);
    demo(&mut a, "11:00:03", "MSFT", "TECHNOLOGY", 0.25, 80.0);
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        [
            "11:00:01 | AMZN | TECHNOLOGY | 1.5 | 100.0",
            "11:00:03 | MSFT | TECHNOLOGY | 0.25 | 80.0"
        ]
    );
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM_2"),
        ["11:00:01 | AMZN | 100.0", "11:00:03 | MSFT | 80.0"]
    );
    assert_eq!(take(&mut a, "AMZN_STREAM"), ["11:00:01 | AMZN | 100.0"]);
    assert_eq!(take(&mut a, "TGT_STREAM"), ["11:00:02 | TGT | 50.0"]);
}

#[test]
fn simple_alerts_pass_only_changes_above_one_percent() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), sector VARCHAR(12), change DOUBLE, price DOUBLE);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM ticker_symbol, sector, change, price
            FROM   "SOURCE_SQL_STREAM_001"
            WHERE  (ABS(Change / (Price - Change)) * 100) > 1;
    "#;
    let mut a = app(
        code,
        demo_source(),
        &["DESTINATION_SQL_STREAM", "error_stream"],
    );
    demo(&mut a, "11:00:01", "AMZN", "TECHNOLOGY", 2.0, 102.0); // 2 %
    demo(&mut a, "11:00:02", "TGT", "RETAIL", 0.5, 100.5); // 0.5 %
    demo(&mut a, "11:00:03", "XYZ", "ENERGY", -3.0, 97.0); // 3 %
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        [
            "11:00:01 | AMZN | TECHNOLOGY | 2.0 | 102.0",
            "11:00:03 | XYZ | ENERGY | -3.0 | 97.0"
        ]
    );
    assert!(take(&mut a, "error_stream").is_empty());
}

#[test]
fn a_division_by_zero_goes_to_error_stream_and_the_application_keeps_running() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), change DOUBLE);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM ticker_symbol, change FROM "SOURCE_SQL_STREAM_001"
            WHERE (ABS(Change / (Price - Change)) * 100) > 1;
    "#;
    let mut a = app(
        code,
        demo_source(),
        &["DESTINATION_SQL_STREAM", "error_stream"],
    );
    demo(&mut a, "11:00:01", "ZERO", "X", 5.0, 5.0);
    demo(&mut a, "11:00:02", "AMZN", "X", 2.0, 102.0);
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        ["11:00:02 | AMZN | 2.0"]
    );
    let errors = a.take("error_stream");
    assert_eq!(errors.len(), 1);
    let e = &errors[0].values;
    assert_eq!(e[1], Value::Varchar("Error".into()));
    assert_eq!(e[2], Value::Varchar("Division_By_Zero".into()));
    assert_eq!(e[4], Value::Timestamp(at("11:00:01")));
    assert_eq!(e[6], Value::Varchar("STREAM_PUMP".into()));
    let data = e[5].as_str().unwrap();
    let bytes: Vec<u8> = (0..data.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&data[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(String::from_utf8(bytes).unwrap(), r#"["ZERO","X",5.0,5.0]"#);
}

#[test]
fn throttled_alerts_count_triggers_per_ticker_over_the_last_minute() {
    let code = r#"
        CREATE OR REPLACE STREAM "CHANGE_STREAM" (ticker_symbol VARCHAR(4), sector VARCHAR(12), change DOUBLE, price DOUBLE);
        CREATE OR REPLACE PUMP "change_pump" AS INSERT INTO "CHANGE_STREAM"
            SELECT STREAM ticker_symbol, sector, change, price
            FROM   "SOURCE_SQL_STREAM_001"
            WHERE  (ABS(Change / (Price - Change)) * 100) > 1;
        CREATE OR REPLACE STREAM TRIGGER_COUNT_STREAM (ticker_symbol VARCHAR(4), change REAL, trigger_count INTEGER);
        CREATE OR REPLACE PUMP trigger_count_pump AS INSERT INTO TRIGGER_COUNT_STREAM
        SELECT STREAM ticker_symbol, change, trigger_count
        FROM (
            SELECT STREAM ticker_symbol, change, COUNT(*) OVER W1 as trigger_count
            FROM "CHANGE_STREAM"
            --window to perform aggregations over last minute to keep track of triggers
            WINDOW W1 AS (PARTITION BY ticker_symbol RANGE INTERVAL '1' MINUTE PRECEDING)
        )
        WHERE trigger_count >= 1;
    "#;
    let mut a = app(code, demo_source(), &["TRIGGER_COUNT_STREAM"]);
    demo(&mut a, "11:00:00", "AMZN", "T", 2.0, 102.0);
    demo(&mut a, "11:00:10", "AMZN", "T", 0.1, 102.0); // below 1 %: not a trigger
    demo(&mut a, "11:00:20", "TGT", "R", 3.0, 53.0);
    demo(&mut a, "11:00:30", "AMZN", "T", -2.0, 100.0);
    demo(&mut a, "11:01:05", "AMZN", "T", 2.0, 102.0);
    assert_eq!(
        take(&mut a, "TRIGGER_COUNT_STREAM"),
        [
            "11:00:00 | AMZN | 2.0 | 1",
            "11:00:20 | TGT | 3.0 | 1",
            "11:00:30 | AMZN | -2.0 | 2",
            "11:01:05 | AMZN | 2.0 | 2"
        ]
    );
}

const TUMBLING: &str = r#"
    CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), Min_Price DOUBLE, Max_Price DOUBLE);
    CREATE OR REPLACE PUMP "STREAM_PUMP" AS
      INSERT INTO "DESTINATION_SQL_STREAM"
        SELECT STREAM Ticker_Symbol,
                      MIN(Price) AS Min_Price,
                      MAX(Price) AS Max_Price
        FROM    "SOURCE_SQL_STREAM_001"
        GROUP BY Ticker_Symbol,
                 STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '60' SECOND);
"#;

#[test]
fn a_tumbling_window_on_rowtime_emits_min_and_max_per_ticker_when_the_minute_closes() {
    let mut a = app(TUMBLING, demo_source(), &["DESTINATION_SQL_STREAM"]);
    demo(&mut a, "11:00:05", "AMZN", "T", 0.0, 10.0);
    demo(&mut a, "11:00:15", "TGT", "R", 0.0, 50.0);
    demo(&mut a, "11:00:35", "AMZN", "T", 0.0, 12.0);
    demo(&mut a, "11:00:59", "AMZN", "T", 0.0, 9.0);
    assert!(
        take(&mut a, "DESTINATION_SQL_STREAM").is_empty(),
        "no row before the window closes"
    );
    demo(&mut a, "11:01:00", "AMZN", "T", 0.0, 20.0);
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        [
            "11:01:00 | AMZN | 9.0 | 12.0",
            "11:01:00 | TGT | 50.0 | 50.0"
        ]
    );
    a.advance_to(at("11:02:00"));
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        ["11:02:00 | AMZN | 20.0 | 20.0"]
    );
}

#[test]
fn floor_rowtime_to_minute_groups_like_a_one_minute_step() {
    let code = TUMBLING.replace(
        r#"STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '60' SECOND)"#,
        r#"FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO MINUTE)"#,
    );
    let mut a = app(&code, demo_source(), &["DESTINATION_SQL_STREAM"]);
    demo(&mut a, "11:00:05", "AMZN", "T", 0.0, 10.0);
    demo(&mut a, "11:00:35", "AMZN", "T", 0.0, 12.0);
    a.advance_to(at("11:01:30"));
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        ["11:01:00 | AMZN | 10.0 | 12.0"]
    );
}

fn event_source() -> Vec<(String, Vec<Column>)> {
    vec![(
        "SOURCE_SQL_STREAM_001".into(),
        vec![
            Column::new("EVENT_TIME", SqlType::Timestamp),
            Column::new("TICKER_SYMBOL", SqlType::Varchar(4)),
        ],
    )]
}

fn event(app: &mut Application, rowtime: &str, event_time: &str, ticker: &str) {
    let row = vec![
        Value::Timestamp(at(event_time)),
        Value::Varchar(ticker.into()),
    ];
    app.insert("SOURCE_SQL_STREAM_001", at(rowtime), row)
        .unwrap();
}

/// The four AMZN rows of AWS's stagger-window concept page.
fn stagger_page_rows(a: &mut Application) {
    event(a, "11:00:20", "11:00:10", "AMZN");
    event(a, "11:00:30", "11:00:20", "AMZN");
    event(a, "11:01:05", "11:00:55", "AMZN");
    event(a, "11:01:15", "11:01:05", "AMZN");
    a.advance_to(at("11:05:00"));
}

#[test]
fn a_tumbling_window_on_event_time_yields_partial_rows_for_late_events() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (TICKER_SYMBOL VARCHAR(4), EVENT_TIME TIMESTAMP, TICKER_COUNT DOUBLE);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS
          INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM
                TICKER_SYMBOL,
                FLOOR(EVENT_TIME TO MINUTE),
                COUNT(TICKER_SYMBOL) AS TICKER_COUNT
            FROM "SOURCE_SQL_STREAM_001"
            GROUP BY ticker_symbol, FLOOR(EVENT_TIME TO MINUTE), STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '1' MINUTE);
    "#;
    let mut a = app(code, event_source(), &["DESTINATION_SQL_STREAM"]);
    stagger_page_rows(&mut a);
    // The result table of the concept page: 2, then 1 and 1.
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        [
            "11:01:00 | AMZN | 2017-05-01 11:00:00.000 | 2.0",
            "11:02:00 | AMZN | 2017-05-01 11:00:00.000 | 1.0",
            "11:02:00 | AMZN | 2017-05-01 11:01:00.000 | 1.0",
        ]
    );
}

#[test]
fn a_stagger_window_gathers_late_rows_of_a_key_into_one_result() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), event_time TIMESTAMP, ticker_count DOUBLE);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS
          INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM
                TICKER_SYMBOL,
                FLOOR(EVENT_TIME TO MINUTE),
                COUNT(TICKER_SYMBOL) AS ticker_count
            FROM "SOURCE_SQL_STREAM_001"
            WINDOWED BY STAGGER (
                    PARTITION BY FLOOR(EVENT_TIME TO MINUTE), TICKER_SYMBOL RANGE INTERVAL '1' MINUTE);
    "#;
    let mut a = app(code, event_source(), &["DESTINATION_SQL_STREAM"]);
    stagger_page_rows(&mut a);
    // The concept page's stagger result: counts 3 and 1, each a minute after its window opened.
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        [
            "11:01:20 | AMZN | 2017-05-01 11:00:00.000 | 3.0",
            "11:02:15 | AMZN | 2017-05-01 11:01:00.000 | 1.0"
        ]
    );
}

#[test]
fn a_stagger_window_emits_one_row_per_group_of_six_arriving_ten_seconds_apart() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (event_time TIMESTAMP, ticker_symbol VARCHAR(4), ticker_count INTEGER);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM EVENT_TIME, TICKER_SYMBOL, COUNT(TICKER_SYMBOL) AS ticker_count
            FROM "SOURCE_SQL_STREAM_001"
            WINDOWED BY STAGGER (PARTITION BY TICKER_SYMBOL, EVENT_TIME RANGE INTERVAL '1' MINUTE);
    "#;
    let mut a = app(code, event_source(), &["DESTINATION_SQL_STREAM"]);
    for (i, rowtime) in [
        "11:00:30", "11:00:40", "11:00:50", "11:01:00", "11:01:10", "11:01:20",
    ]
    .iter()
    .enumerate()
    {
        event(&mut a, rowtime, "11:00:25", "AMZN");
        if i == 2 {
            event(&mut a, rowtime, "11:00:45", "TGT");
        }
    }
    a.advance_to(at("11:03:00"));
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        [
            "11:01:30 | 2017-05-01 11:00:25.000 | AMZN | 6",
            "11:01:50 | 2017-05-01 11:00:45.000 | TGT | 1"
        ]
    );
}

#[test]
fn a_sliding_count_matches_the_five_second_worked_example() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (record_count BIGINT);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM COUNT(*) OVER W FROM "SOURCE_SQL_STREAM_001"
            WINDOW W AS (RANGE INTERVAL '5' SECOND PRECEDING);
    "#;
    let mut a = app(code, demo_source(), &["DESTINATION_SQL_STREAM"]);
    for t in [
        "11:00:01", "11:00:02", "11:00:06", "11:00:07", "11:00:08", "11:00:08", "11:00:08",
    ] {
        demo(&mut a, t, "X", "S", 0.0, 1.0);
    }
    let counts: Vec<String> = take(&mut a, "DESTINATION_SQL_STREAM")
        .iter()
        .map(|r| r[11..].to_string())
        .collect();
    // One row per row in: t1 → 1, t2 → 2, t6 → 2, t7 → 2, and the three rows at t8 end on 5.
    assert_eq!(counts, ["1", "2", "2", "2", "3", "4", "5"]);
}

#[test]
fn sliding_min_max_and_average_per_ticker_over_one_minute() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(10), Min_Price double, Max_Price double, Avg_Price double);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS
           INSERT INTO "DESTINATION_SQL_STREAM"
             SELECT STREAM ticker_symbol,
                           MIN(Price) OVER W1 AS Min_Price,
                           MAX(Price) OVER W1 AS Max_Price,
                           AVG(Price) OVER W1 AS Avg_Price
             FROM   "SOURCE_SQL_STREAM_001"
             WINDOW W1 AS (
                PARTITION BY ticker_symbol
                RANGE INTERVAL '1' MINUTE PRECEDING);
    "#;
    let mut a = app(code, demo_source(), &["DESTINATION_SQL_STREAM"]);
    demo(&mut a, "11:00:00", "AMZN", "T", 0.0, 10.0);
    demo(&mut a, "11:00:30", "AMZN", "T", 0.0, 20.0);
    demo(&mut a, "11:00:40", "TGT", "R", 0.0, 5.0);
    demo(&mut a, "11:01:10", "AMZN", "T", 0.0, 60.0);
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        [
            "11:00:00 | AMZN | 10.0 | 10.0 | 10.0",
            "11:00:30 | AMZN | 10.0 | 20.0 | 15.0",
            "11:00:40 | TGT | 5.0 | 5.0 | 5.0",
            "11:01:10 | AMZN | 20.0 | 60.0 | 40.0",
        ]
    );
}

#[test]
fn two_row_and_ten_row_moving_averages_share_one_query() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(12), price double, average_last2rows double, average_last10rows double);
        CREATE OR REPLACE PUMP "myPump" AS INSERT INTO "DESTINATION_SQL_STREAM"
        SELECT STREAM ticker_symbol,
                      price,
                      avg(price) over last2rows,
                      avg(price) over last10rows
        FROM SOURCE_SQL_STREAM_001
        WINDOW
            last2rows AS (PARTITION BY ticker_symbol ROWS 2 PRECEDING),
            last10rows AS (PARTITION BY ticker_symbol ROWS 10 PRECEDING);
    "#;
    let mut a = app(code, demo_source(), &["DESTINATION_SQL_STREAM"]);
    for (i, p) in [3.0, 6.0, 9.0, 12.0].iter().enumerate() {
        demo(&mut a, &format!("11:00:0{i}"), "AMZN", "T", 0.0, *p);
    }
    // ROWS 2 PRECEDING holds the current row and the two before it.
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        [
            "11:00:00 | AMZN | 3.0 | 3.0 | 3.0",
            "11:00:01 | AMZN | 6.0 | 4.5 | 4.5",
            "11:00:02 | AMZN | 9.0 | 6.0 | 6.0",
            "11:00:03 | AMZN | 12.0 | 9.0 | 7.5",
        ]
    );
}

#[test]
fn partial_counts_from_a_tumbling_pump_are_merged_by_a_sliding_pump() {
    let code = r#"
        CREATE OR REPLACE STREAM "CALC_COUNT_SQL_STREAM" (TICKER VARCHAR(4), TRADETIME TIMESTAMP, TICKERCOUNT DOUBLE);
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (TICKER VARCHAR(4), TRADETIME TIMESTAMP, TICKERCOUNT DOUBLE);
        CREATE PUMP "CALC_COUNT_SQL_PUMP_001" AS INSERT INTO "CALC_COUNT_SQL_STREAM" ("TICKER", "TRADETIME", "TICKERCOUNT")
            SELECT STREAM "TICKER_SYMBOL", STEP("SOURCE_SQL_STREAM_001"."APPROXIMATE_ARRIVAL_TIME" BY INTERVAL '1' MINUTE) as "TradeTime", COUNT(*) AS "TickerCount"
            FROM "SOURCE_SQL_STREAM_001"
            GROUP BY STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '1' MINUTE),
                     STEP("SOURCE_SQL_STREAM_001"."APPROXIMATE_ARRIVAL_TIME" BY INTERVAL '1' MINUTE),
                     TICKER_SYMBOL;
        CREATE PUMP "AGGREGATED_SQL_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM" ("TICKER", "TRADETIME", "TICKERCOUNT")
            SELECT STREAM "TICKER", "TRADETIME", SUM("TICKERCOUNT") OVER W1 AS "TICKERCOUNT"
            FROM "CALC_COUNT_SQL_STREAM"
            WINDOW W1 AS (PARTITION BY "TRADETIME" RANGE INTERVAL '10' MINUTE PRECEDING);
    "#;
    let source = vec![(
        "SOURCE_SQL_STREAM_001".to_string(),
        vec![
            Column::new("TICKER_SYMBOL", SqlType::Varchar(4)),
            Column::new("APPROXIMATE_ARRIVAL_TIME", SqlType::Timestamp),
        ],
    )];
    let mut a = app(code, source, &["DESTINATION_SQL_STREAM"]);
    let mut put = |rowtime: &str, arrival: &str| {
        a.insert(
            "SOURCE_SQL_STREAM_001",
            at(rowtime),
            vec![Value::Varchar("AMZN".into()), Value::Timestamp(at(arrival))],
        )
        .unwrap();
    };
    put("11:00:50", "11:00:40");
    put("11:00:55", "11:00:45");
    put("11:01:02", "11:00:58"); // arrived in minute 11:00, processed in minute 11:01
    put("11:01:10", "11:01:05");
    a.advance_to(at("11:02:00"));
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        [
            "11:01:00 | AMZN | 2017-05-01 11:00:00.000 | 2.0",
            "11:02:00 | AMZN | 2017-05-01 11:00:00.000 | 3.0",
            "11:02:00 | AMZN | 2017-05-01 11:01:00.000 | 1.0",
        ]
    );
}

#[test]
fn one_input_stream_splits_into_order_and_trade_streams_with_quoted_names() {
    let code = r#"
        CREATE OR REPLACE STREAM "Order_Stream" ("order_id" integer, "order_type" varchar(10), "ticker" varchar(4), "order_price" DOUBLE, "record_type" varchar(10));
        CREATE OR REPLACE PUMP "Order_Pump" AS INSERT INTO "Order_Stream"
            SELECT STREAM "Oid", "Otype", "Oticker", "Oprice", "RecordType"
            FROM "SOURCE_SQL_STREAM_001" WHERE "RecordType" = 'Order';
        CREATE OR REPLACE STREAM "Trade_Stream" ("trade_id" integer, "order_id" integer, "trade_price" DOUBLE, "ticker" varchar(4), "record_type" varchar(10));
        CREATE OR REPLACE PUMP "Trade_Pump" AS INSERT INTO "Trade_Stream"
            SELECT STREAM "Tid", "Toid", "Tprice", "Tticker", "RecordType"
            FROM "SOURCE_SQL_STREAM_001" WHERE "RecordType" = 'Trade';
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" ("ticker" varchar(4), "trade_count" integer);
        CREATE OR REPLACE PUMP "Output_Pump" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM "ticker", count(*) as trade_count
            FROM "Trade_Stream"
            GROUP BY "ticker", FLOOR("Trade_Stream".ROWTIME TO MINUTE);
    "#;
    let cols = [
        ("RecordType", SqlType::Varchar(10)),
        ("Oid", SqlType::Integer),
        ("Otype", SqlType::Varchar(10)),
        ("Oticker", SqlType::Varchar(4)),
        ("Oprice", SqlType::Double),
        ("Tid", SqlType::Integer),
        ("Toid", SqlType::Integer),
        ("Tprice", SqlType::Double),
        ("Tticker", SqlType::Varchar(4)),
    ];
    let source = vec![(
        "SOURCE_SQL_STREAM_001".to_string(),
        cols.iter()
            .map(|(n, t)| Column::new(*n, t.clone()))
            .collect(),
    )];
    let mut a = app(
        code,
        source,
        &["Order_Stream", "Trade_Stream", "DESTINATION_SQL_STREAM"],
    );
    let n = Value::Null;
    let s = |x: &str| Value::Varchar(x.into());
    a.insert(
        "SOURCE_SQL_STREAM_001",
        at("11:00:01"),
        vec![
            s("Order"),
            Value::Integer(1),
            s("Buy"),
            s("AMZN"),
            Value::Double(10.0),
            n.clone(),
            n.clone(),
            n.clone(),
            n.clone(),
        ],
    )
    .unwrap();
    a.insert(
        "SOURCE_SQL_STREAM_001",
        at("11:00:02"),
        vec![
            s("Trade"),
            n.clone(),
            n.clone(),
            n.clone(),
            n.clone(),
            Value::Integer(7),
            Value::Integer(1),
            Value::Double(10.5),
            s("AMZN"),
        ],
    )
    .unwrap();
    a.insert(
        "SOURCE_SQL_STREAM_001",
        at("11:00:03"),
        vec![
            s("Trade"),
            n.clone(),
            n.clone(),
            n.clone(),
            n.clone(),
            Value::Integer(8),
            Value::Integer(1),
            Value::Double(10.6),
            s("AMZN"),
        ],
    )
    .unwrap();
    a.advance_to(at("11:01:00"));
    assert_eq!(
        take(&mut a, "Order_Stream"),
        ["11:00:01 | 1 | Buy | AMZN | 10.0 | Order"]
    );
    assert_eq!(
        take(&mut a, "Trade_Stream"),
        [
            "11:00:02 | 7 | 1 | 10.5 | AMZN | Trade",
            "11:00:03 | 8 | 1 | 10.6 | AMZN | Trade"
        ]
    );
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        ["11:01:00 | AMZN | 2"]
    );
}

#[test]
fn string_transforms_extract_and_rewrite_urls() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (domain VARCHAR(32), secure VARCHAR(64), shout VARCHAR(64), words VARCHAR(64), len INTEGER);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM
                SUBSTRING("referrer", 12, (POSITION('.com' IN "referrer") - POSITION('www.' IN "referrer") - 4)),
                REGEX_REPLACE("referrer", 'http://', 'https://', 1, 0),
                UPPER(TRIM("referrer")) || '!',
                INITCAP('the quick fox'),
                CHAR_LENGTH("referrer")
            FROM "SOURCE_SQL_STREAM_001";
    "#;
    let source = vec![(
        "SOURCE_SQL_STREAM_001".to_string(),
        vec![Column::new("referrer", SqlType::Varchar(32))],
    )];
    let mut a = app(code, source, &["DESTINATION_SQL_STREAM"]);
    a.insert(
        "SOURCE_SQL_STREAM_001",
        at("11:00:00"),
        vec![Value::Varchar("http://www.amazon.com".into())],
    )
    .unwrap();
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        ["11:00:00 | amazon | https://www.amazon.com | HTTP://WWW.AMAZON.COM! | The Quick Fox | 21"]
    );
}

#[test]
fn date_transforms_parse_format_and_diff_event_times() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (event_ts TIMESTAMP, as_text VARCHAR(32), lag_ms BIGINT, hour_of_day BIGINT, next_hour TIMESTAMP, kind VARCHAR(8));
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM
                CHAR_TO_TIMESTAMP('yyyy-MM-dd hh:mm:ss a', "event_text"),
                TIMESTAMP_TO_CHAR('dd/MMM/yyyy HH:mm', CHAR_TO_TIMESTAMP('yyyy-MM-dd hh:mm:ss a', "event_text")),
                TSDIFF(ROWTIME, CHAR_TO_TIMESTAMP('yyyy-MM-dd hh:mm:ss a', "event_text")),
                EXTRACT(HOUR FROM ROWTIME),
                CEIL(ROWTIME TO HOUR),
                CASE WHEN EXTRACT(HOUR FROM ROWTIME) < 12 THEN 'morning' ELSE 'later' END
            FROM "SOURCE_SQL_STREAM_001";
    "#;
    let source = vec![(
        "SOURCE_SQL_STREAM_001".to_string(),
        vec![Column::new("event_text", SqlType::Varchar(32))],
    )];
    let mut a = app(code, source, &["DESTINATION_SQL_STREAM"]);
    a.insert(
        "SOURCE_SQL_STREAM_001",
        at("11:00:05"),
        vec![Value::Varchar("2017-05-01 10:59:55 AM".into())],
    )
    .unwrap();
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        ["11:00:05 | 2017-05-01 10:59:55.000 | 01/May/2017 10:59 | 10000 | 11 | 2017-05-01 12:00:00.000 | morning"]
    );
}

#[test]
fn a_value_too_large_for_its_target_column_goes_to_error_stream() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (small TINYINT);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM CAST(price AS INTEGER) * 10 FROM "SOURCE_SQL_STREAM_001";
    "#;
    let mut a = app(
        code,
        demo_source(),
        &["DESTINATION_SQL_STREAM", "error_stream"],
    );
    demo(&mut a, "11:00:00", "A", "S", 0.0, 5.0);
    demo(&mut a, "11:00:01", "A", "S", 0.0, 50.0);
    assert_eq!(take(&mut a, "DESTINATION_SQL_STREAM"), ["11:00:00 | 50"]);
    let errors = a.take("error_stream");
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].values[2],
        Value::Varchar("Numeric_Overflow".into())
    );
}

#[test]
fn json_records_flow_through_the_input_mapping_and_out_as_json() {
    use tributary_sql::format::{serialize, InputSchema, OutputFormat, RecordColumn, RecordFormat};
    let schema = InputSchema {
        format: RecordFormat::Json {
            row_path: "$".into(),
        },
        columns: vec![
            RecordColumn {
                name: "TICKER_SYMBOL".into(),
                mapping: Some("$.TICKER_SYMBOL".into()),
                sql_type: SqlType::Varchar(4),
            },
            RecordColumn {
                name: "PRICE".into(),
                mapping: Some("$.PRICE".into()),
                sql_type: SqlType::Real,
            },
        ],
    };
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), price DOUBLE, arrived TIMESTAMP);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM ticker_symbol, price, APPROXIMATE_ARRIVAL_TIME FROM "SOURCE_SQL_STREAM_001" WHERE price > 10;
    "#;
    let mut a = app(
        code,
        vec![("SOURCE_SQL_STREAM_001".into(), schema.stream_columns())],
        &["DESTINATION_SQL_STREAM", "error_stream"],
    );
    let records: [&[u8]; 3] = [
        br#"{"TICKER_SYMBOL":"AMZN","PRICE":84.51}"#,
        br#"{"TICKER_SYMBOL":"TGT","PRICE":"cheap"}"#,
        br#"{"TICKER_SYMBOL":"XYZ","PRICE":5}"#,
    ];
    for (i, rec) in records.iter().enumerate() {
        let t = at("11:00:00") + i as i64 * 1000;
        match schema.map_record(rec, t - 500) {
            Ok(rows) => {
                for r in rows {
                    a.insert("SOURCE_SQL_STREAM_001", t, r).unwrap();
                }
            }
            Err(e) => a.reject_input(e, t, rec),
        }
    }
    let cols = a.stream("DESTINATION_SQL_STREAM").unwrap().columns.clone();
    let out: Vec<String> = a
        .take("DESTINATION_SQL_STREAM")
        .iter()
        .map(|r| String::from_utf8(serialize(&cols, r, OutputFormat::Json)).unwrap())
        .collect();
    assert_eq!(out, ["{\"TICKER_SYMBOL\":\"AMZN\",\"PRICE\":84.51,\"ARRIVED\":\"2017-05-01 10:59:59.500\"}\n"]);
    // The record whose PRICE cannot be coerced lands in error_stream with its raw bytes in hex.
    let errors = a.take("error_stream");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].values[2], Value::Varchar("Cast_Error".into()));
    let hex: String = records[1].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(errors[0].values[5], Value::Varchar(hex));
}

fn company_table() -> Vec<(String, Vec<Column>)> {
    vec![(
        "CompanyName".into(),
        vec![
            Column::new("Ticker", SqlType::Varchar(4)),
            Column::new("Company", SqlType::Varchar(20)),
        ],
    )]
}

fn company_rows() -> Vec<Vec<Value>> {
    vec![
        vec![
            Value::Varchar("AMZN".into()),
            Value::Varchar("Amazon".into()),
        ],
        vec![
            Value::Varchar("TGT".into()),
            Value::Varchar("Target".into()),
        ],
    ]
}

#[test]
fn reference_data_enriches_rows_and_unmatched_tickers_get_null() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), "Company" varchar(20), sector VARCHAR(12), change DOUBLE, price DOUBLE);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
           SELECT STREAM ticker_symbol, "c"."Company", sector, change, price
           FROM "SOURCE_SQL_STREAM_001" LEFT JOIN "CompanyName" as "c"
           ON "SOURCE_SQL_STREAM_001".ticker_symbol = "c"."Ticker";
    "#;
    let mut a = Application::with_tables(code, &demo_source(), &company_table())
        .unwrap_or_else(|e| panic!("{e}"));
    a.tap("DESTINATION_SQL_STREAM").unwrap();
    a.load_table("CompanyName", company_rows()).unwrap();
    demo(&mut a, "11:00:01", "AMZN", "TECHNOLOGY", 1.0, 100.0);
    demo(&mut a, "11:00:02", "XYZ", "ENERGY", 2.0, 20.0);
    // Reloading the table (UpdateApplication in KDA) affects the rows that follow.
    a.load_table(
        "CompanyName",
        vec![vec![
            Value::Varchar("XYZ".into()),
            Value::Varchar("Xyz Corp".into()),
        ]],
    )
    .unwrap();
    demo(&mut a, "11:00:03", "XYZ", "ENERGY", 2.0, 20.0);
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        [
            "11:00:01 | AMZN | Amazon | TECHNOLOGY | 1.0 | 100.0",
            "11:00:02 | XYZ | NULL | ENERGY | 2.0 | 20.0",
            "11:00:03 | XYZ | Xyz Corp | ENERGY | 2.0 | 20.0",
        ]
    );
}

#[test]
fn an_inner_join_to_reference_data_drops_unmatched_rows_and_feeds_windows() {
    let code = r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (company VARCHAR(20), trades BIGINT);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
           SELECT STREAM c."Company", COUNT(*)
           FROM "SOURCE_SQL_STREAM_001" AS s JOIN "CompanyName" AS c ON s.ticker_symbol = c."Ticker"
           GROUP BY c."Company", STEP(s.ROWTIME BY INTERVAL '1' MINUTE);
    "#;
    let mut a = Application::with_tables(code, &demo_source(), &company_table())
        .unwrap_or_else(|e| panic!("{e}"));
    a.tap("DESTINATION_SQL_STREAM").unwrap();
    a.load_table("CompanyName", company_rows()).unwrap();
    demo(&mut a, "11:00:01", "AMZN", "T", 1.0, 100.0);
    demo(&mut a, "11:00:02", "XYZ", "E", 2.0, 20.0);
    demo(&mut a, "11:00:03", "AMZN", "T", 1.0, 100.0);
    demo(&mut a, "11:00:04", "TGT", "R", 1.0, 100.0);
    a.advance_to(at("11:01:00"));
    assert_eq!(
        take(&mut a, "DESTINATION_SQL_STREAM"),
        ["11:01:00 | Amazon | 2", "11:01:00 | Target | 1"]
    );
}
