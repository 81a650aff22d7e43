//! AddApplicationInput, AddApplicationOutput, DeleteApplicationOutput,
//! AddApplicationReferenceDataSource, DeleteApplicationReferenceDataSource,
//! AddApplicationInputProcessingConfiguration, DeleteApplicationInputProcessingConfiguration,
//! AddApplicationCloudWatchLoggingOption, DeleteApplicationCloudWatchLoggingOption.
//!
//! Each takes `CurrentApplicationVersionId`, changes one part of the configuration, and bumps
//! the version (ConcurrentModificationException when the given version is not the current one).

use super::applications::check_changed;
use super::checks;
use super::model::*;
use super::AnalyticsService;
use crate::analytics::errors;
use crate::analytics::model::*;
use crate::protocol::AwsError;
use crate::services::validate::Validator;

fn header(v: &mut Validator, name: &Option<String>, version: Option<i64>) {
    v.not_null("applicationName", name);
    checks::app_name(v, name.as_deref());
    checks::version(v, version);
}

fn id_member(v: &mut Validator, path: &str, id: &Option<String>) {
    v.not_null(path, id);
    v.string(path, id.as_deref(), Some(checks::ID), 1, 50);
}

fn not_found(what: &str, id: &str, app: &str) -> AwsError {
    AwsError::new(
        errors::RESOURCE_NOT_FOUND,
        format!("{what} id {id} is not found in application {app}."),
    )
}

pub async fn add_input(a: &AnalyticsService, i: AddInputRequest) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    header(
        &mut v,
        &i.application_name,
        i.current_application_version_id,
    );
    v.not_null("input", &i.input);
    if let Some(input) = &i.input {
        checks::input(&mut v, "input", input);
    }
    v.finish()?;
    let input = i.input.unwrap_or_default();
    a.engine
        .update(
            i.application_name.as_deref().unwrap_or_default(),
            i.current_application_version_id,
            |cfg| {
                let id = cfg.next_id(1);
                cfg.inputs.push(StoredInput {
                    id,
                    input,
                    starting_position: None,
                });
                check_changed(a, cfg)
            },
        )
        .await?;
    Ok(Empty {})
}

pub async fn add_output(a: &AnalyticsService, i: AddOutputRequest) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    header(
        &mut v,
        &i.application_name,
        i.current_application_version_id,
    );
    v.not_null("output", &i.output);
    if let Some(o) = &i.output {
        checks::output(&mut v, "output", o);
    }
    v.finish()?;
    let output = i.output.unwrap_or_default();
    a.engine
        .update(
            i.application_name.as_deref().unwrap_or_default(),
            i.current_application_version_id,
            |cfg| {
                let id = cfg.next_id(1);
                cfg.outputs.push(StoredOutput { id, output });
                check_changed(a, cfg)
            },
        )
        .await?;
    Ok(Empty {})
}

pub async fn delete_output(
    a: &AnalyticsService,
    i: DeleteOutputRequest,
) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    header(
        &mut v,
        &i.application_name,
        i.current_application_version_id,
    );
    id_member(&mut v, "outputId", &i.output_id);
    v.finish()?;
    let id = i.output_id.unwrap_or_default();
    a.engine
        .update(
            i.application_name.as_deref().unwrap_or_default(),
            i.current_application_version_id,
            |cfg| {
                let before = cfg.outputs.len();
                cfg.outputs.retain(|o| o.id != id);
                if cfg.outputs.len() == before {
                    return Err(not_found("Output", &id, &cfg.name));
                }
                Ok(())
            },
        )
        .await?;
    Ok(Empty {})
}

pub async fn add_reference(
    a: &AnalyticsService,
    i: AddReferenceRequest,
) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    header(
        &mut v,
        &i.application_name,
        i.current_application_version_id,
    );
    v.not_null("referenceDataSource", &i.reference_data_source);
    if let Some(r) = &i.reference_data_source {
        checks::reference(&mut v, "referenceDataSource", r);
    }
    v.finish()?;
    let source = i.reference_data_source.unwrap_or_default();
    a.engine
        .update(
            i.application_name.as_deref().unwrap_or_default(),
            i.current_application_version_id,
            |cfg| {
                let id = cfg.next_id(1);
                cfg.references.push(StoredReference { id, source });
                check_changed(a, cfg)
            },
        )
        .await?;
    Ok(Empty {})
}

