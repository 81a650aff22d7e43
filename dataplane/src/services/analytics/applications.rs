//! CreateApplication, DescribeApplication, ListApplications, DeleteApplication,
//! StartApplication, StopApplication, UpdateApplication.

use std::collections::BTreeMap;

use super::checks;
use super::model::*;
use super::AnalyticsService;
use crate::analytics::model::*;
use crate::analytics::runtime::Start;
use crate::analytics::{code_error, compile, errors};
use crate::protocol::{AwsError, Timestamp};
use crate::services::validate::Validator;

/// ApplicationCode is at most 100 KB.
pub const MAX_CODE: usize = 102_400;
/// One streaming source per application.
pub const MAX_INPUTS: usize = 1;
/// Three destinations per application.
pub const MAX_OUTPUTS: usize = 3;
/// One reference data source per application.
pub const MAX_REFERENCES: usize = 1;
/// Tags per application.
pub const MAX_TAGS: usize = 50;

/// Checks the application code against the configuration: compiled against the inputs and
/// reference tables when there are inputs, only parsed when there are none yet (AWS lets the
/// input be added after the code).
pub fn check_code(cfg: &ApplicationConfig) -> Result<(), AwsError> {
    let Some(code) = cfg.code.as_deref().filter(|c| !c.trim().is_empty()) else {
        return Ok(());
    };
    if cfg.inputs.is_empty() {
        return tributary_sql::parser::parse(code)
            .map(|_| ())
            .map_err(|e| code_error(&e));
    }
    match compile::compile(cfg, false) {
        Ok(_) => Ok(()),
        Err(compile::CompileError::Sql(e)) => Err(code_error(&e)),
        Err(compile::CompileError::Config(m)) => Err(errors::invalid(m)),
    }
}

pub fn check_limits(cfg: &ApplicationConfig) -> Result<(), AwsError> {
    if cfg.inputs.len() > MAX_INPUTS {
        return Err(errors::invalid(format!(
            "Application {} can have at most {MAX_INPUTS} streaming source.",
            cfg.name
        )));
    }
    if cfg.outputs.len() > MAX_OUTPUTS {
        return Err(AwsError::new(
            errors::LIMIT_EXCEEDED,
            format!(
                "Application {} can have at most {MAX_OUTPUTS} outputs.",
                cfg.name
            ),
        ));
    }
    if cfg.references.len() > MAX_REFERENCES {
        return Err(errors::invalid(format!(
            "Application {} can have at most {MAX_REFERENCES} reference data source.",
            cfg.name
        )));
    }
    Ok(())
}

pub fn validate_tags(v: &mut Validator, tags: &[Tag]) {
    v.count("tags", "[]", tags.len(), 1, 200);
    v.each("tags", tags, |v, p, t| v.tag(p, &t.key, t.value.as_deref()));
}

pub async fn create(
    a: &AnalyticsService,
    i: CreateApplicationInput,
) -> Result<CreateApplicationOutput, AwsError> {
    let mut v = Validator::new();
    checks::application_name(&mut v, &i.application_name);
    v.string(
        "applicationDescription",
        i.application_description.as_deref(),
        None,
        0,
        1024,
    );
    v.each("inputs", i.inputs.iter().flatten(), checks::input);
    v.each("outputs", i.outputs.iter().flatten(), checks::output);
    v.each(
        "cloudWatchLoggingOptions",
        i.cloud_watch_logging_options.iter().flatten(),
        checks::logging,
    );
    v.string(
        "applicationCode",
        i.application_code.as_deref(),
        None,
        0,
        MAX_CODE,
    );
    if let Some(t) = &i.tags {
        validate_tags(&mut v, t);
    }
    v.finish()?;
    let name = i.application_name.unwrap_or_default();
    let now = a.engine.now_ms();
    let mut tags = BTreeMap::new();
    for t in i.tags.unwrap_or_default() {
        tags.insert(t.key.unwrap_or_default(), t.value.unwrap_or_default());
    }
    if tags.len() > MAX_TAGS {
        return Err(AwsError::new(
            errors::TOO_MANY_TAGS,
            format!("Application {name} can have at most {MAX_TAGS} tags."),
        ));
    }
    let cfg = ApplicationConfig {
        arn: a.engine.application_arn(&name),
        name: name.clone(),
        description: i.application_description,
        status: Status::Ready,
        created_ms: now,
        updated_ms: now,
        version: 1,
        code: i.application_code,
        inputs: i
            .inputs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(k, input)| StoredInput {
                id: ApplicationConfig::initial_id(k + 1),
                input,
                starting_position: None,
            })
            .collect(),
        outputs: i
            .outputs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(k, output)| StoredOutput {
                id: ApplicationConfig::initial_id(k + 1),
                output,
            })
            .collect(),
        references: Vec::new(),
        logging: i
            .cloud_watch_logging_options
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(k, option)| StoredLogging {
                id: ApplicationConfig::initial_id(k + 1),
                option,
            })
            .collect(),
        tags,
    };
    check_limits(&cfg)?;
    for input in &cfg.inputs {
        checks::input_semantics(a, &input.input)?;
    }
    for output in &cfg.outputs {
        checks::output_semantics(a, &output.output)?;
    }
    check_code(&cfg)?;
    a.engine.create(cfg).await?;
    tracing::info!(application = %name, "Created an analytics application.");
    Ok(CreateApplicationOutput {
        application_summary: ApplicationSummary {
            application_arn: a.engine.application_arn(&name),
            application_name: name,
            application_status: Status::Ready.as_str(),
        },
    })
}

