//! Kinesis Data Analytics SQL applications through the real AWS SDKs: records go into a stream
//! with `aws-sdk-kinesis`, the application is created and started with
//! `aws-sdk-kinesisanalytics`, and what the destination stream receives is read back.
//!
//! Window tests move the server clock with the `--test-hooks` endpoint instead of sleeping.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesisanalytics as kda;
use kda::types::{
    ApplicationStatus, Input, InputConfiguration, InputStartingPosition,
    InputStartingPositionConfiguration, MappingParameters, Output, RecordColumn, RecordFormat,
    RecordFormatType, SourceSchema, Tag,
};
use serde_json::{json, Value};
use tributary_tests::{
    analytics_client, buffering_hints, create_stream, discover_input_schema, firehose_client,
    http_request, json_schema, kinesis_client, metric, put_record_batch, put_records, read_shard,
    read_stream, record_text, shard_ids, start_application, stream_arn, stream_input,
    stream_output, update_shard_count, Server, KDA_ROLE,
};

struct Env {
    server: Server,
    k: aws_sdk_kinesis::Client,
    a: kda::Client,
}

async fn start(extra: &[&str]) -> Env {
    let mut args = vec!["--no-limits", "--test-hooks"];
    args.extend_from_slice(extra);
    if !extra.contains(&"--data-dir") {
        args.push("--in-memory");
    }
    let server = Server::start(&args).await.unwrap();
    Env {
        k: kinesis_client(&server.api),
        a: analytics_client(&server.api),
        server,
    }
}

/// The columns of AWS's demo stream (`{TICKER_SYMBOL, SECTOR, CHANGE, PRICE}`).
fn demo_schema() -> SourceSchema {
    json_schema(&[
        ("TICKER_SYMBOL", "VARCHAR(4)"),
        ("SECTOR", "VARCHAR(16)"),
        ("CHANGE", "DOUBLE"),
        ("PRICE", "DOUBLE"),
    ])
}

/// An application to create and start with [`App::start`]: unless told otherwise it reads
/// stream `in` with the demo schema (as `SOURCE_SQL_STREAM_001`), writes its
/// `DESTINATION_SQL_STREAM` to stream `out` as JSON, and starts at NOW.
struct App<'a> {
    name: &'a str,
    code: &'a str,
    input: Input,
    outputs: Vec<Output>,
    position: InputStartingPosition,
}

fn app<'a>(name: &'a str, code: &'a str) -> App<'a> {
    App {
        name,
        code,
        input: stream_input("in", demo_schema()),
        outputs: vec![stream_output(
            "DESTINATION_SQL_STREAM",
            "out",
            RecordFormatType::Json,
        )],
        position: InputStartingPosition::Now,
    }
}

impl App<'_> {
    /// Reads stream `in` with `schema`.
    fn schema(mut self, schema: SourceSchema) -> Self {
        self.input = stream_input("in", schema);
        self
    }

    /// Reads `input` instead of stream `in`.
    fn input(mut self, input: Input) -> Self {
        self.input = input;
        self
    }

    /// Writes each `(in-application stream, stream, format)` instead of the default output.
    fn outputs(mut self, outputs: &[(&str, &str, RecordFormatType)]) -> Self {
        self.outputs = outputs
            .iter()
            .map(|(in_app, stream, format)| stream_output(in_app, stream, format.clone()))
            .collect();
        self
    }

    /// Starts reading at `position`.
    fn starting_at(mut self, position: InputStartingPosition) -> Self {
        self.position = position;
        self
    }

    /// CreateApplication, then StartApplication.
    async fn start(self, a: &kda::Client) {
        a.create_application()
            .application_name(self.name)
            .application_code(self.code)
            .inputs(self.input)
            .set_outputs(Some(self.outputs))
            .send()
            .await
            .unwrap();
        start_application(a, self.name, self.position).await;
    }
}

async fn put_json(k: &aws_sdk_kinesis::Client, stream: &str, records: &[Value]) {
    for (i, r) in records.iter().enumerate() {
        k.put_record()
            .stream_name(stream)
            .partition_key(format!("pk-{i}"))
            .data(Blob::new(serde_json::to_vec(r).unwrap()))
            .send()
            .await
            .unwrap();
    }
}

/// Every record of every shard of `stream`, shard by shard, as text.
async fn read_all(k: &aws_sdk_kinesis::Client, stream: &str) -> Vec<String> {
    read_stream(k, stream)
        .await
        .iter()
        .map(record_text)
        .collect()
}

/// Waits until `stream` holds at least `n` records, then returns them all.
/// Waits until an application under `dir` has a `checkpoint.json` with some input shard read
/// up to at least `offset` (checkpoints are written at most once a second, and later on a
/// busy machine).
async fn wait_for_checkpoint_past(dir: &std::path::Path, offset: u64) {
    fn reached(dir: &std::path::Path, offset: u64) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let path = e.path();
            if path.is_dir() {
                return reached(&path, offset);
            }
            if path.file_name().is_none_or(|n| n != "checkpoint.json") {
                return false;
            }
            let Ok(cp) = serde_json::from_slice::<Value>(&std::fs::read(&path).unwrap_or_default())
            else {
                return false;
            };
            cp["inputs"].as_object().is_some_and(|inputs| {
                inputs.values().any(|input| {
                    input["offsets"]
                        .as_object()
                        .is_some_and(|o| o.values().any(|v| v.as_u64() >= Some(offset)))
                })
            })
        })
    }
    for _ in 0..300 {
        if reached(dir, offset) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no checkpoint past offset {offset} under {}", dir.display());
}

async fn wait_for(k: &aws_sdk_kinesis::Client, stream: &str, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = read_all(k, stream).await;
        if got.len() >= n || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn parse_json(records: &[String]) -> Vec<Value> {
    records
        .iter()
        .map(|r| serde_json::from_str(r.trim_end()).unwrap())
        .collect()
}

async fn wait_metric(server: &Server, series: &str, at_least: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while metric(server, series).await < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} never reached {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn advance_clock(server: &Server, ms: i64) {
    let path = format!("/test/advance-clock?ms={ms}");
    http_request(&server.metrics, "POST", &path, &[], "").await;
}

/// Moves the server clock to half a second past the next minute boundary, so the rows a test
/// writes in the next few seconds fall in one tumbling minute.
async fn align_to_minute(server: &Server) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    advance_clock(server, 60_000 - now % 60_000 + 500).await;
}

fn demo(ticker: &str, sector: &str, change: f64, price: f64) -> Value {
    json!({"TICKER_SYMBOL": ticker, "SECTOR": sector, "CHANGE": change, "PRICE": price})
}

const GETTING_STARTED: &str = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), sector VARCHAR(12), change DOUBLE, price DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM ticker_symbol, sector, change, price
  FROM "SOURCE_SQL_STREAM_001"
  WHERE sector SIMILAR TO '%TECH%';
CREATE OR REPLACE STREAM "AMZN_STREAM" (ticker_symbol VARCHAR(4), change DOUBLE, price DOUBLE);
CREATE OR REPLACE PUMP "AMZN_PUMP" AS INSERT INTO "AMZN_STREAM"
  SELECT STREAM ticker_symbol, change, price
  FROM "DESTINATION_SQL_STREAM"
  WHERE ticker_symbol SIMILAR TO '%AMZN%';
"#;

#[tokio::test]
async fn getting_started_pumps_write_filtered_rows_to_their_destination_streams() {
    let e = start(&[]).await;
    for s in ["in", "tech", "amzn"] {
        create_stream(&e.k, s, 1).await;
    }
    app("getting-started", GETTING_STARTED)
        .outputs(&[
            ("DESTINATION_SQL_STREAM", "tech", RecordFormatType::Json),
            ("AMZN_STREAM", "amzn", RecordFormatType::Csv),
        ])
        .starting_at(InputStartingPosition::TrimHorizon)
        .start(&e.a)
        .await;
    put_json(
        &e.k,
        "in",
        &[
            demo("AMZN", "TECHNOLOGY", 1.5, 100.25),
            demo("XOM", "ENERGY", -0.5, 80.0),
            demo("MSFT", "TECHNOLOGY", 2.0, 50.5),
            demo("AMZN", "TECHNOLOGY", -3.25, 97.0),
        ],
    )
    .await;
    let tech = parse_json(&wait_for(&e.k, "tech", 3).await);
    assert_eq!(
        tech,
        vec![
            json!({"TICKER_SYMBOL": "AMZN", "SECTOR": "TECHNOLOGY", "CHANGE": 1.5, "PRICE": 100.25}),
            json!({"TICKER_SYMBOL": "MSFT", "SECTOR": "TECHNOLOGY", "CHANGE": 2.0, "PRICE": 50.5}),
            json!({"TICKER_SYMBOL": "AMZN", "SECTOR": "TECHNOLOGY", "CHANGE": -3.25, "PRICE": 97.0}),
        ]
    );
    let amzn = wait_for(&e.k, "amzn", 2).await;
    assert_eq!(amzn, vec!["AMZN,1.5,100.25\n", "AMZN,-3.25,97.0\n"]);
    let d =
        e.a.describe_application()
            .application_name("getting-started")
            .send()
            .await
            .unwrap()
            .application_detail
            .unwrap();
    assert_eq!(d.application_status, ApplicationStatus::Running);
    assert_eq!(
        metric(
            &e.server,
            "analytics_input_rows_total{application=\"getting-started\",stream=\"SOURCE_SQL_STREAM_001\"}"
        )
        .await,
        4.0
    );
}

#[tokio::test]
async fn tumbling_window_emits_one_row_per_ticker_when_the_minute_closes() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 2).await;
    create_stream(&e.k, "out", 1).await;
    let code = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (TICKER_SYMBOL VARCHAR(4), TICKER_COUNT INTEGER, MIN_PRICE DOUBLE, MAX_PRICE DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM TICKER_SYMBOL, COUNT(*) AS TICKER_COUNT, MIN(PRICE), MAX(PRICE)
  FROM "SOURCE_SQL_STREAM_001"
  GROUP BY TICKER_SYMBOL, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '60' SECOND);
