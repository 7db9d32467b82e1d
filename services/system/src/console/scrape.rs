//! Reading a service's `/metrics` page (the Prometheus text format the
//! services write: `liaison_runtime::metrics`): each sample's name, labels and
//! value, and the names a page exports. Only what the console and the
//! dashboard check need; malformed lines are skipped, never trusted.

use std::collections::BTreeSet;

/// One sample line: `name{label="value",...} number`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// The value of label `name` ("" if absent).
    pub fn label(&self, name: &str) -> &str {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Every well-formed sample of a page.
pub fn parse(page: &str) -> Vec<Sample> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(sample)
        .collect()
}

/// The sample names a page exports: each family of its `# TYPE` lines, a
/// histogram's as `_bucket`, `_sum` and `_count` too, and every sample's.
pub fn exported_names(page: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in page.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            names.insert(name.to_owned());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    names.extend(parse(page).into_iter().map(|s| s.name));
    names
}

fn sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
    {
        return None;
    }
    let (labels, rest) = if line[name_end..].starts_with('{') {
        labels(&line[name_end + 1..])?
    } else {
        (vec![], &line[name_end..])
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `k="v",...}` and what follows the closing brace.
fn labels(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches(',');
        if let Some(rest) = text.strip_prefix('}') {
            return Some((labels, rest));
        }
        let (key, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key.trim().to_owned(), value));
        text = &rest[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# HELP a_total A.\n# TYPE a_total counter\n\
        a_total{agency=\"police\",code=\"x\\\"y\\\\z\"} 3\n\
        # TYPE h_seconds histogram\nh_seconds_bucket{le=\"+Inf\"} 2\nh_seconds_sum 0.5\n\
        # TYPE empty_total counter\nbroken{agency=\"x 1\nplain 7\n";

    #[test]
    fn samples_are_read_with_their_labels_unescaped() {
        let samples = parse(PAGE);
        assert_eq!(samples.len(), 4, "{samples:?}");
        assert_eq!(samples[0].name, "a_total");
        assert_eq!(samples[0].label("agency"), "police");
        assert_eq!(samples[0].label("code"), "x\"y\\z");
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[1].label("le"), "+Inf");
        assert_eq!(samples[3].name, "plain");
        assert_eq!(samples[3].value, 7.0);
    }

    #[test]
    fn exported_names_include_empty_families_and_histogram_series() {
        let names = exported_names(PAGE);
        for name in [
            "a_total",
            "empty_total",
            "h_seconds",
            "h_seconds_bucket",
            "h_seconds_count",
            "plain",
        ] {
            assert!(names.contains(name), "{name}: {names:?}");
        }
        assert!(!names.contains("broken"));
    }
}
