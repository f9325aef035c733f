//! The HTML pages an approval link shows: the review page (the details, and Approve and Reject
//! buttons or how to decide signed in), the confirmation page (the details and one button) and
//! the pages that say what happened. Every value is escaped; the pages load nothing from
//! anywhere (the response's Content-Security-Policy forbids it).

use pipewright_core::approvals::{expires_text, Decision, PendingApproval};
use serde_json::{json, Value};

/// An HTML response for a Function URL.
pub fn response(status: u16, html: String) -> Value {
    json!({
        "statusCode": status,
        "headers": {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-store",
            "content-security-policy":
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "referrer-policy": "no-referrer",
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "x-robots-tag": "noindex, nofollow",
        },
        "body": html,
        "isBase64Encoded": false,
    })
}

/// `&`, `<`, `>`, `"` and `'` as entities.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex, nofollow\">\
         <title>{title} · Pipewright</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}}\
         table{{border-collapse:collapse;margin:1rem 0}}th{{text-align:left;padding:.2rem 1rem .2rem 0;color:#57606a;font-weight:normal}}\
         td{{padding:.2rem 0}}textarea{{width:100%;min-height:5rem}}\
         button{{font-size:1rem;padding:.5rem 1.5rem;margin-top:1rem;border:0;border-radius:.3rem;color:#fff;cursor:pointer}}\
         pre{{white-space:pre-wrap;background:#f6f8fa;padding:.5rem}}.approve{{background:#1f883d}}.reject{{background:#cf222e}}.note{{color:#57606a}}\
         </style></head><body><h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape(title),
    )
}

fn details(p: &PendingApproval) -> String {
    let mut rows = vec![
        ("Pipeline", escape(&p.ids.pipeline_name)),
        ("Stage", escape(&p.stage_name)),
        ("Action", escape(&p.action_name)),
        ("Execution", escape(&p.ids.pipeline_execution_id)),
    ];
    for r in &p.source_revisions {
        let summary = r
            .revision_summary
            .as_deref()
            .and_then(|s| s.lines().next())
            .map(|s| format!(" ({})", escape(s)))
            .unwrap_or_default();
        rows.push((
            "Source",
            format!(
                "{}: {}{summary}",
                escape(&r.action_name),
                escape(r.revision_id.as_deref().unwrap_or("unknown revision"))
            ),
        ));
    }
    if let Some(link) = &p.external_entity_link {
        let cell = if link.starts_with("https://") || link.starts_with("http://") {
            format!(
                "<a href=\"{0}\" rel=\"noopener noreferrer\">{0}</a>",
                escape(link)
            )
        } else {
            escape(link)
        };
        rows.push(("Content to review", cell));
    }
    rows.push(("Expires", escape(&expires_text(p.expires))));
    let mut html = String::from("<table>");
    for (name, value) in rows {
        html.push_str(&format!("<tr><th>{name}</th><td>{value}</td></tr>"));
    }
    html.push_str("</table>");
    if let Some(data) = &p.custom_data {
        html.push_str(&format!("<p>{}</p>", escape(data)));
    }
    html
}

/// The page a link opens: the details and a form that POSTs the decision (with an optional
/// comment). Nothing is decided by showing it.
pub fn confirm(p: &PendingApproval, decision: Decision, link: &str) -> String {
    let (title, class, button) = match decision {
        Decision::Approved => ("Approve this change?", "approve", "Approve"),
        Decision::Rejected => ("Reject this change?", "reject", "Reject"),
    };
    layout(
        title,
        &format!(
            "{details}<form method=\"post\">\
             <input type=\"hidden\" name=\"t\" value=\"{link}\">\
             <label for=\"summary\">Comment (optional, recorded with your decision)</label>\
             <textarea id=\"summary\" name=\"summary\" maxlength=\"512\"></textarea>\
             <button class=\"{class}\" type=\"submit\">{button}</button></form>\
             <p class=\"note\">Nothing has been decided yet: only the button does. This link \
             works once.</p>",
            details = details(p),
            link = escape(link),
        ),
    )
}

/// The review page (`approvalReviewLink`, `consoleLink`): the details and, when one-click approval
/// is on, one form with a comment box and two buttons, each posting its own signed link
/// (`buttons`: approve, reject); otherwise how to decide signed in. Showing it decides nothing.
pub fn review(p: &PendingApproval, buttons: Option<(String, String)>) -> String {
    let actions = match buttons {
        Some((approve, reject)) => format!(
            "<form method=\"post\">\
             <label for=\"summary\">Comment (optional, recorded with your decision)</label>\
             <textarea id=\"summary\" name=\"summary\" maxlength=\"512\"></textarea>\
             <button class=\"approve\" type=\"submit\" name=\"t\" value=\"{}\">Approve</button> \
             <button class=\"reject\" type=\"submit\" name=\"t\" value=\"{}\">Reject</button>\
             </form><p class=\"note\">Nothing has been decided yet: only a button does.</p>",
            escape(&approve),
            escape(&reject),
        ),
        None => format!(
            "<p>One-click approval is off for this approval: decide it signed in, with \
             <code>codepipeline:PutApprovalResult</code> on this pipeline:</p><pre>{}</pre>",
            escape(&p.signed_in_commands()),
        ),
    };
    layout("Approval waiting", &format!("{}{actions}", details(p)))
}

/// The page after a recorded decision.
pub fn decided(p: &PendingApproval, decision: Decision) -> String {
    let (title, next) = match decision {
        Decision::Approved => ("Approved", "The pipeline goes on."),
        Decision::Rejected => ("Rejected", "The stage and the execution fail."),
    };
    layout(
        title,
        &format!("{}<p>Your decision was recorded. {next}</p>", details(p)),
    )
}

/// A page saying why the link did nothing.
pub fn refused(title: &str, reason: &str) -> String {
    layout(
        title,
        &format!(
            "<p>{}</p><p class=\"note\">Nothing was changed.</p>",
            escape(reason)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipewright_core::engine::ExecutionIds;

    fn pending() -> PendingApproval {
        PendingApproval {
            ids: ExecutionIds {
                pipeline_name: "app<script>".into(),
                pipeline_version: 1,
                pipeline_execution_id: "e-1".into(),
            },
            stage_name: "Approve".into(),
            action_name: "Release".into(),
            token: "tok".into(),
            started: 0.0,
            expires: 600.0,
            notification_arn: None,
            custom_data: Some("<b>look</b> & see".into()),
            external_entity_link: Some("javascript:alert(1)".into()),
            source_revisions: vec![],
            one_click_links: true,
        }
    }

    #[test]
    fn everything_shown_is_escaped() {
        let html = confirm(&pending(), Decision::Approved, "a\"b.c");
        assert!(html.contains("app&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;b&gt;look&lt;/b&gt; &amp; see"));
        assert!(html.contains("value=\"a&quot;b.c\""));
        // Only http(s) links become anchors.
        assert!(!html.contains("href=\"javascript"));
    }

    #[test]
    fn the_confirmation_page_posts_its_decision() {
        let html = confirm(&pending(), Decision::Rejected, "x.y");
        assert!(html.contains("<form method=\"post\">"));
        assert!(html.contains(">Reject</button>"));
        assert!(!html.contains(">Approve</button>"));
    }

    #[test]
    fn the_review_page_offers_both_decisions_or_the_signed_in_commands() {
        let html = review(&pending(), Some(("ok.1".into(), "no.2".into())));
        assert!(
            html.contains("name=\"t\" value=\"ok.1\">Approve</button>"),
            "{html}"
        );
        assert!(
            html.contains("name=\"t\" value=\"no.2\">Reject</button>"),
            "{html}"
        );
        let html = review(&pending(), None);
        assert!(!html.contains("<form"), "{html}");
        assert!(
            html.contains("put-approval-result --pipeline-name &#39;app&lt;script&gt;&#39;"),
            "{html}"
        );
    }

    #[test]
    fn responses_forbid_framing_caching_and_outside_content() {
        let r = response(200, String::new());
        assert_eq!(r["headers"]["cache-control"], "no-store");
        assert_eq!(r["headers"]["x-frame-options"], "DENY");
        assert!(r["headers"]["content-security-policy"]
            .as_str()
            .unwrap()
            .starts_with("default-src 'none'"));
    }
}
