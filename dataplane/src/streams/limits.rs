//! Token buckets for Kinesis's throughput limits.
//!
//! Buckets refill continuously and may go into debt: a call is admitted while the bucket is
//! positive and then pays its full cost. This reproduces Kinesis's behaviour for large records
//! (a 10 MiB record is accepted and "paid back" over the following seconds) and for GetRecords
//! (after a 10 MiB response the next calls are throttled for about five seconds at 2 MiB/s).

use std::sync::Mutex;

#[derive(Debug)]
pub struct TokenBucket {
    rate_per_sec: f64,
    capacity: f64,
    state: Mutex<(f64, i64)>,
}

impl TokenBucket {
    /// A bucket refilling at `rate_per_sec`, holding at most `capacity`, starting full.
    pub fn new(rate_per_sec: f64, capacity: f64, now_ms: i64) -> Self {
        TokenBucket {
            rate_per_sec,
            capacity,
            state: Mutex::new((capacity, now_ms)),
        }
    }

    fn refill(&self, state: &mut (f64, i64), now_ms: i64) {
        let elapsed = (now_ms - state.1).max(0) as f64 / 1000.0;
        state.0 = (state.0 + elapsed * self.rate_per_sec).min(self.capacity);
        state.1 = now_ms.max(state.1);
    }

    /// Admits the call if the bucket is positive, charging `cost` (possibly into debt).
    pub fn try_take(&self, cost: f64, now_ms: i64) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut s, now_ms);
        if s.0 <= 0.0 {
            return false;
        }
        s.0 -= cost;
        true
    }

    /// Whether a call would be admitted now, without charging.
    pub fn has_tokens(&self, now_ms: i64) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut s, now_ms);
        s.0 > 0.0
    }

    /// Charges `cost` unconditionally (after the fact, e.g. bytes actually read).
    pub fn charge(&self, cost: f64, now_ms: i64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut s, now_ms);
        s.0 -= cost;
    }
}

/// Two buckets that must both admit a call (bytes and records for writes).
#[derive(Debug)]
pub struct PairBucket {
    pub bytes: TokenBucket,
    pub records: TokenBucket,
}

impl PairBucket {
    pub fn try_take(&self, bytes: f64, records: f64, now_ms: i64) -> bool {
        if !self.bytes.has_tokens(now_ms) || !self.records.has_tokens(now_ms) {
            return false;
        }
        self.bytes.charge(bytes, now_ms);
        self.records.charge(records, now_ms);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_admits_until_empty_then_refills() {
        let b = TokenBucket::new(5.0, 5.0, 0);
        for _ in 0..5 {
            assert!(b.try_take(1.0, 0));
        }
        assert!(!b.try_take(1.0, 0));
        assert!(b.try_take(1.0, 200));
        assert!(!b.try_take(1.0, 200));
    }

    #[test]
    fn large_costs_go_into_debt_and_are_paid_back() {
        let b = TokenBucket::new(2.0, 2.0, 0);
        assert!(b.try_take(10.0, 0));
        assert!(!b.try_take(1.0, 3_000));
        assert!(b.try_take(1.0, 4_100));
    }
}
