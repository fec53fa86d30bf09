//! What URIs may reach. S3: only the buckets (or `bucket/prefix`es) on the allow-list,
//! when there is one. HTTP(S): only public addresses — not loopback, private, link-local
//! (the instance metadata service at 169.254.169.254), multicast or reserved ones —
//! unless the host is on the allow-list; checked on every address a name resolves to,
//! at connect time (so a name cannot be re-pointed between a check and the request),
//! and again on every redirect.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Whether `s3://bucket/key` is on the allow-list (an empty list allows everything).
fn s3_allowed(allowed: &[String], bucket: &str, key: &str) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|entry| match entry.split_once('/') {
            None => entry == bucket,
            Some((b, prefix)) => b == bucket && key.starts_with(prefix),
        })
}

/// Refuses `s3://bucket/key` unless it is on the allow-list, saying which setting.
pub fn check_s3(allowed: &[String], bucket: &str, key: &str) -> Result<(), String> {
    if s3_allowed(allowed, bucket, key) {
        Ok(())
    } else {
        Err(format!(
            "s3://{bucket}/{key} is not in ai_loader.s3_allowed_buckets"
        ))
    }
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [first, second, ..] = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || first == 0
                || first >= 240
                || (first == 100 && (second & 0xc0) == 64)) // carrier-grade NAT
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = a.segments()[0];
                !(a.is_loopback()
                    || a.is_unspecified()
                    || a.is_multicast()
                    || (first & 0xfe00) == 0xfc00 // unique local
                    || (first & 0xffc0) == 0xfe80) // link-local
            }
        },
    }
}

/// Whether `host` is on the allow-list (names compared without case, IPv6 with or
/// without brackets).
pub fn host_allowed(allowed: &[String], host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    allowed.iter().any(|a| {
        a.trim_start_matches('[')
            .trim_end_matches(']')
            .eq_ignore_ascii_case(host)
    })
}

/// Whether `url` is one of the endpoints a superuser listed as trusted with the
/// server's API keys: the same scheme, host and port, and a path at or under the
/// listed one (`http://h:8080/v1` covers `/v1` and `/v1/x`, not `/v10`).
pub fn endpoint_listed(listed: &[String], url: &Url) -> bool {
    let path = url.path().trim_end_matches('/');
    listed.iter().filter_map(|e| Url::parse(e).ok()).any(|e| {
        let prefix = e.path().trim_end_matches('/');
        e.scheme() == url.scheme()
            && e.host_str()
                .zip(url.host_str())
                .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
            && e.port_or_known_default() == url.port_or_known_default()
            && (path == prefix || path.starts_with(&format!("{prefix}/")))
    })
}

/// A connection the rules refuse, as the resolver reports it (found again among a
/// failed request's causes).
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The refusal among a failed request's causes, if that is why it failed.
pub fn refusal<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<Refused>() {
            return Some(r);
        }
        cause = c.source();
    }
    None
}

fn refused(host: &str, ip: IpAddr) -> String {
    let what = if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
        format!("{ip} is")
    } else {
        format!("{host} is {ip},")
    };
    format!(
        "{what} a loopback, private or link-local address; \
         list the host in ai_loader.http_allowed_hosts to allow it"
    )
}

/// Checks a URL before it is requested, and each redirect: http or https, and an
/// address written in the URL must be public unless its host is allowed.
pub fn check_url(url: &Url, allowed: &[String]) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{} URIs are not fetched (only http and https)",
            url.scheme()
        ));
    }
    let host = url.host_str().unwrap_or_default();
    let ip = match url.host() {
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
        _ => return Ok(()), // a name: the resolver checks its addresses
    };
    if is_public(ip) || host_allowed(allowed, host) {
        Ok(())
    } else {
        Err(refused(host, ip))
    }
}

/// The HTTP client's resolver: a name's public addresses only (all of them for an
/// allowed host); a name with none is refused.
pub struct PublicOnly {
    pub allowed: Arc<Vec<String>>,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let allowed = host_allowed(&self.allowed, &host);
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allowed {
                return Ok(Box::new(found.into_iter()) as Addrs);
            }
            let public: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| is_public(a.ip()))
                .collect();
            match (public.is_empty(), found.first()) {
                (false, _) => Ok(Box::new(public.into_iter()) as Addrs),
                (true, Some(a)) => Err(Box::new(Refused(refused(&host, a.ip()))) as _),
                (true, None) => Err(format!("{host} has no address").into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let none: Vec<String> = vec![];
        let check = |u: &str, allowed: &[String]| check_url(&Url::parse(u).unwrap(), allowed);
        assert!(check("https://example.com/a.pdf", &none).is_ok());
        for u in [
            "http://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:8080/x",
            "http://0x7f000001/x", // the URL parser reads it as 127.0.0.1
            "http://[::1]/x",
            "http://[::ffff:10.0.0.1]/x",
        ] {
            let e = check(u, &none).unwrap_err();
            assert!(e.contains("ai_loader.http_allowed_hosts"), "{u}: {e}");
        }
        assert!(check("gopher://example.com/", &none)
            .unwrap_err()
            .contains("only http and https"));
        let allowed = vec!["127.0.0.1".to_string(), "::1".to_string()];
        assert!(check("http://127.0.0.1:8080/x", &allowed).is_ok());
        assert!(check("http://[::1]/x", &allowed).is_ok());
    }

    #[test]
    fn key_endpoints_match_scheme_host_port_and_path() {
        let listed = vec![
            "http://127.0.0.1:8080/v1".to_string(),
            "https://Keys.example".to_string(),
        ];
        let listed_url = |u: &str| endpoint_listed(&listed, &Url::parse(u).unwrap());
        for u in [
            "http://127.0.0.1:8080/v1",
            "http://127.0.0.1:8080/v1/",
            "http://127.0.0.1:8080/v1/embeddings",
            "https://keys.example/anything",
            "https://keys.example:443/v1",
        ] {
            assert!(listed_url(u), "{u}");
        }
        for u in [
            "http://127.0.0.1:8081/v1",              // another port
            "https://127.0.0.1:8080/v1",             // another scheme
            "http://127.0.0.1:8080/v10",             // not under the path
            "http://127.0.0.1:8080/",                // above it
            "http://127.0.0.2:8080/v1",              // another host
            "http://127.0.0.1:8080@evil.example/v1", // user info, then another host
            "https://keys.example:8443/v1",
        ] {
            assert!(!listed_url(u), "{u}");
        }
    }

    #[test]
    fn buckets_and_prefixes() {
        let list = vec!["docs".to_string(), "shared/public/".to_string()];
        assert!(s3_allowed(&[], "any", "thing"));
        assert!(s3_allowed(&list, "docs", "a/b.pdf"));
        assert!(s3_allowed(&list, "shared", "public/x.md"));
        assert!(!s3_allowed(&list, "shared", "private/x.md"));
        assert!(!s3_allowed(&list, "docs-secret", "a.pdf"));
    }
}