fn detail(cfg: &ApplicationConfig) -> ApplicationDetail {
    ApplicationDetail {
        application_name: cfg.name.clone(),
        application_description: cfg.description.clone(),
        application_arn: cfg.arn.clone(),
        application_status: cfg.status.as_str(),
        create_timestamp: Timestamp(cfg.created_ms),
        last_update_timestamp: Timestamp(cfg.updated_ms),
        input_descriptions: cfg
            .inputs
            .iter()
            .map(|s| InputDescription {
                input_id: s.id.clone(),
                name_prefix: s.input.name_prefix.clone(),
                in_app_stream_names: in_app_stream_names(&s.input),
                input_processing_configuration_description: s
                    .input
                    .input_processing_configuration
                    .as_ref()
                    .map(|p| InputProcessingConfigurationDescription {
                        input_lambda_processor_description: p.input_lambda_processor.clone(),
                    }),
                kinesis_streams_input_description: s.input.kinesis_streams_input.clone(),
                kinesis_firehose_input_description: s.input.kinesis_firehose_input.clone(),
                input_schema: s.input.input_schema.clone(),
                input_parallelism: InputParallelism {
                    count: Some(
                        s.input
                            .input_parallelism
                            .as_ref()
                            .and_then(|p| p.count)
                            .unwrap_or(1),
                    ),
                },
                input_starting_position_configuration: s.starting_position.as_ref().map(|p| {
                    InputStartingPositionConfiguration {
                        input_starting_position: Some(p.clone()),
                    }
                }),
            })
            .collect(),
        output_descriptions: cfg
            .outputs
            .iter()
            .map(|s| OutputDescription {
                output_id: s.id.clone(),
                name: s.output.name.clone(),
                kinesis_streams_output_description: s.output.kinesis_streams_output.clone(),
                kinesis_firehose_output_description: s.output.kinesis_firehose_output.clone(),
                lambda_output_description: s.output.lambda_output.clone(),
                destination_schema: s.output.destination_schema.clone(),
            })
            .collect(),
        reference_data_source_descriptions: cfg
            .references
            .iter()
            .map(|r| ReferenceDataSourceDescription {
                reference_id: r.id.clone(),
                table_name: r.source.table_name.clone(),
                s3: r.source.s3.clone(),
                reference_schema: r.source.reference_schema.clone(),
            })
            .collect(),
        cloud_watch_logging_option_descriptions: cfg
            .logging
            .iter()
            .map(|l| CloudWatchLoggingOptionDescription {
                id: l.id.clone(),
                log_stream_arn: l.option.log_stream_arn.clone(),
                role_arn: l.option.role_arn.clone(),
            })
            .collect(),
        application_code: cfg.code.clone(),
        application_version_id: cfg.version,
    }
}

fn named(i: &Option<String>) -> Result<String, AwsError> {
    let mut v = Validator::new();
    checks::application_name(&mut v, i);
    v.finish()?;
    Ok(i.clone().unwrap_or_default())
}

pub async fn describe(
    a: &AnalyticsService,
    i: ApplicationNameInput,
) -> Result<DescribeApplicationOutput, AwsError> {
    let name = named(&i.application_name)?;
    let cfg = a.engine.get(&name)?.config();
    Ok(DescribeApplicationOutput {
        application_detail: detail(&cfg),
    })
}

