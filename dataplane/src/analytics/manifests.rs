//! `--manifests DIR` for `AnalyticsApp` resources: each becomes an application created through
//! the Analytics API's own CreateApplication (so it is validated, SQL included, exactly as an
//! API call would be) and started from its inputs' `inputStartingPosition` (default `NOW`).
//!
//! Runs after the streams of the same folder exist. Idempotent: an application that already
//! exists keeps its configuration, except that a different `applicationCode` is applied as
//! UpdateApplication would apply it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;
use tributary_api::{AnalyticsAppSpec, Manifest, StreamSpec};

use super::runtime::Start;
use crate::manifests::ManifestsError;
use crate::services::analytics::model::{
    AddReferenceRequest, ApplicationUpdate, CreateApplicationInput, Tag, UpdateApplicationInput,
};
use crate::services::analytics::{applications, config, AnalyticsService};

/// The API's member name for a CR field name (`resourceARN` → `ResourceARN`).
fn pascal(key: &str) -> String {
    match key {
        "jsonMappingParameters" => "JSONMappingParameters".into(),
        "csvMappingParameters" => "CSVMappingParameters".into(),
        _ => {
            let mut c = key.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        }
    }
}

/// Rewrites a CR value into the API's shape: PascalCase members, and `resourceRef` (a Stream
/// resource of the folder) replaced by the stream's ARN.
fn to_api(v: Value, streams: &HashMap<String, String>, arn_of: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                if k == "resourceRef" {
                    let name = v
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let stream = streams.get(&name).cloned().unwrap_or(name);
                    out.insert("ResourceARN".into(), Value::String(arn_of(&stream)));
                    continue;
                }
                out.insert(pascal(&k), to_api(v, streams, arn_of));
            }
            Value::Object(out)
        }
        Value::Array(a) => {
            Value::Array(a.into_iter().map(|v| to_api(v, streams, arn_of)).collect())
        }
        other => other,
    }
}

fn rejected(name: &str, message: String) -> ManifestsError {
    ManifestsError::Rejected {
        kind: "AnalyticsApp".into(),
        name: name.into(),
        message,
    }
}

