//! CreateDeliveryStream, DeleteDeliveryStream, DescribeDeliveryStream, ListDeliveryStreams,
//! UpdateDestination.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::errors::{self, invalid_argument};
use super::model::*;
use super::validate;
use super::Firehose;
use crate::delivery::config::S3Destination;
use crate::delivery::{
    DeliveryMeta, DeliveryStream, Destination, Encryption, KinesisSource, SourceKind,
};
use crate::protocol::{AwsError, Timestamp};
use crate::services::validate::Validator;

/// Delivery streams per account (Firehose's current default quota).
pub const MAX_DELIVERY_STREAMS: usize = 5000;
/// The only destination of a delivery stream has this id.
pub const DESTINATION_ID: &str = "destinationId-000000000001";

const TYPES: &[&str] = &[
    "DirectPut",
    "KinesisStreamAsSource",
    "MSKAsSource",
    "DatabaseAsSource",
];

pub fn find(f: &Firehose, name: &str) -> Result<Arc<DeliveryStream>, AwsError> {
    f.engine
        .find(name)
        .ok_or_else(|| errors::not_found(name, f.account()))
}

/// The destination of a request: exactly one, of a kind this engine delivers to.
fn destination(i: &CreateInput) -> Result<Destination, AwsError> {
    let unsupported = [
        ("Elasticsearch", &i.elasticsearch_destination_configuration),
        (
            "AmazonOpenSearchService",
            &i.amazonopensearchservice_destination_configuration,
        ),
        ("Splunk", &i.splunk_destination_configuration),
        (
            "AmazonOpenSearchServerless",
            &i.amazon_open_search_serverless_destination_configuration,
        ),
        ("Snowflake", &i.snowflake_destination_configuration),
        ("Iceberg", &i.iceberg_destination_configuration),
    ];
    let given = [
        i.s3_destination_configuration.is_some(),
        i.extended_s3_destination_configuration.is_some(),
        i.http_endpoint_destination_configuration.is_some(),
        i.redshift_destination_configuration.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count()
        + unsupported.iter().filter(|(_, c)| c.is_some()).count();
    if given != 1 {
        return Err(invalid_argument(
            "Exactly one destination configuration must be specified.",
        ));
    }
    if let Some((kind, _)) = unsupported.iter().find(|(_, c)| c.is_some()) {
        return Err(invalid_argument(format!(
            "The {kind} destination is not supported by this Tributary version; supported: ExtendedS3, S3, HttpEndpoint and Redshift (PostgreSQL)."
        )));
    }
    if let Some(v) = &i.redshift_destination_configuration {
        return Ok(Destination::Redshift(v.clone()));
    }
    if let Some(v) = &i.extended_s3_destination_configuration {
        return Ok(Destination::ExtendedS3(v.clone()));
    }
    if let Some(v) = &i.s3_destination_configuration {
        return Ok(Destination::ExtendedS3(v.clone()));
    }
    Ok(Destination::HttpEndpoint(
        i.http_endpoint_destination_configuration
            .clone()
            .unwrap_or_default(),
    ))
}

/// Model constraints of a destination, under the request member `path`.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    S3,
    Http,
    Redshift,
}

fn validate_destination(
    v: &mut Validator,
    path: &str,
    d: &Value,
    kind: Kind,
    update: bool,
) -> Result<(), AwsError> {
    match kind {
        Kind::Http => validate::http(v, path, &validate::decode(d)?, update),
        Kind::S3 => validate::s3(v, path, &validate::decode(d)?, update),
        Kind::Redshift => validate::redshift(v, path, &validate::decode(d)?, update),
    }
    Ok(())
}

fn destination_rules(f: &Firehose, d: &Destination) -> Result<(), AwsError> {
    match d {
        Destination::ExtendedS3(v) => {
            validate::s3_rules(&validate::decode(v)?, f.engine.cfg.glue_catalog.as_deref())
        }
        Destination::HttpEndpoint(v) => validate::http_rules(&validate::decode(v)?),
        Destination::Redshift(v) => validate::redshift_rules(&validate::decode(v)?),
    }
}