"#;
    app("tumbling", code).start(&e.a).await;
    align_to_minute(&e.server).await;
    put_json(
        &e.k,
        "in",
        &[
            demo("AMZN", "TECHNOLOGY", 1.0, 10.0),
            demo("AMZN", "TECHNOLOGY", 1.0, 30.0),
            demo("XOM", "ENERGY", 1.0, 5.0),
            demo("AMZN", "TECHNOLOGY", 1.0, 20.0),
        ],
    )
    .await;
    wait_metric(
        &e.server,
        "analytics_input_rows_total{application=\"tumbling\",stream=\"SOURCE_SQL_STREAM_001\"}",
        4.0,
    )
    .await;
    // The window is still open: nothing comes out before its minute ends.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(read_all(&e.k, "out").await.is_empty());
    advance_clock(&e.server, 60_000).await;
    let mut rows = parse_json(&wait_for(&e.k, "out", 2).await);
    rows.sort_by_key(|r| r["TICKER_SYMBOL"].as_str().unwrap().to_string());
    assert_eq!(
        rows,
        vec![
            json!({"TICKER_SYMBOL": "AMZN", "TICKER_COUNT": 3, "MIN_PRICE": 10.0, "MAX_PRICE": 30.0}),
            json!({"TICKER_SYMBOL": "XOM", "TICKER_COUNT": 1, "MIN_PRICE": 5.0, "MAX_PRICE": 5.0}),
        ]
    );
}

#[tokio::test]
async fn division_by_zero_goes_to_error_stream_when_it_is_an_output() {
    let e = start(&[]).await;
    for s in ["in", "alerts", "errors"] {
        create_stream(&e.k, s, 1).await;
    }
    // AWS's simple alerts example.
    let code = r#"
CREATE OR REPLACE STREAM "TRIGGER_COUNT_STREAM" (ticker_symbol VARCHAR(4), change DOUBLE, price DOUBLE);
CREATE OR REPLACE PUMP "trigger_count_pump" AS INSERT INTO "TRIGGER_COUNT_STREAM"
  SELECT STREAM ticker_symbol, change, price
  FROM "SOURCE_SQL_STREAM_001"
  WHERE (ABS(Change / (Price - Change)) * 100) > 1;
"#;
    app("alerts", code)
        .outputs(&[
            ("TRIGGER_COUNT_STREAM", "alerts", RecordFormatType::Json),
            ("error_stream", "errors", RecordFormatType::Json),
        ])
        .starting_at(InputStartingPosition::TrimHorizon)
        .start(&e.a)
        .await;
    put_json(
        &e.k,
        "in",
        &[
            demo("AMZN", "TECHNOLOGY", 5.0, 105.0),
            demo("XOM", "ENERGY", 0.5, 100.5),
            demo("BAD", "ENERGY", 7.0, 7.0),
        ],
    )
    .await;
    let alerts = parse_json(&wait_for(&e.k, "alerts", 1).await);
    assert_eq!(
        alerts,
        vec![json!({"TICKER_SYMBOL": "AMZN", "CHANGE": 5.0, "PRICE": 105.0})]
    );
    let errors = parse_json(&wait_for(&e.k, "errors", 1).await);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["ERROR_NAME"], "Division_By_Zero");
    assert_eq!(errors[0]["PUMP_NAME"], "trigger_count_pump");
    assert!(
        metric(
            &e.server,
            "analytics_error_rows_total{application=\"alerts\"}"
        )
        .await
            >= 1.0
    );
}

#[tokio::test]
async fn malformed_sql_is_rejected_at_create_time_with_its_position() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    let err = e
        .a
        .create_application()
        .application_name("bad-syntax")
        .application_code(
            "CREATE OR REPLACE STREAM \"D\" (a INTEGER);\nCREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"D\" SELEC STREAM 1 FROM \"SOURCE_SQL_STREAM_001\";",
        )
        .inputs(stream_input("in", demo_schema()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_code_validation_exception(), "{err:?}");
    let message = err.meta().message().unwrap().to_string();
    assert!(message.contains("line 2, column 47"), "{message}");
    // Nothing was created.
    let list = e.a.list_applications().send().await.unwrap();
    assert!(list.application_summaries.is_empty());
}

#[tokio::test]
async fn unknown_column_is_rejected_at_create_time_with_its_position() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    let err = e
        .a
        .create_application()
        .application_name("bad-column")
        .application_code(
            "CREATE OR REPLACE STREAM \"D\" (p DOUBLE);\nCREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"D\"\n  SELECT STREAM cost FROM \"SOURCE_SQL_STREAM_001\";",
        )
        .inputs(stream_input("in", demo_schema()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_code_validation_exception(), "{err:?}");
    assert_eq!(
        err.meta().message(),
        Some("From line 3, column 17 to line 3, column 20: Column 'COST' not found in any table")
    );
}

#[tokio::test]
async fn application_lifecycle_follows_aws_states_and_version_ids() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    let created =
        e.a.create_application()
            .application_name("life")
            .application_description("lifecycle")
            .application_code(GETTING_STARTED)
            .inputs(stream_input("in", demo_schema()))
            .tags(Tag::builder().key("team").value("data").build().unwrap())
            .send()
            .await
            .unwrap()
            .application_summary
            .unwrap();
    assert_eq!(created.application_status, ApplicationStatus::Ready);
    assert_eq!(
        created.application_arn,
        "arn:aws:kinesisanalytics:us-east-1:000000000000:application/life"
    );
    let dup =
        e.a.create_application()
            .application_name("life")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(dup.is_resource_in_use_exception(), "{dup:?}");

    // A stale version is refused; the current one is accepted and bumps it.
    let stale =
        e.a.add_application_output()
            .application_name("life")
            .current_application_version_id(7)
            .output(stream_output(
                "DESTINATION_SQL_STREAM",
                "out",
                RecordFormatType::Json,
            ))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(stale.is_concurrent_modification_exception(), "{stale:?}");
    e.a.add_application_output()
        .application_name("life")
        .current_application_version_id(1)
        .output(stream_output(
            "DESTINATION_SQL_STREAM",
            "out",
            RecordFormatType::Json,
        ))
        .send()
        .await
        .unwrap();
    e.a.add_application_cloud_watch_logging_option()
        .application_name("life")
        .current_application_version_id(2)
        .cloud_watch_logging_option(
            kda::types::CloudWatchLoggingOption::builder()
                .log_stream_arn("arn:aws:logs:us-east-1:000000000000:log-group:g:log-stream:s")
                .role_arn(KDA_ROLE)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let d =
        e.a.describe_application()
            .application_name("life")
            .send()
            .await
            .unwrap()
            .application_detail
            .unwrap();
    assert_eq!(d.application_version_id, 3);
    assert_eq!(d.application_description.as_deref(), Some("lifecycle"));
    let input = &d.input_descriptions.as_ref().unwrap()[0];
    assert_eq!(input.input_id.as_deref(), Some("1.1"));
    assert_eq!(
        input.in_app_stream_names.as_deref(),
        Some(&["SOURCE_SQL_STREAM_001".to_string()][..])
    );
    assert_eq!(
        d.output_descriptions.as_ref().unwrap()[0]
            .output_id
            .as_deref(),
        Some("2.1")
    );
    assert_eq!(d.cloud_watch_logging_option_descriptions.unwrap().len(), 1);

    // Bad SQL in an update is refused and leaves the version as it was.
    let bad =
        e.a.update_application()
            .application_name("life")
            .current_application_version_id(3)
            .application_update(
                kda::types::ApplicationUpdate::builder()
                    .application_code_update("CREATE OR REPLACE STREAM")
                    .build(),
            )
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(bad.is_code_validation_exception(), "{bad:?}");

    start_application(&e.a, "life", InputStartingPosition::Now).await;
    let again =
        e.a.start_application()
            .application_name("life")
            .input_configurations(
                InputConfiguration::builder()
                    .id("1.1")
                    .input_starting_position_configuration(
                        InputStartingPositionConfiguration::builder()
                            .input_starting_position(InputStartingPosition::Now)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(again.is_resource_in_use_exception(), "{again:?}");
    let summaries =
        e.a.list_applications()
            .send()
            .await
            .unwrap()
            .application_summaries;
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].application_status, ApplicationStatus::Running);

    // An update while running keeps it running on the new code.
    e.a.update_application()
        .application_name("life")
        .current_application_version_id(3)
        .application_update(
            kda::types::ApplicationUpdate::builder()
                .application_code_update(GETTING_STARTED.replace("%TECH%", "%ENERGY%"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    put_json(&e.k, "in", &[demo("XOM", "ENERGY", 1.0, 2.0)]).await;
    assert_eq!(wait_for(&e.k, "out", 1).await.len(), 1);

    e.a.stop_application()
        .application_name("life")
        .send()
        .await
        .unwrap();
    let d =
        e.a.describe_application()
            .application_name("life")
            .send()
            .await
            .unwrap()
            .application_detail
            .unwrap();
    assert_eq!(d.application_status, ApplicationStatus::Ready);
    assert_eq!(d.application_version_id, 4);

    let app_arn = d.application_arn.clone();
    e.a.tag_resource()
        .resource_arn(&app_arn)
        .tags(Tag::builder().key("env").value("test").build().unwrap())
        .send()
        .await
        .unwrap();
    e.a.untag_resource()
        .resource_arn(&app_arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let tags =
        e.a.list_tags_for_resource()
            .resource_arn(&app_arn)
            .send()
            .await
            .unwrap()
            .tags
            .unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].key, "env");

    e.a.delete_application()
        .application_name("life")
        .set_create_timestamp(d.create_timestamp)
        .send()
        .await
        .unwrap();
    let gone =
        e.a.describe_application()
            .application_name("life")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(gone.is_resource_not_found_exception(), "{gone:?}");
}

#[tokio::test]
async fn invalid_requests_get_aws_validation_messages() {
    let e = start(&[]).await;
    let err =
        e.a.create_application()
            .application_name("has space")
            .send()
            .await
            .unwrap_err();
    let meta = err.into_service_error();
    assert_eq!(meta.meta().code(), Some("ValidationException"));
    assert_eq!(
        meta.meta().message(),
        Some("1 validation error detected: Value 'has space' at 'applicationName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
    );
    let missing =
        e.a.create_application()
            .application_name("no-stream")
            .inputs(stream_input("absent", demo_schema()))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert!(missing.is_invalid_argument_exception(), "{missing:?}");
}

#[tokio::test]
async fn discover_input_schema_infers_columns_from_stream_records() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    // Written as text so the fields keep the demo stream's order (discovery keeps it too).
    for text in [
        r#"{"TICKER_SYMBOL":"AMZN","SECTOR":"TECHNOLOGY","CHANGE":1.5,"PRICE":100.25}"#,
        r#"{"TICKER_SYMBOL":"XOM","SECTOR":"ENERGY","CHANGE":-0.5,"PRICE":80.75}"#,
    ] {
        e.k.put_record()
            .stream_name("in")
            .partition_key("pk")
            .data(Blob::new(text))
            .send()
            .await
            .unwrap();
    }
    let out = discover_input_schema(&e.a, &stream_arn("in")).await;
    let schema = out.input_schema.unwrap();
    let cols: Vec<(String, String, String)> = schema
        .record_columns
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.mapping.clone().unwrap_or_default(),
                c.sql_type.clone(),
            )
        })
        .collect();
    assert_eq!(
        cols,
        vec![
            (
                "TICKER_SYMBOL".into(),
                "$.TICKER_SYMBOL".into(),
                "VARCHAR(4)".into()
            ),
            ("SECTOR".into(), "$.SECTOR".into(), "VARCHAR(16)".into()),
            ("CHANGE".into(), "$.CHANGE".into(), "REAL".into()),
            ("PRICE".into(), "$.PRICE".into(), "REAL".into()),
        ]
    );
    assert_eq!(out.raw_input_records.unwrap().len(), 2);
    assert_eq!(
        out.parsed_input_records.unwrap()[0],
        vec!["AMZN", "TECHNOLOGY", "1.5", "100.25"]
    );
}

