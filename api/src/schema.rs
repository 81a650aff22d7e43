//! Schema adjustments the derives cannot express (only with the `kube` feature).

/// Gives a status schema its creation-time default (see [`crate::status`]): the apiserver fills
/// it in when it reads an object without a status, so kstatus and `kubectl wait` never see a
/// resource without its conditions.
pub(crate) fn default_status(schema: &mut schemars::Schema) {
    schema.insert("default".into(), crate::status::default_status_json());
}