pub async fn create(f: &Firehose, i: CreateInput) -> Result<CreateOutput, AwsError> {
    let mut v = Validator::new();
    validate::name(&mut v, "deliveryStreamName", &i.delivery_stream_name);
    v.enumeration(
        "deliveryStreamType",
        i.delivery_stream_type.as_deref(),
        TYPES,
    );
    if let Some(k) = &i.kinesis_stream_source_configuration {
        v.not_null(
            "kinesisStreamSourceConfiguration.kinesisStreamARN",
            &k.kinesis_stream_arn,
        );
        v.stream_arn(
            "kinesisStreamSourceConfiguration.kinesisStreamARN",
            k.kinesis_stream_arn.as_deref(),
        );
        v.not_null("kinesisStreamSourceConfiguration.roleARN", &k.role_arn);
    }
    if let Some(d) = &i.direct_put_source_configuration {
        v.range(
            "directPutSourceConfiguration.throughputHintInMBs",
            d.throughput_hint_in_mbs,
            1,
            100,
        );
    }
    if let Some(e) = &i.delivery_stream_encryption_configuration_input {
        v.not_null(
            "deliveryStreamEncryptionConfigurationInput.keyType",
            &e.key_type,
        );
        v.enumeration(
            "deliveryStreamEncryptionConfigurationInput.keyType",
            e.key_type.as_deref(),
            &["AWS_OWNED_CMK", "CUSTOMER_MANAGED_CMK"],
        );
    }
    if let Some(d) = &i.s3_destination_configuration {
        validate_destination(&mut v, "s3DestinationConfiguration", d, Kind::S3, false)?;
    }
    if let Some(d) = &i.extended_s3_destination_configuration {
        validate_destination(
            &mut v,
            "extendedS3DestinationConfiguration",
            d,
            Kind::S3,
            false,
        )?;
    }
    if let Some(d) = &i.http_endpoint_destination_configuration {
        validate_destination(
            &mut v,
            "httpEndpointDestinationConfiguration",
            d,
            Kind::Http,
            false,
        )?;
    }
    if let Some(d) = &i.redshift_destination_configuration {
        validate_destination(
            &mut v,
            "redshiftDestinationConfiguration",
            d,
            Kind::Redshift,
            false,
        )?;
    }
    validate::tags(&mut v, "tags", &i.tags, 1);
    v.finish()?;

    let name = i.delivery_stream_name.clone().unwrap_or_default();
    let kind = match i.delivery_stream_type.as_deref().unwrap_or("DirectPut") {
        "DirectPut" => SourceKind::DirectPut,
        "KinesisStreamAsSource" => SourceKind::KinesisStreamAsSource,
        other => {
            return Err(invalid_argument(format!(
                "DeliveryStreamType {other} is not supported by this Tributary version; supported: DirectPut and KinesisStreamAsSource."
            )))
        }
    };
    let kinesis = match (&kind, &i.kinesis_stream_source_configuration) {
        (SourceKind::KinesisStreamAsSource, Some(k)) => {
            let arn = k.kinesis_stream_arn.clone().unwrap_or_default();
            let stream = arn.rsplit('/').next().unwrap_or_default();
            // A stream with a --stream-endpoint lives elsewhere and is checked when read.
            if f.engine.streams.find(stream).is_none()
                && f.engine.streams.remote.get(stream).is_none()
            {
                return Err(invalid_argument(format!(
                    "Stream {stream} under account {} not found.",
                    f.account()
                )));
            }
            Some(KinesisSource {
                stream_arn: arn,
                role_arn: k.role_arn.clone(),
                start_ms: f.engine.clock.now_ms(),
            })
        }
        (SourceKind::KinesisStreamAsSource, None) => {
            return Err(invalid_argument(
                "KinesisStreamSourceConfiguration is required when DeliveryStreamType is KinesisStreamAsSource.",
            ))
        }
        (SourceKind::DirectPut, Some(_)) => {
            return Err(invalid_argument(
                "KinesisStreamSourceConfiguration is only allowed when DeliveryStreamType is KinesisStreamAsSource.",
            ))
        }
        (SourceKind::DirectPut, None) => None,
    };
    let tags = i.tags.clone().unwrap_or_default();
    validate::tag_rules(&tags)?;
    let dest = destination(&i)?;
    destination_rules(f, &dest)?;
    let encryption = match &i.delivery_stream_encryption_configuration_input {
        Some(e) => {
            if kind != SourceKind::DirectPut {
                return Err(invalid_argument(
                    "Server-side encryption is only supported for DirectPut delivery streams.",
                ));
            }
            super::tags::encryption_from(e)?
        }
        None => Encryption {
            status: "DISABLED".into(),
            key_type: None,
            key_arn: None,
        },
    };

    let _guard = f.engine.lifecycle.lock().await;
    if f.engine.find(&name).is_some() {
        return Err(errors::in_use(format!(
            "Firehose {name} under accountId {} already exists",
            f.account()
        )));
    }
    if f.engine.count() >= MAX_DELIVERY_STREAMS {
        return Err(AwsError::new(
            errors::LIMIT_EXCEEDED,
            format!(
                "You have already consumed your limit of {MAX_DELIVERY_STREAMS} Firehose delivery streams."
            ),
        ));
    }
    let arn = f.engine.arn(&name);
    let meta = DeliveryMeta {
        name: name.clone(),
        arn: arn.clone(),
        source: kind,
        kinesis,
        status: "ACTIVE".into(),
        version_id: 1,
        create_ms: f.engine.clock.now_ms(),
        update_ms: None,
        destination: dest,
        tags: tags
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
            .collect::<BTreeMap<_, _>>(),
        encryption,
        direct_put_hint_mbs: i
            .direct_put_source_configuration
            .as_ref()
            .and_then(|d| d.throughput_hint_in_mbs),
        store_endpoint: None,
    };
    f.engine
        .create(meta)
        .map_err(|e| AwsError::internal(e.to_string()))?;
    tracing::info!(delivery_stream = %name, "Created delivery stream.");
    Ok(CreateOutput {
        delivery_stream_arn: arn,
    })
}

