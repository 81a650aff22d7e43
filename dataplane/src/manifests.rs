//! `--manifests DIR`: create the resources described by custom-resource YAML files, the same
//! files Kubernetes users apply. Applying is idempotent: existing streams are left as they are,
//! and a delivery stream that exists with a different destination (or tags) is changed the way
//! Firehose's UpdateDestination (TagDeliveryStream) would change it, advancing its version id.
//! Streams are created before delivery streams that read them.
//!
//! Secrets never appear in a manifest: a Redshift destination's password is read from
//! [`REDSHIFT_PASSWORD_ENV`] (its `passwordSecretRef` names the Secret the operator maps to that
//! variable), and an HTTP endpoint's `accessKeySecretRef` from [`HTTP_ACCESS_KEY_ENV`].

use std::path::Path;
use std::sync::Arc;

use std::collections::HashMap;

use serde_json::{Map, Value};
use tributary_api::{DeliveryStreamSpec, Manifest, StreamConsumerSpec, StreamSpec};

use crate::delivery::DeliveryStreams;
use crate::services::firehose::{model::CreateInput, Firehose};
use crate::streams::{CreateStream, StreamMode, Streams};

/// Environment variable holding the password of a Redshift (PostgreSQL) destination whose
/// manifest has `passwordSecretRef`.
pub const REDSHIFT_PASSWORD_ENV: &str = "TRIBUTARY_REDSHIFT_PASSWORD";
/// Environment variable holding the access key of an HTTP endpoint destination whose manifest
/// has `accessKeySecretRef`.
pub const HTTP_ACCESS_KEY_ENV: &str = "TRIBUTARY_HTTP_ACCESS_KEY";

/// Failure to apply a manifest folder.
#[derive(Debug, thiserror::Error)]
pub enum ManifestsError {
    /// The folder or a file in it could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML or a resource does not match its schema.
    #[error("{path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: tributary_api::ManifestError,
    },
    /// The data plane refused a resource (invalid settings).
    #[error("{kind} {name}: {message}")]
    Rejected {
        kind: String,
        name: String,
        message: String,
    },
}

/// Reads every `*.yaml`/`*.yml` file of `dir` (sorted by name) and creates what is missing:
/// streams first, then the consumers and delivery streams that refer to them.
pub async fn apply_dir(
    dir: &Path,
    engine: &Arc<Streams>,
    delivery: &Arc<DeliveryStreams>,
) -> Result<usize, ManifestsError> {
    let read_err = |source| ManifestsError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yaml" || e == "yml")
        })
        .collect();
    files.sort();
    let mut created = 0;
    let mut consumers = Vec::new();
    let mut deliveries = Vec::new();
    // Resource name → Kinesis stream name, for StreamConsumer.spec.streamRef.
    let mut stream_names: HashMap<String, String> = HashMap::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let parse_err = |source| ManifestsError::Parse {
            path: path.display().to_string(),
            source,
        };
        let manifests = Manifest::parse_all(&text).map_err(parse_err)?;
        for m in manifests {
            match m.kind.as_str() {
                "Stream" => {
                    let spec: StreamSpec = m.spec().map_err(parse_err)?;
                    stream_names.insert(
                        m.metadata.name.clone(),
                        spec.effective_name(&m.metadata.name).to_string(),
                    );
                    if apply_stream(&m, &spec, engine).await? {
                        created += 1;
                    }
                }
                "StreamConsumer" => {
                    let spec: StreamConsumerSpec = m.spec().map_err(parse_err)?;
                    consumers.push((m, spec));
                }
                "DeliveryStream" => {
                    let spec: DeliveryStreamSpec = m.spec().map_err(parse_err)?;
                    deliveries.push((m, spec));
                }
                // Applied by `analytics::manifests` once the analytics engine is open.
                "AnalyticsApp" => {}
                _ => {
                    tracing::info!(kind = %m.kind, name = %m.metadata.name, "Skipping a resource kind this data plane does not serve yet.");
                }
            }
        }
    }
    for (m, spec) in consumers {
        let stream_name = stream_names
            .get(&spec.stream_ref.name)
            .cloned()
            .unwrap_or_else(|| spec.stream_ref.name.clone());
        let name = spec.effective_name(&m.metadata.name).to_string();
        let rejected = |message: String| ManifestsError::Rejected {
            kind: "StreamConsumer".into(),
            name: name.clone(),
            message,
        };
        let stream = engine
            .find(&stream_name)
            .ok_or_else(|| rejected(format!("stream {stream_name} does not exist")))?;
        if stream.state().consumers.iter().any(|c| c.name == name) {
            continue;
        }
        engine
            .register_consumer(&stream, &name)
            .await
            .map_err(|e| rejected(e.message))?;
        tracing::info!(stream = %stream_name, consumer = %name, "Registered consumer from manifest.");
        created += 1;
    }
    for (m, spec) in deliveries {
        if apply_delivery_stream(&m, &spec, engine, delivery).await? {
            created += 1;
        }
    }
    Ok(created)
}

