//! Weight export and import: plain safetensors named by slot.

mod common;

use std::collections::HashMap;

use common::{bits, model, scratch, write_raw};
use recur_core::{Error, ParamSet};
use recur_io::{export_safetensors, import_safetensors, Checkpoint};
use safetensors::{Dtype, SafeTensors};

#[test]
fn export_names_tensors_by_slot_and_imports_back() {
    let dir = scratch("export");
    let path = dir.join("weights.safetensors");
    let net = model::<f32>(1, 6, 4);
    export_safetensors(&net, &path).unwrap();

    // What any safetensors reader sees.
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<&String> = file.names();
    names.sort();
    assert_eq!(
        names,
        [
            "cell.b_h",
            "cell.w_hh",
            "cell.w_xh",
            "readout.b_y",
            "readout.w_hy"
        ]
    );
    let w_xh = file.tensor("cell.w_xh").unwrap();
    assert_eq!(w_xh.dtype(), Dtype::F32);
    assert_eq!(safetensors::View::shape(&w_xh), [6, 4]);
    let first = f32::from_le_bytes(w_xh.data()[..4].try_into().unwrap());
    assert_eq!(first.to_bits(), net.slot(0).value[[0, 0]].to_bits());

    let mut other = model::<f32>(2, 6, 4);
    import_safetensors(&mut other, &path).unwrap();
    assert_eq!(bits(&other), bits(&net));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file of another tool, without metadata, under the slots' own names (as files exported
/// before names were paths are): it loads.
#[test]
fn import_reads_files_without_metadata() {
    let dir = scratch("import-plain");
    let path = dir.join("from_numpy.safetensors");
    let net = model::<f64>(1, 2, 1);
    let tensors: Vec<_> = (0..net.slot_count())
        .map(|i| {
            let slot = net.slot(i);
            let data = slot
                .value
                .iter()
                .flat_map(|v| (v * 2.0).to_le_bytes())
                .collect();
            (
                slot.name.to_string(),
                Dtype::F64,
                slot.value.shape().to_vec(),
                data,
            )
        })
        .collect();
    write_raw(&path, &HashMap::new(), &tensors);
    let mut loaded = model::<f64>(5, 2, 1);
    import_safetensors(&mut loaded, &path).unwrap();
    for i in 0..net.slot_count() {
        assert_eq!(loaded.slot(i).value, net.slot(i).value.mapv(|v| v * 2.0));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn import_refuses_what_does_not_fit_and_changes_nothing() {
    let dir = scratch("import-bad");
    let path = dir.join("w.safetensors");
    export_safetensors(&model::<f32>(1, 6, 4), &path).unwrap();

    let mut wider = model::<f32>(2, 6, 5);
    let before = bits(&wider);
    let err = import_safetensors(&mut wider, &path).unwrap_err();
    assert!(
        matches!(err, Error::LayoutMismatch { slot: 0, .. }),
        "{err}"
    );
    assert_eq!(bits(&wider), before);

    let mut as_f64 = model::<f64>(2, 6, 4);
    let before = bits(&as_f64);
    let err = import_safetensors(&mut as_f64, &path).unwrap_err();
    assert!(
        err.to_string().contains("F32") && err.to_string().contains("f64"),
        "{err}"
    );
    assert_eq!(bits(&as_f64), before);

    // An extra tensor is reported rather than silently ignored.
    common::rewrite(&path, |_, tensors| {
        tensors.push(("w_extra".into(), Dtype::F32, vec![1], vec![0; 4]));
    });
    let mut net = model::<f32>(2, 6, 4);
    let err = import_safetensors(&mut net, &path).unwrap_err();
    assert!(err.to_string().contains("w_extra"), "{err}");

    // A checkpoint is pointed to the right reader.
    Checkpoint::capture(&net, None, Default::default())
        .save(&path)
        .unwrap();
    let err = import_safetensors(&mut net, &path).unwrap_err();
    assert!(err.to_string().contains("Checkpoint::load"), "{err}");

    let err = import_safetensors(&mut net, dir.join("absent")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