pub async fn delete(f: &Firehose, i: DeleteInput) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    validate::name(&mut v, "deliveryStreamName", &i.delivery_stream_name);
    v.finish()?;
    let name = i.delivery_stream_name.unwrap_or_default();
    let _guard = f.engine.lifecycle.lock().await;
    find(f, &name)?;
    f.engine
        .delete(&name)
        .await
        .map_err(|e| AwsError::internal(e.to_string()))?;
    tracing::info!(delivery_stream = %name, "Deleted delivery stream.");
    Ok(Empty {})
}

fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn default_member(m: &mut Map<String, Value>, key: &str, value: Value) {
    if !m.contains_key(key) {
        m.insert(key.into(), value);
    }
}

/// `S3DestinationDescription` of an S3 configuration, with Firehose's defaults filled in.
fn s3_description(c: &Value) -> Value {
    let src = object(c);
    let mut m = Map::new();
    for key in [
        "RoleARN",
        "BucketARN",
        "Prefix",
        "ErrorOutputPrefix",
        "BufferingHints",
        "CompressionFormat",
        "EncryptionConfiguration",
        "CloudWatchLoggingOptions",
    ] {
        if let Some(v) = src.get(key) {
            m.insert(key.into(), v.clone());
        }
    }
    defaults_s3(&mut m);
    Value::Object(m)
}

fn defaults_s3(m: &mut Map<String, Value>) {
    let mut hints = m.get("BufferingHints").map(object).unwrap_or_default();
    default_member(&mut hints, "SizeInMBs", json!(5));
    default_member(&mut hints, "IntervalInSeconds", json!(300));
    m.insert("BufferingHints".into(), Value::Object(hints));
    default_member(m, "CompressionFormat", json!("UNCOMPRESSED"));
    default_member(
        m,
        "EncryptionConfiguration",
        json!({"NoEncryptionConfig": "NoEncryption"}),
    );
    default_member(m, "CloudWatchLoggingOptions", json!({"Enabled": false}));
}