/// Creates and starts the `AnalyticsApp` resources of `dir`; returns how many were created.
pub async fn apply_dir(dir: &Path, service: &AnalyticsService) -> Result<usize, ManifestsError> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|source| ManifestsError::Read {
            path: dir.display().to_string(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yaml" || e == "yml")
        })
        .collect();
    files.sort();
    let mut apps = Vec::new();
    let mut streams = HashMap::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let parse_err = |source| ManifestsError::Parse {
            path: path.display().to_string(),
            source,
        };
        for m in Manifest::parse_all(&text).map_err(parse_err)? {
            match m.kind.as_str() {
                "Stream" => {
                    let spec: StreamSpec = m.spec().map_err(parse_err)?;
                    let name = spec.effective_name(&m.metadata.name).to_string();
                    streams.insert(m.metadata.name.clone(), name);
                }
                "AnalyticsApp" => {
                    let spec: AnalyticsAppSpec = m.spec().map_err(parse_err)?;
                    apps.push((m, spec));
                }
                _ => {}
            }
        }
    }
    let engine = service.engine.clone();
    let arn_of = |s: &str| engine.streams.stream_arn(s);
    let mut created = 0;
    for (m, spec) in apps {
        let name = spec
            .application_name
            .clone()
            .unwrap_or_else(|| m.metadata.name.clone());
        if let Ok(existing) = engine.get(&name) {
            update_code(service, &name, &existing.config(), &spec).await?;
            continue;
        }
        let mut starts = BTreeMap::new();
        for (k, i) in spec.inputs.iter().enumerate() {
            starts.insert(
                format!("1.{}", k + 1),
                Start::parse(i.input_starting_position.as_deref()),
            );
        }
        let inputs: Vec<Value> = spec
            .inputs
            .iter()
            .map(|i| {
                let mut v = serde_json::to_value(i).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.remove("inputStartingPosition");
                }
                to_api(v, &streams, &arn_of)
            })
            .collect();
        let outputs: Vec<Value> = spec
            .outputs
            .iter()
            .map(|o| {
                to_api(
                    serde_json::to_value(o).unwrap_or_default(),
                    &streams,
                    &arn_of,
                )
            })
            .collect();
        // A role is required by the API; manifests may leave it out.
        let with_role = |v: Value| -> Value {
            let mut v = v;
            for member in [
                "KinesisStreamsInput",
                "KinesisFirehoseInput",
                "KinesisStreamsOutput",
                "KinesisFirehoseOutput",
            ] {
                if let Some(r) = v.get_mut(member).and_then(Value::as_object_mut) {
                    r.entry("RoleARN").or_insert_with(|| {
                        Value::String(format!("arn:aws:iam::{}:role/tributary", engine.account()))
                    });
                }
            }
            v
        };
        let input = CreateApplicationInput {
            application_name: Some(name.clone()),
            application_description: spec.application_description.clone(),
            inputs: Some(
                inputs
                    .into_iter()
                    .map(|v| serde_json::from_value(with_role(v)))
                    .collect::<Result<_, _>>()
                    .map_err(|e| rejected(&name, e.to_string()))?,
            ),
            outputs: Some(
                outputs
                    .into_iter()
                    .map(|v| serde_json::from_value(with_role(v)))
                    .collect::<Result<_, _>>()
                    .map_err(|e| rejected(&name, e.to_string()))?,
            ),
            cloud_watch_logging_options: None,
            // Code that joins reference tables compiles once the tables exist (below).
            application_code: if spec.reference_data_sources.is_empty() {
                spec.application_code.clone()
            } else {
                None
            },
            tags: (!spec.tags.is_empty()).then(|| {
                spec.tags
                    .iter()
                    .map(|(k, v)| Tag {
                        key: Some(k.clone()),
                        value: Some(v.clone()),
                    })
                    .collect()
            }),
        };
        applications::create(service, input)
            .await
            .map_err(|e| rejected(&name, format!("{}: {}", e.code, e.message)))?;
        // As on AWS: add the reference data sources, then the code that joins them.
        let mut version = 1;
        for r in &spec.reference_data_sources {
            let mut v = to_api(
                serde_json::to_value(r).unwrap_or_default(),
                &streams,
                &arn_of,
            );
            if let Some(s3) = v
                .get_mut("S3ReferenceDataSource")
                .and_then(Value::as_object_mut)
            {
                s3.entry("ReferenceRoleARN").or_insert_with(|| {
                    Value::String(format!("arn:aws:iam::{}:role/tributary", engine.account()))
                });
            }
            let source = serde_json::from_value(v).map_err(|e| rejected(&name, e.to_string()))?;
            config::add_reference(
                service,
                AddReferenceRequest {
                    application_name: Some(name.clone()),
                    current_application_version_id: Some(version),
                    reference_data_source: Some(source),
                },
            )
            .await
            .map_err(|e| rejected(&name, format!("{}: {}", e.code, e.message)))?;
            version += 1;
        }
        if let (false, Some(code)) = (
            spec.reference_data_sources.is_empty(),
            &spec.application_code,
        ) {
            applications::update(
                service,
                UpdateApplicationInput {
                    application_name: Some(name.clone()),
                    current_application_version_id: Some(version),
                    application_update: Some(ApplicationUpdate {
                        application_code_update: Some(code.clone()),
                        ..Default::default()
                    }),
                },
            )
            .await
            .map_err(|e| rejected(&name, format!("{}: {}", e.code, e.message)))?;
        }
        if !spec.inputs.is_empty() {
            engine
                .start(&name, starts)
                .await
                .map_err(|e| rejected(&name, format!("{}: {}", e.code, e.message)))?;
        }
        tracing::info!(application = %name, "Created and started an analytics application from a manifest.");
        created += 1;
    }
    Ok(created)
}

/// An application that exists gets the manifest's `applicationCode` the way UpdateApplication
/// (`ApplicationCodeUpdate`) would change it: the version id advances, and a running
/// application restarts on the new code from its read positions. The same code changes
/// nothing, so restarts keep the version. Inputs, outputs and reference data sources are
/// kept as created.
async fn update_code(
    service: &AnalyticsService,
    name: &str,
    current: &super::model::ApplicationConfig,
    spec: &AnalyticsAppSpec,
) -> Result<(), ManifestsError> {
    let Some(code) = &spec.application_code else {
        return Ok(());
    };
    if current.code.as_ref() == Some(code) {
        return Ok(());
    }
    applications::update(
        service,
        UpdateApplicationInput {
            application_name: Some(name.to_string()),
            current_application_version_id: Some(current.version),
            application_update: Some(ApplicationUpdate {
                application_code_update: Some(code.clone()),
                ..Default::default()
            }),
        },
    )
    .await
    .map_err(|e| rejected(name, format!("{}: {}", e.code, e.message)))?;
    tracing::info!(application = %name, version = current.version + 1, "Updated the application code from its manifest.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cr_fields_become_api_members() {
        assert_eq!(pascal("resourceARN"), "ResourceARN");
        assert_eq!(pascal("jsonMappingParameters"), "JSONMappingParameters");
        assert_eq!(pascal("recordRowPath"), "RecordRowPath");
        let streams = HashMap::from([("events".to_string(), "events-stream".to_string())]);
        let v = to_api(
            serde_json::json!({"namePrefix": "SOURCE_SQL_STREAM", "kinesisStreamsInput": {"resourceRef": {"name": "events"}}}),
            &streams,
            &|s| format!("arn:aws:kinesis:us-east-1:000000000000:stream/{s}"),
        );
        assert_eq!(
            v,
            serde_json::json!({"NamePrefix": "SOURCE_SQL_STREAM", "KinesisStreamsInput": {"ResourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/events-stream"}})
        );
    }
}
