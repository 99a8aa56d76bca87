//! Column-aligned tables as kubectl prints them.

/// Formats rows under headers, columns separated by at least three spaces.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 3;
                text.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// kubectl's tab writer (minimum cell width 6, padding 3): every cell but the last of a
/// line is padded to its column's width. Unlike [`render`], trailing padding is kept when the
/// last cell is empty, as kubectl prints it.
pub fn tabwrite(lines: &[Vec<String>]) -> String {
    tabwrite_remembering(lines, &mut Vec::new())
}

/// [`tabwrite`] for output written in parts (`get --watch`): `widths` holds the widest each
/// column has been so far, and no column gets narrower, so later rows stay aligned.
pub fn tabwrite_remembering(lines: &[Vec<String>], widths: &mut Vec<usize>) -> String {
    const MIN_WIDTH: usize = 6;
    const PADDING: usize = 3;
    for line in lines {
        for (i, cell) in line.iter().enumerate().take(line.len().saturating_sub(1)) {
            let width = (cell.chars().count() + PADDING).max(MIN_WIDTH);
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut out = String::new();
    for line in lines {
        let last = line.len().saturating_sub(1);
        for (i, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let width = widths.get(i).copied().unwrap_or(0);
                out.push_str(&" ".repeat(width.saturating_sub(cell.chars().count())));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let text = render(
            &["NAME", "STATUS"],
            &[
                vec!["a".into(), "Ready".into()],
                vec!["longer-name".into(), "NotReady".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME          STATUS\na             Ready\nlonger-name   NotReady\n"
        );
    }

    #[test]
    fn tabwrite_pads_like_kubectl() {
        let text = tabwrite(&[
            vec!["NAME".into(), "OK".into(), "MESSAGE".into()],
            vec!["a".into(), "1".into(), "".into()],
        ]);
        assert_eq!(text, "NAME   OK    MESSAGE\na      1     \n");
    }
}