/// The `Destinations[0]` entry of DescribeDeliveryStream.
fn destination_description(d: &Destination) -> Value {
    let mut out = Map::new();
    out.insert("DestinationId".into(), json!(DESTINATION_ID));
    match d {
        Destination::ExtendedS3(c) => {
            let mut m = object(c);
            let conversion = crate::delivery::convert::ConversionConfig::parse(
                m.get("DataFormatConversionConfiguration"),
            )
            .is_some();
            if conversion {
                // With format conversion Firehose buffers 128 MiB by default.
                let mut hints = m.get("BufferingHints").map(object).unwrap_or_default();
                default_member(&mut hints, "SizeInMBs", json!(128));
                m.insert("BufferingHints".into(), Value::Object(hints));
                if let Some(Value::Object(d)) = m.get_mut("DataFormatConversionConfiguration") {
                    default_member(d, "Enabled", json!(true));
                }
            }
            defaults_s3(&mut m);
            default_member(&mut m, "S3BackupMode", json!("Disabled"));
            if let Some(b) = m.remove("S3BackupConfiguration") {
                m.insert("S3BackupDescription".into(), s3_description(&b));
            }
            out.insert("ExtendedS3DestinationDescription".into(), Value::Object(m));
            // Firehose also describes an extended S3 destination in the plain S3 shape.
            out.insert("S3DestinationDescription".into(), s3_description(c));
        }
        Destination::HttpEndpoint(c) => {
            let mut m = object(c);
            if let Some(ep) = m.remove("EndpointConfiguration") {
                // The access key is never returned.
                let mut e = object(&ep);
                e.remove("AccessKey");
                m.insert("EndpointConfiguration".into(), Value::Object(e));
            }
            let mut hints = m.get("BufferingHints").map(object).unwrap_or_default();
            default_member(&mut hints, "SizeInMBs", json!(5));
            default_member(&mut hints, "IntervalInSeconds", json!(300));
            m.insert("BufferingHints".into(), Value::Object(hints));
            default_member(
                &mut m,
                "CloudWatchLoggingOptions",
                json!({"Enabled": false}),
            );
            let mut rc = m
                .get("RequestConfiguration")
                .map(object)
                .unwrap_or_default();
            default_member(&mut rc, "ContentEncoding", json!("NONE"));
            m.insert("RequestConfiguration".into(), Value::Object(rc));
            default_member(&mut m, "RetryOptions", json!({"DurationInSeconds": 300}));
            default_member(&mut m, "S3BackupMode", json!("FailedDataOnly"));
            if let Some(s3) = m.remove("S3Configuration") {
                m.insert("S3DestinationDescription".into(), s3_description(&s3));
            }
            out.insert(
                "HttpEndpointDestinationDescription".into(),
                Value::Object(m),
            );
        }
        Destination::Redshift(c) => {
            let mut m = object(c);
            // The password is never returned.
            m.remove("Password");
            default_member(
                &mut m,
                "CloudWatchLoggingOptions",
                json!({"Enabled": false}),
            );
            default_member(&mut m, "RetryOptions", json!({"DurationInSeconds": 3600}));
            default_member(&mut m, "S3BackupMode", json!("Disabled"));
            if let Some(s3) = m.remove("S3Configuration") {
                m.insert("S3DestinationDescription".into(), s3_description(&s3));
            }
            if let Some(b) = m.remove("S3BackupConfiguration") {
                m.insert("S3BackupDescription".into(), s3_description(&b));
            }
            out.insert("RedshiftDestinationDescription".into(), Value::Object(m));
        }
    }
    Value::Object(out)
}

pub fn description(meta: &DeliveryMeta) -> Description {
    Description {
        delivery_stream_name: meta.name.clone(),
        delivery_stream_arn: meta.arn.clone(),
        delivery_stream_status: meta.status.clone(),
        delivery_stream_encryption_configuration: EncryptionOut {
            key_arn: meta.encryption.key_arn.clone(),
            key_type: meta.encryption.key_type.clone(),
            status: meta.encryption.status.clone(),
        },
        delivery_stream_type: meta.source.as_str().into(),
        version_id: meta.version_id.to_string(),
        create_timestamp: Timestamp(meta.create_ms),
        last_update_timestamp: meta.update_ms.map(Timestamp),
        source: match (&meta.kinesis, &meta.source) {
            (Some(k), _) => Some(SourceDescription {
                kinesis_stream_source_description: Some(KinesisSourceDescription {
                    kinesis_stream_arn: k.stream_arn.clone(),
                    role_arn: k.role_arn.clone(),
                    delivery_start_timestamp: Timestamp(k.start_ms),
                }),
                direct_put_source_description: None,
            }),
            (None, SourceKind::DirectPut) => meta.direct_put_hint_mbs.map(|h| SourceDescription {
                kinesis_stream_source_description: None,
                direct_put_source_description: Some(json!({ "ThroughputHintInMBs": h })),
            }),
            _ => None,
        },
        destinations: vec![destination_description(&meta.destination)],
        has_more_destinations: false,
    }
}