pub async fn list(
    a: &AnalyticsService,
    i: ListApplicationsInput,
) -> Result<ListApplicationsOutput, AwsError> {
    let mut v = Validator::new();
    v.range("limit", i.limit, 1, 50);
    checks::app_name(&mut v, i.exclusive_start_application_name.as_deref());
    v.finish()?;
    let limit = i.limit.unwrap_or(50) as usize;
    let after = i.exclusive_start_application_name.unwrap_or_default();
    let all: Vec<ApplicationConfig> = a
        .engine
        .list()
        .iter()
        .map(|e| e.config())
        .filter(|c| after.is_empty() || c.name > after)
        .collect();
    let has_more = all.len() > limit;
    Ok(ListApplicationsOutput {
        application_summaries: all
            .into_iter()
            .take(limit)
            .map(|c| ApplicationSummary {
                application_name: c.name,
                application_arn: c.arn,
                application_status: c.status.as_str(),
            })
            .collect(),
        has_more_applications: has_more,
    })
}

pub async fn delete(a: &AnalyticsService, i: DeleteApplicationInput) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    checks::application_name(&mut v, &i.application_name);
    v.not_null("createTimestamp", &i.create_timestamp);
    v.finish()?;
    let name = i.application_name.unwrap_or_default();
    let cfg = a.engine.get(&name)?.config();
    let given = i.create_timestamp.map(|t| t.0).unwrap_or_default();
    // Clients may send whole seconds; the timestamp must name this application's creation.
    if given != cfg.created_ms && given / 1000 != cfg.created_ms / 1000 {
        return Err(errors::invalid(format!(
            "Provided timestamp ({}) does not match the application {name} creation timestamp.",
            given as f64 / 1000.0
        )));
    }
    a.engine.delete(&name).await?;
    tracing::info!(application = %name, "Deleted an analytics application.");
    Ok(Empty {})
}

pub async fn start(a: &AnalyticsService, i: StartApplicationInput) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    checks::application_name(&mut v, &i.application_name);
    v.not_null("inputConfigurations", &i.input_configurations);
    for (k, c) in i.input_configurations.iter().flatten().enumerate() {
        let p = format!("inputConfigurations.{}.member", k + 1);
        checks::id(&mut v, &format!("{p}.id"), &c.id);
        v.not_null(
            &format!("{p}.inputStartingPositionConfiguration"),
            &c.input_starting_position_configuration,
        );
        if let Some(s) = &c.input_starting_position_configuration {
            v.enumeration(
                &format!("{p}.inputStartingPositionConfiguration.inputStartingPosition"),
                s.input_starting_position.as_deref(),
                &["NOW", "TRIM_HORIZON", "LAST_STOPPED_POINT"],
            );
        }
    }
    v.finish()?;
    let name = i.application_name.unwrap_or_default();
    let cfg = a.engine.get(&name)?.config();
    if cfg.inputs.is_empty() {
        return Err(AwsError::new(
            errors::INVALID_CONFIGURATION,
            format!("Application {name} has no input configured. Add an input with AddApplicationInput before starting it."),
        ));
    }
    let mut starts = BTreeMap::new();
    for c in i.input_configurations.unwrap_or_default() {
        let id = c.id.unwrap_or_default();
        if !cfg.inputs.iter().any(|s| s.id == id) {
            return Err(errors::invalid(format!(
                "Input id {id} is not found in application {name}."
            )));
        }
        let pos = c
            .input_starting_position_configuration
            .and_then(|s| s.input_starting_position);
        starts.insert(id, Start::parse(pos.as_deref()));
    }
    a.engine.start(&name, starts).await?;
    tracing::info!(application = %name, "Started an analytics application.");
    Ok(Empty {})
}

pub async fn stop(a: &AnalyticsService, i: ApplicationNameInput) -> Result<Empty, AwsError> {
    let name = named(&i.application_name)?;
    a.engine.stop(&name).await?;
    tracing::info!(application = %name, "Stopped an analytics application.");
    Ok(Empty {})
}

/// The `what` (input, output, ...) with `id` among `items`.
pub(super) fn find<'a, T>(
    items: &'a mut [T],
    id: &str,
    id_of: impl Fn(&T) -> &str,
    what: &str,
    app: &str,
) -> Result<&'a mut T, AwsError> {
    items
        .iter_mut()
        .find(|t| id_of(t) == id)
        .ok_or_else(|| not_found(what, id, app))
}

/// ResourceNotFoundException for an id the application's configuration does not have.
pub(super) fn not_found(what: &str, id: &str, app: &str) -> AwsError {
    AwsError::new(
        errors::RESOURCE_NOT_FOUND,
        format!("{what} id {id} is not found in application {app}."),
    )
}

