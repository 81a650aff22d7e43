//! Enhanced fan-out consumers: RegisterStreamConsumer, DescribeStreamConsumer,
//! ListStreamConsumers, DeregisterStreamConsumer.

use serde::{Deserialize, Serialize};

use super::Kinesis;
use crate::protocol::{AwsError, Timestamp};
use crate::services::validate::{is_name, Validator, NAME_PATTERN};
use crate::streams::{errors, Consumer, ConsumerStatus, Stream};

use super::model::Void;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub consumer_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerRef {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub consumer_name: Option<String>,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub stream_creation_timestamp: Option<Timestamp>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerOut {
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    pub consumer_status: &'static str,
    pub consumer_creation_timestamp: Timestamp,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerDescription {
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    pub consumer_status: &'static str,
    pub consumer_creation_timestamp: Timestamp,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterOutput {
    pub consumer: ConsumerOut,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeOutput {
    pub consumer_description: ConsumerDescription,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOutput {
    pub consumers: Vec<ConsumerOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

fn out(c: &Consumer) -> ConsumerOut {
    ConsumerOut {
        consumer_name: c.name.clone(),
        consumer_arn: c.arn.clone(),
        consumer_status: c.status.as_str(),
        consumer_creation_timestamp: Timestamp(c.created_ms / 1000 * 1000),
    }
}

fn validate_consumer_name(v: &mut Validator, name: Option<&str>) {
    v.string("consumerName", name, Some((NAME_PATTERN, is_name)), 1, 128);
}

pub async fn register_stream_consumer(
    k: &Kinesis,
    i: RegisterInput,
) -> Result<RegisterOutput, AwsError> {
    let mut v = Validator::new();
    v.not_null("streamARN", &i.stream_arn);
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.not_null("consumerName", &i.consumer_name);
    validate_consumer_name(&mut v, i.consumer_name.as_deref());
    v.finish()?;
    k.engine.admit("RegisterStreamConsumer", 5.0)?;
    let stream = k.engine.resolve(None, i.stream_arn.as_deref())?;
    let name = i.consumer_name.unwrap_or_default();
    let consumer = k.engine.register_consumer(&stream, &name).await?;
    let mut o = out(&consumer);
    // AWS always answers CREATING; DescribeStreamConsumer reports ACTIVE once it is.
    o.consumer_status = ConsumerStatus::Creating.as_str();
    Ok(RegisterOutput { consumer: o })
}

/// Finds a consumer by ARN, or by stream ARN and name.
fn find(k: &Kinesis, i: &ConsumerRef) -> Result<(std::sync::Arc<Stream>, Consumer), AwsError> {
    let account = k.account();
    if let Some(arn) = &i.consumer_arn {
        let stream_arn = arn.split("/consumer/").next().unwrap_or_default();
        let stream = k.engine.resolve(None, Some(stream_arn)).map_err(|_| {
            AwsError::new(
                errors::RESOURCE_NOT_FOUND,
                format!("Consumer {arn} under account {account} not found."),
            )
        })?;
        let c = stream
            .state()
            .consumers
            .iter()
            .find(|c| &c.arn == arn)
            .cloned()
            .ok_or_else(|| {
                AwsError::new(
                    errors::RESOURCE_NOT_FOUND,
                    format!("Consumer {arn} under account {account} not found."),
                )
            })?;
        return Ok((stream, c));
    }
    match (&i.stream_arn, &i.consumer_name) {
        (Some(sa), Some(name)) => {
            let stream = k.engine.resolve(None, Some(sa))?;
            let c = stream
                .state()
                .consumers
                .iter()
                .find(|c| &c.name == name)
                .cloned()
                .ok_or_else(|| {
                    AwsError::new(
                        errors::RESOURCE_NOT_FOUND,
                        format!(
                            "Consumer {name} under stream {} not found for account {account}.",
                            stream.name
                        ),
                    )
                })?;
            Ok((stream, c))
        }
        _ => Err(errors::invalid_argument(
            "Either ConsumerARN or both StreamARN and ConsumerName must be provided.",
        )),
    }
}

fn validate_ref(i: &ConsumerRef) -> Result<(), AwsError> {
    let mut v = Validator::new();
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    validate_consumer_name(&mut v, i.consumer_name.as_deref());
    v.string("consumerARN", i.consumer_arn.as_deref(), None, 1, 2048);
    v.finish()
}

pub async fn describe_stream_consumer(
    k: &Kinesis,
    i: ConsumerRef,
) -> Result<DescribeOutput, AwsError> {
    validate_ref(&i)?;
    let (stream, c) = find(k, &i)?;
    Ok(DescribeOutput {
        consumer_description: ConsumerDescription {
            consumer_name: c.name.clone(),
            consumer_arn: c.arn.clone(),
            consumer_status: c.status.as_str(),
            consumer_creation_timestamp: Timestamp(c.created_ms / 1000 * 1000),
            stream_arn: stream.arn.clone(),
        },
    })
}

pub async fn deregister_stream_consumer(k: &Kinesis, i: ConsumerRef) -> Result<Void, AwsError> {
    validate_ref(&i)?;
    k.engine.admit("DeregisterStreamConsumer", 5.0)?;
    let (stream, c) = find(k, &i)?;
    k.engine.deregister_consumer(&stream, &c.arn).await?;
    Ok(Void)
}

pub async fn list_stream_consumers(k: &Kinesis, i: ListInput) -> Result<ListOutput, AwsError> {
    let mut v = Validator::new();
    v.not_null("streamARN", &i.stream_arn);
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.range("maxResults", i.max_results, 1, 10_000);
    v.string("nextToken", i.next_token.as_deref(), None, 1, 1_048_576);
    v.finish()?;
    let stream = k.engine.resolve(None, i.stream_arn.as_deref())?;
    let limit = i.max_results.unwrap_or(100) as usize;
    let skip: usize = match &i.next_token {
        Some(t) => t
            .strip_prefix("consumers:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| errors::invalid_argument("Invalid NextToken."))?,
        None => 0,
    };
    let all: Vec<ConsumerOut> = stream.state().consumers.iter().map(out).collect();
    let more = all.len() > skip + limit;
    Ok(ListOutput {
        consumers: all.into_iter().skip(skip).take(limit).collect(),
        next_token: more.then(|| format!("consumers:{}", skip + limit)),
    })
}
