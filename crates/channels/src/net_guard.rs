//! The one address check of every URL a practice (or a patient's browser) chooses and that this
//! server then calls: the outbound webhook (`PUT /v1/webhook`), push subscriptions, the push
//! test send, and the dispatcher's push and webhook requests.
//!
//! Without it, whoever holds a practice key could make the server call its own network (the
//! cloud's metadata service at 169.254.169.254, a database on loopback) and read the answer, or
//! the error, back. So a URL must be `https` (plain `http` only when the operator allows it), carry
//! no user information, and name a host whose every address is public. The host is read the way
//! a browser reads it (the `url` crate: `127.1`, `0x7f000001`, `0177.0.0.1` are all 127.0.0.1,
//! `localhost.` is `localhost`).
//!
//! The check runs twice: when the URL is registered (an answer naming the field) and when a
//! request leaves, on the addresses the connection may use: [`client_builder`] gives reqwest a
//! resolver that refuses a name with any address that is not public, so a name that resolved to
//! a public address at registration and to a private one later (DNS rebinding) is refused too.
//! reqwest does not resolve an IP literal, so [`check_url`] runs again before each request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

/// What the operator allows beyond public `https` addresses. Never a practice setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetPolicy {
    /// Plain `http://` URLs (`RAPPEL_ALLOW_HTTP_WEBHOOKS`): a receiver on a network the operator
    /// trusts. The address must still be public, or loopback with `allow_loopback`.
    pub allow_http: bool,
    /// Loopback addresses (127.0.0.0/8, ::1, `localhost`; `RAPPEL_ALLOW_LOOPBACK_TARGETS`): for
    /// tests and development, where the receiver runs on the same machine.
    pub allow_loopback: bool,
}

impl NetPolicy {
    /// Loopback and plain http allowed: the peers of tests.
    pub fn loopback_for_tests() -> NetPolicy {
        NetPolicy {
            allow_http: true,
            allow_loopback: true,
        }
    }

    /// Whether a request may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || (self.allow_loopback && unmapped(ip).is_loopback())
    }
}

/// Why a URL is refused. The text is what a practice may read: it names no port and no
/// connection detail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a URL")]
    NotAUrl,
    #[error("must be an https:// URL")]
    NotHttps,
    #[error("must not carry user information (user:password@)")]
    UserInfo,
    #[error("must name a host")]
    NoHost,
    #[error("refused: the address is not a public one")]
    NotPublic,
}

/// Parses `text` and checks its scheme, user information and, when the host is an IP address
/// or `localhost`, the address. A named host is checked on its addresses by [`check_resolved`]
/// (at registration) and by the resolver of [`client_builder`] (at each request).
pub fn check_url(text: &str, policy: &NetPolicy) -> Result<Url, Refusal> {
    let url = Url::parse(text.trim()).map_err(|_| Refusal::NotAUrl)?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        _ => return Err(Refusal::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::UserInfo);
    }
    match url.host() {
        None => return Err(Refusal::NoHost),
        Some(Host::Ipv4(ip)) => permitted(IpAddr::V4(ip), policy)?,
        Some(Host::Ipv6(ip)) => permitted(IpAddr::V6(ip), policy)?,
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                return Err(Refusal::NoHost);
            }
            // `localhost` is loopback by definition (RFC 6761), whatever a resolver says.
            if (name == "localhost" || name.ends_with(".localhost")) && !policy.allow_loopback {
                return Err(Refusal::NotPublic);
            }
        }
    }
    Ok(url)
}

fn permitted(ip: IpAddr, policy: &NetPolicy) -> Result<(), Refusal> {
    if policy.permits(ip) {
        Ok(())
    } else {
        Err(Refusal::NotPublic)
    }
}

/// How long a registration waits for DNS.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// [`check_url`], then the addresses its name resolves to now: any address that is not public
/// refuses the URL. A name that does not resolve (yet, or from this network) is accepted: every
/// request checks again, so registration need not depend on DNS being up.
pub async fn check_resolved(text: &str, policy: &NetPolicy) -> Result<Url, Refusal> {
    let url = check_url(text, policy)?;
    if let Some(Host::Domain(name)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::net::lookup_host((name.to_string(), port));
        if let Ok(Ok(addresses)) = tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            for address in addresses {
                permitted(address.ip(), policy)?;
            }
        }
    }
    Ok(url)
}

