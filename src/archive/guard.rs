//! Which result URLs may be fetched. The platform hands out the links, so they are input from the
//! network: a link (or a redirect) may name another scheme, carry credentials, or point into the
//! LAN or at a cloud metadata endpoint.
//!
//! Checked are the URL itself, every redirect ([`redirect_policy`]: at most [`MAX_REDIRECTS`],
//! each target checked like the first), and the addresses a name resolves to
//! ([`GuardedResolver`]), so a public name that resolves to `127.0.0.1` or `169.254.169.254` is
//! refused as well. `[archive] allowed_hosts` limits the host names, `allowed_networks` lets
//! chosen non-public networks through (a LAN mirror; the simulator on loopback).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Most redirects followed for one download.
pub const MAX_REDIRECTS: usize = 10;

/// A URL or address the policy refuses; never worth retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The result-URL policy from `[archive] allowed_hosts` and `allowed_networks`.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    allowed: Arc<Vec<String>>,
    networks: Arc<Vec<ipnet::IpNet>>,
}

impl UrlPolicy {
    /// A policy allowing `hosts` (exact names, or `.example.com` for a domain and its subdomains;
    /// empty allows any name) at public addresses and at addresses inside `networks`.
    pub fn new(hosts: &[String], networks: &[ipnet::IpNet]) -> UrlPolicy {
        UrlPolicy {
            allowed: Arc::new(hosts.iter().map(|h| normalise(h)).filter(|h| !h.is_empty()).collect()),
            networks: Arc::new(networks.to_vec()),
        }
    }

    /// Whether `host` is named in `allowed_hosts`.
    fn listed(&self, host: &str) -> bool {
        let host = normalise(host);
        self.allowed.iter().any(|a| match a.strip_prefix('.') {
            Some(domain) => host == domain || host.ends_with(a.as_str()),
            None => host == *a,
        })
    }

    /// Checks a URL before it is requested, and each redirect target.
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(format!("a `{}:` URL is not fetched: only http and https are", url.scheme())));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused("the URL carries credentials (user:pass@); it is not fetched".to_owned()));
        }
        let Some(host) = url.host() else { return Err(Refused("the URL names no host".to_owned())) };
        let name = match host {
            url::Host::Domain(d) => d.to_owned(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        if !self.allowed.is_empty() && !self.listed(&name) {
            return Err(Refused(format!("host `{name}` is not in [archive] allowed_hosts")));
        }
        let ip = match host {
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
            url::Host::Domain(_) => return Ok(()),
        };
        self.check_addr(&name, ip)
    }

    /// Checks an address `host` resolved to (or is).
    pub fn check_addr(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        let plain = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        match special(ip) {
            Some(kind) if !self.networks.iter().any(|n| n.contains(&ip) || n.contains(&plain)) => {
                Err(Refused(format!(
                    "`{host}` is at {ip}, a {kind} address; result URLs are fetched from public addresses only \
                     (add the network to [archive] allowed_networks to allow it)"
                )))
            }
            _ => Ok(()),
        }
    }
}

fn normalise(host: &str) -> String {
    host.trim().trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

/// What kind of non-public address `ip` is, or `None` for a public one.
fn special(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => special_v4(v4),
            None => special_v6(v6),
        },
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local (cloud metadata)"
    } else if ip.is_unspecified() || a == 0 {
        "unspecified"
    } else if a == 100 && (64..128).contains(&b) {
        "shared (carrier-grade NAT)"
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        "multicast or reserved"
    } else if a == 192 && b == 0 && c == 0 || a == 198 && (18..20).contains(&b) || ip.is_documentation() {
        "special-purpose"
    } else {
        return None;
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_multicast() {
        "multicast"
    } else if first & 0xfe00 == 0xfc00 {
        "unique-local (private)"
    } else if first & 0xffc0 == 0xfe80 {
        "link-local"
    } else if ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64: the IPv4 address it embeds decides.
        let [.., c, d] = ip.segments();
        let v4 = Ipv4Addr::new((c >> 8) as u8, c as u8, (d >> 8) as u8, d as u8);
        return special_v4(v4);
    } else {
        return None;
    })
}

