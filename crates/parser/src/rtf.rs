//! Rich Text Format: the text of the document's body, its paragraphs apart (`\par`),
//! lines (`\line`), tabs and table rows kept; fonts, colours, styles, pictures and every
//! other destination that is not text left out. (The RTF crates give the text but drop
//! the paragraph breaks, which the splitter needs.)

/// Destinations whose content is not the document's text.
const SKIPPED: &[&str] = &[
    "fonttbl",
    "colortbl",
    "stylesheet",
    "info",
    "pict",
    "object",
    "header",
    "headerl",
    "headerr",
    "headerf",
    "footer",
    "footerl",
    "footerr",
    "footerf",
    "listtable",
    "listoverridetable",
    "rsidtbl",
    "generator",
    "xmlnstbl",
    "themedata",
    "colorschememapping",
    "latentstyles",
    "datastore",
    "fldinst",
    "filetbl",
    "revtbl",
    "pgdsctbl",
    "bkmkstart",
    "bkmkend",
    "footnote",
    "nonshppict",
];

/// What a group (`{…}`) inherits and may change.
#[derive(Clone, Copy)]
struct Group {
    skip: bool,
    /// Characters that stand in for each `\u` character, to be skipped (`\ucN`).
    fallback: usize,
}

pub fn text(bytes: &[u8]) -> Result<String, String> {
    if !bytes.starts_with(b"{\\rtf") {
        return Err("RTF could not be read: it does not start with {\\rtf".into());
    }
    let mut groups = vec![Group {
        skip: false,
        fallback: 1,
    }];
    let mut out = Text::default();
    let mut i = 0;
    while i < bytes.len() {
        let group = *groups.last().expect("the outermost group stays");
        match bytes[i] {
            b'{' => {
                groups.push(group);
                i += 1;
            }
            b'}' => {
                if groups.len() > 1 {
                    groups.pop();
                }
                i += 1;
            }
            b'\r' | b'\n' => i += 1,
            b'\\' => {
                let (control, next) = control(bytes, i + 1);
                i = next;
                let top = groups.last_mut().expect("the outermost group stays");
                match control {
                    Control::Word("u", parameter) => {
                        let code = parameter.unwrap_or(0);
                        let code = if code < 0 { code + 65536 } else { code };
                        out.char(group, char::from_u32(code as u32).unwrap_or('\u{fffd}'));
                        out.to_skip = group.fallback;
                    }
                    Control::Word("uc", parameter) => {
                        top.fallback = parameter.unwrap_or(1).max(0) as usize
                    }
                    Control::Word(word, _) if SKIPPED.contains(&word) => top.skip = true,
                    Control::Word(word, _) => out.str(group, symbol(word)),
                    Control::Byte(b) => out.char(group, windows_1252(b)),
                    Control::Char(c) => out.char(group, c),
                    Control::Ignorable => top.skip = true,
                    Control::Paragraph => out.str(group, "\n\n"),
                    Control::None => {}
                }
            }
            b => {
                out.char(group, windows_1252(b));
                i += 1;
            }
        }
    }
    Ok(tidy(&out.text))
}

/// The text written so far, and how many characters to skip: the stand-ins of a `\u`
/// character for readers that do not know Unicode.
#[derive(Default)]
struct Text {
    text: String,
    to_skip: usize,
}

impl Text {
    fn char(&mut self, group: Group, c: char) {
        if self.to_skip > 0 {
            self.to_skip -= 1;
        } else if !group.skip {
            self.text.push(c);
        }
    }

    fn str(&mut self, group: Group, s: &str) {
        if !group.skip {
            self.text.push_str(s);
        }
    }
}

/// What a control word that is not a destination writes (nothing, for formatting).
fn symbol(word: &str) -> &'static str {
    match word {
        "par" | "sect" | "page" => "\n\n",
        "line" | "row" => "\n",
        "tab" | "cell" => "\t",
        "emdash" => "—",
        "endash" => "–",
        "bullet" => "•",
        "lquote" => "‘",
        "rquote" => "’",
        "ldblquote" => "“",
        "rdblquote" => "”",
        _ => "",
    }
}

enum Control<'a> {
    Word(&'a str, Option<i32>),
    Byte(u8),
    Char(char),
    /// `\*`: the group is a destination a reader may ignore.
    Ignorable,
    Paragraph,
    None,
}

/// The control after a backslash at `at`, and where the text after it starts.
fn control(bytes: &[u8], at: usize) -> (Control<'_>, usize) {
    let Some(&first) = bytes.get(at) else {
        return (Control::None, at);
    };
    if first.is_ascii_alphabetic() {
        let end = at
            + bytes[at..]
                .iter()
                .take_while(|b| b.is_ascii_alphabetic())
                .count();
        let word = std::str::from_utf8(&bytes[at..end]).unwrap_or("");
        let digits = bytes[end..]
            .iter()
            .enumerate()
            .take_while(|&(k, b)| b.is_ascii_digit() || (k == 0 && *b == b'-'))
            .count();
        let parameter = std::str::from_utf8(&bytes[end..end + digits])
            .ok()
            .and_then(|p| p.parse().ok());
        let mut next = end + digits;
        if bytes.get(next) == Some(&b' ') {
            next += 1;
        }
        return (Control::Word(word, parameter), next);
    }
    match first {
        b'\'' => {
            let hex = bytes
                .get(at + 1..at + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => (Control::Byte(b), at + 3),
                None => (Control::None, at + 1),
            }
        }
        b'*' => (Control::Ignorable, at + 1),
        b'\\' | b'{' | b'}' => (Control::Char(first as char), at + 1),
        b'~' => (Control::Char('\u{a0}'), at + 1),
        b'_' => (Control::Char('-'), at + 1),
        b'\n' | b'\r' => (Control::Paragraph, at + 1),
        _ => (Control::None, at + 1),
    }
}

/// A byte of Windows-1252, the ANSI code page RTF documents name most.
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[(b - 0x80) as usize],
        b => b as char,
    }
}

/// Lines without trailing spaces, at most one blank line between blocks.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_characters_and_skipped_destinations() {
        let rtf = br"{\rtf1\ansi\ansicpg1252{\fonttbl\f0\fswiss Helvetica;}{\colortbl;\red0\green0\blue0;}
{\*\generator Writer;}{\info{\title Secret}}\f0\pard Tide pools{\b  close}.\par
Caf\'e9 \u8364?5\line next\tab cell\par {\pict 0a0b}\uc2\u8212??end\par}";
        assert_eq!(
            text(rtf).unwrap(),
            "Tide pools close.\n\nCafé €5\nnext\tcell\n\n—end"
        );
        assert!(text(b"not rtf").is_err());
    }
}
