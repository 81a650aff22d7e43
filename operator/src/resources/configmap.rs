//! The ConfigMap holding the Stream manifest that `tributary serve --manifests` reads at
//! start-up, so a pod (re)created on an empty volume creates its stream before it serves.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use serde_json::json;
use tributary_api::{Stream, API_GROUP, API_VERSION};

use super::{child_meta, configmap_name};

/// File name of the manifest inside the ConfigMap.
pub const MANIFEST_FILE: &str = "stream.yaml";

/// The ConfigMap of a stream.
pub fn configmap(stream: &Stream) -> ConfigMap {
    let manifest = json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": "Stream",
        "metadata": {"name": stream.name_any()},
        "spec": stream.spec,
    });
    let text = serde_yaml::to_string(&manifest).expect("a Stream always serializes");
    ConfigMap {
        metadata: child_meta(stream, configmap_name(stream)),
        data: Some(BTreeMap::from([(MANIFEST_FILE.to_string(), text)])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::stream;
    use crate::resources::snapshot::assert_snapshot;
    use tributary_api::{Manifest, StreamSpec};

    #[test]
    fn configmap_matches_snapshot() {
        assert_snapshot("configmap", &configmap(&stream("orders", 2)));
    }

    #[test]
    fn the_data_plane_reads_back_the_same_spec() {
        let s = stream("orders", 3);
        let cm = configmap(&s);
        let text = &cm.data.unwrap()[MANIFEST_FILE];
        let docs = Manifest::parse_all(text).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].metadata.name, "orders");
        assert_eq!(docs[0].spec::<StreamSpec>().unwrap(), s.spec);
    }
}
