//! The platform's signed-token form of an API key, as the official SDK makes it: `zai-sdk` 0.2.3,
//! `zai.core._jwt_token.generate_token` (used when a client is made with
//! `disable_token_cache=False`). The key `id.secret` becomes an HS256 JWT with the header
//! `{"alg":"HS256","sign_type":"SIGN"}` (PyJWT adds `"typ":"JWT"`) and the payload
//! `{"api_key": id, "exp": ms, "timestamp": ms}` (milliseconds since the Unix epoch), signed with
//! `secret`. The SDK sends it as `Authorization: Bearer <jwt>`; older SDKs sent it bare.

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Well formed and signed with the key's secret, but `exp` has passed.
    Expired,
    /// Not a JWT of the key: malformed, another algorithm, another key id, or a wrong signature.
    Invalid,
}

/// The decoded header and payload of a token that looks like a JWT (three base64url parts, the
/// first two JSON objects), whether or not it is validly signed.
pub(super) fn decode(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.split('.');
    let (header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = |part: &str| -> Option<Value> {
        let bytes = URL_SAFE_NO_PAD.decode(part).or_else(|_| URL_SAFE.decode(part)).ok()?;
        serde_json::from_slice::<Value>(&bytes).ok().filter(Value::is_object)
    };
    Some((json(header)?, json(payload)?))
}

/// Checks `token` against the API key `id.secret` at `now_ms`.
pub(super) fn verify(token: &str, api_key: &str, now_ms: u64) -> Result<(), Refusal> {
    let (id, secret) = api_key.split_once('.').ok_or(Refusal::Invalid)?;
    let (header, payload) = decode(token).ok_or(Refusal::Invalid)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(Refusal::Invalid);
    }
    if payload.get("api_key").and_then(Value::as_str) != Some(id) {
        return Err(Refusal::Invalid);
    }
    let (signed, sig) = token.rsplit_once('.').ok_or(Refusal::Invalid)?;
    let sig = URL_SAFE_NO_PAD.decode(sig).or_else(|_| URL_SAFE.decode(sig)).map_err(|_| Refusal::Invalid)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| Refusal::Invalid)?;
    mac.update(signed.as_bytes());
    mac.verify_slice(&sig).map_err(|_| Refusal::Invalid)?;
    let exp = payload.get("exp").and_then(Value::as_u64).ok_or(Refusal::Invalid)?;
    if exp <= now_ms { Err(Refusal::Expired) } else { Ok(()) }
}

/// A token for `api_key` as the SDK makes it, valid until `exp_ms`; for tests and tools.
pub fn sign(api_key: &str, now_ms: u64, exp_ms: u64) -> Option<String> {
    let (id, secret) = api_key.split_once('.')?;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","sign_type":"SIGN"}"#);
    let payload =
        URL_SAFE_NO_PAD.encode(serde_json::json!({"api_key": id, "exp": exp_ms, "timestamp": now_ms}).to_string());
    let signed = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(signed.as_bytes());
    Some(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sim-key.sim-secret";

    #[test]
    fn the_sdks_token_verifies() {
        // Made by zai-sdk 0.2.3 `generate_token("sim-key.sim-secret")` (PyJWT 2.15.1), header
        // {"alg":"HS256","sign_type":"SIGN","typ":"JWT"}, exp 1796163605732 ms.
        let sdk = "eyJhbGciOiJIUzI1NiIsInNpZ25fdHlwZSI6IlNJR04iLCJ0eXAiOiJKV1QifQ.\
                   eyJhcGlfa2V5Ijoic2ltLWtleSIsImV4cCI6MTc5NjE2MzYwNTczMiwidGltZXN0YW1wIjoxNzk2MTYzMzk1NzMyfQ.\
                   B8J4Qv-Tmd4yFwhG4bxKATb6bXBWQL0SGM7ay5KvK94";
        assert_eq!(verify(sdk, KEY, 1_796_163_395_732), Ok(()));
        assert_eq!(verify(sdk, KEY, 1_796_163_605_732), Err(Refusal::Expired), "exp is in milliseconds");
        assert_eq!(verify(sdk, "sim-key.other-secret", 1_796_163_395_732), Err(Refusal::Invalid));
        assert_eq!(verify(sdk, "other-key.sim-secret", 1_796_163_395_732), Err(Refusal::Invalid));
    }

    #[test]
    fn signed_here_verifies_and_tampering_does_not() {
        let token = sign(KEY, 1_000, 2_000).expect("sign");
        assert_eq!(verify(&token, KEY, 1_500), Ok(()));
        assert_eq!(verify(&token, KEY, 2_000), Err(Refusal::Expired));
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(verify(&tampered, KEY, 1_500), Err(Refusal::Invalid));
        for junk in ["", "a.b", "a.b.c", KEY, "x.y.z.w"] {
            assert_eq!(verify(junk, KEY, 1_500), Err(Refusal::Invalid), "{junk}");
        }
    }
}
