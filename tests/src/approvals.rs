//! Helpers for approvals on the local stack: the notices the approval function published (read
//! from the emulator's record of SNS messages), opening and confirming links as a browser does.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Stack;

/// One approval notice, as SNS subscribers get it.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The topic it went to.
    pub topic: String,
    /// The subject line.
    pub subject: String,
    /// CodePipeline's approval JSON (the message's `default`).
    pub json: Value,
    /// The text email subscribers read.
    pub email: String,
}

impl Notice {
    /// `approval.<member>` as a string.
    pub fn approval(&self, member: &str) -> &str {
        self.json["approval"][member].as_str().unwrap_or_default()
    }
}

/// Every approval notice published so far (oldest first).
pub fn notices(stack: &Stack) -> Vec<Notice> {
    let url = format!("{}/_fakecloud/sns/messages", stack.endpoint);
    let mut response = ureq::get(&url)
        .call()
        .expect("the emulator lists SNS messages");
    let text = response
        .body_mut()
        .read_to_string()
        .expect("the SNS message list");
    let listed: Value = serde_json::from_str(&text).expect("SNS messages are JSON");
    listed["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let structure: Value = serde_json::from_str(m["message"].as_str()?).ok()?;
            let json: Value = serde_json::from_str(structure["default"].as_str()?).ok()?;
            json.get("approval")?;
            Some(Notice {
                topic: m["topicArn"].as_str().unwrap_or_default().to_string(),
                subject: m["subject"].as_str().unwrap_or_default().to_string(),
                json,
                email: structure["email"].as_str().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// The notice of execution `execution_id`'s approval, once it was published.
pub fn wait_for_notice(stack: &Stack, execution_id: &str) -> Notice {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(n) = notices(stack)
            .into_iter()
            .find(|n| n.approval("pipelineExecutionId") == execution_id)
        {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "no approval notice for execution {execution_id}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// GET `url` as a browser opening a link: (status, body).
pub fn open(url: &str) -> (u16, String) {
    let mut response = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("the approval gateway answers");
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// The `t` parameter of a link.
pub fn link_token(url: &str) -> String {
    url.split_once("?t=")
        .map(|(_, t)| t.to_string())
        .expect("an approval link has ?t=")
}

/// POST the confirmation form for link token `token` with `summary`, as the page's button
/// does: (status, body).
pub fn confirm(stack: &Stack, token: &str, summary: &str) -> (u16, String) {
    let body = format!("t={}&summary={}", form_encode(token), form_encode(summary));
    let mut response = ureq::post(&format!("{}/", stack.approval_endpoint))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .config()
        .http_status_as_error(false)
        .build()
        .send(body.as_bytes())
        .expect("the approval gateway answers");
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
