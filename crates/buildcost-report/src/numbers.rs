//! Numbers as the reports print them: euros to the cent, counts and percentages with
//! thousands separators. Used by the formats and by the hints' sentences.

/// Euros with two decimals and a thousands separator: `€1,240.00`, `-€3.50`.
pub fn eur(value: f64) -> String {
    let sign = if value < 0.0 && (value * 100.0).round() != 0.0 {
        "-"
    } else {
        ""
    };
    format!("{sign}€{}", thousands(&format!("{:.2}", value.abs())))
}

/// A count with a thousands separator: `12,345`.
pub fn count(value: u64) -> String {
    thousands(&value.to_string())
}

/// A decimal with a thousands separator and `decimals` places.
pub fn decimal(value: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    let sign = if value < 0.0 && text.chars().any(|c| ('1'..='9').contains(&c)) {
        "-"
    } else {
        ""
    };
    format!("{sign}{}", thousands(&text))
}

/// A ratio as a percentage with one decimal: `0.0973` → `9.7 %`.
pub fn percent(ratio: f64) -> String {
    format!("{} %", decimal(ratio * 100.0, 1))
}

fn thousands(digits: &str) -> String {
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euros_have_two_decimals_and_thousands_separators() {
        assert_eq!(eur(1240.0), "€1,240.00");
        assert_eq!(eur(1_234_567.891), "€1,234,567.89");
        assert_eq!(eur(0.0), "€0.00");
        assert_eq!(eur(-0.001), "€0.00");
        assert_eq!(eur(-3.5), "-€3.50");
        assert_eq!(eur(100.0), "€100.00");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(999), "999");
        assert_eq!(percent(0.0973), "9.7 %");
        assert_eq!(decimal(12_345.678, 1), "12,345.7");
    }
}
