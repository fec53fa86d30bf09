//! E-mail messages (RFC 822/MIME, `.eml`): the subject as a heading, the senders and
//! recipients and the date, the body as text (HTML bodies converted), then each text
//! attachment under its name.

use mail_parser::{Address, MessageParser, MimeHeaders};

use crate::markdown;

pub fn text(bytes: &[u8]) -> Result<String, String> {
    let message = MessageParser::default()
        .parse(bytes)
        .ok_or("e-mail could not be read: it has no headers")?;
    let mut out = String::new();
    markdown::heading(1, message.subject().unwrap_or("(no subject)"), &mut out);
    for (name, address) in [
        ("From", message.from()),
        ("To", message.to()),
        ("Cc", message.cc()),
    ] {
        if let Some(address) = address {
            out.push_str(&format!("{name}: {}\n", addresses(address)));
        }
    }
    if let Some(date) = message.date() {
        out.push_str(&format!("Date: {}\n", date.to_rfc3339()));
    }
    let mut body = String::new();
    for i in 0..message.text_body_count() {
        if let Some(text) = message.body_text(i) {
            markdown::paragraph(&text, &mut body);
        }
    }
    markdown::end_block(&mut out);
    out.push_str(&body);
    for attachment in message.attachments() {
        if !attachment.is_text() || attachment.is_text_html() {
            continue;
        }
        let name = attachment.attachment_name().unwrap_or("attachment");
        if let Some(text) = attachment.text_contents() {
            markdown::heading(2, &format!("Attachment: {name}"), &mut out);
            markdown::paragraph(text, &mut out);
        }
    }
    Ok(out)
}

fn addresses(address: &Address<'_>) -> String {
    let each: Vec<String> = address
        .iter()
        .map(|a| match (a.name(), a.address()) {
            (Some(name), Some(at)) => format!("{name} <{at}>"),
            (Some(name), None) => name.to_string(),
            (None, Some(at)) => at.to_string(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    each.join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn headers_body_and_text_attachments() {
        let message = b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: Tide pools\r\n\
Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
Anemones close.\r\n--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n\
Crabs hide.\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"a.png\"\r\n\r\n\
xx\r\n--b--\r\n";
        assert_eq!(
            super::text(message).unwrap(),
            "# Tide pools\n\nFrom: Ann <ann@example.org>\nTo: bob@example.org\nDate: 2026-12-07T10:00:00Z\n\n\
             Anemones close.\n\n## Attachment: notes.txt\n\nCrabs hide.\n\n"
        );
    }
}