/// `bucketARN` → `BucketARN`: the CR's lowerCamelCase members are Firehose's names with a
/// lower-case first letter.
/// The keys of a map member (`columnToJsonKeyMappings`) are data and keep their case.
fn pascal(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let mut c = k.chars();
                    let key = match c.next() {
                        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                        None => k,
                    };
                    let v = if key == "ColumnToJsonKeyMappings" {
                        v
                    } else {
                        pascal(v)
                    };
                    (key, v)
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(pascal).collect()),
        v => v,
    }
}

/// The value of the environment variable `var`, which a `field` reference in the manifest
/// promises.
fn secret_from_env(var: &str, field: &str) -> Result<String, String> {
    std::env::var(var).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
        format!("{field} is set, so the value must be in the environment variable {var}, which is not set")
    })
}

/// Replaces the Secret references of a destination (Firehose JSON) by the values from the
/// environment: `PasswordSecretRef` by `Password`, `EndpointConfiguration.AccessKeySecretRef`
/// by `EndpointConfiguration.AccessKey`. Drops the Glue ConfigMap reference of a format
/// conversion, which only the operator uses (it mounts the ConfigMap as `--glue-catalog`).
fn resolve_secrets(v: &mut Value) -> Result<(), String> {
    let Some(m) = v.as_object_mut() else {
        return Ok(());
    };
    if m.remove("PasswordSecretRef").is_some() {
        let password = secret_from_env(REDSHIFT_PASSWORD_ENV, "passwordSecretRef")?;
        m.insert("Password".into(), Value::String(password));
    }
    if let Some(Value::Object(e)) = m.get_mut("EndpointConfiguration") {
        if e.remove("AccessKeySecretRef").is_some() {
            let key = secret_from_env(HTTP_ACCESS_KEY_ENV, "accessKeySecretRef")?;
            e.insert("AccessKey".into(), Value::String(key));
        }
    }
    if let Some(Value::Object(s)) = m
        .get_mut("DataFormatConversionConfiguration")
        .and_then(|d| d.get_mut("SchemaConfiguration"))
    {
        s.remove("GlueCatalogConfigMapRef");
    }
    Ok(())
}

/// Removes the Tributary extensions (`endpointURL`, `credentialsSecretRef`) from an S3
/// configuration, returning the endpoint.
fn strip_extensions(v: &mut Value) -> Option<String> {
    let m = v.as_object_mut()?;
    m.remove("CredentialsSecretRef");
    let endpoint = m
        .remove("EndpointURL")
        .and_then(|e| e.as_str().map(str::to_string));
    if let Some(s3) = m.get_mut("S3Configuration") {
        let inner = strip_extensions(s3);
        return endpoint.or(inner);
    }
    endpoint
}

