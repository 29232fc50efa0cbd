//! [`param_set!`](crate::param_set): a parameter struct and its [`ParamSet`](crate::ParamSet)
//! impl from one declaration.

/// Declares a struct of named arrays and implements [`ParamSet`](crate::ParamSet) for it:
/// one slot per field, in field order, named after the field. The struct derives `Debug`
/// and `Clone`, which is all a [`Cell`]'s parameter type needs beyond the impl.
///
/// Every field must be an owned `ndarray` array over the float type parameter (`Array1<F>`,
/// `Array2<F>`, …). A set with optional tensors or sparse-row hints (such as the Elman
/// cell's token-input weights) writes its impl by hand.
///
/// [`Cell`]: https://docs.rs/recur-cell
///
/// ```
/// use ndarray::{Array1, Array2};
/// use recur_core::{param_set, params, ParamSet};
///
/// param_set! {
///     /// Weights of a leaky cell.
///     pub struct LeakyParams<F> {
///         /// Input weights `[input, hidden]`.
///         pub w_xh: Array2<F>,
///         /// Recurrent weights `[hidden, hidden]`.
///         pub w_hh: Array2<F>,
///         /// Bias `[hidden]`.
///         pub b_h: Array1<F>,
///     }
/// }
///
/// let p = LeakyParams { w_xh: Array2::<f64>::ones((3, 2)), w_hh: Array2::ones((2, 2)), b_h: Array1::ones(2) };
/// assert_eq!(params::paths(&p), ["w_xh", "w_hh", "b_h"]);
/// assert_eq!(params::len(&p), 12);
/// ```
#[macro_export]
macro_rules! param_set {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident<$float:ident> {
            $( $(#[$field_meta:meta])* $field_vis:vis $field:ident : $ty:ty ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        $vis struct $name<$float> {
            $( $(#[$field_meta])* $field_vis $field: $ty, )+
        }

        impl<$float: $crate::Float> $crate::ParamSet<$float> for $name<$float> {
            fn slot_count(&self) -> usize {
                [$(stringify!($field)),+].len()
            }

            fn slot(&self, index: usize) -> $crate::Slot<'_, $float> {
                let mut slot = 0;
                $(
                    if index == slot {
                        return $crate::Slot {
                            name: stringify!($field),
                            value: self.$field.view().into_dyn(),
                            rows: None,
                        };
                    }
                    slot += 1;
                )+
                panic!("{} has {slot} slots, not slot {index}", stringify!($name))
            }

            fn slot_mut(&mut self, index: usize) -> $crate::SlotMut<'_, $float> {
                let mut slot = 0;
                $(
                    if index == slot {
                        return $crate::SlotMut {
                            name: stringify!($field),
                            value: self.$field.view_mut().into_dyn(),
                        };
                    }
                    slot += 1;
                )+
                panic!("{} has {slot} slots, not slot {index}", stringify!($name))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use ndarray::{array, Array1, Array2};

    use crate::{params, ParamSet};

    param_set! {
        struct Two<F> {
            a: Array2<F>,
            b: Array1<F>,
        }
    }

    #[test]
    fn slots_follow_field_order_and_write_through() {
        let mut two = Two {
            a: array![[1.0_f64, 2.0]],
            b: array![3.0],
        };
        assert_eq!(two.slot_count(), 2);
        assert_eq!(params::flatten(&two), vec![1.0, 2.0, 3.0]);
        two.slot_mut(1).value[[0]] = 5.0;
        assert_eq!(params::flatten(&two), vec![1.0, 2.0, 5.0]);
        two.zero();
        assert_eq!(params::flatten(&two), vec![0.0; 3]);
        assert_eq!(params::paths(&two), ["a", "b"]);
    }
}
