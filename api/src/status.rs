//! Status building blocks shared by every kind: kstatus-style conditions and quantities.
//!
//! Every Tributary resource reports `status.observedGeneration` and the three conditions that
//! kstatus (Flux, `kubectl wait`, cli-utils) and Argo CD understand:
//!
//! - `Ready`: `True` once the resource works as its spec says.
//! - `Reconciling`: `True` while the operator is still converging (creating pods, resharding,
//!   registering a consumer).
//! - `Stalled`: `True` when the operator cannot make progress until the spec changes.
//!
//! The CRDs default all three to `Unknown` (and `observedGeneration` to 0), so a resource is never
//! seen without them, not even before the operator's first reconcile.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Condition type: the resource works as specified.
pub const READY: &str = "Ready";
/// Condition type: the operator is converging the resource (abnormal-true, kstatus).
pub const RECONCILING: &str = "Reconciling";
/// Condition type: the operator cannot make progress until the spec changes (abnormal-true).
pub const STALLED: &str = "Stalled";

/// Reason of the defaulted conditions, before any operator has looked at the resource.
pub const REASON_NOT_RECONCILED: &str = "NotReconciled";

/// Status of a condition, as Kubernetes spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    #[default]
    Unknown,
}

impl ConditionStatus {
    /// `True` when `b`, else `False`.
    pub fn from_bool(b: bool) -> Self {
        if b {
            Self::True
        } else {
            Self::False
        }
    }
}

impl fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        })
    }
}

/// One observation about the resource (the shape of `metav1.Condition`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Reconciling` or `Stalled`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// One-word CamelCase reason for the condition's last transition, for example `Resharding`.
    #[serde(default)]
    pub reason: String,
    /// Human-readable detail about the transition.
    #[serde(default)]
    pub message: String,
    /// When the condition last changed status (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The `metadata.generation` this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// A condition without a transition time; [`set_condition`] fills it in.
    pub fn new(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.into(),
            last_transition_time: None,
            observed_generation: None,
        }
    }
}

/// The three kstatus conditions, `Unknown`, as a freshly created resource shows them.
pub fn initial_conditions() -> Vec<Condition> {
    [READY, RECONCILING, STALLED]
        .into_iter()
        .map(|t| {
            Condition::new(
                t,
                ConditionStatus::Unknown,
                REASON_NOT_RECONCILED,
                "Waiting for the operator",
            )
        })
        .collect()
}

/// Inserts or updates `new` in `conditions` with apimachinery's `SetStatusCondition` semantics:
/// the transition time changes only when the status flips (or the condition is new), so
/// re-reconciling an unchanged resource does not rewrite its status.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition, now: &str) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            if existing.status != new.status || existing.last_transition_time.is_none() {
                new.last_transition_time = Some(now.to_string());
            } else {
                new.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = new;
        }
        None => {
            new.last_transition_time = Some(now.to_string());
            conditions.push(new);
        }
    }
}

/// Finds a condition by type.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Schema default of a status: observedGeneration 0 (no generation seen yet, so kstatus reports
/// the resource as in progress) and the three conditions `Unknown`.
#[cfg(feature = "kube")]
pub(crate) fn default_status_json() -> serde_json::Value {
    serde_json::json!({
        "observedGeneration": 0,
        "conditions": initial_conditions(),
    })
}

/// Schema of a conditions list: a list-map keyed by `type`, so server-side apply merges
/// conditions by type instead of replacing the whole list.
#[cfg(feature = "kube")]
pub(crate) fn conditions_schema(gen: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let item = gen.subschema_for::<Condition>();
    schemars::json_schema!({
        "type": "array",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    })
}

/// A Kubernetes resource quantity such as `500m`, `2Gi` or `1`. Written as a string or a number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Quantity(pub String);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            I(i64),
            F(f64),
        }
        Ok(Quantity(match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::I(i) => i.to_string(),
            Raw::F(f) => f.to_string(),
        }))
    }
}

impl From<&str> for Quantity {
    fn from(s: &str) -> Self {
        Quantity(s.to_string())
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "kube")]
impl schemars::JsonSchema for Quantity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "x-kubernetes-int-or-string": true,
            "pattern": "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_condition_keeps_transition_time_when_status_is_unchanged() {
        let mut conds = initial_conditions();
        set_condition(
            &mut conds,
            Condition::new(READY, ConditionStatus::True, "Ready", "ok"),
            "t1",
        );
        set_condition(
            &mut conds,
            Condition::new(READY, ConditionStatus::True, "Ready", "still ok"),
            "t2",
        );
        let ready = find_condition(&conds, READY).unwrap();
        assert_eq!(ready.last_transition_time.as_deref(), Some("t1"));
        assert_eq!(ready.message, "still ok");
        set_condition(
            &mut conds,
            Condition::new(READY, ConditionStatus::False, "Failed", "broken"),
            "t3",
        );
        let ready = find_condition(&conds, READY).unwrap();
        assert_eq!(ready.last_transition_time.as_deref(), Some("t3"));
        assert_eq!(conds.len(), 3);
    }

    #[test]
    fn quantities_accept_numbers_and_strings() {
        let q: Vec<Quantity> = serde_yaml::from_str("[1, '500m', 2Gi, 0.5]").unwrap();
        let s: Vec<&str> = q.iter().map(|q| q.0.as_str()).collect();
        assert_eq!(s, ["1", "500m", "2Gi", "0.5"]);
    }
}