async fn apply_delivery_stream(
    m: &Manifest,
    spec: &DeliveryStreamSpec,
    engine: &Arc<Streams>,
    delivery: &Arc<DeliveryStreams>,
) -> Result<bool, ManifestsError> {
    let name = spec
        .delivery_stream_name
        .clone()
        .unwrap_or_else(|| m.metadata.name.clone());
    let rejected = |message: String| ManifestsError::Rejected {
        kind: "DeliveryStream".into(),
        name: name.clone(),
        message,
    };
    // Firehose requires a role ARN; a local server has no IAM, so a placeholder stands in.
    let role = format!("arn:aws:iam::{}:role/tributary-delivery", engine.account());
    let with_role = |v: Value| -> Value {
        let mut v = pascal(v);
        if let Some(o) = v.as_object_mut() {
            o.entry("RoleARN")
                .or_insert_with(|| Value::String(role.clone()));
            if let Some(Value::Object(s3)) = o.get_mut("S3Configuration") {
                s3.entry("RoleARN")
                    .or_insert_with(|| Value::String(role.clone()));
            }
        }
        v
    };
    let to_json = |x: &dyn erased::Ser| x.json().map_err(|e| rejected(e.to_string()));
    let mut endpoint = None;
    let mut input = CreateInput {
        delivery_stream_name: Some(name.clone()),
        delivery_stream_type: Some(
            match spec.delivery_stream_type {
                tributary_api::delivery::DeliveryStreamType::DirectPut => "DirectPut",
                tributary_api::delivery::DeliveryStreamType::KinesisStreamAsSource => {
                    "KinesisStreamAsSource"
                }
            }
            .into(),
        ),
        ..CreateInput::default()
    };
    let mut destination = |c: &dyn erased::Ser| -> Result<Value, ManifestsError> {
        let mut v = with_role(to_json(c)?);
        resolve_secrets(&mut v).map_err(&rejected)?;
        endpoint = strip_extensions(&mut v);
        Ok(v)
    };
    if let Some(c) = &spec.extended_s3_destination_configuration {
        input.extended_s3_destination_configuration = Some(destination(c)?);
    }
    if let Some(c) = &spec.http_endpoint_destination_configuration {
        input.http_endpoint_destination_configuration = Some(destination(c)?);
    }
    if let Some(c) = &spec.redshift_destination_configuration {
        input.redshift_destination_configuration = Some(destination(c)?);
    }
    if let Some(k) = &spec.kinesis_stream_source_configuration {
        let arn = match (&k.stream_ref, &k.kinesis_stream_arn) {
            (Some(r), _) => {
                let stream_name = engine
                    .list()
                    .into_iter()
                    .find(|s| s.name == r.name)
                    .map(|s| s.name.clone())
                    .unwrap_or_else(|| r.name.clone());
                engine.stream_arn(&stream_name)
            }
            (None, Some(arn)) => arn.clone(),
            (None, None) => {
                return Err(rejected(
                    "kinesisStreamSourceConfiguration needs streamRef or kinesisStreamARN".into(),
                ))
            }
        };
        input.kinesis_stream_source_configuration = Some(
            crate::services::firehose::model::KinesisStreamSourceConfiguration {
                kinesis_stream_arn: Some(arn),
                role_arn: Some(k.role_arn.clone().unwrap_or_else(|| role.clone())),
            },
        );
    }
    if !spec.tags.is_empty() {
        input.tags = Some(
            spec.tags
                .iter()
                .map(|(k, v)| crate::services::firehose::model::Tag {
                    key: Some(k.clone()),
                    value: Some(v.clone()),
                })
                .collect(),
        );
    }
    let firehose = Firehose::internal(delivery.clone());
    if let Some(ds) = delivery.find(&name) {
        return update_delivery_stream(&firehose, delivery, &ds, input, endpoint)
            .await
            .map_err(rejected)
            .map(|_| false);
    }
    crate::services::firehose::streams::create(&firehose, input)
        .await
        .map_err(|e| rejected(format!("{}: {}", e.code, e.message)))?;
    if let (Some(ep), Some(ds)) = (endpoint, delivery.find(&name)) {
        delivery
            .update(&ds, |meta| {
                meta.store_endpoint = Some(ep);
                Ok(())
            })
            .map_err(|e| rejected(e.message))?;
    }
    tracing::info!(delivery_stream = %name, "Created delivery stream from manifest.");
    Ok(true)
}

