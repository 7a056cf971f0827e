//! `qa_image IMAGE.nii[.gz] OUT_DIR`: the QA outputs of one image
//! (`qa.json`, `qa.csv`, `montage.png`), for looking at a mask by eye.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, image, out] = args.as_slice() else {
        return Err("usage: qa_image IMAGE.nii[.gz] OUT_DIR".into());
    };
    let volume = xnatkit_qa::Volume::read(std::path::Path::new(image))?;
    let (report, mask, mean) = xnatkit_qa::assess(&volume)?;
    let png = xnatkit_qa::montage_png(&mean, &mask)?;
    std::fs::create_dir_all(out)?;
    xnatkit_qa::write_outputs(std::path::Path::new(out), &report, &png)?;
    Ok(())
}