fn apply_role(target: &mut Option<ResourceRole>, u: &ResourceRoleUpdate) {
    let r = target.get_or_insert_with(Default::default);
    if let Some(arn) = &u.resource_arn_update {
        r.resource_arn = Some(arn.clone());
    }
    if let Some(role) = &u.role_arn_update {
        r.role_arn = Some(role.clone());
    }
}

fn validate_update(v: &mut Validator, u: &ApplicationUpdate) {
    v.string(
        "applicationUpdate.applicationCodeUpdate",
        u.application_code_update.as_deref(),
        None,
        0,
        MAX_CODE,
    );
    for (k, iu) in u.input_updates.iter().flatten().enumerate() {
        let p = format!("applicationUpdate.inputUpdates.{}.member", k + 1);
        checks::id(v, &format!("{p}.inputId"), &iu.input_id);
        v.text(
            &format!("{p}.namePrefixUpdate"),
            iu.name_prefix_update.as_deref(),
            checks::IN_APP_OBJECT,
        );
        if let Some(pu) = &iu.input_parallelism_update {
            v.range(
                &format!("{p}.inputParallelismUpdate.countUpdate"),
                pu.count_update,
                1,
                64,
            );
        }
        if let Some(su) = &iu.input_schema_update {
            if let Some(f) = &su.record_format_update {
                checks::record_format(v, &format!("{p}.inputSchemaUpdate.recordFormatUpdate"), f);
            }
            if let Some(c) = &su.record_column_updates {
                v.count(
                    &format!("{p}.inputSchemaUpdate.recordColumnUpdates"),
                    "[]",
                    c.len(),
                    1,
                    1000,
                );
            }
        }
    }
    for (k, ou) in u.output_updates.iter().flatten().enumerate() {
        let p = format!("applicationUpdate.outputUpdates.{}.member", k + 1);
        checks::id(v, &format!("{p}.outputId"), &ou.output_id);
        v.text(
            &format!("{p}.nameUpdate"),
            ou.name_update.as_deref(),
            checks::IN_APP_OBJECT,
        );
        if let Some(d) = &ou.destination_schema_update {
            checks::record_format_type(
                v,
                &format!("{p}.destinationSchemaUpdate"),
                &d.record_format_type,
            );
        }
    }
    for (k, ru) in u.reference_data_source_updates.iter().flatten().enumerate() {
        let p = format!(
            "applicationUpdate.referenceDataSourceUpdates.{}.member",
            k + 1
        );
        v.not_null(&format!("{p}.referenceId"), &ru.reference_id);
        v.text(
            &format!("{p}.tableNameUpdate"),
            ru.table_name_update.as_deref(),
            checks::IN_APP_OBJECT,
        );
        if let Some(s) = &ru.reference_schema_update {
            checks::schema(v, &format!("{p}.referenceSchemaUpdate"), s);
        }
    }
    for (k, lu) in u
        .cloud_watch_logging_option_updates
        .iter()
        .flatten()
        .enumerate()
    {
        let p = format!(
            "applicationUpdate.cloudWatchLoggingOptionUpdates.{}.member",
            k + 1
        );
        v.not_null(&format!("{p}.cloudWatchLoggingOptionId"), &lu.id);
    }
}

