//! `ai.loading_column` and `ai.loading_uri`: where a row's document comes from.

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Result};
use crate::part::{in_range, ConfigPart};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "implementation", rename_all = "snake_case", deny_unknown_fields)]
pub enum Loading {
    /// The document is the column's value (text-like or bytea).
    Column {
        column_name: String,
        #[serde(default = "default_retries")]
        retries: i32,
    },
    /// The column holds a URI (`s3://…`, `https://…`, `file://…`) of the document.
    Uri {
        column_name: String,
        #[serde(default = "default_retries")]
        retries: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aws_role_arn: Option<String>,
    },
}

fn default_retries() -> i32 {
    6
}

pub const ARN_FORM: &str = "arn:aws:iam::<12-digit account id>:role/<role name or path/name>";

impl Loading {
    pub fn column(column_name: &str, retries: i32) -> Self {
        Loading::Column {
            column_name: column_name.to_string(),
            retries,
        }
    }

    pub fn uri(column_name: &str, retries: i32, aws_role_arn: Option<&str>) -> Self {
        Loading::Uri {
            column_name: column_name.to_string(),
            retries,
            aws_role_arn: aws_role_arn.map(str::to_string),
        }
    }

    pub fn column_name(&self) -> &str {
        match self {
            Loading::Column { column_name, .. } | Loading::Uri { column_name, .. } => column_name,
        }
    }

    pub fn retries(&self) -> i32 {
        match self {
            Loading::Column { retries, .. } | Loading::Uri { retries, .. } => *retries,
        }
    }
}

impl ConfigPart for Loading {
    const CONFIG_TYPE: &'static str = "loading";
    const BUILDERS: &'static str = "ai.loading_column(…) or ai.loading_uri(…)";

    fn validate(&self) -> Result<()> {
        if self.column_name().is_empty() {
            return Err(ConfigError::invalid(
                "loading column_name must not be empty",
            ));
        }
        in_range("loading retries", self.retries(), 0..=1000)?;
        if let Loading::Uri {
            aws_role_arn: Some(arn),
            ..
        } = self
        {
            validate_role_arn(arn)?;
        }
        Ok(())
    }
}

/// `arn:aws:iam::<12 digits>:role/<path/name>`, also in the partitions aws-cn and
/// aws-us-gov. Role names and paths use `[A-Za-z0-9+=,.@_-]` and `/`.
pub fn validate_role_arn(arn: &str) -> Result<()> {
    let invalid = || {
        ConfigError::invalid(format!("invalid aws_role_arn \"{arn}\""))
            .with_hint(format!("an IAM role ARN has the form {ARN_FORM}"))
    };
    let rest = ["arn:aws:iam::", "arn:aws-cn:iam::", "arn:aws-us-gov:iam::"]
        .iter()
        .find_map(|prefix| arn.strip_prefix(prefix))
        .ok_or_else(invalid)?;
    let (account, role) = rest.split_once(":role/").ok_or_else(invalid)?;
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let role_ok = !role.is_empty()
        && !role.starts_with('/')
        && !role.ends_with('/')
        && !role.contains("//")
        && role.len() <= 512
        && role
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b));
    if account_ok && role_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_pgai_shape() {
        assert_eq!(
            Loading::uri("uri", 6, Some("arn:aws:iam::123456789012:role/S3Access"))
                .build()
                .unwrap(),
            json!({"implementation": "uri", "config_type": "loading", "column_name": "uri",
                   "retries": 6, "aws_role_arn": "arn:aws:iam::123456789012:role/S3Access"})
        );
        assert_eq!(
            Loading::column("body", 6).build().unwrap(),
            json!({"implementation": "column", "config_type": "loading",
                   "column_name": "body", "retries": 6})
        );
    }

    #[test]
    fn reads_json_with_defaults() {
        let l = Loading::from_json(&json!({"implementation": "uri", "config_type": "loading",
                                           "column_name": "u"}))
        .unwrap();
        assert_eq!(l.retries(), 6);
    }

    #[test]
    fn role_arns() {
        for ok in [
            "arn:aws:iam::123456789012:role/S3AccessRole",
            "arn:aws:iam::123456789012:role/service-role/path/My.Role@x",
            "arn:aws-cn:iam::123456789012:role/r",
        ] {
            validate_role_arn(ok).unwrap();
        }
        for bad in [
            "",
            "arn:aws:iam::account:role/role-name-with-path",
            "arn:aws:iam::12345678901:role/x",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:role/a b",
            "arn:aws:iam::123456789012:role//x",
        ] {
            let e = validate_role_arn(bad).unwrap_err();
            assert_eq!(e.state.code(), "22023", "{bad}");
            assert!(e.message.contains(bad));
            assert!(e
                .hint
                .unwrap()
                .contains("arn:aws:iam::<12-digit account id>"));
        }
    }

    #[test]
    fn negative_retries() {
        let e = Loading::column("c", -1).build().unwrap_err();
        assert_eq!(
            e.message,
            "loading retries must be between 0 and 1000, got -1"
        );
    }

    #[test]
    fn wrong_part() {
        let e = Loading::from_json(&json!({"implementation": "none", "config_type": "chunking"}))
            .unwrap_err();
        assert!(
            e.message.contains("config_type \"chunking\""),
            "{}",
            e.message
        );
        let e = Loading::from_json(&json!({"implementation": "ftp", "config_type": "loading",
                                           "column_name": "x"}))
        .unwrap_err();
        assert!(e.message.contains("unknown variant `ftp`"), "{}", e.message);
    }
}
