//! Reading the XML inside Office, OpenDocument and EPUB files as a stream of elements
//! and text, names without their namespace prefix (`text:p` is `p`).

use std::borrow::Cow;

use quick_xml::encoding::Decoder;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// An element's local name and its attributes (whether the name has a namespace
/// prefix, its local name, its value unescaped).
pub struct Tag {
    pub name: String,
    attributes: Vec<(bool, String, String)>,
}

impl Tag {
    /// The first attribute of this local name, prefixed or not.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        (self.attributes.iter())
            .find(|(_, n, _)| n == name)
            .map(|(_, _, v)| v.as_str())
    }

    /// The attribute of this local name that has a namespace prefix (`r:id` beside `id`).
    pub fn prefixed(&self, name: &str) -> Option<&str> {
        (self.attributes.iter())
            .find(|(prefixed, n, _)| *prefixed && n == name)
            .map(|(_, _, v)| v.as_str())
    }
}

pub enum Node<'a> {
    Open(Tag),
    /// An element's end (an empty element is opened, then closed), by local name.
    Close(String),
    Text(Cow<'a, str>),
}

/// Calls `visit` with each element and text of `xml`, in document order.
pub fn walk(xml: &str, mut visit: impl FnMut(Node<'_>)) -> Result<(), String> {
    let mut reader = Reader::from_str(xml);
    let bad = |e: &dyn std::fmt::Display| format!("its XML is not well-formed: {e}");
    loop {
        match reader.read_event().map_err(|e| bad(&e))? {
            Event::Start(e) => visit(Node::Open(tag(&e, reader.decoder()).map_err(|e| bad(&e))?)),
            Event::Empty(e) => {
                let tag = tag(&e, reader.decoder()).map_err(|e| bad(&e))?;
                let name = tag.name.clone();
                visit(Node::Open(tag));
                visit(Node::Close(name));
            }
            Event::End(e) => visit(Node::Close(local(e.local_name().as_ref()))),
            Event::Text(t) => visit(Node::Text(t.decode().map_err(|e| bad(&e))?)),
            Event::CData(t) => visit(Node::Text(Cow::Owned(
                String::from_utf8_lossy(&t.into_inner()).into_owned(),
            ))),
            Event::GeneralRef(r) => {
                let text = match r.resolve_char_ref().map_err(|e| bad(&e))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| bad(&e))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .unwrap_or_default()
                            .to_string()
                    }
                };
                visit(Node::Text(Cow::Owned(text)));
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

fn tag(e: &BytesStart<'_>, decoder: Decoder) -> Result<Tag, quick_xml::Error> {
    let mut attributes = Vec::new();
    for a in e.attributes().with_checks(false) {
        let a = a?;
        attributes.push((
            a.key.prefix().is_some(),
            local(a.key.local_name().as_ref()),
            a.decoded_and_normalized_value(quick_xml::XmlVersion::Implicit1_0, decoder)?
                .into_owned(),
        ));
    }
    Ok(Tag {
        name: local(e.local_name().as_ref()),
        attributes,
    })
}

fn local(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_and_text_by_local_name() {
        let mut seen = Vec::new();
        walk(
            r#"<?xml version="1.0"?><office:text xmlns:office="o" xmlns:text="t"><text:h text:outline-level="2">Tide &amp; <![CDATA[pools]]>&#x21;</text:h><text:s/></office:text>"#,
            |node| {
                seen.push(match node {
                    Node::Open(t) => format!("<{} {:?}>", t.name, t.attribute("outline-level")),
                    Node::Close(n) => format!("</{n}>"),
                    Node::Text(t) => t.into_owned(),
                })
            },
        )
        .unwrap();
        assert_eq!(
            seen.concat(),
            "<text None><h Some(\"2\")>Tide & pools!</h><s None></s></text>"
        );
        assert!(walk("<a><b></a>", |_| {}).is_err());
    }
}
