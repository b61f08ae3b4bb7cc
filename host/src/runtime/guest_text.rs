//! Text that comes from a guest (its errors, panic messages, log and output lines)
//! passes through [`clip`] before the host stores, logs or serves it: cut to
//! [`MAX_GUEST_TEXT`] bytes, so a guest cannot make every status request or retry log
//! carry megabytes, and with control characters escaped, so it cannot end the log
//! line it is written on and forge one of the daemon's own.

use std::fmt::Write;

/// Most bytes of one guest text the host keeps, the cut's marker included.
pub const MAX_GUEST_TEXT: usize = 4096;

/// Room kept for the marker that says how much was cut.
const MARKER_ROOM: usize = 48;

/// `s` with control characters escaped and cut to at most [`MAX_GUEST_TEXT`] bytes at
/// a character boundary, ending with a marker naming how many bytes were cut. Text
/// that needs neither comes back unchanged, so clipping twice changes nothing.
pub fn clip(s: &str) -> String {
    if s.len() <= MAX_GUEST_TEXT && !s.chars().any(escaped) {
        return s.to_owned();
    }
    // Escaping grows the text: see whether all of it fits before choosing a budget
    // (the walk stops as soon as it cannot).
    let mut rendered = 0usize;
    let fits = s.chars().all(|c| {
        rendered += rendered_len(c);
        rendered <= MAX_GUEST_TEXT
    });
    let budget = if fits {
        MAX_GUEST_TEXT
    } else {
        MAX_GUEST_TEXT - MARKER_ROOM
    };
    let mut out = String::with_capacity(budget.min(rendered) + MARKER_ROOM);
    let mut used = s.len();
    for (i, c) in s.char_indices() {
        if out.len() + rendered_len(c) > budget {
            used = i;
            break;
        }
        push(&mut out, c);
    }
    if used < s.len() {
        let _ = write!(out, "… [{} more bytes cut]", s.len() - used);
    }
    out
}

/// Whether `c` is written as an escape: C0/C1 controls (newline, CR, ESC, DEL, ...)
/// and the format characters that move or reorder text on a terminal (line and
/// paragraph separators, bidirectional overrides).
fn escaped(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn rendered_len(c: char) -> usize {
    match c {
        '\n' | '\r' | '\t' => 2,
        c if escaped(c) => format!("\\u{{{:x}}}", c as u32).len(),
        c => c.len_utf8(),
    }
}

fn push(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if escaped(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_plain_text_is_kept_and_control_characters_are_escaped() {
        assert_eq!(clip("all is well: ünïcode"), "all is well: ünïcode");
        assert_eq!(
            clip("a\nERROR refract::daemon::agent: paused\r\u{1b}[2K\u{7}\u{2028}"),
            "a\\nERROR refract::daemon::agent: paused\\r\\u{1b}[2K\\u{7}\\u{2028}"
        );
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary_with_a_marker_and_clipping_is_idempotent() {
        // 3-byte characters, so 4096 falls inside one.
        let long = "€".repeat(10 << 20);
        let cut = clip(&long);
        assert!(cut.len() <= MAX_GUEST_TEXT, "{}", cut.len());
        let kept = cut.find('…').expect("marker");
        assert!(cut[..kept].chars().all(|c| c == '€'));
        assert!(
            cut.ends_with(&format!("… [{} more bytes cut]", long.len() - kept)),
            "{}",
            &cut[kept..]
        );
        assert_eq!(clip(&cut), cut);
        // Escapes count against the budget: a text of newlines is cut too.
        let lines = "\n".repeat(3000);
        let cut = clip(&lines);
        assert!(
            cut.len() <= MAX_GUEST_TEXT && cut.starts_with("\\n\\n"),
            "{cut}"
        );
        assert!(cut.ends_with("more bytes cut]"), "{cut}");
        assert_eq!(clip(&cut), cut);
        // Exactly at the limit: kept whole.
        let exact = "x".repeat(MAX_GUEST_TEXT);
        assert_eq!(clip(&exact), exact);
    }
}
