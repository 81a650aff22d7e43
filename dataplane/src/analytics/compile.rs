//! From a stored configuration to a runnable SQL application: input schemas become
//! `tributary_sql` record mappings, the code is compiled against the in-application input
//! streams and reference tables, and outputs are resolved to in-application streams.

use tributary_sql::exec::error_stream_columns;
use tributary_sql::format::{self, InputSchema, OutputFormat};
use tributary_sql::{Application, Column, SqlError, ERROR_STREAM};

use super::model::{in_app_stream_names, ApplicationConfig, SourceSchema};

/// Why a configuration cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompileError {
    /// The application code does not compile (reported as CodeValidationException).
    #[error("{0}")]
    Sql(SqlError),
    /// The configuration around the code is unusable (a schema type that does not parse, an
    /// output naming a stream the code does not create...).
    #[error("{0}")]
    Config(String),
}

/// One streaming input, ready to map records.
#[derive(Debug, Clone)]
pub struct CompiledInput {
    pub id: String,
    /// The Tributary stream read (from `KinesisStreamsInput.ResourceARN`), or with `firehose`
    /// the delivery stream (`KinesisFirehoseInput.ResourceARN`).
    pub stream: String,
    /// A `KinesisFirehoseInput`: records put to a DirectPut delivery stream feed the
    /// application (read from the delivery stream's buffer).
    pub firehose: bool,
    /// `<prefix>_001` ... one per `InputParallelism.Count`.
    pub in_app_streams: Vec<String>,
    pub schema: InputSchema,
}

/// One output: an in-application stream written to a Tributary stream.
#[derive(Debug, Clone)]
pub struct CompiledOutput {
    pub id: String,
    pub in_app_stream: String,
    pub columns: Vec<Column>,
    /// The Tributary stream, or with `firehose` the delivery stream, written to.
    pub destination: String,
    /// A `KinesisFirehoseOutput`: records go to a DirectPut delivery stream.
    pub firehose: bool,
    pub format: OutputFormat,
}

/// A reference table and the S3 object it is loaded from when the application starts.
#[derive(Debug, Clone)]
pub struct CompiledTable {
    pub name: String,
    pub bucket: String,
    pub key: String,
    pub schema: InputSchema,
}

pub struct Compiled {
    pub app: Application,
    pub inputs: Vec<CompiledInput>,
    pub outputs: Vec<CompiledOutput>,
    pub tables: Vec<CompiledTable>,
    /// Delivery streams, for Firehose outputs (set by the host).
    pub delivery: Option<std::sync::Arc<crate::delivery::DeliveryStreams>>,
}

/// The delivery stream name at the end of a Firehose ARN
/// (`arn:aws:firehose:...:deliverystream/NAME`).
pub fn delivery_stream_name_of(arn: &str) -> Option<&str> {
    arn.rsplit_once(":deliverystream/")
        .map(|(_, n)| n)
        .filter(|n| !n.is_empty())
}

/// The stream name at the end of a Kinesis stream ARN (`arn:aws:kinesis:...:stream/NAME`).
pub fn stream_name_of(arn: &str) -> Option<&str> {
    arn.rsplit_once(":stream/")
        .map(|(_, n)| n)
        .filter(|n| !n.is_empty())
}

/// Converts an API `SourceSchema` into the engine's record mapping.
pub fn input_schema(s: &SourceSchema) -> Result<InputSchema, CompileError> {
    let rf = s.record_format.clone().unwrap_or_default();
    let params = rf.mapping_parameters.unwrap_or_default();
    let fmt = match rf.record_format_type.as_deref() {
        Some("CSV") => {
            let csv = params.csv.unwrap_or_default();
            format::RecordFormat::Csv {
                column_delimiter: csv.record_column_delimiter.unwrap_or_else(|| ",".into()),
                row_delimiter: csv.record_row_delimiter.unwrap_or_else(|| "\n".into()),
            }
        }
        _ => format::RecordFormat::Json {
            row_path: params
                .json
                .and_then(|j| j.record_row_path)
                .unwrap_or_else(|| "$".into()),
        },
    };
    let mut columns = Vec::new();
    for c in s.record_columns.iter().flatten() {
        let name = c.name.clone().unwrap_or_default();
        let text = c.sql_type.clone().unwrap_or_default();
        let sql_type = format::parse_sql_type(&text).ok_or_else(|| {
            CompileError::Config(format!(
                "Invalid SqlType '{text}' for column '{name}' in the input schema."
            ))
        })?;
        columns.push(format::RecordColumn {
            name,
            mapping: c.mapping.clone(),
            sql_type,
        });
    }
    Ok(InputSchema {
        format: fmt,
        columns,
    })
}