pub async fn describe(f: &Firehose, i: DescribeInput) -> Result<DescribeOutput, AwsError> {
    let mut v = Validator::new();
    validate::name(&mut v, "deliveryStreamName", &i.delivery_stream_name);
    v.range("limit", i.limit, 1, 10000);
    v.string(
        "exclusiveStartDestinationId",
        i.exclusive_start_destination_id.as_deref(),
        None,
        1,
        100,
    );
    v.finish()?;
    let ds = find(f, i.delivery_stream_name.as_deref().unwrap_or_default())?;
    let mut d = description(&ds.meta());
    if i.exclusive_start_destination_id.as_deref() == Some(DESTINATION_ID) {
        d.destinations.clear();
    }
    Ok(DescribeOutput {
        delivery_stream_description: d,
    })
}

pub async fn list(f: &Firehose, i: ListInput) -> Result<ListOutput, AwsError> {
    let mut v = Validator::new();
    v.range("limit", i.limit, 1, 10000);
    v.enumeration(
        "deliveryStreamType",
        i.delivery_stream_type.as_deref(),
        TYPES,
    );
    v.string(
        "exclusiveStartDeliveryStreamName",
        i.exclusive_start_delivery_stream_name.as_deref(),
        Some((
            crate::services::validate::NAME_PATTERN,
            crate::services::validate::is_name,
        )),
        1,
        64,
    );
    v.finish()?;
    let limit = i.limit.unwrap_or(10) as usize;
    let names: Vec<String> = f
        .engine
        .list()
        .iter()
        .map(|d| d.meta())
        .filter(|m| {
            i.delivery_stream_type
                .as_deref()
                .is_none_or(|t| m.source.as_str() == t)
        })
        .map(|m| m.name)
        .filter(|n| {
            i.exclusive_start_delivery_stream_name
                .as_deref()
                .is_none_or(|s| n.as_str() > s)
        })
        .collect();
    Ok(ListOutput {
        has_more_delivery_streams: names.len() > limit,
        delivery_stream_names: names.into_iter().take(limit).collect(),
    })
}

