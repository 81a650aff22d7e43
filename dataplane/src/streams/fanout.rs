//! Enhanced fan-out subscriptions: which (consumer, shard) pairs have a live SubscribeToShard,
//! and Kinesis's rule that a new subscription within 5 seconds of the last one is refused while
//! a later one takes over.

use std::collections::HashMap;
use std::sync::Mutex;

use super::errors;
use crate::protocol::AwsError;

/// A second subscription for the same consumer and shard within this many milliseconds of the
/// previous one's start is refused with ResourceInUseException.
pub const TAKEOVER_AFTER_MS: i64 = 5_000;

#[derive(Default)]
pub struct Subscriptions {
    inner: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u64,
    live: HashMap<(String, u32), (i64, u64)>,
}

impl Subscriptions {
    /// Registers a subscription, taking over an older one; returns its generation.
    pub fn begin(
        &self,
        consumer_arn: &str,
        shard: u32,
        shard_id: &str,
        now_ms: i64,
    ) -> Result<u64, AwsError> {
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (consumer_arn.to_string(), shard);
        if let Some((started, _)) = st.live.get(&key) {
            if now_ms - started < TAKEOVER_AFTER_MS {
                return Err(errors::in_use(format!(
                    "Another active subscription exists for consumer {consumer_arn} and shard {shard_id}."
                )));
            }
        }
        st.next += 1;
        let generation = st.next;
        st.live.insert(key, (now_ms, generation));
        Ok(generation)
    }

    /// Whether subscription `generation` is still the live one for its pair.
    pub fn is_current(&self, consumer_arn: &str, shard: u32, generation: u64) -> bool {
        let st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        st.live
            .get(&(consumer_arn.to_string(), shard))
            .is_some_and(|(_, g)| *g == generation)
    }

    /// Ends subscription `generation` if it is still the live one. The start time is kept so
    /// the 5-second rule also applies right after a subscription ends.
    pub fn end(&self, consumer_arn: &str, shard: u32, generation: u64) {
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = st.live.get_mut(&(consumer_arn.to_string(), shard)) {
            if entry.1 == generation {
                entry.1 = 0;
            }
        }
    }

    /// Forgets every subscription of a consumer (deregistration).
    pub fn forget_consumer(&self, consumer_arn: &str) {
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        st.live.retain(|(arn, _), _| arn != consumer_arn);
    }

    /// Live subscriptions.
    pub fn active(&self) -> usize {
        let st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        st.live.values().filter(|(_, g)| *g != 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resubscribing_within_five_seconds_is_refused_and_later_takes_over() {
        let s = Subscriptions::default();
        let g1 = s.begin("arn", 0, "shardId-000000000000", 0).unwrap();
        let e = s
            .begin("arn", 0, "shardId-000000000000", 4_999)
            .unwrap_err();
        assert_eq!(e.code, "ResourceInUseException");
        let g2 = s.begin("arn", 0, "shardId-000000000000", 5_000).unwrap();
        assert!(!s.is_current("arn", 0, g1));
        assert!(s.is_current("arn", 0, g2));
        assert!(s.begin("arn", 1, "shardId-000000000001", 5_000).is_ok());
    }
}
