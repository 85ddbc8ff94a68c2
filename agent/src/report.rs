//! How errors reach the person at the terminal (and, under `--json`, a script): what happened,
//! what to do, and a stable code.

use eid_card::Error;

/// The JSON form of an error.
#[derive(Debug, serde::Serialize)]
pub struct ErrorReport {
    pub code: &'static str,
    pub message: String,
    pub remedy: String,
    pub retryable: bool,
}

impl ErrorReport {
    pub fn new(error: &Error) -> Self {
        // For pcscd trouble, the installer's diagnosis knows the exact command for this machine.
        let remedy = match error {
            Error::PcscdNotRunning | Error::PcscdStopped => eid_installer::pcscd::diagnose()
                .remedy()
                .map(|fix| format!("Start the smart card service: {fix}"))
                .unwrap_or_else(|| error.remedy().to_owned()),
            _ => error.remedy().to_owned(),
        };
        ErrorReport {
            code: error.code(),
            message: error.to_string(),
            remedy,
            retryable: error.is_retryable(),
        }
    }

    /// Prints to stderr (text) or stdout (JSON).
    pub fn print(&self, json: bool) {
        if json {
            let value = serde_json::json!({ "error": self });
            println!("{value}");
        } else {
            eprintln!(
                "error: {}\n  what to do: {}\n  code: {}",
                self.message, self.remedy, self.code
            );
        }
    }
}

/// Prints an error that is not a card error, in the same shape as [`ErrorReport::print`]:
/// stderr in words, or one JSON object on stdout.
pub fn print_other(code: &str, message: &str, remedy: &str, json: bool) {
    if json {
        let value =
            serde_json::json!({ "error": { "code": code, "message": message, "remedy": remedy } });
        println!("{value}");
    } else {
        eprintln!("error: {message}\n  what to do: {remedy}\n  code: {code}");
    }
}