pub async fn delete_reference(
    a: &AnalyticsService,
    i: DeleteReferenceRequest,
) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    header(
        &mut v,
        &i.application_name,
        i.current_application_version_id,
    );
    id_member(&mut v, "referenceId", &i.reference_id);
    v.finish()?;
    let id = i.reference_id.unwrap_or_default();
    a.engine
        .update(
            i.application_name.as_deref().unwrap_or_default(),
            i.current_application_version_id,
            |cfg| {
                let before = cfg.references.len();
                cfg.references.retain(|r| r.id != id);
                if cfg.references.len() == before {
                    return Err(not_found("Reference", &id, &cfg.name));
                }
                // Code that joins the table no longer compiles without it.
                check_changed(a, cfg)
            },
        )
        .await?;
    Ok(Empty {})
}

pub async fn add_processing(
    a: &AnalyticsService,
    i: AddProcessingRequest,
) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    header(
        &mut v,
        &i.application_name,
        i.current_application_version_id,
    );
    id_member(&mut v, "inputId", &i.input_id);
    v.not_null(
        "inputProcessingConfiguration",
        &i.input_processing_configuration,
    );
    if let Some(p) = &i.input_processing_configuration {
        checks::processing(&mut v, "inputProcessingConfiguration", p);
    }
    v.finish()?;
    let id = i.input_id.unwrap_or_default();
    let processing = i.input_processing_configuration.unwrap_or_default();
    a.engine
        .update(
            i.application_name.as_deref().unwrap_or_default(),
            i.current_application_version_id,
            |cfg| {
                let app = cfg.name.clone();
                let input = cfg
                    .inputs
                    .iter_mut()
                    .find(|s| s.id == id)
                    .ok_or_else(|| not_found("Input", &id, &app))?;
                if input.input.input_processing_configuration.is_some() {
                    return Err(errors::invalid(format!(
                        "Input {id} of application {app} already has an input processing configuration."
                    )));
                }
                input.input.input_processing_configuration = Some(processing);
                Ok(())
            },
        )
        .await?;
    Ok(Empty {})
}

pub async fn delete_processing(
    a: &AnalyticsService,
    i: DeleteProcessingRequest,
) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    header(
        &mut v,
        &i.application_name,
        i.current_application_version_id,
    );
    id_member(&mut v, "inputId", &i.input_id);
    v.finish()?;
    let id = i.input_id.unwrap_or_default();
    a.engine
        .update(
            i.application_name.as_deref().unwrap_or_default(),
            i.current_application_version_id,
            |cfg| {
                let app = cfg.name.clone();
                let input = cfg
                    .inputs
                    .iter_mut()
                    .find(|s| s.id == id)
                    .ok_or_else(|| not_found("Input", &id, &app))?;
                input.input.input_processing_configuration = None;
                Ok(())
            },
        )
        .await?;
    Ok(Empty {})
}

pub async fn add_logging(a: &AnalyticsService, i: AddLoggingRequest) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    header(
        &mut v,
        &i.application_name,
        i.current_application_version_id,
    );
    v.not_null("cloudWatchLoggingOption", &i.cloud_watch_logging_option);
    if let Some(l) = &i.cloud_watch_logging_option {
        checks::logging(&mut v, "cloudWatchLoggingOption", l);
    }
    v.finish()?;
    let option = i.cloud_watch_logging_option.unwrap_or_default();
    a.engine
        .update(
            i.application_name.as_deref().unwrap_or_default(),
            i.current_application_version_id,
            |cfg| {
                if cfg
                    .logging
                    .iter()
                    .any(|l| l.option.log_stream_arn == option.log_stream_arn)
                {
                    return Err(errors::invalid(format!(
                        "Application {} already has a CloudWatch logging option for log stream {}.",
                        cfg.name,
                        option.log_stream_arn.as_deref().unwrap_or_default()
                    )));
                }
                let id = cfg.next_id(1);
                cfg.logging.push(StoredLogging { id, option });
                Ok(())
            },
        )
        .await?;
    Ok(Empty {})
}

pub async fn delete_logging(
    a: &AnalyticsService,
    i: DeleteLoggingRequest,
) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    header(
        &mut v,
        &i.application_name,
        i.current_application_version_id,
    );
    id_member(
        &mut v,
        "cloudWatchLoggingOptionId",
        &i.cloud_watch_logging_option_id,
    );
    v.finish()?;
    let id = i.cloud_watch_logging_option_id.unwrap_or_default();
    a.engine
        .update(
            i.application_name.as_deref().unwrap_or_default(),
            i.current_application_version_id,
            |cfg| {
                let before = cfg.logging.len();
                cfg.logging.retain(|l| l.id != id);
                if cfg.logging.len() == before {
                    return Err(not_found("CloudWatch logging option", &id, &cfg.name));
                }
                Ok(())
            },
        )
        .await?;
    Ok(Empty {})
}