/// Compiles the application as configured. `for_run` also requires every output to name an
/// in-application stream and no input to need Lambda preprocessing (checked when starting, not
/// when configuring, since AWS lets code, inputs and outputs be added in any order).
pub fn compile(cfg: &ApplicationConfig, for_run: bool) -> Result<Compiled, CompileError> {
    let mut inputs = Vec::new();
    let mut streams: Vec<(String, Vec<Column>)> = Vec::new();
    for i in &cfg.inputs {
        if for_run && i.input.input_processing_configuration.is_some() {
            return Err(CompileError::Config(format!(
                "Input {} has an InputLambdaProcessor; Tributary cannot invoke AWS Lambda functions, so input preprocessing is not supported. Remove it with DeleteApplicationInputProcessingConfiguration.",
                i.id
            )));
        }
        let schema = input_schema(i.input.input_schema.as_ref().unwrap_or(&Default::default()))?;
        let names = in_app_stream_names(&i.input);
        for n in &names {
            streams.push((n.clone(), schema.stream_columns()));
        }
        let firehose = i.input.kinesis_firehose_input.is_some();
        let arn = i
            .input
            .kinesis_streams_input
            .as_ref()
            .or(i.input.kinesis_firehose_input.as_ref())
            .and_then(|k| k.resource_arn.clone())
            .unwrap_or_default();
        let stream = if firehose {
            delivery_stream_name_of(&arn)
        } else {
            stream_name_of(&arn)
        };
        inputs.push(CompiledInput {
            id: i.id.clone(),
            stream: stream.unwrap_or_default().to_string(),
            firehose,
            in_app_streams: names,
            schema,
        });
    }
    let mut tables = Vec::new();
    let mut loads = Vec::new();
    for r in &cfg.references {
        let schema = input_schema(
            r.source
                .reference_schema
                .as_ref()
                .unwrap_or(&Default::default()),
        )?;
        let columns = schema
            .columns
            .iter()
            .map(|c| Column::new(c.name.clone(), c.sql_type.clone()))
            .collect();
        let name = r.source.table_name.clone().unwrap_or_default();
        tables.push((name.clone(), columns));
        let s3 = r.source.s3.as_ref();
        let bucket = s3
            .and_then(|s| s.bucket_arn.as_deref())
            .map(|arn| arn.rsplit(':').next().unwrap_or(arn).to_string())
            .unwrap_or_default();
        let key = s3.and_then(|s| s.file_key.clone()).unwrap_or_default();
        loads.push(CompiledTable {
            name,
            bucket,
            key,
            schema,
        });
    }
    let code = cfg.code.as_deref().unwrap_or("");
    let mut app = Application::with_tables(code, &streams, &tables).map_err(CompileError::Sql)?;
    // error_stream is always watched: its rows are counted, and delivered when it is an output.
    let _ = app.tap(ERROR_STREAM);
    let mut outputs = Vec::new();
    for o in &cfg.outputs {
        let name = o.output.name.clone().unwrap_or_default();
        let columns = if name == ERROR_STREAM {
            error_stream_columns()
        } else {
            match app.stream(&name) {
                Some(def) => def.columns.clone(),
                None if for_run => {
                    return Err(CompileError::Config(format!(
                        "Output {} names in-application stream {name}, which the application code does not create.",
                        o.id
                    )))
                }
                None => continue,
            }
        };
        let _ = app.tap(&name);
        let firehose = o.output.kinesis_firehose_output.is_some();
        let arn = o
            .output
            .kinesis_streams_output
            .as_ref()
            .or(o.output.kinesis_firehose_output.as_ref())
            .and_then(|k| k.resource_arn.clone())
            .unwrap_or_default();
        let destination = if firehose {
            delivery_stream_name_of(&arn)
        } else {
            stream_name_of(&arn)
        };
        let format = match o
            .output
            .destination_schema
            .as_ref()
            .and_then(|d| d.record_format_type.as_deref())
        {
            Some("CSV") => OutputFormat::Csv,
            _ => OutputFormat::Json,
        };
        outputs.push(CompiledOutput {
            id: o.id.clone(),
            in_app_stream: name,
            columns,
            destination: destination.unwrap_or_default().to_string(),
            firehose,
            format,
        });
    }
    Ok(Compiled {
        app,
        inputs,
        outputs,
        tables: loads,
        delivery: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_come_from_the_end_of_kinesis_arns() {
        assert_eq!(
            stream_name_of("arn:aws:kinesis:us-east-1:000000000000:stream/in"),
            Some("in")
        );
        assert_eq!(stream_name_of("arn:aws:kinesis:us-east-1:0:stream/"), None);
        assert_eq!(stream_name_of("nonsense"), None);
    }
}
