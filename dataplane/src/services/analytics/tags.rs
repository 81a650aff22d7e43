//! TagResource, UntagResource, ListTagsForResource on application ARNs. Tags do not change the
//! application version, as in AWS.

use super::applications::{validate_tags, MAX_TAGS};
use super::checks;
use super::model::*;
use super::AnalyticsService;
use crate::analytics::errors;
use crate::protocol::AwsError;
use crate::services::validate::Validator;

fn arn_member(v: &mut Validator, arn: &Option<String>) {
    v.not_null("resourceARN", arn);
    v.string(
        "resourceARN",
        arn.as_deref(),
        Some(checks::APP_ARN),
        1,
        2048,
    );
}

pub async fn tag_resource(a: &AnalyticsService, i: TagResourceInput) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    arn_member(&mut v, &i.resource_arn);
    v.not_null("tags", &i.tags);
    if let Some(t) = &i.tags {
        validate_tags(&mut v, t);
    }
    v.finish()?;
    let entry = a
        .engine
        .by_arn(i.resource_arn.as_deref().unwrap_or_default())?;
    let name = entry.config().name;
    let tags = i.tags.unwrap_or_default();
    a.engine
        .update_tags(&name, |cfg, current| {
            let mut merged = current.clone();
            for t in tags {
                merged.insert(t.key.unwrap_or_default(), t.value.unwrap_or_default());
            }
            if merged.len() > MAX_TAGS {
                return Err(AwsError::new(
                    errors::TOO_MANY_TAGS,
                    format!(
                        "Application {} would have {} tags; at most {MAX_TAGS} are allowed.",
                        cfg.name,
                        merged.len()
                    ),
                ));
            }
            *current = merged;
            Ok(())
        })
        .await?;
    Ok(Empty {})
}

pub async fn untag_resource(
    a: &AnalyticsService,
    i: UntagResourceInput,
) -> Result<Empty, AwsError> {
    let mut v = Validator::new();
    arn_member(&mut v, &i.resource_arn);
    v.not_null("tagKeys", &i.tag_keys);
    if let Some(k) = &i.tag_keys {
        v.count("tagKeys", &format!("[{}]", k.join(", ")), k.len(), 1, 200);
    }
    v.finish()?;
    let entry = a
        .engine
        .by_arn(i.resource_arn.as_deref().unwrap_or_default())?;
    let name = entry.config().name;
    let keys = i.tag_keys.unwrap_or_default();
    a.engine
        .update_tags(&name, |_, current| {
            for k in &keys {
                current.remove(k);
            }
            Ok(())
        })
        .await?;
    Ok(Empty {})
}

pub async fn list_tags(a: &AnalyticsService, i: ListTagsInput) -> Result<ListTagsOutput, AwsError> {
    let mut v = Validator::new();
    arn_member(&mut v, &i.resource_arn);
    v.finish()?;
    let cfg = a
        .engine
        .by_arn(i.resource_arn.as_deref().unwrap_or_default())?
        .config();
    Ok(ListTagsOutput {
        tags: cfg
            .tags
            .into_iter()
            .map(|(k, v)| Tag {
                key: Some(k),
                value: Some(v),
            })
            .collect(),
    })
}
