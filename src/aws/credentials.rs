//! AWS credentials and where they come from: the environment, the container credentials
//! endpoint (ECS, or a container on an instance), else the instance profile via IMDS.

use std::sync::{Mutex, PoisonError};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::http::{Http, Sleep};
use crate::imds::Imds;

/// A key pair with an optional session token. `Debug` never shows the secret parts.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, secret: <redacted>)", self.access_key_id)
    }
}

/// Fetches the credentials anew: temporary ones (instance profile, container endpoint) expire,
/// and a long run may outlive them.
pub type Refresh<'a> = dyn Fn() -> Result<Credentials> + Sync + 'a;

/// The credentials a run signs with, and how to get fresh ones when AWS says they expired.
pub struct Provider<'a> {
    current: Mutex<Credentials>,
    /// `None` for keys from the environment: nothing here can renew them.
    refresh: Option<&'a Refresh<'a>>,
}

impl<'a> Provider<'a> {
    pub fn new(credentials: Credentials, refresh: Option<&'a Refresh<'a>>) -> Provider<'a> {
        Provider {
            current: Mutex::new(credentials),
            refresh,
        }
    }

    /// The credentials to sign the next request with.
    pub fn current(&self) -> Credentials {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Fetches fresh credentials; `Ok(false)` when they cannot be renewed here.
    pub fn refresh(&self) -> Result<bool> {
        let Some(refresh) = self.refresh else {
            return Ok(false);
        };
        let fresh = refresh()?;
        log::debug!("fetched fresh AWS credentials ({})", fresh.access_key_id);
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(true)
    }
}

/// The JSON both IMDS and the container endpoint answer with.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsDocument {
    code: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
}

/// Parses a credentials document; `what` names its source in errors. Never echoes the body.
pub fn parse_credentials_document(body: &str, what: &str) -> Result<Credentials> {
    let doc: CredentialsDocument = serde_json::from_str(body).map_err(|e| Error::Parse {
        what: what.to_string(),
        // serde_json's message names a line and column, never the content.
        detail: e.to_string(),
    })?;
    if let Some(code) = doc.code.filter(|c| c != "Success") {
        return Err(Error::Imds(format!("{what}: {code}")));
    }
    match (doc.access_key_id, doc.secret_access_key) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Ok(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: doc.token.filter(|t| !t.is_empty()),
        }),
        _ => Err(Error::Parse {
            what: what.to_string(),
            detail: "no AccessKeyId/SecretAccessKey".into(),
        }),
    }
}

/// The instance profile's temporary credentials from IMDS, `None` when no profile is attached.
fn instance_profile(imds: &Imds, sleep: &Sleep<'_>) -> Result<Option<Credentials>> {
    let Some(roles) = imds.get("meta-data/iam/security-credentials/", sleep)? else {
        return Ok(None);
    };
    let Some(role) = roles.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return Ok(None);
    };
    if !role
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    {
        return Err(Error::Imds(format!("unexpected role name {role:?}")));
    }
    let document = imds
        .get(&format!("meta-data/iam/security-credentials/{role}"), sleep)?
        .ok_or_else(|| Error::Imds(format!("role {role} has no credentials")))?;
    parse_credentials_document(&document, "instance profile credentials").map(Some)
}

/// Walks the chain: environment keys, container endpoint (its URL and optional
/// `Authorization` value), instance profile.
pub fn resolve(
    keys: Option<&Credentials>,
    container: Option<&(String, Option<String>)>,
    local_http: &Http,
    imds: &Imds,
    sleep: &Sleep<'_>,
) -> Result<Credentials> {
    if let Some(keys) = keys {
        log::debug!(
            "using AWS credentials from the environment ({})",
            keys.access_key_id
        );
        return Ok(keys.clone());
    }
    if let Some((url, authorization)) = container {
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|a| ("Authorization", a.as_str()))
            .collect();
        let response = local_http.send("container credentials", "GET", url, &headers, None)?;
        if !response.is_success() {
            return Err(Error::Status {
                what: format!("container credentials at {url}"),
                status: response.status,
                body: String::new(),
            });
        }
        let credentials = parse_credentials_document(&response.body, "container credentials")?;
        log::debug!(
            "using container credentials ({})",
            credentials.access_key_id
        );
        return Ok(credentials);
    }
    match instance_profile(imds, sleep)? {
        Some(credentials) => {
            log::debug!(
                "using instance profile credentials ({})",
                credentials.access_key_id
            );
            Ok(credentials)
        }
        None => Err(Error::NoCredentials),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imds_credentials_fixture() {
        let body = std::fs::read_to_string("fixtures/imds/security-credentials.json").unwrap();
        let c = parse_credentials_document(&body, "x").unwrap();
        assert_eq!(c.access_key_id, "ASIAEXAMPLEFIXTURE01");
        assert!(c.session_token.is_some());
        assert!(!format!("{c:?}").contains(&c.secret_access_key));
    }

    #[test]
    fn only_temporary_credentials_are_renewed() {
        let keys = |token: &str| Credentials {
            access_key_id: "ASIA".into(),
            secret_access_key: "s".into(),
            session_token: Some(token.into()),
        };
        let fixed = Provider::new(keys("env"), None);
        assert!(!fixed.refresh().unwrap(), "keys from the environment stay");
        assert_eq!(fixed.current().session_token.as_deref(), Some("env"));
        let fetch = || Ok(keys("fresh"));
        let renewable = Provider::new(keys("old"), Some(&fetch));
        assert!(renewable.refresh().unwrap());
        assert_eq!(renewable.current().session_token.as_deref(), Some("fresh"));
        let failing = || Err(Error::NoCredentials);
        let broken = Provider::new(keys("old"), Some(&failing));
        assert!(broken.refresh().is_err());
        assert_eq!(broken.current().session_token.as_deref(), Some("old"));
    }

    #[test]
    fn bad_credentials_documents() {
        let cases = [
            r#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"denied"}"#,
            r#"{"AccessKeyId":"A"}"#,
            r#"not json"#,
            "",
        ];
        for body in cases {
            assert!(
                parse_credentials_document(body, "x").is_err(),
                "failed testcase {body}"
            );
        }
    }

    #[test]
    fn parse_errors_never_echo_the_secret() {
        let body = r#"{"AccessKeyId":"A","SecretAccessKey":"TOPSECRET","Token": tok}"#;
        let e = parse_credentials_document(body, "x").unwrap_err();
        assert!(!e.to_string().contains("TOPSECRET"), "{e}");
    }
}
