//! Rebuilding window state after a restart: `Application::state_horizon_ms` says how much input
//! refills every open window, and replaying that input into a fresh application with its output
//! discarded gives the same rows afterwards as an application that never stopped.

use tributary_sql::time::parse_timestamp;
use tributary_sql::{Application, Column, SqlType, Value};

const HOUR: i64 = 3_600_000;

fn at(hms: &str) -> i64 {
    parse_timestamp(&format!("2017-05-01 {hms}")).expect("valid test time")
}

fn input() -> Vec<(String, Vec<Column>)> {
    vec![(
        "SOURCE_SQL_STREAM_001".into(),
        vec![
            Column::new("TICKER", SqlType::Varchar(4)),
            Column::new("PRICE", SqlType::Double),
        ],
    )]
}

fn horizon(select: &str) -> i64 {
    let code = format!(
        "CREATE OR REPLACE STREAM \"D\" (TICKER VARCHAR(4), V DOUBLE);
         CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"D\" {select};"
    );
    Application::new(&code, &input())
        .unwrap_or_else(|e| panic!("{e}"))
        .state_horizon_ms(HOUR)
}

#[test]
fn the_horizon_is_the_longest_window_capped_at_an_hour() {
    assert_eq!(
        horizon("SELECT STREAM TICKER, PRICE FROM \"SOURCE_SQL_STREAM_001\" WHERE PRICE > 1"),
        0
    );
    assert_eq!(
        horizon(
            "SELECT STREAM TICKER, COUNT(*) FROM \"SOURCE_SQL_STREAM_001\"
             GROUP BY TICKER, STEP(\"SOURCE_SQL_STREAM_001\".ROWTIME BY INTERVAL '10' SECOND)"
        ),
        10_000
    );
    assert_eq!(
        horizon(
            "SELECT STREAM TICKER, COUNT(*) FROM \"SOURCE_SQL_STREAM_001\"
             GROUP BY TICKER, FLOOR(\"SOURCE_SQL_STREAM_001\".ROWTIME TO MINUTE)"
        ),
        60_000
    );
    assert_eq!(
        horizon(
            "SELECT STREAM TICKER, AVG(PRICE) OVER (PARTITION BY TICKER
             RANGE INTERVAL '5' MINUTE PRECEDING) FROM \"SOURCE_SQL_STREAM_001\""
        ),
        300_000
    );
    assert_eq!(
        horizon(
            "SELECT STREAM TICKER, AVG(PRICE) OVER (ROWS 10 PRECEDING)
             FROM \"SOURCE_SQL_STREAM_001\""
        ),
        HOUR
    );
    assert_eq!(
        horizon(
            "SELECT STREAM TICKER, COUNT(*) FROM \"SOURCE_SQL_STREAM_001\"
             GROUP BY TICKER, STEP(\"SOURCE_SQL_STREAM_001\".ROWTIME BY INTERVAL '1' DAY)"
        ),
        HOUR
    );
}

#[test]
fn chained_windows_add_up() {
    let code = "
        CREATE OR REPLACE STREAM \"AVGS\" (TICKER VARCHAR(4), A DOUBLE);
        CREATE OR REPLACE PUMP \"P1\" AS INSERT INTO \"AVGS\"
          SELECT STREAM TICKER, AVG(PRICE) OVER (RANGE INTERVAL '2' MINUTE PRECEDING)
          FROM \"SOURCE_SQL_STREAM_001\";
        CREATE OR REPLACE STREAM \"D\" (TICKER VARCHAR(4), M DOUBLE);
        CREATE OR REPLACE PUMP \"P2\" AS INSERT INTO \"D\"
          SELECT STREAM TICKER, MAX(A) FROM \"AVGS\"
          GROUP BY TICKER, STEP(\"AVGS\".ROWTIME BY INTERVAL '1' MINUTE);";
    let app = Application::new(code, &input()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(app.state_horizon_ms(HOUR), 180_000);
    assert_eq!(app.state_horizon_ms(100_000), 100_000);
}

const CODE: &str = "
    CREATE OR REPLACE STREAM \"TUMBLING\" (TICKER VARCHAR(4), N INTEGER, TOTAL DOUBLE);
    CREATE OR REPLACE PUMP \"P1\" AS INSERT INTO \"TUMBLING\"
      SELECT STREAM TICKER, COUNT(*), SUM(PRICE) FROM \"SOURCE_SQL_STREAM_001\"
      GROUP BY TICKER, STEP(\"SOURCE_SQL_STREAM_001\".ROWTIME BY INTERVAL '1' MINUTE);
    CREATE OR REPLACE STREAM \"SLIDING\" (TICKER VARCHAR(4), N INTEGER);
    CREATE OR REPLACE PUMP \"P2\" AS INSERT INTO \"SLIDING\"
      SELECT STREAM TICKER, COUNT(*) OVER (PARTITION BY TICKER
        RANGE INTERVAL '30' SECOND PRECEDING) FROM \"SOURCE_SQL_STREAM_001\";";

fn fresh() -> Application {
    let mut app = Application::new(CODE, &input()).unwrap_or_else(|e| panic!("{e}"));
    app.tap("TUMBLING").unwrap();
    app.tap("SLIDING").unwrap();
    app
}

fn rows(app: &mut Application, stream: &str) -> Vec<(i64, Vec<Value>)> {
    app.take(stream)
        .into_iter()
        .map(|r| (r.rowtime, r.values))
        .collect()
}

#[test]
fn replaying_the_horizon_with_output_discarded_rebuilds_open_windows() {
    let before = [("10:00:05", 1.0), ("10:00:20", 2.0), ("10:00:40", 3.0)];
    let after = [("10:00:50", 4.0), ("10:01:10", 5.0)];
    let checkpoint = at("10:00:45");

    // Never stopped.
    let mut whole = fresh();
    let mut whole_out = (Vec::new(), Vec::new());
    for (t, p) in before.iter().chain(&after) {
        whole
            .insert(
                "SOURCE_SQL_STREAM_001",
                at(t),
                vec![Value::Varchar("AMZN".into()), Value::Double(*p)],
            )
            .unwrap();
        if at(t) > checkpoint {
            whole_out.0.extend(rows(&mut whole, "TUMBLING"));
            whole_out.1.extend(rows(&mut whole, "SLIDING"));
        } else {
            rows(&mut whole, "TUMBLING");
            rows(&mut whole, "SLIDING");
        }
    }
    whole.advance_to(at("10:02:00"));
    whole_out.0.extend(rows(&mut whole, "TUMBLING"));

    // Restarted at the checkpoint: the input of the last horizon is replayed, its output dropped.
    let mut restarted = fresh();
    let horizon = restarted.state_horizon_ms(HOUR);
    assert_eq!(horizon, 60_000);
    for (t, p) in &before {
        if at(t) >= checkpoint - horizon {
            restarted
                .insert(
                    "SOURCE_SQL_STREAM_001",
                    at(t),
                    vec![Value::Varchar("AMZN".into()), Value::Double(*p)],
                )
                .unwrap();
        }
    }
    restarted.advance_to(checkpoint);
    rows(&mut restarted, "TUMBLING");
    rows(&mut restarted, "SLIDING");
    let mut restarted_out = (Vec::new(), Vec::new());
    for (t, p) in &after {
        restarted
            .insert(
                "SOURCE_SQL_STREAM_001",
                at(t),
                vec![Value::Varchar("AMZN".into()), Value::Double(*p)],
            )
            .unwrap();
        restarted_out.0.extend(rows(&mut restarted, "TUMBLING"));
        restarted_out.1.extend(rows(&mut restarted, "SLIDING"));
    }
    restarted.advance_to(at("10:02:00"));
    restarted_out.0.extend(rows(&mut restarted, "TUMBLING"));

    assert_eq!(restarted_out, whole_out);
    // The 10:00 window counts the four rows before 10:01, and the sliding count at 10:00:50
    // includes the 10:00:40 row from before the restart (10:00:20 is out of its 30 seconds).
    assert_eq!(
        whole_out.0[0],
        (
            at("10:01:00"),
            vec![
                Value::Varchar("AMZN".into()),
                Value::Integer(4),
                Value::Double(10.0)
            ]
        )
    );
    assert_eq!(whole_out.1[0].1[1], Value::Integer(2));
}