#[tokio::test]
async fn a_restarted_server_resumes_a_running_application_after_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let mut e = start(&["--data-dir", &path]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "tech", 1).await;
    create_stream(&e.k, "amzn", 1).await;
    app("durable", GETTING_STARTED)
        .outputs(&[("DESTINATION_SQL_STREAM", "tech", RecordFormatType::Json)])
        .starting_at(InputStartingPosition::TrimHorizon)
        .start(&e.a)
        .await;
    put_json(&e.k, "in", &[demo("AMZN", "TECHNOLOGY", 1.0, 2.0)]).await;
    assert_eq!(wait_for(&e.k, "tech", 1).await.len(), 1);
    // Let a checkpoint past the first record be written, then kill the process without
    // warning.
    wait_for_checkpoint_past(dir.path(), 1).await;
    e.server.restart().await.unwrap();
    e.k = kinesis_client(&e.server.api);
    e.a = analytics_client(&e.server.api);
    let d =
        e.a.describe_application()
            .application_name("durable")
            .send()
            .await
            .unwrap()
            .application_detail
            .unwrap();
    assert_eq!(d.application_status, ApplicationStatus::Running);
    put_json(&e.k, "in", &[demo("MSFT", "TECHNOLOGY", 3.0, 4.0)]).await;
    let out = parse_json(&wait_for(&e.k, "tech", 2).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out_again = read_all(&e.k, "tech").await;
    // The first record was not processed again, and the second was.
    assert_eq!(out_again.len(), 2);
    assert_eq!(out[0]["TICKER_SYMBOL"], "AMZN");
    assert_eq!(out[1]["TICKER_SYMBOL"], "MSFT");
}

const WINDOWS_ACROSS_RESTART: &str = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (TICKER_SYMBOL VARCHAR(4), TICKER_COUNT INTEGER, TOTAL DOUBLE);
CREATE OR REPLACE PUMP "TUMBLING_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM TICKER_SYMBOL, COUNT(*), SUM(PRICE)
  FROM "SOURCE_SQL_STREAM_001"
  GROUP BY TICKER_SYMBOL, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '60' SECOND);
CREATE OR REPLACE STREAM "SLIDING_STREAM" (TICKER_SYMBOL VARCHAR(4), PRICE DOUBLE, RECENT INTEGER, AVG_PRICE DOUBLE);
CREATE OR REPLACE PUMP "SLIDING_PUMP" AS INSERT INTO "SLIDING_STREAM"
  SELECT STREAM TICKER_SYMBOL, PRICE,
    COUNT(*) OVER (PARTITION BY TICKER_SYMBOL RANGE INTERVAL '1' MINUTE PRECEDING),
    AVG(PRICE) OVER (PARTITION BY TICKER_SYMBOL RANGE INTERVAL '1' MINUTE PRECEDING)
  FROM "SOURCE_SQL_STREAM_001";
"#;

/// Runs a tumbling and a sliding window over records written in two halves of one minute,
/// killing the server (`kill -9`) between the halves when `restart` is set; returns what the
/// tumbling output and the sliding output received.
async fn windows_across_restart(restart: bool) -> (Vec<Value>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let mut e = start(&["--data-dir", &path]).await;
    for s in ["in", "out", "slide"] {
        create_stream(&e.k, s, 1).await;
    }
    app("windows", WINDOWS_ACROSS_RESTART)
        .outputs(&[
            ("DESTINATION_SQL_STREAM", "out", RecordFormatType::Json),
            ("SLIDING_STREAM", "slide", RecordFormatType::Json),
        ])
        .start(&e.a)
        .await;
    // Half a second past a minute boundary of the test clock; a restarted server starts on the
    // wall clock, so the same offset is applied again after the restart.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let offset = 60_000 - now % 60_000 + 500;
    advance_clock(&e.server, offset).await;
    let rows =
        "analytics_input_rows_total{application=\"windows\",stream=\"SOURCE_SQL_STREAM_001\"}";
    put_json(
        &e.k,
        "in",
        &[
            demo("AMZN", "TECHNOLOGY", 1.0, 10.0),
            demo("XOM", "ENERGY", 1.0, 5.0),
            demo("AMZN", "TECHNOLOGY", 1.0, 20.0),
        ],
    )
    .await;
    wait_metric(&e.server, rows, 3.0).await;
    assert_eq!(wait_for(&e.k, "slide", 3).await.len(), 3);
    // A checkpoint is written after the output; then the process dies mid-window.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    if restart {
        e.server.restart().await.unwrap();
        e.k = kinesis_client(&e.server.api);
        e.a = analytics_client(&e.server.api);
        advance_clock(&e.server, offset).await;
        // The three records before the checkpoint were read again to refill the windows.
        wait_metric(
            &e.server,
            "analytics_replayed_records_total{application=\"windows\"}",
            3.0,
        )
        .await;
    }
    put_json(
        &e.k,
        "in",
        &[
            demo("AMZN", "TECHNOLOGY", 1.0, 30.0),
            demo("XOM", "ENERGY", 1.0, 7.0),
        ],
    )
    .await;
    wait_metric(&e.server, rows, if restart { 2.0 } else { 5.0 }).await;
    let slide = parse_json(&wait_for(&e.k, "slide", 5).await);
    advance_clock(&e.server, 60_000).await;
    let mut out = parse_json(&wait_for(&e.k, "out", 2).await);
    out.sort_by_key(|r| r["TICKER_SYMBOL"].as_str().unwrap().to_string());
    // Nothing more comes: no output was written twice.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(read_all(&e.k, "out").await.len(), 2);
    assert_eq!(read_all(&e.k, "slide").await.len(), 5);
    (out, slide)
}

#[tokio::test]
async fn windows_open_across_a_kill_and_restart_report_what_an_uninterrupted_run_reports() {
    let restarted = windows_across_restart(true).await;
    let uninterrupted = windows_across_restart(false).await;
    assert_eq!(restarted, uninterrupted);
    let (out, slide) = restarted;
    // The tumbling minute open at the restart counts the rows from before it.
    assert_eq!(
        out,
        vec![
            json!({"TICKER_SYMBOL": "AMZN", "TICKER_COUNT": 3, "TOTAL": 60.0}),
            json!({"TICKER_SYMBOL": "XOM", "TICKER_COUNT": 2, "TOTAL": 12.0}),
        ]
    );
    // The sliding aggregates after the restart include the rows from before it.
    assert_eq!(
        slide[3..],
        [
            json!({"TICKER_SYMBOL": "AMZN", "PRICE": 30.0, "RECENT": 3, "AVG_PRICE": 20.0}),
            json!({"TICKER_SYMBOL": "XOM", "PRICE": 7.0, "RECENT": 2, "AVG_PRICE": 6.0}),
        ]
    );
}

#[tokio::test]
async fn a_running_application_follows_its_input_through_a_shard_split() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "tech", 1).await;
    create_stream(&e.k, "amzn", 1).await;
    app("split", GETTING_STARTED)
        .outputs(&[("DESTINATION_SQL_STREAM", "tech", RecordFormatType::Json)])
        .starting_at(InputStartingPosition::TrimHorizon)
        .start(&e.a)
        .await;
    put_json(&e.k, "in", &[demo("AMZN", "TECHNOLOGY", 1.0, 2.0)]).await;
    update_shard_count(&e.k, "in", 2).await;
    let records: Vec<Value> = (0..10)
        .map(|i| demo("MSFT", "TECHNOLOGY", i as f64, 1.0))
        .collect();
    put_json(&e.k, "in", &records).await;
    let out = parse_json(&wait_for(&e.k, "tech", 11).await);
    assert_eq!(out.len(), 11);
    assert_eq!(out[0]["TICKER_SYMBOL"], "AMZN");
}

#[tokio::test]
async fn sliding_window_averages_the_last_rows_of_each_ticker() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    // AWS's moving-average example, `last2rows` being the current row and the two before it.
    let code = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), price DOUBLE, avg_last2 DOUBLE);
CREATE OR REPLACE PUMP "myPump" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM ticker_symbol, price, AVG(price) OVER last2rows
  FROM "SOURCE_SQL_STREAM_001"
  WINDOW last2rows AS (PARTITION BY ticker_symbol ROWS 2 PRECEDING);
"#;
    app("sliding", code)
        .outputs(&[("DESTINATION_SQL_STREAM", "out", RecordFormatType::Csv)])
        .starting_at(InputStartingPosition::TrimHorizon)
        .start(&e.a)
        .await;
    put_json(
        &e.k,
        "in",
        &[
            demo("AMZN", "TECHNOLOGY", 0.0, 10.0),
            demo("AMZN", "TECHNOLOGY", 0.0, 20.0),
            demo("XOM", "ENERGY", 0.0, 7.0),
            demo("AMZN", "TECHNOLOGY", 0.0, 30.0),
            demo("AMZN", "TECHNOLOGY", 0.0, 40.0),
        ],
    )
    .await;
    assert_eq!(
        wait_for(&e.k, "out", 5).await,
        vec![
            "AMZN,10.0,10.0\n",
            "AMZN,20.0,15.0\n",
            "XOM,7.0,7.0\n",
            "AMZN,30.0,20.0\n",
            "AMZN,40.0,30.0\n",
        ]
    );
}

