//! The HTML page: who and where the workspace runs, and the notes box. Plain HTML with a few
//! lines of inline JavaScript for saving; nothing to build.

use std::time::Duration;

/// What the page shows.
#[derive(Debug)]
pub struct PageInfo<'a> {
    pub hostname: &'a str,
    /// `(label, value)` rows, shown in order.
    pub facts: Vec<(&'static str, String)>,
    pub uptime: Duration,
    pub notes: &'a str,
}

/// Escapes text for HTML element content and quoted attribute values.
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

/// `1d 2h 3m 4s`, leaving out leading zero units.
pub fn format_uptime(uptime: Duration) -> String {
    let s = uptime.as_secs();
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

pub fn render(info: &PageInfo<'_>) -> String {
    let host = escape(info.hostname);
    let mut rows = format!("<tr><th>hostname</th><td id=\"hostname\">{host}</td></tr>\n");
    for (label, value) in &info.facts {
        rows.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>\n",
            escape(label),
            escape(value)
        ));
    }
    rows.push_str(&format!(
        "<tr><th>uptime</th><td>{}</td></tr>\n",
        format_uptime(info.uptime)
    ));
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Atrium workspace on {host}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5rem; }}
th {{ text-align: left; padding: .25rem 1rem .25rem 0; color: #666; font-weight: normal; }}
td {{ font-family: ui-monospace, monospace; }}
textarea {{ width: 100%; height: 16rem; font-family: ui-monospace, monospace; }}
#status {{ color: #666; margin-left: .5rem; }}
</style>
</head>
<body>
<h1>Atrium demo workspace</h1>
<p>This is a stand-in for a Kasm desktop: it speaks the same protocol (HTTPS on 6901, basic auth
<code>kasm_user</code>) and has no desktop.</p>
<table>
{rows}</table>
<h2>Notes</h2>
<p>Saved to <code>$HOME/notes.txt</code> inside the container.</p>
<textarea id="notes" maxlength="1048576">{notes}</textarea>
<p><button id="save" type="button">Save</button><span id="status"></span></p>
<script>
document.getElementById("save").onclick = async () => {{
  const status = document.getElementById("status");
  status.textContent = "saving…";
  try {{
    const r = await fetch("notes", {{ method: "POST", body: document.getElementById("notes").value,
      headers: {{ "Content-Type": "text/plain; charset=utf-8" }} }});
    status.textContent = r.ok ? "saved" : "not saved: " + r.status + " " + (await r.text());
  }} catch (e) {{
    status.textContent = "not saved: " + e;
  }}
}};
</script>
</body>
</html>
"#,
        notes = escape(info.notes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        let page = render(&PageInfo {
            hostname: "<host>",
            facts: vec![("KASM_USER", "a\"b".into())],
            uptime: Duration::from_secs(61),
            notes: "</textarea><script>",
        });
        assert!(page.contains("<td id=\"hostname\">&lt;host&gt;</td>"));
        assert!(page.contains("a&quot;b"));
        assert!(page.contains("&lt;/textarea&gt;&lt;script&gt;"));
        assert!(page.contains("1m 1s"));
    }

    #[test]
    fn uptime_drops_leading_zero_units() {
        assert_eq!(format_uptime(Duration::from_secs(5)), "5s");
        assert_eq!(format_uptime(Duration::from_secs(3600)), "1h 0m 0s");
        assert_eq!(format_uptime(Duration::from_secs(90_061)), "1d 1h 1m 1s");
    }
}
