//! TagDeliveryStream, UntagDeliveryStream, ListTagsForDeliveryStream,
//! StartDeliveryStreamEncryption, StopDeliveryStreamEncryption.

use super::errors::{self, invalid_argument};
use super::model::*;
use super::streams::find;
use super::validate;
use super::Firehose;
use crate::delivery::{Encryption, SourceKind};
use crate::protocol::AwsError;
use crate::services::validate::Validator;

/// A delivery stream holds at most 50 tags.
const MAX_TAGS: usize = 50;

pub async fn tag(f: &Firehose, i: TagInput) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    validate::name(&mut v, "deliveryStreamName", &i.delivery_stream_name);
    v.not_null("tags", &i.tags);
    validate::tags(&mut v, "tags", &i.tags, 1);
    v.finish()?;
    let tags = i.tags.unwrap_or_default();
    validate::tag_rules(&tags)?;
    let name = i.delivery_stream_name.unwrap_or_default();
    let ds = find(f, &name)?;
    let account = f.account().to_string();
    f.engine.update(&ds, move |m| {
        let mut merged = m.tags.clone();
        for t in tags {
            merged.insert(t.key.unwrap_or_default(), t.value.unwrap_or_default());
        }
        if merged.len() > MAX_TAGS {
            return Err(AwsError::new(
                errors::LIMIT_EXCEEDED,
                format!(
                    "Firehose {name} under account {account} cannot have more than {MAX_TAGS} tags."
                ),
            ));
        }
        m.tags = merged;
        Ok(())
    })?;
    Ok(Empty {})
}

pub async fn untag(f: &Firehose, i: UntagInput) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    validate::name(&mut v, "deliveryStreamName", &i.delivery_stream_name);
    if v.not_null("tagKeys", &i.tag_keys) {
        let keys = i.tag_keys.as_ref().expect("checked");
        v.count(
            "tagKeys",
            &format!("[{}]", keys.join(", ")),
            keys.len(),
            1,
            MAX_TAGS,
        );
    }
    v.finish()?;
    let ds = find(f, i.delivery_stream_name.as_deref().unwrap_or_default())?;
    let keys = i.tag_keys.unwrap_or_default();
    f.engine.update(&ds, move |m| {
        for k in &keys {
            m.tags.remove(k);
        }
        Ok(())
    })?;
    Ok(Empty {})
}

pub async fn list_tags(f: &Firehose, i: ListTagsInput) -> Result<ListTagsOutput, AwsError> {
    let mut v = Validator::new();
    validate::name(&mut v, "deliveryStreamName", &i.delivery_stream_name);
    v.string(
        "exclusiveStartTagKey",
        i.exclusive_start_tag_key.as_deref(),
        None,
        1,
        128,
    );
    v.range("limit", i.limit, 1, 50);
    v.finish()?;
    let ds = find(f, i.delivery_stream_name.as_deref().unwrap_or_default())?;
    let limit = i.limit.unwrap_or(50) as usize;
    let tags: Vec<TagOut> = ds
        .meta()
        .tags
        .into_iter()
        .filter(|(k, _)| {
            i.exclusive_start_tag_key
                .as_deref()
                .is_none_or(|s| k.as_str() > s)
        })
        .map(|(key, value)| TagOut { key, value })
        .collect();
    Ok(ListTagsOutput {
        has_more_tags: tags.len() > limit,
        tags: tags.into_iter().take(limit).collect(),
    })
}

/// The encryption settings of a DeliveryStreamEncryptionConfigurationInput.
pub fn encryption_from(e: &EncryptionInput) -> Result<Encryption, AwsError> {
    let key_type = e.key_type.clone().unwrap_or_default();
    match (key_type.as_str(), &e.key_arn) {
        ("CUSTOMER_MANAGED_CMK", None) => Err(invalid_argument(
            "KeyARN is required when KeyType is CUSTOMER_MANAGED_CMK.",
        )),
        ("AWS_OWNED_CMK", Some(_)) => Err(invalid_argument(
            "KeyARN must not be specified when KeyType is AWS_OWNED_CMK.",
        )),
        _ => Ok(Encryption {
            status: "ENABLED".into(),
            key_type: Some(key_type),
            key_arn: e.key_arn.clone(),
        }),
    }
}

pub async fn start_encryption(f: &Firehose, i: StartEncryptionInput) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    validate::name(&mut v, "deliveryStreamName", &i.delivery_stream_name);
    if let Some(e) = &i.delivery_stream_encryption_configuration_input {
        let p = "deliveryStreamEncryptionConfigurationInput.keyType";
        v.not_null(p, &e.key_type);
        v.enumeration(
            p,
            e.key_type.as_deref(),
            &["AWS_OWNED_CMK", "CUSTOMER_MANAGED_CMK"],
        );
        v.string(
            "deliveryStreamEncryptionConfigurationInput.keyARN",
            e.key_arn.as_deref(),
            None,
            1,
            512,
        );
    }
    v.finish()?;
    let name = i.delivery_stream_name.unwrap_or_default();
    let ds = find(f, &name)?;
    if ds.meta().source != SourceKind::DirectPut {
        return Err(invalid_argument(format!(
            "Firehose {name} is not a DirectPut delivery stream: server-side encryption is only supported for DirectPut."
        )));
    }
    let enc = encryption_from(&i.delivery_stream_encryption_configuration_input.unwrap_or(
        EncryptionInput {
            key_arn: None,
            key_type: Some("AWS_OWNED_CMK".into()),
        },
    ))?;
    f.engine.update(&ds, move |m| {
        m.encryption = enc;
        Ok(())
    })?;
    Ok(Empty {})
}

pub async fn stop_encryption(f: &Firehose, i: StopEncryptionInput) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    validate::name(&mut v, "deliveryStreamName", &i.delivery_stream_name);
    v.finish()?;
    let name = i.delivery_stream_name.unwrap_or_default();
    let ds = find(f, &name)?;
    if ds.meta().source != SourceKind::DirectPut {
        return Err(invalid_argument(format!(
            "Firehose {name} is not a DirectPut delivery stream: server-side encryption is only supported for DirectPut."
        )));
    }
    f.engine.update(&ds, |m| {
        m.encryption = Encryption {
            status: "DISABLED".into(),
            key_type: None,
            key_arn: None,
        };
        Ok(())
    })?;
    Ok(Empty {})
}
