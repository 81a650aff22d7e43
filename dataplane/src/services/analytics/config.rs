//! AddApplicationInput, AddApplicationOutput, DeleteApplicationOutput,
//! AddApplicationReferenceDataSource, DeleteApplicationReferenceDataSource,
//! AddApplicationInputProcessingConfiguration, DeleteApplicationInputProcessingConfiguration,
//! AddApplicationCloudWatchLoggingOption, DeleteApplicationCloudWatchLoggingOption.
//!
//! Each takes `CurrentApplicationVersionId`, changes one part of the configuration, and bumps
//! the version (ConcurrentModificationException when the given version is not the current one).

use super::applications::{check_changed, find, not_found};
use super::checks;
use super::model::*;
use super::AnalyticsService;
use crate::analytics::errors;
use crate::analytics::model::*;
use crate::protocol::AwsError;
use crate::services::validate::Validator;

/// The request's model constraints: the application name and version every operation here
/// takes, then the operation's own members (`members`).
fn check(
    name: &Option<String>,
    version: Option<i64>,
    members: impl FnOnce(&mut Validator),
) -> Result<(), AwsError> {
    let mut v = Validator::new();
    checks::application_name(&mut v, name);
    checks::version(&mut v, version);
    members(&mut v);
    v.finish()
}

/// Applies `change` to the application's configuration as its next version.
async fn update(
    a: &AnalyticsService,
    name: &Option<String>,
    version: Option<i64>,
    change: impl FnOnce(&mut ApplicationConfig) -> Result<(), AwsError>,
) -> Result<Empty, AwsError> {
    a.engine
        .update(name.as_deref().unwrap_or_default(), version, change)
        .await?;
    Ok(Empty {})
}

/// Removes the `what` with `id` from `items` (ResourceNotFoundException when there is none).
fn remove<T>(
    items: &mut Vec<T>,
    id_of: impl Fn(&T) -> &str,
    what: &str,
    id: &str,
    app: &str,
) -> Result<(), AwsError> {
    let before = items.len();
    items.retain(|x| id_of(x) != id);
    if items.len() == before {
        return Err(not_found(what, id, app));
    }
    Ok(())
}

pub async fn add_input(a: &AnalyticsService, i: AddInputRequest) -> Result<Empty, AwsError> {
    let version = i.current_application_version_id;
    check(&i.application_name, version, |v| {
        v.required("input", &i.input, checks::input);
    })?;
    let input = i.input.unwrap_or_default();
    update(a, &i.application_name, version, |cfg| {
        let id = cfg.next_id(1);
        cfg.inputs.push(StoredInput {
            id,
            input,
            starting_position: None,
        });
        check_changed(a, cfg)
    })
    .await
}

pub async fn add_output(a: &AnalyticsService, i: AddOutputRequest) -> Result<Empty, AwsError> {
    let version = i.current_application_version_id;
    check(&i.application_name, version, |v| {
        v.required("output", &i.output, checks::output);
    })?;
    let output = i.output.unwrap_or_default();
    update(a, &i.application_name, version, |cfg| {
        let id = cfg.next_id(1);
        cfg.outputs.push(StoredOutput { id, output });
        check_changed(a, cfg)
    })
    .await
}

pub async fn delete_output(
    a: &AnalyticsService,
    i: DeleteOutputRequest,
) -> Result<Empty, AwsError> {
    let version = i.current_application_version_id;
    check(&i.application_name, version, |v| {
        checks::id(v, "outputId", &i.output_id);
    })?;
    let id = i.output_id.unwrap_or_default();
    update(a, &i.application_name, version, |cfg| {
        remove(&mut cfg.outputs, |o| &o.id, "Output", &id, &cfg.name)
    })
    .await
}

pub async fn add_reference(
    a: &AnalyticsService,
    i: AddReferenceRequest,
) -> Result<Empty, AwsError> {
    let version = i.current_application_version_id;
    check(&i.application_name, version, |v| {
        v.required(
            "referenceDataSource",
            &i.reference_data_source,
            checks::reference,
        );
    })?;
    let source = i.reference_data_source.unwrap_or_default();
    update(a, &i.application_name, version, |cfg| {
        let id = cfg.next_id(1);
        cfg.references.push(StoredReference { id, source });
        check_changed(a, cfg)
    })
    .await
}

pub async fn delete_reference(
    a: &AnalyticsService,
    i: DeleteReferenceRequest,
) -> Result<Empty, AwsError> {
    let version = i.current_application_version_id;
    check(&i.application_name, version, |v| {
        checks::id(v, "referenceId", &i.reference_id);
    })?;
    let id = i.reference_id.unwrap_or_default();
    update(a, &i.application_name, version, |cfg| {
        remove(&mut cfg.references, |r| &r.id, "Reference", &id, &cfg.name)?;
        // Code that joins the table no longer compiles without it.
        check_changed(a, cfg)
    })
    .await
}

pub async fn add_processing(
    a: &AnalyticsService,
    i: AddProcessingRequest,
) -> Result<Empty, AwsError> {
    let version = i.current_application_version_id;
    check(&i.application_name, version, |v| {
        checks::id(v, "inputId", &i.input_id);
        v.required(
            "inputProcessingConfiguration",
            &i.input_processing_configuration,
            checks::processing,
        );
    })?;
    let id = i.input_id.unwrap_or_default();
    let processing = i.input_processing_configuration.unwrap_or_default();
    update(a, &i.application_name, version, |cfg| {
        let app = cfg.name.clone();
        let input = find(&mut cfg.inputs, &id, |s| &s.id, "Input", &app)?;
        if input.input.input_processing_configuration.is_some() {
            return Err(errors::invalid(format!(
                "Input {id} of application {app} already has an input processing configuration."
            )));
        }
        input.input.input_processing_configuration = Some(processing);
        Ok(())
    })
    .await
}

pub async fn delete_processing(
    a: &AnalyticsService,
    i: DeleteProcessingRequest,
) -> Result<Empty, AwsError> {
    let version = i.current_application_version_id;
    check(&i.application_name, version, |v| {
        checks::id(v, "inputId", &i.input_id);
    })?;
    let id = i.input_id.unwrap_or_default();
    update(a, &i.application_name, version, |cfg| {
        let app = cfg.name.clone();
        find(&mut cfg.inputs, &id, |s| &s.id, "Input", &app)?
            .input
            .input_processing_configuration = None;
        Ok(())
    })
    .await
}

pub async fn add_logging(a: &AnalyticsService, i: AddLoggingRequest) -> Result<Empty, AwsError> {
    let version = i.current_application_version_id;
    check(&i.application_name, version, |v| {
        v.required(
            "cloudWatchLoggingOption",
            &i.cloud_watch_logging_option,
            checks::logging,
        );
    })?;
    let option = i.cloud_watch_logging_option.unwrap_or_default();
    update(a, &i.application_name, version, |cfg| {
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
    })
    .await
}

pub async fn delete_logging(
    a: &AnalyticsService,
    i: DeleteLoggingRequest,
) -> Result<Empty, AwsError> {
    let version = i.current_application_version_id;
    check(&i.application_name, version, |v| {
        checks::id(
            v,
            "cloudWatchLoggingOptionId",
            &i.cloud_watch_logging_option_id,
        );
    })?;
    let id = i.cloud_watch_logging_option_id.unwrap_or_default();
    update(a, &i.application_name, version, |cfg| {
        remove(
            &mut cfg.logging,
            |l| &l.id,
            "CloudWatch logging option",
            &id,
            &cfg.name,
        )
    })
    .await
}
