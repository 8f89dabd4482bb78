//! Tells benches/ids.rs that the version before is linked too.
fn main() {
    println!("cargo:rustc-check-cfg=cfg(annals_before)");
    println!("cargo:rustc-cfg=annals_before");
}
