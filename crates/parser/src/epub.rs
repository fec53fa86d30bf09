//! EPUB books: the chapters of the spine, in reading order, each read as HTML.

use crate::markdown;
use crate::office::Package;
use crate::xml::Node;

/// The book's chapters as text, in the order of its spine.
pub fn text(
    mut package: Package<'_>,
    html: impl Fn(&[u8]) -> Result<String, String>,
) -> Result<String, String> {
    let mut root = None;
    package.xml("META-INF/container.xml", |node| {
        if let Node::Open(tag) = node {
            if tag.name == "rootfile" && root.is_none() {
                root = tag.attribute("full-path").map(str::to_string);
            }
        }
    })?;
    let root = root.ok_or("EPUB could not be read: META-INF/container.xml names no rootfile")?;
    let base = root.rsplit_once('/').map_or("", |(dir, _)| dir);
    let (mut manifest, mut spine) = (Vec::new(), Vec::new());
    package.xml(&root, |node| {
        if let Node::Open(tag) = node {
            match tag.name.as_str() {
                "item" => {
                    if let (Some(id), Some(href)) = (tag.attribute("id"), tag.attribute("href")) {
                        manifest.push((id.to_string(), href.to_string()));
                    }
                }
                "itemref" => spine.extend(tag.attribute("idref").map(str::to_string)),
                _ => {}
            }
        }
    })?;
    let mut out = String::new();
    for idref in &spine {
        let Some((_, href)) = manifest.iter().find(|(id, _)| id == idref) else {
            continue;
        };
        let path = resolve(base, href);
        let chapter = package.text(&path)?;
        markdown::end_block(&mut out);
        out.push_str(html(chapter.as_bytes())?.trim());
        out.push_str("\n\n");
    }
    Ok(out)
}

/// A manifest `href` (relative to the package document, percent-encoded) as a member
/// name.
fn resolve(base: &str, href: &str) -> String {
    let href = href.split('#').next().unwrap_or(href);
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in href.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    percent_decoded(&parts.join("/"))
}

fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_resolve_against_the_package_document() {
        assert_eq!(
            resolve("OEBPS", "Text/ch%201.xhtml#top"),
            "OEBPS/Text/ch 1.xhtml"
        );
        assert_eq!(
            resolve("OEBPS/content", "../Text/a.xhtml"),
            "OEBPS/Text/a.xhtml"
        );
        assert_eq!(resolve("", "a.html"), "a.html");
    }
}
