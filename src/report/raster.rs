//! PNG copies of the charts, for READMEs and slides: the SVG rasterised by resvg at twice its size,
//! with the machine's fonts (text is left out where the machine has none).

use resvg::{tiny_skia, usvg};

/// Scale of the PNG against the SVG's nominal size (sharp on high-density screens).
const SCALE: f32 = 2.0;

/// The rasteriser's options with the system fonts loaded once; the charts ask for "sans-serif".
pub fn fonts() -> usvg::Options<'static> {
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_system_fonts();
    let preferred = ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica", "Noto Sans"];
    let has = |name: &str| db.faces().any(|f| f.families.iter().any(|(n, _)| n == name));
    let first_family = db.faces().next().and_then(|f| f.families.first()).map(|(n, _)| n.clone());
    let chosen = preferred.iter().find(|n| has(n)).map(|n| n.to_string()).or(first_family);
    if let Some(name) = chosen {
        db.set_sans_serif_family(name);
    }
    opt
}

pub fn png(svg: &str, opt: &usvg::Options<'_>) -> Result<Vec<u8>, String> {
    let tree = usvg::Tree::from_str(svg, opt).map_err(|e| e.to_string())?;
    let size = tree.size().to_int_size();
    let (w, h) = ((size.width() as f32 * SCALE) as u32, (size.height() as f32 * SCALE) as u32);
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or_else(|| format!("cannot allocate a {w}×{h} image"))?;
    resvg::render(&tree, tiny_skia::Transform::from_scale(SCALE, SCALE), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| e.to_string())
}
