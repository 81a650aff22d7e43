//! Increase/DecreaseStreamRetentionPeriod, DescribeLimits, Enable/DisableEnhancedMonitoring,
//! Start/StopStreamEncryption, UpdateMaxRecordSize.

use super::model::*;
use super::Kinesis;
use crate::metrics::SHARD_LEVEL_METRICS;
use crate::protocol::AwsError;
use crate::services::validate::Validator;
use crate::streams::{errors, StreamStatus};

/// Retention is 24 hours to 365 days.
const MIN_RETENTION: i64 = 24;
const MAX_RETENTION: i64 = 8760;

fn validate_retention(i: &RetentionInput) -> Result<(), AwsError> {
    let mut v = Validator::new();
    v.not_null("retentionPeriodHours", &i.retention_period_hours);
    v.min("retentionPeriodHours", i.retention_period_hours, 1);
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()
}

async fn change_retention(
    k: &Kinesis,
    i: RetentionInput,
    increase: bool,
) -> Result<Void, AwsError> {
    validate_retention(&i)?;
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let hours = i.retention_period_hours.unwrap_or_default();
    if hours < MIN_RETENTION {
        return Err(errors::invalid_argument(format!(
            "Minimum allowed retention period is {MIN_RETENTION} hours. Requested retention period ({hours} hours) is too short."
        )));
    }
    if hours > MAX_RETENTION {
        return Err(errors::invalid_argument(format!(
            "Maximum allowed retention period is {MAX_RETENTION} hours. Requested retention period ({hours} hours) is too long."
        )));
    }
    let name = stream.name.clone();
    let account = k.account().to_string();
    k.engine
        .update_state(&stream, |st| {
            if st.status != StreamStatus::Active {
                return Err(errors::not_active(&name, &account, st.status.as_str()));
            }
            let current = i64::from(st.retention_hours);
            if increase && hours < current {
                return Err(errors::invalid_argument(format!(
                    "Requested retention period ({hours} hours) for stream {name} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
                )));
            }
            if !increase && hours > current {
                return Err(errors::invalid_argument(format!(
                    "Requested retention period ({hours} hours) for stream {name} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
                )));
            }
            st.retention_hours = hours as u32;
            Ok(())
        })
        .await?;
    if !increase {
        // Data older than the new period becomes unreadable at once.
        k.engine.enforce_retention().await;
    }
    Ok(Void)
}

pub async fn increase_retention(k: &Kinesis, i: RetentionInput) -> Result<Void, AwsError> {
    change_retention(k, i, true).await
}

pub async fn decrease_retention(k: &Kinesis, i: RetentionInput) -> Result<Void, AwsError> {
    change_retention(k, i, false).await
}

pub async fn describe_limits(k: &Kinesis, _i: Empty) -> Result<DescribeLimitsOutput, AwsError> {
    k.engine.admit("DescribeLimits", 1.0)?;
    let (open, limit) = k.engine.shard_limit_status();
    Ok(DescribeLimitsOutput {
        shard_limit: limit,
        open_shard_count: open,
        on_demand_stream_count: k.engine.on_demand_count(),
        on_demand_stream_count_limit: k.engine.cfg.on_demand_stream_limit,
    })
}

const METRIC_ENUM: [&str; 8] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
    "ALL",
];

async fn monitoring(
    k: &Kinesis,
    i: EnhancedMonitoringInput,
    enable: bool,
) -> Result<EnhancedMonitoringOutput, AwsError> {
    let mut v = Validator::new();
    v.not_null("shardLevelMetrics", &i.shard_level_metrics);
    if let Some(m) = &i.shard_level_metrics {
        v.count(
            "shardLevelMetrics",
            &format!("[{}]", m.join(", ")),
            m.len(),
            1,
            7,
        );
        for item in m {
            v.enumeration("shardLevelMetrics.member", Some(item), &METRIC_ENUM);
        }
    }
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let requested: Vec<String> = i
        .shard_level_metrics
        .unwrap_or_default()
        .into_iter()
        .flat_map(|m| {
            if m == "ALL" {
                SHARD_LEVEL_METRICS.iter().map(|s| s.to_string()).collect()
            } else {
                vec![m]
            }
        })
        .collect();
    let name = stream.name.clone();
    let account = k.account().to_string();
    let (current, desired) = k
        .engine
        .update_state(&stream, |st| {
            if st.status != StreamStatus::Active {
                return Err(errors::not_active(&name, &account, st.status.as_str()));
            }
            let current: Vec<String> = st.enhanced_metrics.iter().cloned().collect();
            for m in requested {
                if enable {
                    st.enhanced_metrics.insert(m);
                } else {
                    st.enhanced_metrics.remove(&m);
                }
            }
            Ok((current, st.enhanced_metrics.iter().cloned().collect()))
        })
        .await?;
    Ok(EnhancedMonitoringOutput {
        stream_name: stream.name.clone(),
        current_shard_level_metrics: current,
        desired_shard_level_metrics: desired,
        stream_arn: stream.arn.clone(),
    })
}

pub async fn enable_monitoring(
    k: &Kinesis,
    i: EnhancedMonitoringInput,
) -> Result<EnhancedMonitoringOutput, AwsError> {
    monitoring(k, i, true).await
}

pub async fn disable_monitoring(
    k: &Kinesis,
    i: EnhancedMonitoringInput,
) -> Result<EnhancedMonitoringOutput, AwsError> {
    monitoring(k, i, false).await
}

async fn encryption(k: &Kinesis, i: EncryptionInput, start: bool) -> Result<Void, AwsError> {
    let mut v = Validator::new();
    v.not_null("encryptionType", &i.encryption_type);
    v.enumeration(
        "encryptionType",
        i.encryption_type.as_deref(),
        &["NONE", "KMS"],
    );
    v.not_null("keyId", &i.key_id);
    v.string("keyId", i.key_id.as_deref(), None, 1, 2048);
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    if i.encryption_type.as_deref() != Some("KMS") {
        return Err(errors::invalid_argument(
            "KMS is the only valid EncryptionType for this request.",
        ));
    }
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let name = stream.name.clone();
    let account = k.account().to_string();
    let key = i.key_id.unwrap_or_default();
    k.engine
        .update_state(&stream, |st| {
            if st.status != StreamStatus::Active {
                return Err(errors::not_active(&name, &account, st.status.as_str()));
            }
            st.encryption_key = if start { Some(key) } else { None };
            Ok(())
        })
        .await?;
    Ok(Void)
}

pub async fn start_encryption(k: &Kinesis, i: EncryptionInput) -> Result<Void, AwsError> {
    encryption(k, i, true).await
}

pub async fn stop_encryption(k: &Kinesis, i: EncryptionInput) -> Result<Void, AwsError> {
    encryption(k, i, false).await
}

pub async fn update_max_record_size(
    k: &Kinesis,
    i: UpdateMaxRecordSizeInput,
) -> Result<Void, AwsError> {
    let mut v = Validator::new();
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.not_null("maxRecordSizeInKiB", &i.max_record_size_in_kib);
    v.range("maxRecordSizeInKiB", i.max_record_size_in_kib, 1024, 10240);
    v.finish()?;
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let size = i.max_record_size_in_kib.unwrap_or(1024) as u32;
    let name = stream.name.clone();
    let account = k.account().to_string();
    k.engine
        .update_state(&stream, |st| {
            if st.status != StreamStatus::Active {
                return Err(errors::not_active(&name, &account, st.status.as_str()));
            }
            st.max_record_kib = size;
            Ok(())
        })
        .await?;
    Ok(Void)
}