/// Applies an ApplicationUpdate to a configuration (ids must exist).
fn apply_update(cfg: &mut ApplicationConfig, u: ApplicationUpdate) -> Result<(), AwsError> {
    let app = cfg.name.clone();
    if let Some(code) = u.application_code_update {
        cfg.code = Some(code);
    }
    for iu in u.input_updates.unwrap_or_default() {
        let id = iu.input_id.clone().unwrap_or_default();
        let s = find(&mut cfg.inputs, &id, |s| &s.id, "Input", &app)?;
        let i = &mut s.input;
        if let Some(p) = iu.name_prefix_update {
            i.name_prefix = Some(p);
        }
        if let Some(k) = &iu.kinesis_streams_input_update {
            apply_role(&mut i.kinesis_streams_input, k);
            i.kinesis_firehose_input = None;
        }
        if let Some(k) = &iu.kinesis_firehose_input_update {
            apply_role(&mut i.kinesis_firehose_input, k);
            i.kinesis_streams_input = None;
        }
        if let Some(p) = iu.input_parallelism_update {
            i.input_parallelism = Some(InputParallelism {
                count: p.count_update,
            });
        }
        if let Some(pu) = iu
            .input_processing_configuration_update
            .and_then(|p| p.input_lambda_processor_update)
        {
            let mut lambda = i
                .input_processing_configuration
                .clone()
                .and_then(|p| p.input_lambda_processor);
            apply_role(&mut lambda, &pu);
            i.input_processing_configuration = Some(InputProcessingConfiguration {
                input_lambda_processor: lambda,
            });
        }
        if let Some(su) = iu.input_schema_update {
            let schema = i.input_schema.get_or_insert_with(Default::default);
            if let Some(f) = su.record_format_update {
                schema.record_format = Some(f);
            }
            if let Some(e) = su.record_encoding_update {
                schema.record_encoding = Some(e);
            }
            if let Some(c) = su.record_column_updates {
                schema.record_columns = Some(c);
            }
        }
    }
    for ou in u.output_updates.unwrap_or_default() {
        let id = ou.output_id.clone().unwrap_or_default();
        let s = find(&mut cfg.outputs, &id, |s| &s.id, "Output", &app)?;
        let o = &mut s.output;
        if let Some(n) = ou.name_update {
            o.name = Some(n);
        }
        if let Some(k) = &ou.kinesis_streams_output_update {
            apply_role(&mut o.kinesis_streams_output, k);
            o.kinesis_firehose_output = None;
            o.lambda_output = None;
        }
        if let Some(k) = &ou.kinesis_firehose_output_update {
            apply_role(&mut o.kinesis_firehose_output, k);
            o.kinesis_streams_output = None;
            o.lambda_output = None;
        }
        if let Some(k) = &ou.lambda_output_update {
            apply_role(&mut o.lambda_output, k);
            o.kinesis_streams_output = None;
            o.kinesis_firehose_output = None;
        }
        if let Some(d) = ou.destination_schema_update {
            o.destination_schema = Some(d);
        }
    }
    for ru in u.reference_data_source_updates.unwrap_or_default() {
        let id = ru.reference_id.clone().unwrap_or_default();
        let s = find(&mut cfg.references, &id, |s| &s.id, "Reference", &app)?;
        let r = &mut s.source;
        if let Some(t) = ru.table_name_update {
            r.table_name = Some(t);
        }
        if let Some(s3u) = ru.s3_update {
            let s3 = r.s3.get_or_insert_with(Default::default);
            if let Some(b) = s3u.bucket_arn_update {
                s3.bucket_arn = Some(b);
            }
            if let Some(k) = s3u.file_key_update {
                s3.file_key = Some(k);
            }
            if let Some(role) = s3u.reference_role_arn_update {
                s3.reference_role_arn = Some(role);
            }
        }
        if let Some(schema) = ru.reference_schema_update {
            r.reference_schema = Some(schema);
        }
    }
    for lu in u.cloud_watch_logging_option_updates.unwrap_or_default() {
        let id = lu.id.clone().unwrap_or_default();
        let s = find(
            &mut cfg.logging,
            &id,
            |s| &s.id,
            "CloudWatch logging option",
            &app,
        )?;
        if let Some(arn) = lu.log_stream_arn_update {
            s.option.log_stream_arn = Some(arn);
        }
        if let Some(role) = lu.role_arn_update {
            s.option.role_arn = Some(role);
        }
    }
    Ok(())
}

/// Checks a changed configuration as CreateApplication checks a new one.
pub fn check_changed(a: &AnalyticsService, cfg: &ApplicationConfig) -> Result<(), AwsError> {
    check_limits(cfg)?;
    for i in &cfg.inputs {
        checks::input_semantics(a, &i.input)?;
    }
    for o in &cfg.outputs {
        checks::output_semantics(a, &o.output)?;
    }
    for r in &cfg.references {
        checks::schema_types(
            r.source
                .reference_schema
                .as_ref()
                .unwrap_or(&Default::default()),
        )?;
    }
    check_code(cfg)
}

pub async fn update(a: &AnalyticsService, i: UpdateApplicationInput) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    checks::application_name(&mut v, &i.application_name);
    checks::version(&mut v, i.current_application_version_id);
    v.not_null("applicationUpdate", &i.application_update);
    if let Some(u) = &i.application_update {
        validate_update(&mut v, u);
    }
    v.finish()?;
    let name = i.application_name.unwrap_or_default();
    let update = i.application_update.unwrap_or_default();
    a.engine
        .update(&name, i.current_application_version_id, |cfg| {
            apply_update(cfg, update)?;
            check_changed(a, cfg)
        })
        .await?;
    Ok(Empty {})
}