/// Brings an existing delivery stream to the manifest's configuration: a destination that
/// differs is changed with UpdateDestination (merged member by member into the current one, a
/// different destination type replacing it; the version id advances), the object-store
/// endpoint and the tags are replaced. A manifest that matches changes nothing, so restarts
/// keep the version id. The source cannot change (Firehose has no call for it); a different
/// one is reported and ignored.
async fn update_delivery_stream(
    firehose: &Firehose,
    delivery: &Arc<DeliveryStreams>,
    ds: &crate::delivery::DeliveryStream,
    input: CreateInput,
    endpoint: Option<String>,
) -> Result<(), String> {
    use crate::delivery::Destination;
    use crate::services::firehose::{model::UpdateDestinationInput, streams};
    let name = input.delivery_stream_name.clone().unwrap_or_default();
    let meta = ds.meta();
    let wanted = match (
        input.extended_s3_destination_configuration,
        input.http_endpoint_destination_configuration,
        input.redshift_destination_configuration,
    ) {
        (Some(v), _, _) => Destination::ExtendedS3(v),
        (_, Some(v), _) => Destination::HttpEndpoint(v),
        (_, _, Some(v)) => Destination::Redshift(v),
        _ => return Err("exactly one destination configuration is required".into()),
    };
    let unchanged = std::mem::discriminant(&meta.destination) == std::mem::discriminant(&wanted)
        && {
            let mut merged = meta.destination.config().clone();
            merge_into(&mut merged, wanted.config());
            &merged == meta.destination.config()
        };
    if !unchanged {
        let mut update = UpdateDestinationInput {
            delivery_stream_name: Some(name.clone()),
            current_delivery_stream_version_id: Some(meta.version_id.to_string()),
            destination_id: Some(streams::DESTINATION_ID.into()),
            ..UpdateDestinationInput::default()
        };
        match wanted {
            Destination::ExtendedS3(v) => update.extended_s3_destination_update = Some(v),
            Destination::HttpEndpoint(v) => update.http_endpoint_destination_update = Some(v),
            Destination::Redshift(v) => update.redshift_destination_update = Some(v),
        }
        streams::update_destination(firehose, update)
            .await
            .map_err(|e| format!("{}: {}", e.code, e.message))?;
        tracing::info!(delivery_stream = %name, version_id = meta.version_id + 1, "Updated the delivery stream's destination from its manifest.");
    }
    let wanted_source = input
        .kinesis_stream_source_configuration
        .and_then(|k| k.kinesis_stream_arn);
    if wanted_source.as_deref() != meta.kinesis.as_ref().map(|k| k.stream_arn.as_str()) {
        tracing::warn!(delivery_stream = %name, "The manifest names a different source; a delivery stream's source cannot change, so the current one is kept. Delete and re-create the delivery stream to change it.");
    }
    let tags: std::collections::BTreeMap<String, String> = input
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect();
    let meta = ds.meta();
    if meta.tags != tags || meta.store_endpoint != endpoint {
        delivery
            .update(ds, |m| {
                m.tags = tags;
                m.store_endpoint = endpoint;
                Ok(())
            })
            .map_err(|e| e.message)?;
        tracing::info!(delivery_stream = %name, "Updated the delivery stream's tags and object-store endpoint from its manifest.");
    }
    Ok(())
}