/// The redirect policy for result downloads: at most [`MAX_REDIRECTS`], each target checked
/// by `policy`. reqwest drops `Authorization` on a redirect to another host, and the archiver
/// sends none in the first place: the API key never goes to a result host.
pub fn redirect_policy(policy: UrlPolicy) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(Refused(format!("more than {MAX_REDIRECTS} redirects")));
        }
        match policy.check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(refused) => {
                let why = Refused(format!("a redirect was refused: {refused}"));
                attempt.error(why)
            }
        }
    })
}

/// Resolves names and keeps only the addresses `policy` allows; a name with none left fails
/// with [`Refused`].
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: UrlPolicy,
}

impl GuardedResolver {
    /// A resolver for `policy`.
    pub fn new(policy: UrlPolicy) -> GuardedResolver {
        GuardedResolver { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check_addr(&host, a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused = Some(e);
                        false
                    }
                })
                .collect();
            match (kept.is_empty(), refused) {
                (true, Some(refused)) => Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(kept.into_iter()) as Addrs),
            }
        })
    }
}

/// The [`Refused`] somewhere in `e`'s chain of causes, if any.
pub fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        cause = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &UrlPolicy, url: &str) -> Result<(), Refused> {
        policy.check_url(&url::Url::parse(url).expect("url"))
    }

    #[test]
    fn non_public_addresses_and_other_schemes_are_refused() {
        let p = UrlPolicy::default();
        assert_eq!(check(&p, "https://cdn.example.com/a.mp4"), Ok(()));
        assert_eq!(check(&p, "http://93.184.216.34/a.mp4"), Ok(()));
        for bad in [
            "file:///etc/passwd",
            "ftp://x.example/a.mp4",
            "http://user:pw@cdn.example.com/a.mp4",
            "http://127.0.0.1:8080/a",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/a",
            "http://192.168.0.1/a",
            "http://172.16.0.1/a",
            "http://100.64.0.1/a",
            "http://0.0.0.0/a",
            "http://[::1]/a",
            "http://[fd00::1]/a",
            "http://[fe80::1]/a",
            "http://[::ffff:127.0.0.1]/a",
            "http://[64:ff9b::a9fe:a9fe]/a",
        ] {
            assert!(check(&p, bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn allowed_hosts_limit_names_and_allowed_networks_open_addresses() {
        let lan: ipnet::IpNet = "10.0.0.0/8".parse().expect("net");
        let p = UrlPolicy::new(&["127.0.0.1".to_owned(), ".cdn.example".to_owned()], &[lan]);
        assert_eq!(check(&p, "https://a.cdn.example/a"), Ok(()));
        assert_eq!(check(&p, "https://cdn.example/a"), Ok(()));
        assert!(check(&p, "https://evilcdn.example/a").is_err());
        assert!(check(&p, "https://other.example/a").is_err());
        assert!(check(&p, "http://127.0.0.1:9/a").is_err(), "listed, but loopback is not an allowed network");
        assert!(p.check_addr("a.cdn.example", "10.0.0.1".parse().expect("ip")).is_ok());
        assert!(p.check_addr("a.cdn.example", "::ffff:10.0.0.1".parse().expect("ip")).is_ok());
        assert!(p.check_addr("a.cdn.example", "192.168.1.1".parse().expect("ip")).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_that_resolve_to_loopback() {
        let refused = GuardedResolver::new(UrlPolicy::default()).resolve("localhost".parse().expect("name")).await;
        let e = refused.err().expect("localhost is refused");
        assert!(refusal(e.as_ref()).is_some_and(|r| r.0.contains("loopback")), "{e}");
        let v4: ipnet::IpNet = "127.0.0.1/32".parse().expect("net");
        let allowed = GuardedResolver::new(UrlPolicy::new(&[], &[v4]));
        let addrs: Vec<SocketAddr> =
            allowed.resolve("localhost".parse().expect("name")).await.expect("allowed").collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST)), "{addrs:?}");
    }
}
