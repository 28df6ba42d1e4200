//! SIGHUP: re-read the config file and apply what can change while jobs run.
//!
//! [`plan`] compares the running config with the new one: in-flight limits, poll interval,
//! `[jobs]`, `[watch]`, `[defaults]`, `[prices]`, `[budget]` and `[log] level` apply live; the API endpoint and key
//! variable, storage, catalogue, HTTP server and `[verify]` schedule need a restart and are only
//! named in the log.
//! An invalid file is refused by [`crate::config::Config::load`] before anything changes.

use crate::config::Config;

/// What a reload changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Changed keys that take effect now.
    pub live: Vec<&'static str>,
    /// Changed keys that keep their old value until the next start.
    pub needs_restart: Vec<&'static str>,
}

impl Plan {
    /// Whether the inbox watcher must restart (its folder, timing or defaults changed).
    pub fn restarts_intake(&self) -> bool {
        self.live.iter().any(|k| k.starts_with("watch.") || *k == "defaults")
    }

    /// Whether the engine's settings changed.
    pub fn touches_engine(&self) -> bool {
        self.live
            .iter()
            .any(|k| k.starts_with("api.") || k.starts_with("jobs.") || ["watch.dir", "prices", "budget"].contains(k))
    }
}

/// Compares `old` and `new` key by key.
pub fn plan(old: &Config, new: &Config) -> Plan {
    let mut p = Plan::default();
    let mut check = |key: &'static str, changed: bool, live: bool| {
        if changed {
            if live { p.live.push(key) } else { p.needs_restart.push(key) }
        }
    };
    check("api.max_in_flight", old.api.max_in_flight != new.api.max_in_flight, true);
    check("api.max_in_flight_per_model", old.api.max_in_flight_per_model != new.api.max_in_flight_per_model, true);
    check("api.poll_interval", old.api.poll_interval != new.api.poll_interval, true);
    check("jobs.download_concurrency", old.jobs.download_concurrency != new.jobs.download_concurrency, true);
    check("jobs.retry_base", old.jobs.retry_base != new.jobs.retry_base, true);
    check("jobs.retry_max", old.jobs.retry_max != new.jobs.retry_max, true);
    check("jobs.account_pause", old.jobs.account_pause != new.jobs.account_pause, true);
    check("jobs.shutdown_grace", old.jobs.shutdown_grace != new.jobs.shutdown_grace, true);
    check("jobs.uncertain", old.jobs.uncertain != new.jobs.uncertain, true);
    check("jobs.task_deadline", old.jobs.task_deadline != new.jobs.task_deadline, true);
    check("watch.dir", old.watch.dir != new.watch.dir, true);
    check("watch.quiet_period", old.watch.quiet_period != new.watch.quiet_period, true);
    check("watch.rescan_interval", old.watch.rescan_interval != new.watch.rescan_interval, true);
    check("defaults", old.defaults != new.defaults, true);
    check("log.level", old.log.level != new.log.level, true);
    check("prices", old.prices != new.prices, true);
    check("budget", old.budget != new.budget, true);
    check("api.base_url", old.api.base_url != new.api.base_url, false);
    check("api.api_key_env", old.api.api_key_env != new.api.api_key_env, false);
    check("api.key_file", old.api.key_file != new.api.key_file, false);
    check("api.request_timeout", old.api.request_timeout != new.api.request_timeout, false);
    check("storage", old.storage != new.storage, false);
    check("archive", old.archive != new.archive, false);
    check("catalog.path", old.catalog.path != new.catalog.path, false);
    check("http.listen", old.http.listen != new.http.listen, false);
    check("http.token", old.http.token != new.http.token, false);
    check("verify.every", old.verify.every != new.verify.every, false);
    check("verify.sample", old.verify.sample != new.verify.sample, false);
    check("alerts", old.alerts != new.alerts, false);
    check("notify", old.notify != new.notify, false);
    check("http.public_url", old.http.public_url != new.http.public_url, false);
    p
}

/// `new` with the keys that need a restart put back to their running values, so the running
/// config always describes what is in effect.
pub fn effective(old: &Config, new: &Config) -> Config {
    let mut c = new.clone();
    c.api.base_url.clone_from(&old.api.base_url);
    c.api.api_key_env.clone_from(&old.api.api_key_env);
    c.api.key_file.clone_from(&old.api.key_file);
    c.api.request_timeout = old.api.request_timeout;
    c.storage = old.storage.clone();
    c.archive = old.archive.clone();
    c.catalog = old.catalog.clone();
    c.http = old.http.clone();
    c.verify = old.verify.clone();
    c.alerts = old.alerts.clone();
    c.notify = old.notify.clone();
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> Config {
        Config::from_toml(text, Path::new("/srv/vk")).expect("valid")
    }

    #[test]
    fn live_and_restart_keys_are_told_apart() {
        let old = config("[api]\nmax_in_flight = 10\n");
        let new = config(
            "[api]\nmax_in_flight = 5\nbase_url = \"http://127.0.0.1:1\"\n[watch]\ndir = \"other\"\n[log]\nlevel = \"debug\"\n",
        );
        let p = plan(&old, &new);
        assert_eq!(p.live, ["api.max_in_flight", "watch.dir", "log.level"]);
        assert_eq!(p.needs_restart, ["api.base_url"]);
        assert!(p.restarts_intake() && p.touches_engine());
        let e = effective(&old, &new);
        assert_eq!((e.api.max_in_flight, e.api.base_url.as_str()), (5, old.api.base_url.as_str()));

        let scheduled = config("[verify]\nevery = \"1h\"\n[jobs]\nuncertain = \"abandon\"\n");
        let plain = config("");
        let p = plan(&plain, &scheduled);
        assert_eq!(p.live, ["jobs.uncertain"]);
        assert_eq!(p.needs_restart, ["verify.every"], "the scrubber is not restarted by a reload");
        assert_eq!(effective(&plain, &scheduled).verify.every, None);

        let parts = config("[storage]\npart_size = 8388608\n");
        assert_eq!(plan(&plain, &parts).needs_restart, ["storage"], "any [storage] change is named, not dropped");
        assert_eq!(plan(&old, &old), Plan::default());
    }
}
