//! Reading custom-resource manifests from YAML without a Kubernetes API server.

use serde::Deserialize;

/// API group of every Tributary custom resource.
pub const API_GROUP: &str = "tributary.dev";
/// The served version of the custom resources.
pub const API_VERSION: &str = "v1alpha1";

/// Failure to read a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The document is not valid YAML or does not match the resource's schema.
    #[error("{kind} {name}: {source}")]
    Spec {
        kind: String,
        name: String,
        #[source]
        source: serde_yaml::Error,
    },
    /// The text is not YAML at all.
    #[error("invalid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// The metadata fields the data plane uses.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ObjectMetaLite {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// One YAML document of a manifest file: a custom resource of any kind, spec still untyped.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMetaLite,
    #[serde(default)]
    pub spec: serde_yaml::Value,
}

impl Manifest {
    /// Parses every document of a (possibly multi-document) YAML text. Empty documents and
    /// documents of other API groups are skipped, so a folder may also hold ordinary Kubernetes
    /// objects.
    pub fn parse_all(text: &str) -> Result<Vec<Manifest>, ManifestError> {
        let mut out = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(text) {
            let value = serde_yaml::Value::deserialize(doc)?;
            if value.is_null() {
                continue;
            }
            let manifest: Manifest = serde_yaml::from_value(value)?;
            if manifest.api_version.split('/').next() == Some(API_GROUP) {
                out.push(manifest);
            }
        }
        Ok(out)
    }

    /// Decodes the spec as the typed spec of this kind.
    pub fn spec<T: for<'de> Deserialize<'de>>(&self) -> Result<T, ManifestError> {
        serde_yaml::from_value(self.spec.clone()).map_err(|source| ManifestError::Spec {
            kind: self.kind.clone(),
            name: self.metadata.name.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StreamSpec;

    #[test]
    fn parse_all_keeps_only_tributary_resources() {
        let text = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: other}
---
apiVersion: tributary.dev/v1alpha1
kind: Stream
metadata: {name: orders}
spec:
  shardCount: 2
  retentionPeriodHours: 48
---
"#;
        let all = Manifest::parse_all(text).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].kind, "Stream");
        let spec: StreamSpec = all[0].spec().unwrap();
        assert_eq!(spec.shard_count, Some(2));
        assert_eq!(spec.retention_period_hours, 48);
    }

    #[test]
    fn unknown_spec_fields_are_rejected() {
        let text = "apiVersion: tributary.dev/v1alpha1\nkind: Stream\nmetadata: {name: s}\nspec: {shardCont: 2}\n";
        let all = Manifest::parse_all(text).unwrap();
        assert!(all[0].spec::<StreamSpec>().is_err());
    }
}