#[tokio::test]
async fn stagger_window_counts_a_late_group_in_one_row() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    // AWS's stagger window example: six records of one (EVENT_TIME, TICKER) arrive 10 s apart.
    let code = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (event_time TIMESTAMP, ticker_symbol VARCHAR(4), ticker_count INTEGER);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM EVENT_TIME, TICKER, COUNT(TICKER) AS ticker_count
  FROM "SOURCE_SQL_STREAM_001"
  WINDOWED BY STAGGER (PARTITION BY TICKER, EVENT_TIME RANGE INTERVAL '1' MINUTE);
"#;
    let schema = json_schema(&[
        ("EVENT_TIME", "TIMESTAMP"),
        ("TICKER", "VARCHAR(4)"),
        ("PRICE", "DOUBLE"),
    ]);
    app("stagger", code).schema(schema).start(&e.a).await;
    align_to_minute(&e.server).await;
    // The group starts 40 s into a minute, so a tumbling minute would split it.
    advance_clock(&e.server, 40_000).await;
    let series =
        "analytics_input_rows_total{application=\"stagger\",stream=\"SOURCE_SQL_STREAM_001\"}";
    for i in 0..6 {
        put_json(
            &e.k,
            "in",
            &[json!({"EVENT_TIME": "2018-08-01T20:17:20.297Z", "TICKER": "AMZN", "PRICE": i})],
        )
        .await;
        wait_metric(&e.server, series, (i + 1) as f64).await;
        advance_clock(&e.server, 10_000).await;
    }
    // 60 s after the first row the window closes.
    advance_clock(&e.server, 1_000).await;
    let rows = parse_json(&wait_for(&e.k, "out", 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(read_all(&e.k, "out").await.len(), 1);
    assert_eq!(rows[0]["TICKER_SYMBOL"], "AMZN");
    assert_eq!(rows[0]["TICKER_COUNT"], 6);
}

#[tokio::test]
async fn manifests_create_and_start_an_analytics_app() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/analytics");
    let e = start(&["--manifests", dir]).await;
    let d =
        e.a.describe_application()
            .application_name("ticker-stats")
            .send()
            .await
            .unwrap()
            .application_detail
            .unwrap();
    assert_eq!(d.application_status, ApplicationStatus::Running);
    align_to_minute(&e.server).await;
    put_json(
        &e.k,
        "ticks",
        &[
            json!({"TICKER_SYMBOL": "AMZN", "PRICE": 10.0}),
            json!({"TICKER_SYMBOL": "AMZN", "PRICE": 20.0}),
        ],
    )
    .await;
    wait_metric(
        &e.server,
        "analytics_input_rows_total{application=\"ticker-stats\",stream=\"SOURCE_SQL_STREAM_001\"}",
        2.0,
    )
    .await;
    advance_clock(&e.server, 60_000).await;
    assert_eq!(
        parse_json(&wait_for(&e.k, "ticker-stats", 1).await),
        vec![json!({"TICKER_SYMBOL": "AMZN", "TICKER_COUNT": 2, "AVG_PRICE": 15.0})]
    );
}

/// Puts records in batches of up to 500 with PutRecords, in order, into a one-shard stream.
async fn put_json_batch(k: &aws_sdk_kinesis::Client, stream: &str, records: &[Value]) {
    let records = records
        .iter()
        .map(|r| ("pk".to_string(), serde_json::to_vec(r).unwrap()));
    put_records(k, stream, records).await;
}

#[tokio::test]
async fn a_stream_to_stream_join_reports_orders_with_trades_of_the_minute_before() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    // AWS's stream-joins example over the two-record-types split of one input.
    let code = r#"
CREATE OR REPLACE STREAM "Order_Stream" ("order_id" INTEGER, "ticker" VARCHAR(4), "amount" INTEGER);
CREATE OR REPLACE STREAM "Trade_Stream" ("order_id" INTEGER, "ticker" VARCHAR(4), "amount" INTEGER);
CREATE OR REPLACE PUMP "Order_Pump" AS INSERT INTO "Order_Stream"
  SELECT STREAM "Oid", "Ticker", "Amount" FROM "SOURCE_SQL_STREAM_001" WHERE "RecordType" = 'Order';
CREATE OR REPLACE PUMP "Trade_Pump" AS INSERT INTO "Trade_Stream"
  SELECT STREAM "Oid", "Ticker", "Amount" FROM "SOURCE_SQL_STREAM_001" WHERE "RecordType" = 'Trade';
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (order_id INTEGER, ticker VARCHAR(4), order_amount INTEGER, trade_amount INTEGER);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM o."order_id", o."ticker", o."amount" AS order_amount, t."amount" AS trade_amount
  FROM "Order_Stream" AS o
  JOIN "Trade_Stream" OVER (RANGE INTERVAL '1' MINUTE PRECEDING) AS t
  ON o."order_id" = t."order_id";
"#;
    let schema = json_schema(&[
        ("RecordType", "VARCHAR(8)"),
        ("Oid", "INTEGER"),
        ("Ticker", "VARCHAR(4)"),
        ("Amount", "INTEGER"),
    ]);
    app("joins", code).schema(schema).start(&e.a).await;
    let series =
        "analytics_input_rows_total{application=\"joins\",stream=\"SOURCE_SQL_STREAM_001\"}";
    let rec = |kind: &str, oid: i64, amount: i64| json!({"RecordType": kind, "Oid": oid, "Ticker": "AMZN", "Amount": amount});
    put_json(&e.k, "in", &[rec("Trade", 1, 10), rec("Trade", 2, 20)]).await;
    wait_metric(&e.server, series, 2.0).await;
    // Order 2's trade is more than a minute old when the order arrives.
    advance_clock(&e.server, 30_000).await;
    put_json(&e.k, "in", &[rec("Order", 1, 100)]).await;
    wait_metric(&e.server, series, 3.0).await;
    advance_clock(&e.server, 40_000).await;
    put_json(&e.k, "in", &[rec("Order", 2, 200)]).await;
    wait_metric(&e.server, series, 4.0).await;
    let rows = parse_json(&wait_for(&e.k, "out", 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(read_all(&e.k, "out").await.len(), 1);
    assert_eq!(
        rows[0],
        json!({"ORDER_ID": 1, "TICKER": "AMZN", "ORDER_AMOUNT": 100, "TRADE_AMOUNT": 10})
    );
}

#[tokio::test]
async fn top_k_items_tumbling_reports_the_most_traded_tickers_when_the_minute_closes() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    let code = r#"
CREATE OR REPLACE STREAM DESTINATION_SQL_STREAM ("TICKER_SYMBOL" VARCHAR(4), "MOST_FREQUENT_VALUES" BIGINT);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM * FROM TABLE (TOP_K_ITEMS_TUMBLING(
    CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"),
    'TICKER_SYMBOL', -- name of column in single quotes
    3,               -- number of the most frequently occurring values
    60               -- tumbling window size in seconds
  ));
"#;
    app("topk", code).start(&e.a).await;
    align_to_minute(&e.server).await;
    let mut records = Vec::new();
    for (ticker, n) in [("AMZN", 5), ("XOM", 1), ("TGT", 3), ("MSFT", 4), ("WMT", 2)] {
        for _ in 0..n {
            records.push(demo(ticker, "X", 0.0, 1.0));
        }
    }
    put_json_batch(&e.k, "in", &records).await;
    let series =
        "analytics_input_rows_total{application=\"topk\",stream=\"SOURCE_SQL_STREAM_001\"}";
    wait_metric(&e.server, series, 15.0).await;
    assert!(read_all(&e.k, "out").await.is_empty(), "the minute is open");
    advance_clock(&e.server, 60_000).await;
    let rows = parse_json(&wait_for(&e.k, "out", 3).await);
    assert_eq!(
        rows,
        vec![
            json!({"TICKER_SYMBOL": "AMZN", "MOST_FREQUENT_VALUES": 5}),
            json!({"TICKER_SYMBOL": "MSFT", "MOST_FREQUENT_VALUES": 4}),
            json!({"TICKER_SYMBOL": "TGT", "MOST_FREQUENT_VALUES": 3}),
        ]
    );
}

#[tokio::test]
async fn random_cut_forest_scores_anomalous_heart_rates_above_normal_ones() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    // AWS's anomaly-detection example, as written.
    let code = r#"
