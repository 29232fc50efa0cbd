//! Training with the products and the loss split over threads gives bit-identical
//! gradients, losses and logits to one thread.

use recur_bptt::{Bptt, Truncation};
use recur_core::{linalg, params};
use recur_loss::{Reduction, SoftmaxCrossEntropy, IGNORE};

mod common;

#[test]
fn split_loss_and_products_match_one_thread_bitwise() {
    // 20 steps × 4 sequences × 1000 classes: above the size from which the loss is split.
    let (vocab, hidden, len, batch) = (1000, 16, 20, 4);
    let model = common::token_model::<f32>(vocab, hidden, true, 9);
    let (x, mut y) = common::token_text(len, batch, vocab, 10);
    y[[len - 1, 2]] = IGNORE; // padding rows take their own path
    let seq = common::token_batch(&x, &y);
    let run = |threads: usize| {
        linalg::set_threads(threads).unwrap();
        let mut engine = Bptt::new(Truncation::per_output(3).unwrap(), Reduction::Mean);
        let mut grads = model.zero_grads();
        let report = engine
            .accumulate(&model, &SoftmaxCrossEntropy, seq, None, &mut grads)
            .unwrap();
        let logits = engine.logits().to_owned();
        let evaluated = engine
            .evaluate(&model, &SoftmaxCrossEntropy, seq, None)
            .unwrap();
        (report, evaluated, logits, params::flatten(&grads))
    };
    let one = run(1);
    for threads in [2, 3] {
        let many = run(threads);
        assert_eq!(one.0.total.to_bits(), many.0.total.to_bits());
        assert_eq!(one.0.counted, many.0.counted);
        assert_eq!(one.1.total.to_bits(), many.1.total.to_bits());
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same(one.2.as_slice().unwrap(), many.2.as_slice().unwrap()));
        assert!(same(&one.3, &many.3), "{threads} threads: gradients differ");
    }
    linalg::set_threads(1).unwrap();
}
