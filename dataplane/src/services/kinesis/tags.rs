//! AddTagsToStream, RemoveTagsFromStream, ListTagsForStream, TagResource, UntagResource,
//! ListTagsForResource.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::model::*;
use super::Kinesis;
use crate::protocol::AwsError;
use crate::services::validate::Validator;
use crate::streams::{errors, Stream};

/// A stream holds at most 50 tags.
const MAX_TAGS: usize = 50;

/// `{k1=v1, k2=v2}` as AWS renders maps in validation messages.
pub fn render_map(m: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", items.join(", "))
}

fn valid_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "_./=+-%@:".contains(c)
}

/// Tag keys and values may hold Unicode letters, digits, white space and `_ . / = + - % @`.
pub fn check_tag_chars(tags: &BTreeMap<String, String>) -> Result<(), AwsError> {
    let bad = tags
        .iter()
        .any(|(k, v)| !k.chars().all(valid_tag_char) || !v.chars().all(valid_tag_char));
    if bad {
        return Err(errors::invalid_argument(
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @.",
        ));
    }
    if tags.keys().any(|k| k.starts_with("aws:")) {
        return Err(errors::invalid_argument(
            "Tag keys must not start with 'aws:', which is reserved for AWS use.",
        ));
    }
    Ok(())
}

fn validate_tags(v: &mut Validator, tags: &Option<BTreeMap<String, String>>) {
    v.not_null("tags", tags);
    if let Some(t) = tags {
        v.count("tags", &render_map(t), t.len(), 1, MAX_TAGS);
        for (key, value) in t {
            v.string("tags.key", Some(key), None, 1, 128);
            v.string(&format!("tags.{key}.member"), Some(value), None, 0, 256);
        }
    }
}

async fn add_tags(
    k: &Kinesis,
    stream: &Arc<Stream>,
    tags: BTreeMap<String, String>,
) -> Result<(), AwsError> {
    check_tag_chars(&tags)?;
    let account = k.account().to_string();
    let name = stream.name.clone();
    k.engine
        .update_state(stream, move |st| {
            let mut merged = st.tags.clone();
            merged.extend(tags);
            if merged.len() > MAX_TAGS {
                return Err(errors::invalid_argument(format!(
                    "Failed to add tags to stream {name} under account {account} because a given stream cannot have more than {MAX_TAGS} tags associated with it."
                )));
            }
            st.tags = merged;
            Ok(())
        })
        .await
}

async fn remove_tags(k: &Kinesis, stream: &Arc<Stream>, keys: Vec<String>) -> Result<(), AwsError> {
    k.engine
        .update_state(stream, move |st| {
            for key in &keys {
                st.tags.remove(key);
            }
            Ok(())
        })
        .await
}

pub async fn add_tags_to_stream(k: &Kinesis, i: AddTagsInput) -> Result<Void, AwsError> {
    let mut v = Validator::new();
    validate_tags(&mut v, &i.tags);
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    k.engine.admit("AddTagsToStream", 5.0)?;
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    add_tags(k, &stream, i.tags.unwrap_or_default()).await?;
    Ok(Void)
}

fn validate_keys(v: &mut Validator, keys: &Option<Vec<String>>) {
    v.not_null("tagKeys", keys);
    if let Some(keys) = keys {
        v.count(
            "tagKeys",
            &format!("[{}]", keys.join(", ")),
            keys.len(),
            1,
            MAX_TAGS,
        );
    }
}

pub async fn remove_tags_from_stream(k: &Kinesis, i: RemoveTagsInput) -> Result<Void, AwsError> {
    let mut v = Validator::new();
    validate_keys(&mut v, &i.tag_keys);
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    k.engine.admit("RemoveTagsFromStream", 5.0)?;
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    remove_tags(k, &stream, i.tag_keys.unwrap_or_default()).await?;
    Ok(Void)
}

pub async fn list_tags_for_stream(
    k: &Kinesis,
    i: ListTagsForStreamInput,
) -> Result<ListTagsForStreamOutput, AwsError> {
    let mut v = Validator::new();
    v.range("limit", i.limit, 1, 50);
    v.string(
        "exclusiveStartTagKey",
        i.exclusive_start_tag_key.as_deref(),
        None,
        1,
        128,
    );
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    k.engine.admit("ListTagsForStream", 5.0)?;
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let limit = i.limit.unwrap_or(50) as usize;
    let tags: Vec<Tag> = stream
        .state()
        .tags
        .iter()
        .filter(|(key, _)| {
            i.exclusive_start_tag_key
                .as_deref()
                .is_none_or(|s| key.as_str() > s)
        })
        .map(|(key, value)| Tag {
            key: key.clone(),
            value: value.clone(),
        })
        .collect();
    let has_more = tags.len() > limit;
    Ok(ListTagsForStreamOutput {
        tags: tags.into_iter().take(limit).collect(),
        has_more_tags: has_more,
    })
}

/// The stream named by a resource ARN (a stream ARN, or a consumer ARN, whose tags are those
/// of the consumer's stream entry here).
fn resource(k: &Kinesis, arn: &str) -> Result<Arc<Stream>, AwsError> {
    let stream_arn = match arn.find("/consumer/") {
        Some(i) => &arn[..i],
        None => arn,
    };
    k.engine.resolve(None, Some(stream_arn))
}

pub async fn tag_resource(k: &Kinesis, i: TagResourceInput) -> Result<Void, AwsError> {
    let mut v = Validator::new();
    validate_tags(&mut v, &i.tags);
    v.not_null("resourceARN", &i.resource_arn);
    v.string("resourceARN", i.resource_arn.as_deref(), None, 1, 2048);
    v.finish()?;
    k.engine.admit("TagResource", 5.0)?;
    let stream = resource(k, i.resource_arn.as_deref().unwrap_or_default())?;
    add_tags(k, &stream, i.tags.unwrap_or_default()).await?;
    Ok(Void)
}

pub async fn untag_resource(k: &Kinesis, i: UntagResourceInput) -> Result<Void, AwsError> {
    let mut v = Validator::new();
    validate_keys(&mut v, &i.tag_keys);
    v.not_null("resourceARN", &i.resource_arn);
    v.string("resourceARN", i.resource_arn.as_deref(), None, 1, 2048);
    v.finish()?;
    k.engine.admit("UntagResource", 5.0)?;
    let stream = resource(k, i.resource_arn.as_deref().unwrap_or_default())?;
    remove_tags(k, &stream, i.tag_keys.unwrap_or_default()).await?;
    Ok(Void)
}

pub async fn list_tags_for_resource(
    k: &Kinesis,
    i: ListTagsForResourceInput,
) -> Result<ListTagsForResourceOutput, AwsError> {
    let mut v = Validator::new();
    v.not_null("resourceARN", &i.resource_arn);
    v.string("resourceARN", i.resource_arn.as_deref(), None, 1, 2048);
    v.finish()?;
    k.engine.admit("ListTagsForResource", 20.0)?;
    let stream = resource(k, i.resource_arn.as_deref().unwrap_or_default())?;
    let tags = stream
        .state()
        .tags
        .iter()
        .map(|(key, value)| Tag {
            key: key.clone(),
            value: value.clone(),
        })
        .collect();
    Ok(ListTagsForResourceOutput { tags })
}
