//! The one error type of the tool. Each variant says *when* it happens; its message says what
//! failed and what to check, on one line, because it is the last thing an operator reads in
//! `journalctl -u etcd-discovery`.

use std::fmt;

/// Everything that can stop a run.
#[derive(Debug)]
pub enum Error {
    /// The command line or the environment is wrong: fix the unit file, not the cluster.
    Usage(String),
    /// Nothing listens where we called: the connection was refused, or no TCP session could be
    /// set up (unreachable, connect timed out). The only failure that is evidence of absence.
    Absent { what: String, detail: String },
    /// A network call failed below HTTP after somebody answered, or before we could tell
    /// (a stall, a reset, garbage, TLS, DNS, the run's deadline): `what` names the call.
    Transport {
        what: String,
        detail: String,
        transient: bool,
    },
    /// A server answered with a status we cannot use.
    Status {
        what: String,
        status: u16,
        body: String,
    },
    /// AWS answered with an error document (`<ErrorResponse>` or EC2's `<Response><Errors>`).
    /// `status`: the HTTP status it came with (0 when unknown).
    Aws {
        action: String,
        code: String,
        message: String,
        status: u16,
    },
    /// A body did not have the shape we expect (XML, JSON), or was larger than we read.
    Parse { what: String, detail: String },
    /// The instance metadata service did not tell us who we are.
    Imds(String),
    /// The instance metadata service did not answer at all within `--boot-wait`: at boot it
    /// may come up late (worth a retry); on a host that has none, it never does.
    ImdsUnreachable(String),
    /// No credentials were found anywhere in the chain.
    NoCredentials,
    /// etcd refused a membership change, or the cluster state makes the change unsafe.
    Etcd {
        what: String,
        detail: String,
        transient: bool,
    },
    /// What we saw cannot be turned into a safe plan yet (e.g. an instance with no address).
    NotReady(String),
    /// Members answer, but too few are healthy to elect a leader: most of the cluster's
    /// instances are gone. Bootstrapping anew would throw the data away, so we stop.
    QuorumLost { healthy: usize, voters: usize },
    /// Restoring a snapshot on total loss failed in a way a person must look at (an object
    /// that does not match its checksum, the restore tool's failure, the data directory).
    Restore(String),
    /// `status` found something an operator should look at; the table says what.
    Attention(String),
    /// Writing the environment file failed; the previous file is untouched. `after_change`:
    /// the membership was already changed, so a rerun (which finds the change) must follow.
    Io {
        path: String,
        detail: String,
        after_change: bool,
    },
}

/// AWS error codes worth another try: the request may succeed as it is, later. The SDKs'
/// standard retry mode (botocore `retries/standard.py`: its transient and throttling codes)
/// plus the server-side codes EC2 and AutoScaling document. `LimitExceededException` is left
/// out: for AutoScaling it means a quota, which waiting does not lift.
pub fn is_transient_aws_code(code: &str) -> bool {
    is_throttling_code(code)
        || matches!(
            code,
            "BandwidthLimitExceeded"
                | "SlowDown"
                | "RequestTimeout"
                | "RequestTimeoutException"
                | "PriorRequestNotComplete"
                | "ServiceUnavailable"
                | "InternalError"
                | "InternalFailure"
                | "Unavailable"
        )
}

/// AWS error codes that say the caller was throttled (botocore's throttling codes, EC2's
/// `RequestLimitExceeded` and `EC2ThrottledException`).
pub fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "EC2ThrottledException"
    )
}

/// HTTP statuses the SDKs retry whatever the error code says (botocore's standard mode:
/// 500, 502, 503, 504): AutoScaling's `ResourceContention` comes as a 500, EC2's
/// `EC2ThrottledException` as a 503.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504)
}

/// AWS refusing a request because this machine's clock is off: AWS accepts signatures within
/// a few minutes of its own time. Transient: at boot chrony often steps the clock after us.
/// (EC2 says `RequestExpired` for an expired session token too; the caller refreshes
/// refreshable credentials first, so what is left is the clock.)
pub fn is_clock_skew(code: &str, message: &str) -> bool {
    match code {
        "RequestTimeTooSkewed" | "RequestExpired" | "RequestInTheFuture" => true,
        "SignatureDoesNotMatch" | "InvalidSignatureException" => {
            message.contains("Signature expired") || message.contains("Signature not yet current")
        }
        _ => false,
    }
}

/// AWS saying the temporary credentials have expired: fetch fresh ones and try again.
pub fn is_expired_credentials(code: &str) -> bool {
    matches!(
        code,
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired"
    )
}

