//! How many tasks may be in flight: the configured account and per-model limits, lowered when the
//! platform answers 1302 (its real limit is below ours) and probed back up while it stays quiet.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// Without a 1302 for this long, a lowered model limit goes up by one.
pub(crate) const PROBE_AFTER: Duration = Duration::from_secs(120);

/// The in-flight limits.
#[derive(Debug, Clone)]
pub struct Limiter {
    global: usize,
    configured: BTreeMap<String, usize>,
    lowered: BTreeMap<String, (usize, Instant)>,
}

impl Limiter {
    /// Limits from the config: `global` across models, `per_model` for some.
    pub fn new(global: usize, per_model: BTreeMap<String, usize>) -> Limiter {
        Limiter { global, configured: per_model, lowered: BTreeMap::new() }
    }

    /// New configured limits (a config reload); limits lowered after a 1302 stay lowered.
    pub fn set_limits(&mut self, global: usize, per_model: BTreeMap<String, usize>) {
        self.global = global;
        self.configured = per_model;
    }

    /// The account-wide limit.
    pub fn global(&self) -> usize {
        self.global
    }

    /// The limit for `model` now, if any.
    pub fn model_cap(&mut self, model: &str, now: Instant) -> Option<usize> {
        let configured = self.configured.get(model).copied();
        if let Some((cap, since)) = self.lowered.get_mut(model) {
            if now.duration_since(*since) >= PROBE_AFTER {
                *cap += 1;
                *since = now;
            }
            let cap = *cap;
            if configured.is_some_and(|c| cap >= c) || cap >= self.global {
                self.lowered.remove(model);
                return configured;
            }
            return Some(configured.map_or(cap, |c| c.min(cap)));
        }
        configured
    }

    /// Another daemon on the account was told 1302 with `cap` of `model` running: hold the model
    /// there too, unless it is already held lower.
    pub fn heed_cap(&mut self, model: &str, cap: usize, now: Instant) {
        let current = self.model_cap(model, now).unwrap_or(self.global);
        if cap < current {
            self.lowered.insert(model.to_owned(), (cap.max(1), now));
        }
    }

    /// The platform said 1302 with `in_flight` of `model` running: hold the model there.
    pub fn rate_limited(&mut self, model: &str, in_flight: usize, now: Instant) {
        let cap = in_flight.max(1);
        tracing::warn!(model, cap, "platform concurrency limit hit (1302); lowering this model's limit");
        self.lowered.insert(model.to_owned(), (cap, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowers_then_probes_back_up() {
        let t0 = Instant::now();
        let mut l = Limiter::new(30, BTreeMap::from([("viduq1-text".to_owned(), 5)]));
        assert_eq!(l.model_cap("viduq1-text", t0), Some(5));
        assert_eq!(l.model_cap("cogvideox-3", t0), None);
        l.rate_limited("cogvideox-3", 2, t0);
        assert_eq!(l.model_cap("cogvideox-3", t0), Some(2));
        assert_eq!(l.model_cap("cogvideox-3", t0 + PROBE_AFTER), Some(3));
        l.rate_limited("viduq1-text", 0, t0);
        assert_eq!(l.model_cap("viduq1-text", t0), Some(1));
        let mut t = t0;
        for _ in 0..4 {
            t += PROBE_AFTER;
            l.model_cap("viduq1-text", t);
        }
        assert_eq!(l.model_cap("viduq1-text", t), Some(5), "back to the configured limit");
    }
}