CREATE OR REPLACE STREAM "TEMP_STREAM" ("heartRate" INTEGER, "rateType" VARCHAR(20), "ANOMALY_SCORE" DOUBLE);
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" ("heartRate" INTEGER, "rateType" VARCHAR(20), "ANOMALY_SCORE" DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "TEMP_STREAM"
  SELECT STREAM "heartRate", "rateType", ANOMALY_SCORE
  FROM TABLE(RANDOM_CUT_FOREST(CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"), 100, 256, 100000, 1));
CREATE OR REPLACE PUMP "OUTPUT_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM * FROM "TEMP_STREAM"
  ORDER BY FLOOR("TEMP_STREAM".ROWTIME TO SECOND), ANOMALY_SCORE DESC;
"#;
    let schema = json_schema(&[("heartRate", "INTEGER"), ("rateType", "VARCHAR(20)")]);
    app("rcf", code).schema(schema).start(&e.a).await;
    // 99 % normal (60-100), 1 % high (150-200), from a fixed sequence.
    let mut seed: u64 = 42;
    let mut unit = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut records = Vec::new();
    for _ in 0..1_000 {
        let (rate, kind) = if unit() < 0.01 {
            (150.0 + 50.0 * unit(), "HIGH")
        } else {
            (60.0 + 40.0 * unit(), "NORMAL")
        };
        records.push(json!({"heartRate": rate as i64, "rateType": kind}));
    }
    // Make sure some anomalies arrive after the warm-up.
    for i in [400, 600, 800] {
        records[i] = json!({"heartRate": 190, "rateType": "HIGH"});
    }
    put_json_batch(&e.k, "in", &records).await;
    let series = "analytics_input_rows_total{application=\"rcf\",stream=\"SOURCE_SQL_STREAM_001\"}";
    wait_metric(&e.server, series, 1_000.0).await;
    // ORDER BY holds each second's rows until the second is over.
    advance_clock(&e.server, 2_000).await;
    let rows = parse_json(&wait_for(&e.k, "out", 1_000).await);
    assert_eq!(rows.len(), 1_000);
    let mean = |kind: &str| {
        let s: Vec<f64> = rows
            .iter()
            .filter(|r| r["rateType"] == kind)
            .map(|r| r["ANOMALY_SCORE"].as_f64().unwrap())
            .filter(|s| *s > 0.0) // scored after the warm-up
            .collect();
        assert!(!s.is_empty(), "no scored {kind} rows");
        s.iter().sum::<f64>() / s.len() as f64
    };
    let (high, normal) = (mean("HIGH"), mean("NORMAL"));
    assert!(high > 2.0 * normal, "HIGH {high} vs NORMAL {normal}");
}

#[tokio::test]
async fn w3c_log_parse_splits_apache_log_lines_into_columns() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    let code = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (host VARCHAR(16), usr VARCHAR(16), request VARCHAR(64), status INTEGER, bytes BIGINT);
CREATE OR REPLACE PUMP "WEBLOG" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM l.r.COLUMN1, l.r.COLUMN3, l.r.COLUMN5, l.r.COLUMN6, l.r.COLUMN7
  FROM (SELECT STREAM W3C_LOG_PARSE("log", 'COMMON') FROM "SOURCE_SQL_STREAM_001") AS l(r);
"#;
    app("weblog", code)
        .schema(json_schema(&[("log", "VARCHAR(256)")]))
        .start(&e.a)
        .await;
    put_json(
        &e.k,
        "in",
        &[json!({"log": r#"192.168.254.30 - John [24/May/2004:22:01:02 -0700] "GET /icons/apache_pb.gif HTTP/1.1" 304 0"#})],
    )
    .await;
    let rows = parse_json(&wait_for(&e.k, "out", 1).await);
    assert_eq!(
        rows,
        vec![json!({
            "HOST": "192.168.254.30",
            "USR": "John",
            "REQUEST": "GET /icons/apache_pb.gif HTTP/1.1",
            "STATUS": 304,
            "BYTES": 0
        })]
    );
}

#[tokio::test]
async fn reference_data_is_loaded_from_the_object_store_and_joined() {
    // AWS's reference-data example: a CSV of ticker → company in S3, loaded as table
    // "CompanyName" and LEFT JOINed; the object store here is a directory (`file://`).
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ref-bucket")).unwrap();
    std::fs::write(
        dir.path().join("ref-bucket/TickerReference.csv"),
        "AMZN,Amazon\nTGT,Target\n",
    )
    .unwrap();
    let store = format!("file://{}", dir.path().display());
    let e = start(&["--s3-endpoint", &store]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    e.a.create_application()
        .application_name("enrich")
        .inputs(stream_input("in", demo_schema()))
        .outputs(stream_output(
            "DESTINATION_SQL_STREAM",
            "out",
            RecordFormatType::Json,
        ))
        .send()
        .await
        .unwrap();
    let csv = |delim: &str| {
        RecordFormat::builder()
            .record_format_type(RecordFormatType::Csv)
            .mapping_parameters(
                MappingParameters::builder()
                    .csv_mapping_parameters(
                        kda::types::CsvMappingParameters::builder()
                            .record_column_delimiter(delim)
                            .record_row_delimiter("\n")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
            .unwrap()
    };
    let column = |name: &str, ty: &str| {
        RecordColumn::builder()
            .name(name)
            .sql_type(ty)
            .build()
            .unwrap()
    };
    e.a.add_application_reference_data_source()
        .application_name("enrich")
        .current_application_version_id(1)
        .reference_data_source(
            kda::types::ReferenceDataSource::builder()
                .table_name("CompanyName")
                .s3_reference_data_source(
                    kda::types::S3ReferenceDataSource::builder()
                        .bucket_arn("arn:aws:s3:::ref-bucket")
                        .file_key("TickerReference.csv")
                        .reference_role_arn(KDA_ROLE)
                        .build()
                        .unwrap(),
                )
                .reference_schema(
                    SourceSchema::builder()
                        .record_format(csv(","))
                        .record_encoding("UTF-8")
                        .record_columns(column("Ticker", "VARCHAR(4)"))
                        .record_columns(column("Company", "VARCHAR(20)"))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let code = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), "Company" VARCHAR(20), sector VARCHAR(12), change DOUBLE, price DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM ticker_symbol, "c"."Company", sector, change, price
  FROM "SOURCE_SQL_STREAM_001" LEFT JOIN "CompanyName" AS "c"
  ON "SOURCE_SQL_STREAM_001".ticker_symbol = "c"."Ticker";
"#;
    e.a.update_application()
        .application_name("enrich")
        .current_application_version_id(2)
        .application_update(
            kda::types::ApplicationUpdate::builder()
                .application_code_update(code)
                .build(),
        )
        .send()
        .await
        .unwrap();
    start_application(&e.a, "enrich", InputStartingPosition::TrimHorizon).await;
    put_json(
        &e.k,
        "in",
        &[
            demo("AMZN", "TECHNOLOGY", 1.0, 100.0),
            demo("XOM", "ENERGY", -1.0, 50.0),
        ],
    )
    .await;
    let rows = parse_json(&wait_for(&e.k, "out", 2).await);
    assert_eq!(rows[0]["TICKER_SYMBOL"], "AMZN");
    assert_eq!(rows[0]["Company"], "Amazon");
    assert_eq!(rows[1]["TICKER_SYMBOL"], "XOM");
    assert_eq!(rows[1]["Company"], Value::Null);

    // A missing object fails the start with the table and object named.
    e.a.stop_application()
        .application_name("enrich")
        .send()
        .await
        .unwrap();
    std::fs::remove_file(dir.path().join("ref-bucket/TickerReference.csv")).unwrap();
    let err =
        e.a.start_application()
            .application_name("enrich")
            .input_configurations(
                InputConfiguration::builder()
                    .id("1.1")
                    .input_starting_position_configuration(
                        InputStartingPositionConfiguration::builder()
                            .input_starting_position(InputStartingPosition::Now)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    let message = err.to_string();
    assert!(
        message.contains(
            "Could not load reference data for table CompanyName from s3://ref-bucket/TickerReference.csv"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn count_distinct_items_tumbling_counts_tickers_per_minute() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    // AWS's COUNT_DISTINCT_ITEMS_TUMBLING example.
    let code = r#"
CREATE OR REPLACE STREAM DESTINATION_SQL_STREAM (NUMBER_OF_DISTINCT_ITEMS BIGINT);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM * FROM TABLE(COUNT_DISTINCT_ITEMS_TUMBLING(
    CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"), -- pointer to the data stream
    'TICKER_SYMBOL',                                      -- name of column in single quotes
    60                                                    -- tumbling window size in seconds
  ));
"#;
    app("distinct", code).start(&e.a).await;
    align_to_minute(&e.server).await;
    let records: Vec<Value> = ["AMZN", "TGT", "AMZN", "XOM", "TGT", "AMZN"]
        .iter()
        .map(|t| demo(t, "X", 0.0, 1.0))
        .collect();
    put_json_batch(&e.k, "in", &records).await;
    let series =
        "analytics_input_rows_total{application=\"distinct\",stream=\"SOURCE_SQL_STREAM_001\"}";
    wait_metric(&e.server, series, 6.0).await;
    advance_clock(&e.server, 60_000).await;
    let rows = parse_json(&wait_for(&e.k, "out", 1).await);
    assert_eq!(rows, vec![json!({"NUMBER_OF_DISTINCT_ITEMS": 3})]);
}

#[tokio::test]
async fn random_cut_forest_with_explanation_attributes_blood_pressure_anomalies() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    // AWS's RANDOM_CUT_FOREST_WITH_EXPLANATION example (blood pressure).
    let code = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" ("Systolic" INTEGER, "Diastolic" INTEGER, "BloodPressureLevel" VARCHAR(20), ANOMALY_SCORE DOUBLE, ANOMALY_EXPLANATION VARCHAR(512));
CREATE OR REPLACE PUMP "OUTPUT_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT "Systolic", "Diastolic", "BloodPressureLevel", ANOMALY_SCORE, ANOMALY_EXPLANATION
  FROM TABLE(RANDOM_CUT_FOREST_WITH_EXPLANATION(
    CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"), 100, 256, 100000, 1, true));
"#;
    let schema = json_schema(&[
        ("Systolic", "INTEGER"),
        ("Diastolic", "INTEGER"),
        ("BloodPressureLevel", "VARCHAR(20)"),
    ]);
    app("bp", code).schema(schema).start(&e.a).await;
    let mut records = Vec::new();
    for i in 0..400 {
        let (s, d, level) = if i >= 200 && i % 50 == 0 {
            (200, 80, "HIGH")
        } else {
            (100 + (i * 7) % 20, 65 + (i * 3) % 10, "NORMAL")
        };
        records.push(json!({"Systolic": s, "Diastolic": d, "BloodPressureLevel": level}));
    }
    put_json_batch(&e.k, "in", &records).await;
    let rows = parse_json(&wait_for(&e.k, "out", 400).await);
    assert_eq!(rows.len(), 400);
    for r in rows.iter().skip(200) {
        let score = r["ANOMALY_SCORE"].as_f64().unwrap();
        let exp: Value = serde_json::from_str(r["ANOMALY_EXPLANATION"].as_str().unwrap()).unwrap();
        let part = |c: &str, f: &str| -> f64 { exp[c][f].as_str().unwrap().parse().unwrap() };
        let sum = part("Systolic", "ATTRIBUTION_SCORE") + part("Diastolic", "ATTRIBUTION_SCORE");
        assert!((sum - score).abs() < 0.001, "{sum} vs {score}");
        if r["BloodPressureLevel"] == "HIGH" {
            assert_eq!(exp["Systolic"]["DIRECTION"], "HIGH", "{exp}");
            assert!(
                part("Systolic", "ATTRIBUTION_SCORE") > part("Diastolic", "ATTRIBUTION_SCORE"),
                "{exp}"
            );
        }
    }
    let mean = |level: &str| {
        let s: Vec<f64> = rows
            .iter()
            .skip(200)
            .filter(|r| r["BloodPressureLevel"] == level)
            .map(|r| r["ANOMALY_SCORE"].as_f64().unwrap())
            .collect();
        s.iter().sum::<f64>() / s.len() as f64
    };
    assert!(mean("HIGH") > 2.0 * mean("NORMAL"));
}

#[tokio::test]
async fn hotspots_reports_the_dense_region_of_the_points() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    // AWS's hotspots example: `HOTSPOTS(cursor, 1000, 0.2, 17)` over (x, y) points.
    let code = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" ("x" DOUBLE, "y" DOUBLE, "is_hot" VARCHAR(4), HOTSPOTS_RESULT VARCHAR(10000));
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT "x", "y", "is_hot", HOTSPOTS_RESULT
  FROM TABLE(HOTSPOTS(CURSOR(SELECT STREAM "x", "y", "is_hot" FROM "SOURCE_SQL_STREAM_001"), 1000, 0.2, 17));
"#;
    let schema = json_schema(&[("x", "DOUBLE"), ("y", "DOUBLE"), ("is_hot", "VARCHAR(4)")]);
    app("hot", code).schema(schema).start(&e.a).await;
    let mut records = Vec::new();
    for i in 0..600u64 {
        // A fixed scatter over [0, 10)² with every fifth point in the square [2, 2.4)².
        let a = ((i * 7919) % 1000) as f64 / 100.0;
        let b = ((i * 104_729) % 997) as f64 / 99.7;
        if i % 5 == 0 {
            records.push(json!({"x": 2.0 + a / 25.0, "y": 2.0 + b / 25.0, "is_hot": "Y"}));
        } else {
            records.push(json!({"x": a, "y": b, "is_hot": "N"}));
        }
    }
    put_json_batch(&e.k, "in", &records).await;
    let rows = parse_json(&wait_for(&e.k, "out", 600).await);
    let last: Value = serde_json::from_str(rows[599]["HOTSPOTS_RESULT"].as_str().unwrap()).unwrap();
    let top = &last["hotspots"][0];
    for d in 0..2 {
        let lo = top["minValues"][d].as_f64().unwrap();
        let hi = top["maxValues"][d].as_f64().unwrap();
        assert!(
            (1.6..=2.05).contains(&lo) && (2.35..=2.8).contains(&hi),
            "{top}"
        );
    }
    assert!(top["density"].as_f64().unwrap() > 5.0, "{top}");
}

#[tokio::test]
async fn variable_column_log_parse_splits_delimited_text_into_columns() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    // AWS's VARIABLE_COLUMN_LOG_PARSE example.
    let code = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    "column_A" VARCHAR(16), "column_B" VARCHAR(16), "column_C" VARCHAR(16), "COL_1" VARCHAR(16), "COL_2" VARCHAR(16), "COL_3" VARCHAR(16));
CREATE OR REPLACE PUMP "SECOND_STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM t."Col_A", t."Col_B", t."Col_C", t.r."COL_1", t.r."COL_2", t.r."COL_3"
  FROM (SELECT STREAM "Col_A", "Col_B", "Col_C",
          VARIABLE_COLUMN_LOG_PARSE("Col_E_Unstructured",
            'COL_1 TYPE VARCHAR(16), COL_2 TYPE VARCHAR(16), COL_3 TYPE VARCHAR(16)', ',') AS r
        FROM "SOURCE_SQL_STREAM_001") AS t;
"#;
    let schema = json_schema(&[
        ("Col_A", "VARCHAR(16)"),
        ("Col_B", "VARCHAR(16)"),
        ("Col_C", "VARCHAR(16)"),
        ("Col_D", "VARCHAR(16)"),
        ("Col_E_Unstructured", "VARCHAR(64)"),
    ]);
    app("varcol", code).schema(schema).start(&e.a).await;
    put_json(
        &e.k,
        "in",
        &[
            json!({"Col_A": "string", "Col_B": "string", "Col_C": "string", "Col_D": "string",
                  "Col_E_Unstructured": "value,value,value,value"}),
        ],
    )
    .await;
    let rows = parse_json(&wait_for(&e.k, "out", 1).await);
    assert_eq!(
        rows,
        vec![
            json!({"column_A": "string", "column_B": "string", "column_C": "string",
                     "COL_1": "value", "COL_2": "value", "COL_3": "value"})
        ]
    );
}

#[tokio::test]
async fn a_manifest_with_reference_data_loads_its_table_before_the_code_runs() {
    let store = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(store.path().join("ref")).unwrap();
    std::fs::write(store.path().join("ref/companies.csv"), "AMZN,Amazon\n").unwrap();
    let manifests = tempfile::tempdir().unwrap();
    std::fs::write(
        manifests.path().join("app.yaml"),
        r#"
apiVersion: tributary.dev/v1alpha1
kind: Stream
metadata: {name: ticks}
spec: {shardCount: 1}
---
apiVersion: tributary.dev/v1alpha1
kind: Stream
metadata: {name: enriched}
spec: {shardCount: 1}
---
apiVersion: tributary.dev/v1alpha1
kind: AnalyticsApp
metadata: {name: enrich}
spec:
  applicationCode: |
    CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (TICKER_SYMBOL VARCHAR(4), COMPANY VARCHAR(20));
    CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
      SELECT STREAM TICKER_SYMBOL, "c"."Company"
      FROM "SOURCE_SQL_STREAM_001" LEFT JOIN "CompanyName" AS "c"
      ON "SOURCE_SQL_STREAM_001".TICKER_SYMBOL = "c"."Ticker";
  inputs:
    - namePrefix: SOURCE_SQL_STREAM
      kinesisStreamsInput: {resourceRef: {name: ticks}}
      inputStartingPosition: TRIM_HORIZON
      inputSchema:
        recordFormat:
          recordFormatType: JSON
          mappingParameters: {jsonMappingParameters: {recordRowPath: $}}
        recordColumns:
          - {name: TICKER_SYMBOL, mapping: $.TICKER_SYMBOL, sqlType: VARCHAR(4)}
  outputs:
    - name: DESTINATION_SQL_STREAM
      kinesisStreamsOutput: {resourceRef: {name: enriched}}
      destinationSchema: {recordFormatType: JSON}
  referenceDataSources:
    - tableName: CompanyName
      s3ReferenceDataSource: {bucketARN: "arn:aws:s3:::ref", fileKey: companies.csv}
      referenceSchema:
        recordFormat:
          recordFormatType: CSV
          mappingParameters:
            csvMappingParameters: {recordRowDelimiter: "\n", recordColumnDelimiter: ","}
        recordColumns:
          - {name: Ticker, sqlType: VARCHAR(4)}
          - {name: Company, sqlType: VARCHAR(20)}
"#,
    )
    .unwrap();
    let store_url = format!("file://{}", store.path().display());
    let dir = manifests.path().display().to_string();
    let e = start(&["--manifests", &dir, "--s3-endpoint", &store_url]).await;
    put_json(&e.k, "ticks", &[json!({"TICKER_SYMBOL": "AMZN"})]).await;
    let rows = parse_json(&wait_for(&e.k, "enriched", 1).await);
    assert_eq!(
        rows,
        vec![json!({"TICKER_SYMBOL": "AMZN", "COMPANY": "Amazon"})]
    );
    let d =
        e.a.describe_application()
            .application_name("enrich")
            .send()
            .await
            .unwrap()
            .application_detail
            .unwrap();
    assert_eq!(d.reference_data_source_descriptions.unwrap().len(), 1);
}

async fn put_firehose(f: &aws_sdk_firehose::Client, name: &str, records: &[Value]) {
    put_record_batch(
        f,
        name,
        records.iter().map(|r| serde_json::to_vec(r).unwrap()),
    )
    .await;
}

#[tokio::test]
async fn records_put_to_a_delivery_stream_feed_an_application_across_a_restart() {
    use aws_sdk_firehose::types::ExtendedS3DestinationConfiguration;
    use kda::types::KinesisFirehoseInput;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s3 = format!("file://{}", dir.path().join("s3").display());
    let mut e = start(&["--data-dir", data.to_str().unwrap(), "--s3-endpoint", &s3]).await;
    let mut f = firehose_client(&e.server.api);
    // Delivered at once, so its buffer would be released right away without the application.
    f.create_delivery_stream()
        .delivery_stream_name("ticks")
        .extended_s3_destination_configuration(
            ExtendedS3DestinationConfiguration::builder()
                .role_arn(KDA_ROLE)
                .bucket_arn("arn:aws:s3:::landing")
                .buffering_hints(buffering_hints(1, 0))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    create_stream(&e.k, "tech", 1).await;
    let firehose_input = |arn: &str| {
        Input::builder()
            .name_prefix("SOURCE_SQL_STREAM")
            .kinesis_firehose_input(
                KinesisFirehoseInput::builder()
                    .resource_arn(arn)
                    .role_arn(KDA_ROLE)
                    .build()
                    .unwrap(),
            )
            .input_schema(demo_schema())
            .build()
            .unwrap()
    };
    let missing =
        e.a.create_application()
            .application_name("nope")
            .application_code(GETTING_STARTED)
            .inputs(firehose_input(
                "arn:aws:firehose:us-east-1:000000000000:deliverystream/missing",
            ))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
    assert_eq!(missing.meta().code(), Some("InvalidArgumentException"));
    app("from-firehose", GETTING_STARTED)
        .input(firehose_input(
            "arn:aws:firehose:us-east-1:000000000000:deliverystream/ticks",
        ))
        .outputs(&[("DESTINATION_SQL_STREAM", "tech", RecordFormatType::Json)])
        .starting_at(InputStartingPosition::TrimHorizon)
        .start(&e.a)
        .await;
    put_firehose(
        &f,
        "ticks",
        &[
            demo("AMZN", "TECHNOLOGY", 1.0, 2.0),
            demo("XOM", "ENERGY", 1.0, 3.0),
            demo("MSFT", "TECHNOLOGY", 1.0, 4.0),
        ],
    )
    .await;
    assert_eq!(wait_for(&e.k, "tech", 2).await.len(), 2);
    let d =
        e.a.describe_application()
            .application_name("from-firehose")
            .send()
            .await
            .unwrap()
            .application_detail
            .unwrap();
    let input = &d.input_descriptions.unwrap()[0];
    assert!(input
        .kinesis_firehose_input_description
        .as_ref()
        .unwrap()
        .resource_arn
        .as_deref()
        .unwrap()
        .ends_with(":deliverystream/ticks"));
    // Killed and restarted: the application continues after its checkpoint.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    e.server.restart().await.unwrap();
    e.k = kinesis_client(&e.server.api);
    f = firehose_client(&e.server.api);
    put_firehose(&f, "ticks", &[demo("AAPL", "TECHNOLOGY", 1.0, 5.0)]).await;
    let out = parse_json(&wait_for(&e.k, "tech", 3).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(read_all(&e.k, "tech").await.len(), 3);
    let tickers: Vec<&str> = out
        .iter()
        .map(|r| r["TICKER_SYMBOL"].as_str().unwrap())
        .collect();
    assert_eq!(tickers, ["AMZN", "MSFT", "AAPL"]);
    // The delivery stream still delivers every record to its destination.
    wait_objects(&dir.path().join("s3"), 4).await;
    // Records put while the application is stopped are delivered, and kept in the buffer for
    // the application: it reads them when started again from where it stopped.
    e.a = analytics_client(&e.server.api);
    e.a.stop_application()
        .application_name("from-firehose")
        .send()
        .await
        .unwrap();
    wait_status(&e.a, "from-firehose", ApplicationStatus::Ready).await;
    put_firehose(
        &f,
        "ticks",
        &[
            demo("IBM", "TECHNOLOGY", 1.0, 6.0),
            demo("BP", "ENERGY", 1.0, 7.0),
        ],
    )
    .await;
    wait_objects(&dir.path().join("s3"), 6).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // DiscoverInputSchema samples what the delivery stream holds for the application.
    let found = discover_input_schema(
        &e.a,
        "arn:aws:firehose:us-east-1:000000000000:deliverystream/ticks",
    )
    .await;
    assert_eq!(found.raw_input_records().len(), 2);
    assert!(found.raw_input_records()[0].contains("IBM"));
    let names: Vec<&str> = found
        .input_schema
        .as_ref()
        .unwrap()
        .record_columns()
        .iter()
        .map(|c| c.name())
        .collect();
    // serde_json writes the test's keys sorted; discovery keeps document order.
    assert_eq!(names, ["CHANGE", "PRICE", "SECTOR", "TICKER_SYMBOL"]);
    start_application(
        &e.a,
        "from-firehose",
        InputStartingPosition::LastStoppedPoint,
    )
    .await;
    let out = parse_json(&wait_for(&e.k, "tech", 4).await);
    assert_eq!(out[3]["TICKER_SYMBOL"], "IBM");
}

async fn wait_status(a: &kda::Client, name: &str, status: ApplicationStatus) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let d = a
            .describe_application()
            .application_name(name)
            .send()
            .await
            .unwrap()
            .application_detail
            .unwrap();
        if d.application_status == status {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the objects under `root` hold `n` records of the demo schema.
async fn wait_objects(root: &std::path::Path, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut delivered = String::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    delivered.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
                }
            }
        }
        if delivered.matches("TICKER_SYMBOL").count() >= n {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{delivered}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// AWS's remaining example applications, each with the SQL of sql/tests/examples.rs and the rows
// that test expects.

fn input_rows(app: &str) -> String {
    format!("analytics_input_rows_total{{application=\"{app}\",stream=\"SOURCE_SQL_STREAM_001\"}}")
}

#[tokio::test]
async fn simple_alerts_pass_only_changes_above_one_percent() {
    let e = start(&[]).await;
    for s in ["in", "out", "errors"] {
        create_stream(&e.k, s, 1).await;
    }
    let code = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), sector VARCHAR(12), change DOUBLE, price DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM ticker_symbol, sector, change, price
    FROM   "SOURCE_SQL_STREAM_001"
    WHERE  (ABS(Change / (Price - Change)) * 100) > 1;
"#;
    app("simple-alerts", code)
        .outputs(&[
            ("DESTINATION_SQL_STREAM", "out", RecordFormatType::Json),
            ("error_stream", "errors", RecordFormatType::Json),
        ])
        .starting_at(InputStartingPosition::TrimHorizon)
        .start(&e.a)
        .await;
    put_json(
        &e.k,
        "in",
        &[
            demo("AMZN", "TECHNOLOGY", 2.0, 102.0), // 2 %
            demo("TGT", "RETAIL", 0.5, 100.5),      // 0.5 %
            demo("XYZ", "ENERGY", -3.0, 97.0),      // 3 %
        ],
    )
    .await;
    wait_metric(&e.server, &input_rows("simple-alerts"), 3.0).await;
    assert_eq!(
        parse_json(&wait_for(&e.k, "out", 2).await),
        vec![
            json!({"TICKER_SYMBOL": "AMZN", "SECTOR": "TECHNOLOGY", "CHANGE": 2.0, "PRICE": 102.0}),
            json!({"TICKER_SYMBOL": "XYZ", "SECTOR": "ENERGY", "CHANGE": -3.0, "PRICE": 97.0}),
        ]
    );
    assert!(read_all(&e.k, "errors").await.is_empty());
}

#[tokio::test]
async fn throttled_alerts_count_triggers_per_ticker_over_the_last_minute() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
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
    app("throttled", code)
        .outputs(&[("TRIGGER_COUNT_STREAM", "out", RecordFormatType::Json)])
        .start(&e.a)
        .await;
    // Seconds after the first record, and the record put then.
    let records = [
        (0, demo("AMZN", "T", 2.0, 102.0)),
        (10, demo("AMZN", "T", 0.1, 102.0)), // below 1 %: not a trigger
        (20, demo("TGT", "R", 3.0, 53.0)),
        (30, demo("AMZN", "T", -2.0, 100.0)),
        (65, demo("AMZN", "T", 2.0, 102.0)), // the trigger at 0 s has left the minute
    ];
    let mut now = 0;
    for (i, (at, rec)) in records.iter().enumerate() {
        advance_clock(&e.server, (at - now) * 1000).await;
        now = *at;
        put_json(&e.k, "in", std::slice::from_ref(rec)).await;
        wait_metric(&e.server, &input_rows("throttled"), (i + 1) as f64).await;
    }
    assert_eq!(
        parse_json(&wait_for(&e.k, "out", 4).await),
        vec![
            json!({"TICKER_SYMBOL": "AMZN", "CHANGE": 2.0, "TRIGGER_COUNT": 1}),
            json!({"TICKER_SYMBOL": "TGT", "CHANGE": 3.0, "TRIGGER_COUNT": 1}),
            json!({"TICKER_SYMBOL": "AMZN", "CHANGE": -2.0, "TRIGGER_COUNT": 2}),
            json!({"TICKER_SYMBOL": "AMZN", "CHANGE": 2.0, "TRIGGER_COUNT": 2}),
        ]
    );
}

#[tokio::test]
async fn a_tumbling_window_on_event_time_yields_partial_rows_for_late_events() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
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
    let schema = json_schema(&[("EVENT_TIME", "TIMESTAMP"), ("TICKER_SYMBOL", "VARCHAR(4)")]);
    app("event-time", code).schema(schema).start(&e.a).await;
    let ev =
        |t: &str| json!({"EVENT_TIME": format!("2017-05-01T{t}.000Z"), "TICKER_SYMBOL": "AMZN"});
    // The rows of AWS's stagger-window concept page: two events of 11:00 arrive in the first
    // minute; a late one of 11:00 and one of 11:01 arrive in the next.
    align_to_minute(&e.server).await;
    put_json(&e.k, "in", &[ev("11:00:10"), ev("11:00:20")]).await;
    wait_metric(&e.server, &input_rows("event-time"), 2.0).await;
    advance_clock(&e.server, 60_000).await;
    let first = parse_json(&wait_for(&e.k, "out", 1).await);
    assert_eq!(
        first,
        vec![
            json!({"TICKER_SYMBOL": "AMZN", "EVENT_TIME": "2017-05-01 11:00:00.000", "TICKER_COUNT": 2.0})
        ]
    );
    put_json(&e.k, "in", &[ev("11:00:55"), ev("11:01:05")]).await;
    wait_metric(&e.server, &input_rows("event-time"), 4.0).await;
    advance_clock(&e.server, 60_000).await;
    assert_eq!(
        parse_json(&wait_for(&e.k, "out", 3).await),
        vec![
            json!({"TICKER_SYMBOL": "AMZN", "EVENT_TIME": "2017-05-01 11:00:00.000", "TICKER_COUNT": 2.0}),
            json!({"TICKER_SYMBOL": "AMZN", "EVENT_TIME": "2017-05-01 11:00:00.000", "TICKER_COUNT": 1.0}),
            json!({"TICKER_SYMBOL": "AMZN", "EVENT_TIME": "2017-05-01 11:01:00.000", "TICKER_COUNT": 1.0}),
        ]
    );
}

/// The server clock's minute (as a SQL timestamp) in which the first record of `stream` arrived,
/// and the minute after it.
async fn arrival_minutes(k: &aws_sdk_kinesis::Client, stream: &str) -> (String, String) {
    use aws_sdk_kinesis::primitives::{DateTime, DateTimeFormat};
    let shard = shard_ids(k, stream).await.remove(0);
    let recs = read_shard(k, stream, &shard).await;
    let secs = recs[0].approximate_arrival_timestamp.unwrap().secs();
    let sql = |s: i64| {
        // "2026-11-26T11:31:00Z" → "2026-11-26 11:31:00.000"
        let t = DateTime::from_secs(s)
            .fmt(DateTimeFormat::DateTime)
            .unwrap();
        format!("{}.000", t.trim_end_matches('Z').replace('T', " "))
    };
    let minute = secs - secs.rem_euclid(60);
    (sql(minute), sql(minute + 60))
}

#[tokio::test]
async fn partial_counts_from_a_tumbling_pump_are_merged_by_a_sliding_pump() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    // AWS's partial-results example: counts per (processing minute, arrival minute) merged per
    // arrival minute by a sliding SUM.
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
    let name = "partial";
    app(name, code).start(&e.a).await;
    let amzn = demo("AMZN", "T", 0.0, 1.0);
    align_to_minute(&e.server).await;
    put_json(&e.k, "in", &[amzn.clone(), amzn.clone()]).await;
    wait_metric(&e.server, &input_rows(name), 2.0).await;
    // A record that arrives while the application is stopped is processed in the next minute:
    // its count for this arrival minute is a partial result.
    e.a.stop_application()
        .application_name(name)
        .send()
        .await
        .unwrap();
    wait_status(&e.a, name, ApplicationStatus::Ready).await;
    put_json(&e.k, "in", std::slice::from_ref(&amzn)).await;
    advance_clock(&e.server, 60_000).await;
    start_application(&e.a, name, InputStartingPosition::LastStoppedPoint).await;
    wait_metric(&e.server, &input_rows(name), 3.0).await;
    put_json(&e.k, "in", std::slice::from_ref(&amzn)).await;
    wait_metric(&e.server, &input_rows(name), 4.0).await;
    advance_clock(&e.server, 60_000).await;
    let (m0, m1) = arrival_minutes(&e.k, "in").await;
    assert_eq!(
        parse_json(&wait_for(&e.k, "out", 3).await),
        vec![
            json!({"TICKER": "AMZN", "TRADETIME": m0, "TICKERCOUNT": 2.0}),
            json!({"TICKER": "AMZN", "TRADETIME": m0, "TICKERCOUNT": 3.0}),
            json!({"TICKER": "AMZN", "TRADETIME": m1, "TICKERCOUNT": 1.0}),
        ]
    );
}

#[tokio::test]
async fn one_input_stream_splits_into_order_and_trade_streams_with_quoted_names() {
    let e = start(&[]).await;
    for s in ["in", "orders", "trades", "out"] {
        create_stream(&e.k, s, 1).await;
    }
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
    let schema = json_schema(&[
        ("RecordType", "VARCHAR(10)"),
        ("Oid", "INTEGER"),
        ("Otype", "VARCHAR(10)"),
        ("Oticker", "VARCHAR(4)"),
        ("Oprice", "DOUBLE"),
        ("Tid", "INTEGER"),
        ("Toid", "INTEGER"),
        ("Tprice", "DOUBLE"),
        ("Tticker", "VARCHAR(4)"),
    ]);
    app("split", code)
        .schema(schema)
        .outputs(&[
            ("Order_Stream", "orders", RecordFormatType::Json),
            ("Trade_Stream", "trades", RecordFormatType::Json),
            ("DESTINATION_SQL_STREAM", "out", RecordFormatType::Json),
        ])
        .start(&e.a)
        .await;
    align_to_minute(&e.server).await;
    put_json(
        &e.k,
        "in",
        &[
            json!({"RecordType": "Order", "Oid": 1, "Otype": "Buy", "Oticker": "AMZN", "Oprice": 10.0}),
            json!({"RecordType": "Trade", "Tid": 7, "Toid": 1, "Tprice": 10.5, "Tticker": "AMZN"}),
            json!({"RecordType": "Trade", "Tid": 8, "Toid": 1, "Tprice": 10.6, "Tticker": "AMZN"}),
        ],
    )
    .await;
    wait_metric(&e.server, &input_rows("split"), 3.0).await;
    advance_clock(&e.server, 60_000).await;
    assert_eq!(
        parse_json(&wait_for(&e.k, "orders", 1).await),
        vec![
            json!({"order_id": 1, "order_type": "Buy", "ticker": "AMZN", "order_price": 10.0, "record_type": "Order"})
        ]
    );
    assert_eq!(
        parse_json(&wait_for(&e.k, "trades", 2).await),
        vec![
            json!({"trade_id": 7, "order_id": 1, "trade_price": 10.5, "ticker": "AMZN", "record_type": "Trade"}),
            json!({"trade_id": 8, "order_id": 1, "trade_price": 10.6, "ticker": "AMZN", "record_type": "Trade"}),
        ]
    );
    assert_eq!(
        parse_json(&wait_for(&e.k, "out", 1).await),
        vec![json!({"ticker": "AMZN", "trade_count": 2})]
    );
}

#[tokio::test]
async fn string_transforms_extract_and_rewrite_urls() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
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
    app("strings", code)
        .schema(json_schema(&[("referrer", "VARCHAR(32)")]))
        .start(&e.a)
        .await;
    put_json(&e.k, "in", &[json!({"referrer": "http://www.amazon.com"})]).await;
    assert_eq!(
        parse_json(&wait_for(&e.k, "out", 1).await),
        vec![json!({
            "DOMAIN": "amazon",
            "SECURE": "https://www.amazon.com",
            "SHOUT": "HTTP://WWW.AMAZON.COM!",
            "WORDS": "The Quick Fox",
            "LEN": 21
        })]
    );
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Epoch milliseconds → `yyyy-MM-dd HH:mm:ss.SSS`, the way TIMESTAMP columns are written.
fn sql_timestamp(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `yyyy-MM-dd HH:mm:ss.SSS` → epoch milliseconds.
fn parse_sql_timestamp(t: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let days = days_from_civil(n(0..4), n(5..7), n(8..10));
    days * 86_400_000 + n(11..13) * 3_600_000 + n(14..16) * 60_000 + n(17..19) * 1000 + n(20..23)
}

#[tokio::test]
async fn date_transforms_parse_format_and_diff_event_times() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    // The engine test's date transforms, with ROWTIME written too: the server's clock is not
    // the test's, so the columns derived from it are checked against it.
    let code = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (event_ts TIMESTAMP, as_text VARCHAR(32), lag_ms BIGINT, hour_of_day BIGINT, next_hour TIMESTAMP, kind VARCHAR(8), rt TIMESTAMP);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM
        CHAR_TO_TIMESTAMP('yyyy-MM-dd hh:mm:ss a', "event_text"),
        TIMESTAMP_TO_CHAR('dd/MMM/yyyy HH:mm', CHAR_TO_TIMESTAMP('yyyy-MM-dd hh:mm:ss a', "event_text")),
        TSDIFF(ROWTIME, CHAR_TO_TIMESTAMP('yyyy-MM-dd hh:mm:ss a', "event_text")),
        EXTRACT(HOUR FROM ROWTIME),
        CEIL(ROWTIME TO HOUR),
        CASE WHEN EXTRACT(HOUR FROM ROWTIME) < 12 THEN 'morning' ELSE 'later' END,
        ROWTIME AS rt
    FROM "SOURCE_SQL_STREAM_001";
"#;
    app("dates", code)
        .schema(json_schema(&[("event_text", "VARCHAR(32)")]))
        .start(&e.a)
        .await;
    put_json(
        &e.k,
        "in",
        &[json!({"event_text": "2017-05-01 10:59:55 AM"})],
    )
    .await;
    let row = parse_json(&wait_for(&e.k, "out", 1).await).remove(0);
    let rt_text = row["RT"].as_str().unwrap();
    let rt = parse_sql_timestamp(rt_text);
    assert_eq!(sql_timestamp(rt), rt_text);
    let event = 1_493_636_395_000; // 2017-05-01 10:59:55
    let hour = rt.rem_euclid(86_400_000) / 3_600_000;
    let next_hour = rt + (3_600_000 - rt.rem_euclid(3_600_000)) % 3_600_000;
    assert_eq!(
        row,
        json!({
            "EVENT_TS": "2017-05-01 10:59:55.000",
            "AS_TEXT": "01/May/2017 10:59",
            "LAG_MS": rt - event,
            "HOUR_OF_DAY": hour,
            "NEXT_HOUR": sql_timestamp(next_hour),
            "KIND": if hour < 12 { "morning" } else { "later" },
            "RT": rt_text,
        })
    );
}

#[tokio::test]
async fn regex_log_parse_returns_capture_groups_as_record_columns() {
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    // AWS's REGEX_LOG_PARSE example 2, over sector names.
    let code = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (sector VARCHAR(24), match1 VARCHAR(24), match2 VARCHAR(24));
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM T.LOGENTRY, T.REC.COLUMN1, T.REC.COLUMN2
    FROM (SELECT STREAM LOGENTRY,
                 REGEX_LOG_PARSE(LOGENTRY, '.*([E].).*([R].*)') AS REC
          FROM SOURCE_SQL_STREAM_001) AS T;
"#;
    app("regex-log", code)
        .schema(json_schema(&[("LOGENTRY", "VARCHAR(24)")]))
        .start(&e.a)
        .await;
    put_json(
        &e.k,
        "in",
        &[
            json!({"LOGENTRY": "ENERGY"}),
            json!({"LOGENTRY": "HEALTHCARE"}),
            json!({"LOGENTRY": "TECHNOLOGY"}),
        ],
    )
    .await;
    assert_eq!(
        parse_json(&wait_for(&e.k, "out", 3).await),
        vec![
            json!({"SECTOR": "ENERGY", "MATCH1": "EN", "MATCH2": "RGY"}),
            json!({"SECTOR": "HEALTHCARE", "MATCH1": "EA", "MATCH2": "RE"}),
            json!({"SECTOR": "TECHNOLOGY", "MATCH1": null, "MATCH2": null}),
        ]
    );
}

#[tokio::test]
async fn a_value_too_large_for_its_target_column_goes_to_error_stream() {
    let e = start(&[]).await;
    for s in ["in", "out", "errors"] {
        create_stream(&e.k, s, 1).await;
    }
    let code = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (small TINYINT);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM CAST(price AS INTEGER) * 10 FROM "SOURCE_SQL_STREAM_001";
"#;
    app("overflow", code)
        .outputs(&[
            ("DESTINATION_SQL_STREAM", "out", RecordFormatType::Json),
            ("error_stream", "errors", RecordFormatType::Json),
        ])
        .starting_at(InputStartingPosition::TrimHorizon)
        .start(&e.a)
        .await;
    put_json(
        &e.k,
        "in",
        &[demo("A", "S", 0.0, 5.0), demo("A", "S", 0.0, 50.0)],
    )
    .await;
    let errors = parse_json(&wait_for(&e.k, "errors", 1).await);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["ERROR_LEVEL"], "Error");
    assert_eq!(errors[0]["ERROR_NAME"], "Numeric_Overflow");
    assert_eq!(errors[0]["PUMP_NAME"], "P");
    assert_eq!(
        parse_json(&wait_for(&e.k, "out", 1).await),
        vec![json!({"SMALL": 50})]
    );
}

#[tokio::test]
async fn last_stopped_point_reads_what_arrived_while_the_application_was_stopped() {
    // Without a data directory too: the stop point is kept in memory.
    let e = start(&[]).await;
    create_stream(&e.k, "in", 1).await;
    create_stream(&e.k, "out", 1).await;
    let code = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), price DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM ticker_symbol, price FROM "SOURCE_SQL_STREAM_001";
"#;
    app("resume", code).start(&e.a).await;
    put_json(&e.k, "in", &[demo("AMZN", "T", 0.0, 1.0)]).await;
    wait_metric(&e.server, &input_rows("resume"), 1.0).await;
    e.a.stop_application()
        .application_name("resume")
        .send()
        .await
        .unwrap();
    put_json(&e.k, "in", &[demo("TGT", "R", 0.0, 2.0)]).await;
    start_application(&e.a, "resume", InputStartingPosition::LastStoppedPoint).await;
    put_json(&e.k, "in", &[demo("XOM", "E", 0.0, 3.0)]).await;
    assert_eq!(
        parse_json(&wait_for(&e.k, "out", 3).await),
        vec![
            json!({"TICKER_SYMBOL": "AMZN", "PRICE": 1.0}),
            json!({"TICKER_SYMBOL": "TGT", "PRICE": 2.0}),
            json!({"TICKER_SYMBOL": "XOM", "PRICE": 3.0}),
        ]
    );
}
