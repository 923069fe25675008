//! AWS over its Query API, without an SDK: credentials, SigV4 signing, one client that turns
//! form parameters into a signed POST and the answer into XML or an AWS error, and one
//! function per API call that turns wire structs into `model` types.

pub mod autoscaling;
pub mod credentials;
pub mod ec2;
pub mod query;
pub mod sign;

/// The regional endpoint of `service` (`autoscaling`, `ec2`), unless the operator gave one.
pub fn endpoint(service: &str, region: &str, configured: Option<&str>) -> String {
    if let Some(url) = configured {
        return url.trim_end_matches('/').to_string();
    }
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{service}.{region}.{suffix}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoints() {
        let cases = [
            (
                "autoscaling",
                "eu-west-1",
                None,
                "https://autoscaling.eu-west-1.amazonaws.com",
            ),
            (
                "ec2",
                "cn-north-1",
                None,
                "https://ec2.cn-north-1.amazonaws.com.cn",
            ),
            (
                "ec2",
                "us-east-1",
                Some("http://127.0.0.1:5000/"),
                "http://127.0.0.1:5000",
            ),
        ];
        for (service, region, configured, url) in cases {
            assert_eq!(
                super::endpoint(service, region, configured),
                url,
                "failed testcase: {service} {region}"
            );
        }
    }
}
