//! Each source's credential, checked in constant time: GitHub's HMAC-SHA256 of the body,
//! GitLab's token, a bearer token (or `?token=`) for Jenkins and CDEvents senders.

use axum::http::HeaderMap;
use buildcost_adapters::Format;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Whether the request carries the right credential for `format`. `query_token` is the
/// `?token=` of the URL, accepted for Jenkins and CDEvents senders that cannot set a header
/// (Tekton's event sink).
pub(crate) fn verify(
    format: Format,
    secret: &[u8],
    headers: &HeaderMap,
    query_token: Option<&str>,
    body: &[u8],
) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match format {
        Format::Github => header("x-hub-signature-256")
            .and_then(|v| v.strip_prefix("sha256="))
            .and_then(|hex_sig| hex::decode(hex_sig.trim()).ok())
            .is_some_and(|sig| {
                let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
                    return false;
                };
                mac.update(body);
                mac.verify_slice(&sig).is_ok()
            }),
        Format::Gitlab => {
            header("x-gitlab-token").is_some_and(|t| bool::from(t.as_bytes().ct_eq(secret)))
        }
        Format::Jenkins | Format::Cdevents => header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .or(query_token)
            .is_some_and(|t| bool::from(t.trim().as_bytes().ct_eq(secret))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap_or_else(|_| unreachable!()));
        }
        h
    }

    #[test]
    fn github_signatures_are_checked_over_the_body() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let ok = headers(&[("x-hub-signature-256", sig)]);
        let secret = b"It's a Secret to Everybody";
        assert!(verify(Format::Github, secret, &ok, None, b"Hello, World!"));
        assert!(!verify(Format::Github, secret, &ok, None, b"Hello, World?"));
        assert!(!verify(
            Format::Github,
            b"other",
            &ok,
            None,
            b"Hello, World!"
        ));
        assert!(!verify(
            Format::Github,
            secret,
            &HeaderMap::new(),
            None,
            b"Hello, World!"
        ));
        let sha1 = headers(&[("x-hub-signature-256", "sha1=00")]);
        assert!(!verify(
            Format::Github,
            secret,
            &sha1,
            None,
            b"Hello, World!"
        ));
    }

    #[test]
    fn tokens_must_match_exactly() {
        let gitlab = headers(&[("x-gitlab-token", "s3cret")]);
        assert!(verify(Format::Gitlab, b"s3cret", &gitlab, None, b""));
        assert!(!verify(Format::Gitlab, b"s3cret2", &gitlab, None, b""));
        let bearer = headers(&[("authorization", "Bearer t0ken")]);
        assert!(verify(Format::Jenkins, b"t0ken", &bearer, None, b""));
        assert!(verify(Format::Cdevents, b"t0ken", &bearer, None, b""));
        assert!(!verify(Format::Jenkins, b"t0ke", &bearer, None, b""));
        let basic = headers(&[("authorization", "Basic dDBrZW4=")]);
        assert!(!verify(Format::Jenkins, b"t0ken", &basic, None, b""));
        let none = HeaderMap::new();
        assert!(verify(
            Format::Cdevents,
            b"t0ken",
            &none,
            Some("t0ken"),
            b""
        ));
        assert!(!verify(Format::Cdevents, b"t0ken", &none, Some("t0k"), b""));
        assert!(
            !verify(Format::Github, b"t0ken", &none, Some("t0ken"), b""),
            "GitHub always signs"
        );
    }
}
