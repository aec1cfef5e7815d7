//! Exact sums of euros and hours: every figure adds up to the same bits in any order, on any
//! number of cores, incrementally or at once.
//!
//! A build's cost is computed in `f64` (spec section 5) and then kept as a whole number of
//! 10⁻¹² units (pico-euros, pico-hours) in an `i128`. Integer addition is associative, so a
//! day's total, a window's total and an org total do not depend on the order the builds were
//! read in, and a build moved from one class to another (a success found to be a duplicate)
//! leaves no rounding behind. Rounding a build to 10⁻¹² € moves a year of 22 million builds
//! by at most 10⁻⁵ €.

use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use serde::{Deserialize, Serialize};

/// A quantity in units of 10⁻¹² (of a euro, of an hour), exact to add and subtract.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Exact(pub i128);

impl Exact {
    /// Units per whole (10¹²).
    pub const SCALE: f64 = 1e12;
    /// Nothing.
    pub const ZERO: Exact = Exact(0);

    /// `value` rounded to the nearest 10⁻¹² (not finite: 0; beyond ±10²⁶: saturated).
    pub fn from_f64(value: f64) -> Self {
        // `as` saturates and maps NaN to 0, so no input panics.
        #[allow(clippy::cast_possible_truncation)]
        Exact((value * Self::SCALE).round() as i128)
    }

    /// The value as a float (the nearest `f64`).
    pub fn to_f64(self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let units = self.0 as f64;
        units / Self::SCALE
    }
}

impl Add for Exact {
    type Output = Exact;
    fn add(self, other: Exact) -> Exact {
        Exact(self.0.saturating_add(other.0))
    }
}

impl AddAssign for Exact {
    fn add_assign(&mut self, other: Exact) {
        *self = *self + other;
    }
}

impl Sub for Exact {
    type Output = Exact;
    fn sub(self, other: Exact) -> Exact {
        Exact(self.0.saturating_sub(other.0))
    }
}

impl SubAssign for Exact {
    fn sub_assign(&mut self, other: Exact) {
        *self = *self - other;
    }
}

impl Sum for Exact {
    fn sum<I: Iterator<Item = Exact>>(iter: I) -> Exact {
        iter.fold(Exact::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Exact> for Exact {
    fn sum<I: Iterator<Item = &'a Exact>>(iter: I) -> Exact {
        iter.copied().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rounds_to_the_nearest_unit_and_back() {
        assert_eq!(Exact::from_f64(0.125).0, 125_000_000_000);
        assert_eq!(Exact::from_f64(1.0).to_f64(), 1.0);
        assert_eq!(Exact::from_f64(f64::NAN), Exact::ZERO);
        assert_eq!(Exact::from_f64(1e-13), Exact::ZERO);
    }

    proptest! {
        #[test]
        fn sums_do_not_depend_on_order(values in proptest::collection::vec(0.0f64..1000.0, 0..200)) {
            let forward: Exact = values.iter().map(|v| Exact::from_f64(*v)).sum();
            let backward: Exact = values.iter().rev().map(|v| Exact::from_f64(*v)).sum();
            prop_assert_eq!(forward, backward);
            let total: f64 = values.iter().sum();
            prop_assert!((forward.to_f64() - total).abs() <= 1e-9 * (1.0 + total));
        }
    }
}