/// Merges `update` into `current` member by member (nested structures merge too), as
/// UpdateDestination does for a destination of the same type.
fn merge(current: &mut Value, update: &Value) {
    match (current, update) {
        (Value::Object(c), Value::Object(u)) => {
            for (k, v) in u {
                match c.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        c.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (c, u) => *c = u.clone(),
    }
}

/// Update shapes name a few members differently from the configuration shapes.
fn update_to_config(update: &Value) -> Value {
    let mut m = object(update);
    for (from, to) in [
        ("S3Update", "S3Configuration"),
        ("S3BackupUpdate", "S3BackupConfiguration"),
    ] {
        if let Some(v) = m.remove(from) {
            m.insert(to.into(), v);
        }
    }
    Value::Object(m)
}

pub async fn update_destination(
    f: &Firehose,
    i: UpdateDestinationInput,
) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    validate::name(&mut v, "deliveryStreamName", &i.delivery_stream_name);
    if v.not_null(
        "currentDeliveryStreamVersionId",
        &i.current_delivery_stream_version_id,
    ) {
        v.string(
            "currentDeliveryStreamVersionId",
            i.current_delivery_stream_version_id.as_deref(),
            Some(("[0-9]+", |s: &str| {
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
            })),
            1,
            50,
        );
    }
    if v.not_null("destinationId", &i.destination_id) {
        v.string(
            "destinationId",
            i.destination_id.as_deref(),
            Some(("[a-zA-Z0-9-]+", |s: &str| {
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })),
            1,
            100,
        );
    }
    let s3_update = i
        .extended_s3_destination_update
        .as_ref()
        .or(i.s3_destination_update.as_ref());
    if let Some(u) = s3_update {
        validate_destination(
            &mut v,
            "extendedS3DestinationUpdate",
            &update_to_config(u),
            Kind::S3,
            true,
        )?;
    }
    if let Some(u) = &i.http_endpoint_destination_update {
        validate_destination(
            &mut v,
            "httpEndpointDestinationUpdate",
            &update_to_config(u),
            Kind::Http,
            true,
        )?;
    }
    if let Some(u) = &i.redshift_destination_update {
        validate_destination(
            &mut v,
            "redshiftDestinationUpdate",
            &update_to_config(u),
            Kind::Redshift,
            true,
        )?;
    }
    v.finish()?;
    let unsupported = [
        &i.elasticsearch_destination_update,
        &i.amazonopensearchservice_destination_update,
        &i.splunk_destination_update,
        &i.amazon_open_search_serverless_destination_update,
        &i.snowflake_destination_update,
        &i.iceberg_destination_update,
    ];
    if unsupported.iter().any(|u| u.is_some()) {
        return Err(invalid_argument(
            "Only ExtendedS3, S3 and HttpEndpoint destinations are supported by this Tributary version.",
        ));
    }
    let given = [
        s3_update.is_some(),
        i.http_endpoint_destination_update.is_some(),
        i.redshift_destination_update.is_some(),
    ];
    if given.iter().filter(|x| **x).count() != 1 {
        return Err(invalid_argument(
            "Exactly one destination update must be specified.",
        ));
    }
    let name = i.delivery_stream_name.clone().unwrap_or_default();
    let _guard = f.engine.lifecycle.lock().await;
    let ds = find(f, &name)?;
    let requested = i
        .current_delivery_stream_version_id
        .clone()
        .unwrap_or_default();
    let destination_id = i.destination_id.clone().unwrap_or_default();
    let now = f.engine.clock.now_ms();
    let account = f.account().to_string();
    f.engine.update(&ds, move |m| {
        if requested != m.version_id.to_string() {
            return Err(AwsError::new(
                errors::CONCURRENT_MODIFICATION,
                format!(
                    "Cannot update firehose: {name} since the current version id: {} and specified version id: {requested} do not match",
                    m.version_id
                ),
            ));
        }
        if destination_id != DESTINATION_ID {
            return Err(invalid_argument(format!(
                "Destination Id {destination_id} not found for Firehose {name} under account {account}."
            )));
        }
        let merged = |cur: &Value, u: &Value| {
            let mut c = cur.clone();
            merge(&mut c, &update_to_config(u));
            c
        };
        let next = match (
            &m.destination,
            s3_update,
            &i.http_endpoint_destination_update,
            &i.redshift_destination_update,
        ) {
            (Destination::ExtendedS3(cur), Some(u), _, _) => Destination::ExtendedS3(merged(cur, u)),
            (Destination::HttpEndpoint(cur), _, Some(u), _) => {
                Destination::HttpEndpoint(merged(cur, u))
            }
            (Destination::Redshift(cur), _, _, Some(u)) => Destination::Redshift(merged(cur, u)),
            // A different destination type replaces the configuration.
            (_, Some(u), _, _) => Destination::ExtendedS3(update_to_config(u)),
            (_, _, Some(u), _) => Destination::HttpEndpoint(update_to_config(u)),
            (_, _, _, Some(u)) => Destination::Redshift(update_to_config(u)),
            _ => return Err(invalid_argument("Exactly one destination update must be specified.")),
        };
        // Dynamic partitioning can be enabled only at creation and never disabled.
        let partitioned = |d: &Destination| match d {
            Destination::ExtendedS3(v) => serde_json::from_value::<S3Destination>(v.clone())
                .map(|c| c.dynamic_partitioning())
                .unwrap_or(false),
            Destination::HttpEndpoint(_) | Destination::Redshift(_) => false,
        };
        if partitioned(&m.destination) != partitioned(&next) {
            return Err(invalid_argument(
                "Dynamic partitioning can only be enabled when the delivery stream is created, and cannot be disabled.",
            ));
        }
        // Source record backup cannot be disabled once enabled.
        let backed_up = |d: &Destination| {
            d.config().get("S3BackupMode").and_then(|m| m.as_str()) == Some("Enabled")
                && !matches!(d, Destination::HttpEndpoint(_))
        };
        if backed_up(&m.destination) && !backed_up(&next) {
            return Err(invalid_argument(
                "Source record backup cannot be disabled once it has been enabled.",
            ));
        }
        // The merged result must be a complete, valid configuration.
        let mut v = Validator::new();
        let (path, kind) = match &next {
            Destination::ExtendedS3(_) => ("extendedS3DestinationUpdate", Kind::S3),
            Destination::HttpEndpoint(_) => ("httpEndpointDestinationUpdate", Kind::Http),
            Destination::Redshift(_) => ("redshiftDestinationUpdate", Kind::Redshift),
        };
        validate_destination(&mut v, path, next.config(), kind, false)?;
        v.finish()?;
        destination_rules(f, &next)?;
        m.destination = next;
        m.version_id += 1;
        m.update_ms = Some(now);
        Ok(())
    })?;
    Ok(Empty {})
}