/// A reqwest client builder whose connections go only where `policy` permits: the guarded
/// resolver, no redirects (a receiver's redirect could point anywhere), and no proxy (the
/// check is about where the connection goes).
pub fn client_builder(policy: NetPolicy) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
}

/// Resolves with the system resolver and refuses a name with any address `policy` does not
/// permit, so the connection can only go to checked addresses.
struct GuardedResolver {
    policy: NetPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
            if (host == "localhost" || host.ends_with(".localhost")) && !policy.allow_loopback {
                return Err(
                    Box::new(Refusal::NotPublic) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addresses = screen(&host, addresses, &policy)
                .map_err(|refusal| Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// The addresses a name resolved to, when every one is permitted: a name with one private
/// address among public ones is refused whole (a rebinding answer may mix them).
fn screen(
    host: &str,
    addresses: Vec<SocketAddr>,
    policy: &NetPolicy,
) -> Result<Vec<SocketAddr>, Refusal> {
    if let Some(refused) = addresses.iter().find(|a| !policy.permits(a.ip())) {
        tracing::debug!(host = %host, address = %refused.ip(), "a name resolves to an address that is not public");
        return Err(Refusal::NotPublic);
    }
    Ok(addresses)
}

/// Whether a failed request was refused by the guard (rather than unreachable).
pub fn is_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.downcast_ref::<Refusal>().is_some() {
            return true;
        }
        cause = current.source();
    }
    false
}

/// What a practice may read of a request that got no HTTP answer: refused by the guard, or
/// unreachable. The cause (connection refused, reset, time-out, TLS), which would tell an open
/// port from a closed one, goes to the debug log only.
pub fn failure_text(error: &reqwest::Error, whom: &str) -> String {
    tracing::debug!(error = %detail(error), "{whom}: no HTTP answer");
    if is_refusal(error) {
        format!("{whom}: {}", Refusal::NotPublic)
    } else {
        format!("{whom}: unreachable (no HTTP answer)")
    }
}

/// The error's text and causes without its URL, which may carry a receiver's token.
fn detail(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "…");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`) IPv6 address, or the address.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// A globally routable unicast address: none of loopback, private (RFC 1918), link-local
/// (169.254/16, the cloud metadata service), CGNAT (100.64/10), "this network" (0/8),
/// benchmarking, documentation, reserved, broadcast, multicast, unspecified, unique-local
/// (fc00::/7), link-local IPv6, and IPv6 forms that carry one of those (IPv4-mapped,
/// IPv4-compatible, NAT64 well-known prefix, 6to4).
pub fn is_public(ip: IpAddr) -> bool {
    match unmapped(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
        return false;
    }
    // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 (deprecated site-local).
    if (segments[0] & 0xfe00) == 0xfc00 || (segments[0] & 0xffc0) == 0xfe80 {
        return false;
    }
    if (segments[0] & 0xffc0) == 0xfec0 {
        return false;
    }
    // 2001:db8::/32 documentation, 2001::/23 IETF protocol assignments (Teredo included).
    if segments[0] == 0x2001 && (segments[1] == 0x0db8 || segments[1] < 0x0200) {
        return false;
    }
    // IPv4-compatible ::a.b.c.d (deprecated) and the NAT64 prefix 64:ff9b::/96 embed an IPv4
    // address: public only if it is.
    let embedded = Ipv4Addr::new(
        (segments[6] >> 8) as u8,
        segments[6] as u8,
        (segments[7] >> 8) as u8,
        segments[7] as u8,
    );
    if segments[..6].iter().all(|s| *s == 0) || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded);
    }
    // 6to4 2002::/16 embeds an IPv4 address in segments 1 and 2.
    if segments[0] == 0x2002 {
        let inner = Ipv4Addr::new(
            (segments[1] >> 8) as u8,
            segments[1] as u8,
            (segments[2] >> 8) as u8,
            segments[2] as u8,
        );
        return is_public_v4(inner);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> NetPolicy {
        NetPolicy::default()
    }

    #[test]
    fn every_spelling_of_a_private_address_is_refused() {
        for url in [
            "https://127.0.0.1/x",
            "https://127.1/x",
            "https://0x7f000001/x",
            "https://2130706433/x",
            "https://0177.0.0.1/x",
            "https://017700000001/x",
            "https://[::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[::ffff:169.254.169.254]/x",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/x",
            "https://172.16.5.4/x",
            "https://192.168.1.1/x",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "https://[::]/x",
            "https://224.0.0.1/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://192.0.2.1/x",
            "https://[2001:db8::1]/x",
            "https://[64:ff9b::a9fe:a9fe]/x",
            "https://[2002:7f00:1::]/x",
            "https://localhost/x",
            "https://localhost./x",
            "https://LOCALHOST/x",
            "https://api.localhost/x",
        ] {
            assert_eq!(check_url(url, &strict()), Err(Refusal::NotPublic), "{url}");
        }
    }

    #[test]
    fn a_name_is_refused_when_any_of_its_addresses_is_not_public() {
        let public: SocketAddr = "93.184.215.14:0".parse().unwrap();
        let private: SocketAddr = "10.0.0.7:0".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert_eq!(screen("a", vec![public], &strict()), Ok(vec![public]));
        assert_eq!(
            screen("a", vec![public, private], &strict()),
            Err(Refusal::NotPublic)
        );
        assert_eq!(
            screen("a", vec![loopback], &strict()),
            Err(Refusal::NotPublic)
        );
        let tests = NetPolicy::loopback_for_tests();
        assert_eq!(screen("a", vec![loopback], &tests), Ok(vec![loopback]));
    }

    /// The guarded resolver's refusal travels through reqwest's error to [`is_refusal`], and
    /// the connection is never made.
    #[tokio::test]
    async fn a_request_to_a_refused_name_fails_as_a_refusal_without_connecting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = client_builder(strict()).build().unwrap();
        let error = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(is_refusal(&error), "{error:?}");
        assert_eq!(
            failure_text(&error, "the receiver"),
            "the receiver: refused: the address is not a public one"
        );
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "nothing connected");
        // With the operator's allowance the same name connects.
        let client = client_builder(NetPolicy::loopback_for_tests())
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let request =
            tokio::spawn(
                async move { client.get(format!("http://localhost:{port}/")).send().await },
            );
        let accepted = tokio::time::timeout(Duration::from_secs(2), listener.accept()).await;
        assert!(accepted.is_ok(), "the allowed request connected");
        request.abort();
    }

    #[test]
    fn scheme_and_user_information_are_checked() {
        assert_eq!(
            check_url("http://hooks.example.org/x", &strict()),
            Err(Refusal::NotHttps)
        );
        assert_eq!(
            check_url("ftp://hooks.example.org/x", &strict()),
            Err(Refusal::NotHttps)
        );
        assert_eq!(
            check_url("https://user:pw@hooks.example.org/x", &strict()),
            Err(Refusal::UserInfo)
        );
        assert_eq!(
            check_url("https://user@hooks.example.org/x", &strict()),
            Err(Refusal::UserInfo)
        );
        assert_eq!(check_url("not a url", &strict()), Err(Refusal::NotAUrl));
        assert!(check_url("https://hooks.example.org/x", &strict()).is_ok());
        assert!(check_url("https://93.184.215.14/x", &strict()).is_ok());
        assert!(check_url("https://[2606:4700::1111]/x", &strict()).is_ok());
    }

    #[test]
    fn the_operator_may_allow_http_and_loopback_but_never_the_rest() {
        let tests = NetPolicy::loopback_for_tests();
        assert!(check_url("http://127.0.0.1:8080/x", &tests).is_ok());
        assert!(check_url("http://[::1]:8080/x", &tests).is_ok());
        assert!(check_url("http://localhost:8080/x", &tests).is_ok());
        assert_eq!(
            check_url("http://169.254.169.254/x", &tests),
            Err(Refusal::NotPublic)
        );
        assert_eq!(
            check_url("http://10.1.2.3/x", &tests),
            Err(Refusal::NotPublic)
        );
        let http_only = NetPolicy {
            allow_http: true,
            allow_loopback: false,
        };
        assert!(check_url("http://hooks.example.org/x", &http_only).is_ok());
        assert_eq!(
            check_url("http://127.0.0.1/x", &http_only),
            Err(Refusal::NotPublic)
        );
    }
}