/// Merges `update` into `current` as UpdateDestination does: members of objects merge,
/// anything else is replaced.
fn merge_into(current: &mut Value, update: &Value) {
    match (current, update) {
        (Value::Object(c), Value::Object(u)) => {
            for (k, v) in u {
                match c.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_into(existing, v)
                    }
                    _ => {
                        c.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (c, u) => *c = u.clone(),
    }
}

/// Serialising the CR's destination structs to JSON, behind one object-safe trait.
mod erased {
    pub trait Ser {
        fn json(&self) -> Result<serde_json::Value, serde_json::Error>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
            serde_json::to_value(self)
        }
    }
}

async fn apply_stream(
    m: &Manifest,
    spec: &StreamSpec,
    engine: &Arc<Streams>,
) -> Result<bool, ManifestsError> {
    let name = spec.effective_name(&m.metadata.name).to_string();
    let rejected = |message: String| ManifestsError::Rejected {
        kind: "Stream".into(),
        name: name.clone(),
        message,
    };
    if !crate::services::validate::is_name(&name) || name.len() > 128 {
        return Err(rejected("stream names match [a-zA-Z0-9_.-]{1,128}".into()));
    }
    if engine.find(&name).is_some() {
        return Ok(false);
    }
    let mode = match spec.stream_mode {
        tributary_api::StreamMode::Provisioned => StreamMode::Provisioned,
        tributary_api::StreamMode::OnDemand => StreamMode::OnDemand,
    };
    if !(24..=8760).contains(&spec.retention_period_hours) {
        return Err(rejected(
            "retentionPeriodHours must be between 24 and 8760".into(),
        ));
    }
    let shard_count = match mode {
        StreamMode::Provisioned => Some(spec.shard_count.unwrap_or(1).clamp(1, 100_000) as u32),
        StreamMode::OnDemand => None,
    };
    engine
        .create_stream(CreateStream {
            name: name.clone(),
            shard_count,
            mode,
            tags: spec.tags.clone(),
            max_record_kib: spec
                .max_record_size_in_ki_b
                .map(|v| v.clamp(1024, 10240) as u32),
            retention_hours: Some(spec.retention_period_hours as u32),
        })
        .await
        .map_err(|e| rejected(e.message))?;
    if let Some(enc) = &spec.encryption {
        if enc.encryption_type == tributary_api::EncryptionType::Kms {
            if let Some(stream) = engine.find(&name) {
                let key = enc
                    .key_id
                    .clone()
                    .unwrap_or_else(|| "alias/aws/kinesis".into());
                let _ = engine
                    .update_state(&stream, |st| {
                        st.encryption_key = Some(key);
                        Ok(())
                    })
                    .await;
            }
        }
    }
    crate::metrics::global().init_stream(&name);
    tracing::info!(stream = %name, "Created stream from manifest.");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cr_members_become_firehose_members_and_map_keys_keep_their_case() {
        let v = pascal(json!({
            "bucketARN": "arn:aws:s3:::b",
            "dataFormatConversionConfiguration": {"inputFormatConfiguration": {"deserializer": {
                "openXJsonSerDe": {"columnToJsonKeyMappings": {"ticker": "Symbol"}}}}},
        }));
        assert_eq!(
            v,
            json!({
                "BucketARN": "arn:aws:s3:::b",
                "DataFormatConversionConfiguration": {"InputFormatConfiguration": {"Deserializer": {
                    "OpenXJsonSerDe": {"ColumnToJsonKeyMappings": {"ticker": "Symbol"}}}}},
            })
        );
    }

    #[test]
    fn secret_references_become_values_and_the_glue_reference_is_dropped() {
        let mut v = json!({
            "DataFormatConversionConfiguration": {"SchemaConfiguration": {
                "DatabaseName": "d", "TableName": "t", "GlueCatalogConfigMapRef": {"Name": "glue"}}},
        });
        resolve_secrets(&mut v).unwrap();
        assert_eq!(
            v,
            json!({"DataFormatConversionConfiguration": {"SchemaConfiguration": {
                "DatabaseName": "d", "TableName": "t"}}})
        );
        // The variable names are the documented interface with the operator.
        assert_eq!(REDSHIFT_PASSWORD_ENV, "TRIBUTARY_REDSHIFT_PASSWORD");
        assert_eq!(HTTP_ACCESS_KEY_ENV, "TRIBUTARY_HTTP_ACCESS_KEY");
        let err =
            secret_from_env("TRIBUTARY_TEST_UNSET_VARIABLE", "passwordSecretRef").unwrap_err();
        assert_eq!(
            err,
            "passwordSecretRef is set, so the value must be in the environment variable TRIBUTARY_TEST_UNSET_VARIABLE, which is not set"
        );
    }

    #[test]
    fn merging_a_matching_configuration_changes_nothing() {
        let current =
            json!({"Prefix": "a/", "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60}});
        let mut merged = current.clone();
        merge_into(
            &mut merged,
            &json!({"BufferingHints": {"IntervalInSeconds": 60}}),
        );
        assert_eq!(merged, current);
        merge_into(
            &mut merged,
            &json!({"BufferingHints": {"IntervalInSeconds": 30}}),
        );
        assert_eq!(
            merged["BufferingHints"],
            json!({"SizeInMBs": 5, "IntervalInSeconds": 30})
        );
    }
}
