//! DescribeAccountSettings, UpdateAccountSettings, Put/Get/DeleteResourcePolicy,
//! UpdateStreamWarmThroughput.

use serde::{Deserialize, Serialize};

use super::model::{Empty, Void};
use super::Kinesis;
use crate::protocol::{AwsError, Timestamp};
use crate::services::validate::Validator;
use crate::streams::{errors, Stream, StreamMode, StreamStatus};

/// A billing commitment lasts at least 24 hours.
const MIN_COMMITMENT_MS: i64 = 24 * 3_600_000;
/// Warm throughput tops out at 10 GiB/s.
const MAX_WARM_MIBPS: i64 = 10_240;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CommitmentInput {
    pub status: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateAccountSettingsInput {
    pub minimum_throughput_billing_commitment: Option<CommitmentInput>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CommitmentOutput {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earliest_allowed_end_at: Option<Timestamp>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountSettingsOutput {
    pub minimum_throughput_billing_commitment: CommitmentOutput,
}

fn settings_out(k: &Kinesis) -> AccountSettingsOutput {
    let now = k.engine.clock.now_ms();
    let s = k
        .engine
        .account_settings
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    AccountSettingsOutput {
        minimum_throughput_billing_commitment: CommitmentOutput {
            status: s.status(now),
            started_at: s.started_ms.map(Timestamp),
            ended_at: s.ended_ms.map(Timestamp),
            earliest_allowed_end_at: s.earliest_end_ms.map(Timestamp),
        },
    }
}

pub async fn describe_account_settings(
    k: &Kinesis,
    _i: Empty,
) -> Result<AccountSettingsOutput, AwsError> {
    k.engine.admit("DescribeAccountSettings", 5.0)?;
    Ok(settings_out(k))
}

/// Enabling starts a commitment of at least 24 hours; disabling before its earliest end keeps
/// it enabled until then (ENABLED_UNTIL_EARLIEST_ALLOWED_END), as AWS schedules it.
pub async fn update_account_settings(
    k: &Kinesis,
    i: UpdateAccountSettingsInput,
) -> Result<AccountSettingsOutput, AwsError> {
    let mut v = Validator::new();
    v.not_null(
        "minimumThroughputBillingCommitment",
        &i.minimum_throughput_billing_commitment,
    );
    if let Some(c) = &i.minimum_throughput_billing_commitment {
        v.not_null("minimumThroughputBillingCommitment.status", &c.status);
        v.enumeration(
            "minimumThroughputBillingCommitment.status",
            c.status.as_deref(),
            &["ENABLED", "DISABLED"],
        );
    }
    v.finish()?;
    k.engine.admit("UpdateAccountSettings", 5.0)?;
    let want = i
        .minimum_throughput_billing_commitment
        .and_then(|c| c.status)
        .unwrap_or_default();
    let now = k.engine.clock.now_ms();
    {
        let mut s = k
            .engine
            .account_settings
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let current = s.status(now);
        match (want.as_str(), current) {
            ("ENABLED", "ENABLED") => {}
            ("ENABLED", _) => {
                s.commitment_status = Some("ENABLED".into());
                s.started_ms = Some(now);
                s.ended_ms = None;
                s.earliest_end_ms = Some(now + MIN_COMMITMENT_MS);
            }
            (_, "DISABLED") => {}
            _ => {
                let end = s.earliest_end_ms.unwrap_or(now).max(now);
                s.commitment_status = Some(if end > now { "ENDING" } else { "DISABLED" }.into());
                s.ended_ms = Some(end);
            }
        }
    }
    k.engine.persist_account_settings()?;
    Ok(settings_out(k))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: Option<String>,
    pub policy: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyOutput {
    pub policy: String,
}

/// The stream owning a stream or consumer ARN; the consumer must exist.
fn owner(k: &Kinesis, arn: &str) -> Result<std::sync::Arc<Stream>, AwsError> {
    let not_found = || {
        AwsError::new(
            errors::RESOURCE_NOT_FOUND,
            format!("Resource {arn} under account {} not found.", k.account()),
        )
    };
    match arn.split_once("/consumer/") {
        Some((stream_arn, _)) => {
            let stream = k
                .engine
                .resolve(None, Some(stream_arn))
                .map_err(|_| not_found())?;
            if !stream.state().consumers.iter().any(|c| c.arn == arn) {
                return Err(not_found());
            }
            Ok(stream)
        }
        None => k.engine.resolve(None, Some(arn)).map_err(|_| not_found()),
    }
}

fn validate_arn(v: &mut Validator, arn: &Option<String>) {
    v.not_null("resourceARN", arn);
    v.string("resourceARN", arn.as_deref(), None, 1, 2048);
}

pub async fn put_resource_policy(k: &Kinesis, i: PolicyInput) -> Result<Void, AwsError> {
    let mut v = Validator::new();
    validate_arn(&mut v, &i.resource_arn);
    v.not_null("policy", &i.policy);
    v.finish()?;
    k.engine.admit("PutResourcePolicy", 5.0)?;
    let arn = i.resource_arn.unwrap_or_default();
    let policy = i.policy.unwrap_or_default();
    if !serde_json::from_str::<serde_json::Value>(&policy).is_ok_and(|p| p.is_object()) {
        return Err(errors::invalid_argument(
            "The resource policy is not a valid JSON policy document.",
        ));
    }
    let stream = owner(k, &arn)?;
    k.engine
        .update_state(&stream, |st| {
            st.policies.insert(arn.clone(), policy);
            Ok(())
        })
        .await?;
    Ok(Void)
}

pub async fn get_resource_policy(k: &Kinesis, i: PolicyInput) -> Result<PolicyOutput, AwsError> {
    let mut v = Validator::new();
    validate_arn(&mut v, &i.resource_arn);
    v.finish()?;
    k.engine.admit("GetResourcePolicy", 5.0)?;
    let arn = i.resource_arn.unwrap_or_default();
    let stream = owner(k, &arn)?;
    let policy = stream
        .state()
        .policies
        .get(&arn)
        .cloned()
        .unwrap_or_else(|| "{}".into());
    Ok(PolicyOutput { policy })
}

pub async fn delete_resource_policy(k: &Kinesis, i: PolicyInput) -> Result<Void, AwsError> {
    let mut v = Validator::new();
    validate_arn(&mut v, &i.resource_arn);
    v.finish()?;
    k.engine.admit("DeleteResourcePolicy", 5.0)?;
    let arn = i.resource_arn.unwrap_or_default();
    let stream = owner(k, &arn)?;
    let account = k.account().to_string();
    k.engine
        .update_state(&stream, |st| {
            st.policies.remove(&arn).map(|_| ()).ok_or_else(|| {
                AwsError::new(
                    errors::RESOURCE_NOT_FOUND,
                    format!("No resource policy found for resource {arn} under account {account}."),
                )
            })
        })
        .await?;
    Ok(Void)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct WarmThroughputInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub stream_name: Option<String>,
    #[serde(rename = "WarmThroughputMiBps")]
    pub warm_throughput_mibps: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WarmThroughputObject {
    #[serde(rename = "TargetMiBps")]
    pub target_mibps: u32,
    #[serde(rename = "CurrentMiBps")]
    pub current_mibps: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WarmThroughputOutput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    pub stream_name: String,
    pub warm_throughput: WarmThroughputObject,
}

/// Current write capacity of an on-demand stream in MiB/s: 1 MiB/s per open shard.
pub fn warm_throughput(stream: &Stream) -> Option<WarmThroughputObject> {
    let st = stream.state();
    if st.mode != StreamMode::OnDemand {
        return None;
    }
    let current = stream.open_shard_count() as u32;
    Some(WarmThroughputObject {
        target_mibps: st.warm_throughput_mibps.unwrap_or(current),
        current_mibps: current,
    })
}

/// Keeps an ON_DEMAND stream ready for `WarmThroughputMiBps` by growing it to one shard per
/// MiB/s (the per-shard write limit). Needs the account's billing commitment, as in AWS.
pub async fn update_stream_warm_throughput(
    k: &Kinesis,
    i: WarmThroughputInput,
) -> Result<WarmThroughputOutput, AwsError> {
    let mut v = Validator::new();
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.stream_name("streamName", i.stream_name.as_deref());
    v.not_null("warmThroughputMiBps", &i.warm_throughput_mibps);
    v.range(
        "warmThroughputMiBps",
        i.warm_throughput_mibps,
        0,
        MAX_WARM_MIBPS,
    );
    v.finish()?;
    k.engine.admit("UpdateStreamWarmThroughput", 5.0)?;
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let now = k.engine.clock.now_ms();
    let committed = k
        .engine
        .account_settings
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .status(now)
        != "DISABLED";
    if stream.state().mode != StreamMode::OnDemand {
        return Err(errors::invalid_argument(format!(
            "Warm throughput can only be set on a stream in ON_DEMAND mode; stream {} is PROVISIONED.",
            stream.name
        )));
    }
    if !committed {
        return Err(errors::invalid_argument(
            "Warm throughput requires the minimum throughput billing commitment to be enabled for the account.",
        ));
    }
    if stream.status() != StreamStatus::Active {
        return Err(errors::not_active(
            &stream.name,
            k.account(),
            stream.status().as_str(),
        ));
    }
    let target = i.warm_throughput_mibps.unwrap_or(0) as u32;
    k.engine
        .update_state(&stream, |st| {
            st.warm_throughput_mibps = Some(target);
            Ok(())
        })
        .await?;
    k.engine.warm_up(&stream, target).await?;
    Ok(WarmThroughputOutput {
        stream_arn: stream.arn.clone(),
        stream_name: stream.name.clone(),
        warm_throughput: warm_throughput(&stream).unwrap_or(WarmThroughputObject {
            target_mibps: target,
            current_mibps: stream.open_shard_count() as u32,
        }),
    })
}