impl Error {
    /// The process exit code: 2 bad usage, 75 (EX_TEMPFAIL) worth a retry, 1 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            _ if self.is_transient() => 75,
            _ => 1,
        }
    }

    /// AWS refused the call for want of a permission (the instance role does not allow it).
    pub fn is_access_denied(&self) -> bool {
        matches!(self, Error::Aws { code, .. } if code == "AccessDenied" || code == "AccessDeniedException")
    }

    /// True when retrying the same run later may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { transient, .. } | Error::Etcd { transient, .. } => *transient,
            Error::Status { status, .. } => *status >= 500 || *status == 429,
            Error::Aws {
                code,
                message,
                status,
                ..
            } => {
                is_transient_status(*status)
                    || is_transient_aws_code(code)
                    || is_clock_skew(code, message)
            }
            Error::NotReady(_)
            | Error::QuorumLost { .. }
            | Error::Absent { .. }
            | Error::ImdsUnreachable(_) => true,
            Error::Io { after_change, .. } => *after_change,
            _ => false,
        }
    }
}

/// What to check for the AWS errors operators meet most; empty when we have no advice.
fn aws_hint(code: &str, message: &str, action: &str) -> String {
    if is_clock_skew(code, message) {
        return "; this machine's clock is off (AWS refuses requests signed minutes away from its \
                time): check that chrony or NTP has synchronised it (timedatectl), then retry"
            .into();
    }
    match code {
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
            let permission = match action {
                a if a.starts_with("DescribeInstances") => format!("ec2:{a}"),
                // S3's calls are allowed by the permission IAM names for them.
                "GetObject" => "s3:GetObject".into(),
                "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => {
                    "s3:PutObject".into()
                }
                "ListObjectsV2" | "HeadBucket" => "s3:ListBucket".into(),
                "DeleteObject" => "s3:DeleteObject".into(),
                "AbortMultipartUpload" => "s3:AbortMultipartUpload".into(),
                a => format!("autoscaling:{a}"),
            };
            format!("; check that the instance role allows {permission}")
        }
        "AuthFailure" | "SignatureDoesNotMatch" | "InvalidClientTokenId" | "UnrecognizedClientException" => {
            "; check the access key and secret (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the instance profile)".into()
        }
        "ExpiredToken" | "ExpiredTokenException" => {
            "; the session token has expired: refresh credentials (a new AWS_SESSION_TOKEN with its keys) or use the instance profile".into()
        }
        c if is_transient_aws_code(c) => "; AWS is throttling or unavailable, retry later".into(),
        "ResourceContention" => "; AutoScaling is busy with another change to the group, retry later".into(),
        _ => String::new(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "{msg} (see --help)"),
            Error::Transport { what, detail, .. } | Error::Absent { what, detail } => {
                write!(f, "{what}: {detail}")
            }
            Error::Status { what, status, body } => {
                write!(f, "{what}: unexpected HTTP status {status}")?;
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            Error::Aws { action, code, message, .. } => {
                write!(f, "AWS {action} failed: {code}: {message}{}", aws_hint(code, message, action))
            }
            Error::Parse { what, detail } => write!(f, "{what}: unreadable answer: {detail}"),
            Error::Imds(msg) | Error::ImdsUnreachable(msg) => write!(
                f,
                "instance metadata: {msg}; is this an EC2 instance with the metadata service enabled \
                 (or AWS_EC2_METADATA_SERVICE_ENDPOINT set)?"
            ),
            Error::NoCredentials => write!(
                f,
                "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or attach an \
                 instance profile with the policy in the README"
            ),
            Error::Etcd { what, detail, .. } => write!(f, "etcd {what}: {detail}"),
            Error::Attention(msg) => write!(f, "{msg}"),
            Error::Restore(msg) => write!(f, "restore: {msg}"),
            Error::NotReady(msg) => write!(f, "not ready: {msg}; retry later"),
            Error::QuorumLost { healthy, voters } => write!(
                f,
                "quorum lost: {healthy} of {voters} voting members are healthy, {} are needed; not \
                 bootstrapping over the old cluster: start the members whose instances still exist; \
                 if they are lost for good, replace every instance of the group: booting with \
                 --snapshot-url and --etcd-data-dir, the new instances restore the newest snapshot \
                 into a new cluster (README: restore on total loss)",
                crate::model::quorum(*voters)
            ),
            Error::Io {
                path,
                detail,
                after_change: false,
            } => write!(f, "cannot write {path}: {detail}; the previous file is untouched"),
            Error::Io { path, detail, .. } => write!(
                f,
                "cannot write {path}: {detail}; the membership was already changed: free the \
                 space or fix the directory, and the next run writes the file for that change"
            ),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shortens a body for an error message: one line, a bounded number of characters.
pub fn snippet(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    one_line.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let cases: Vec<(Error, i32)> = vec![
            (Error::Usage("x".into()), 2),
            (
                Error::Aws {
                    action: "A".into(),
                    code: "Throttling".into(),
                    message: "m".into(),
                    status: 400,
                },
                75,
            ),
            (
                Error::Aws {
                    action: "A".into(),
                    code: "AccessDenied".into(),
                    message: "m".into(),
                    status: 403,
                },
                1,
            ),
            (
                Error::Status {
                    what: "w".into(),
                    status: 503,
                    body: String::new(),
                },
                75,
            ),
            (
                Error::Status {
                    what: "w".into(),
                    status: 404,
                    body: String::new(),
                },
                1,
            ),
            (Error::NotReady("x".into()), 75),
            (
                Error::QuorumLost {
                    healthy: 1,
                    voters: 3,
                },
                75,
            ),
            (Error::NoCredentials, 1),
            (Error::Attention("x".into()), 1),
            (Error::Restore("x".into()), 1),
            (Error::Imds("x".into()), 1),
            (Error::ImdsUnreachable("x".into()), 75),
        ];
        for (error, code) in cases {
            assert_eq!(error.exit_code(), code, "failed testcase: {error}");
        }
    }

    #[test]
    fn clock_skew_is_transient_and_names_the_clock() {
        // Regression: a skewed clock ended in exit 1 with a hint about the keys.
        let aws = |code: &str, message: &str| Error::Aws {
            action: "DescribeAutoScalingGroups".into(),
            code: code.into(),
            message: message.into(),
            status: 403,
        };
        let skewed = [
            aws("SignatureDoesNotMatch", "Signature expired: 20261128T010000Z is now earlier than 20261128T011000Z (20261128T011500Z - 5 min.)"),
            aws("RequestTimeTooSkewed", "The difference between the request time and the current time is too large."),
            aws("RequestExpired", "Request has expired."),
        ];
        for e in skewed {
            assert_eq!(e.exit_code(), 75, "failed testcase: {e}");
            let text = e.to_string();
            assert!(text.contains("clock"), "failed testcase: {text}");
            assert!(!text.contains("access key"), "failed testcase: {text}");
        }
        let keys = aws(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
        assert_eq!(keys.exit_code(), 1);
        assert!(keys.to_string().contains("check the access key"), "{keys}");
        let expired = aws(
            "ExpiredToken",
            "The security token included in the request is expired",
        );
        assert_eq!(expired.exit_code(), 1);
        assert!(
            expired.to_string().contains("AWS_SESSION_TOKEN"),
            "{expired}"
        );
    }

    #[test]
    fn server_errors_are_transient_whatever_their_code() {
        // Regression: AutoScaling's ResourceContention (a 500) and EC2's
        // EC2ThrottledException (a 503) ended in exit 1, which the unit never retries.
        let aws = |code: &str, status: u16| Error::Aws {
            action: "DescribeAutoScalingGroups".into(),
            code: code.into(),
            message: "m".into(),
            status,
        };
        let cases = [
            (aws("ResourceContention", 500), 75),
            (aws("SomethingNew", 502), 75),
            (aws("EC2ThrottledException", 503), 75),
            (aws("SomethingNew", 504), 75),
            (aws("RequestTimeout", 400), 75),
            (aws("PriorRequestNotComplete", 400), 75),
            (aws("ValidationError", 400), 1),
            (aws("SomethingNew", 501), 1),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "failed testcase: {e}");
        }
    }

    #[test]
    fn access_denied_names_the_permission() {
        let e = Error::Aws {
            action: "DescribeAutoScalingGroups".into(),
            code: "AccessDenied".into(),
            message: "User is not authorized".into(),
            status: 403,
        };
        assert!(
            e.to_string()
                .contains("autoscaling:DescribeAutoScalingGroups"),
            "{e}"
        );
        // Found by the lab's IAM check: S3's denials named an autoscaling permission.
        for (action, permission) in [
            ("DescribeInstances", "ec2:DescribeInstances"),
            ("GetObject", "s3:GetObject"),
            ("UploadPart", "s3:PutObject"),
            ("ListObjectsV2", "s3:ListBucket"),
            ("AbortMultipartUpload", "s3:AbortMultipartUpload"),
        ] {
            let e = Error::Aws {
                action: action.into(),
                code: "AccessDenied".into(),
                message: "Access Denied".into(),
                status: 403,
            };
            assert!(
                e.to_string()
                    .ends_with(&format!("check that the instance role allows {permission}")),
                "failed testcase {action}: {e}"
            );
        }
    }

    #[test]
    fn quorum_lost_names_the_restore_as_the_way_out() {
        let e = Error::QuorumLost {
            healthy: 1,
            voters: 3,
        };
        let text = e.to_string();
        assert!(
            text.contains("1 of 3 voting members are healthy, 2 are needed"),
            "{text}"
        );
        assert!(
            text.contains("replace every instance of the group")
                && text.contains("--snapshot-url and --etcd-data-dir")
                && text.contains("restore the newest snapshot"),
            "{text}"
        );
        assert_eq!(e.exit_code(), 75);
    }

    #[test]
    fn snippet_is_one_bounded_line() {
        let s = snippet(&format!("a\nb\r{}", "x".repeat(500)));
        assert!(!s.contains('\n') && s.chars().count() <= 200);
    }
}
