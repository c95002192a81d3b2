//! How a producer wants a reminder delivered.

use serde::{Deserialize, Serialize};

/// The Python backend's `notificationMethod` (on its reminder events) and `reminderConfig.method`
/// (on its tasks). taskhost's inbox shows every notification whatever the method; the method is
/// kept on the notification and handed to the output binding, which is what delivers by email or
/// push.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationMethod {
    Email,
    Push,
    Both,
}

impl NotificationMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationMethod::Email => "email",
            NotificationMethod::Push => "push",
            NotificationMethod::Both => "both",
        }
    }

    /// Exactly the spellings that backend validates (`email`, `push`, `both`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(NotificationMethod::Email),
            "push" => Some(NotificationMethod::Push),
            "both" => Some(NotificationMethod::Both),
            _ => None,
        }
    }

    /// `Ok(None)` for no method, an error naming the value for one that is not a method.
    pub fn parse_field(field: &str, s: Option<&str>) -> Result<Option<Self>, String> {
        s.map(|s| {
            Self::parse(s).ok_or_else(|| format!("{field} `{s}` is not one of email, push, both"))
        })
        .transpose()
    }
}
