//! `--manifests DIR`: create the resources described by custom-resource YAML files, the same
//! files Kubernetes users apply. Applying is idempotent: existing streams are left as they are.

use std::path::Path;
use std::sync::Arc;

use std::collections::HashMap;

use tributary_api::{Manifest, StreamConsumerSpec, StreamSpec};

use crate::streams::{CreateStream, StreamMode, Streams};

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
/// streams first, then the consumers that refer to them.
pub async fn apply_dir(dir: &Path, engine: &Arc<Streams>) -> Result<usize, ManifestsError> {
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
    Ok(created)
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
