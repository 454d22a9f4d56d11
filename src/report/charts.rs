//! The report's charts, drawn by plotters as SVG. Each function returns a self-contained SVG document;
//! plotters escapes the text it writes, so labels from records are safe to embed.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::leaderboard::Row;
use super::view::Variant;
use crate::data::split::LengthProfile;

#[derive(Debug, thiserror::Error)]
#[error("drawing a chart: {0}")]
pub struct ChartError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        ChartError(e.to_string())
    }
}

type Result<T> = std::result::Result<T, ChartError>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

const FONT: &str = "sans-serif";
const WIDTH: u32 = 900;
const HEIGHT: u32 = 380;
/// Pixels on the right of a chart kept for its legend.
const LEGEND_WIDTH: u32 = 230;
/// Colour-blind-safe (Okabe–Ito), then repeated darker.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
];

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// plotters' SVG backend writes a font of size s as `font-size` s / 1.24 (points to pixels), so a chart
/// asking for 12 rendered at 9.7 px. Sizes here are the pixels a reader gets at the chart's drawn size.
fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, f64::from(size) * 1.24).into_font())
}

/// Draws into a fresh SVG of the given size and returns it.
fn svg(size: (u32, u32), draw: impl FnOnce(&Area<'_>) -> Result<()>) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(out)
}

fn shorten(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        format!("{}…", label.chars().take(max - 1).collect::<String>())
    }
}

/// A legend in its own area: a swatch and a label per series (label, colour index).
/// Entries beyond what fits are summarised in a last line.
fn legend(area: &Area<'_>, entries: &[(String, usize)]) -> Result<()> {
    let fits = ((area.dim_in_pixel().1 as usize).saturating_sub(50) / 22).max(2);
    let shown = if entries.len() > fits { fits - 1 } else { entries.len() };
    for (i, (l, c)) in entries[..shown].iter().enumerate() {
        let y = 40 + 22 * i as i32;
        area.draw(&Rectangle::new([(6, y), (20, y + 14)], color(*c).filled()))?;
        area.draw(&Text::new(shorten(l, 30), (26, y), font(13)))?;
    }
    if shown < entries.len() {
        area.draw(&Text::new(format!("… and {} more (see the table)", entries.len() - shown), (6, 40 + 22 * shown as i32), font(13)))?;
    }
    Ok(())
}

/// A bar's interval, (low, high), when it has one.
pub type Whisker = Option<(f64, f64)>;

/// Bars in groups: one group per category, one bar per series, optional whiskers.
pub struct GroupedBars<'a> {
    pub title: &'a str,
    pub y_desc: &'a str,
    pub groups: Vec<String>,
    /// (label, a value per group, an optional (low, high) per group).
    pub series: Vec<(String, Vec<f64>, Vec<Whisker>)>,
    pub y_range: (f64, f64),
    /// Group names turned upright under the axis (many groups: class names would overlap).
    pub upright_labels: bool,
}

pub fn grouped_bars(b: &GroupedBars<'_>) -> Result<String> {
    let (height, label_room) = if b.upright_labels { (HEIGHT + 150, 184) } else { (HEIGHT, 34) };
    svg((WIDTH, height), |root| {
        let (plot, side) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
        let n_groups = b.groups.len();
        let mut chart = ChartBuilder::on(&plot)
            .caption(b.title, font(16))
            .margin(10)
            .x_label_area_size(label_room)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..n_groups as f64 - 0.5, b.y_range.0..b.y_range.1)?;
        let groups = b.groups.clone();
        let label_of = move |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-9 && i >= 0.0 && (i as usize) < groups.len() {
                groups[i as usize].clone()
            } else {
                String::new()
            }
        };
        let none = |_: &f64| String::new();
        let x_labels: &dyn Fn(&f64) -> String = if b.upright_labels { &none } else { &label_of };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n_groups + 1)
            .x_label_formatter(x_labels)
            .y_label_formatter(&human)
            .y_desc(b.y_desc)
            .label_style(font(12))
            .axis_desc_style(font(13))
            .draw()?;
        if b.upright_labels {
            // Turned upright, each label starts under its group and runs down (drawn on the whole
            // picture: the chart's label area would centre them on the tick, half inside the plot).
            let upright = font(12).transform(FontTransform::Rotate90).pos(Pos::new(HPos::Left, VPos::Center));
            for (g, name) in b.groups.iter().enumerate() {
                let (x, y) = chart.backend_coord(&(g as f64, b.y_range.0));
                root.draw(&Text::new(name.clone(), (x, y + 8), upright.clone()))?;
            }
        }
        let n = b.series.len().max(1) as f64;
        let width = 0.8 / n;
        for (j, (_, values, whiskers)) in b.series.iter().enumerate() {
            let c = color(j);
            for (g, &v) in values.iter().enumerate() {
                if !v.is_finite() || v - b.y_range.0 < (b.y_range.1 - b.y_range.0) * 0.006 {
                    continue; // under a pixel: nothing to draw (and a zero-height rectangle is invalid SVG)
                }
                let x0 = g as f64 - 0.4 + j as f64 * width;
                let x1 = x0 + width * 0.9;
                let top = v.max(b.y_range.0);
                chart.draw_series(std::iter::once(Rectangle::new([(x0, b.y_range.0), (x1, top)], c.filled())))?;
                // A whisker of no length is skipped (a zero-length path cannot be stroked).
                let span = (b.y_range.1 - b.y_range.0) * 0.002;
                if let Some(Some((lo, hi))) = whiskers.get(g).filter(|w| w.is_some_and(|(lo, hi)| hi.min(b.y_range.1) - lo.max(b.y_range.0) > span)) {
                    let xc = (x0 + x1) / 2.0;
                    let (lo, hi) = (lo.max(b.y_range.0), hi.min(b.y_range.1));
                    let cap = width * 0.25;
                    let ink = BLACK.stroke_width(1);
                    chart.draw_series([
                        PathElement::new(vec![(xc, lo), (xc, hi)], ink),
                        PathElement::new(vec![(xc - cap, lo), (xc + cap, lo)], ink),
                        PathElement::new(vec![(xc - cap, hi), (xc + cap, hi)], ink),
                    ])?;
                }
            }
        }
        legend(&side, &b.series.iter().enumerate().map(|(i, s)| (s.0.clone(), i)).collect::<Vec<_>>())
    })
}

/// Axis numbers without a needless ".0", large ones with a unit prefix.
fn human(v: &f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(*v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The main metrics of each variant with their 95% intervals. The axis starts near the lowest value
/// (said in the title), since every method is usually above 0.9.
pub fn metric_bars(labels: &[String], rows: &[Row]) -> Result<String> {
    let mut low = 1.0f64;
    for r in rows {
        for (_, s) in r.metrics() {
            if s.mean.is_finite() {
                low = low.min(s.interval.map_or(s.mean, |i| i.0.min(s.mean)));
            }
        }
    }
    let floor = ((low - 0.02) * 20.0).floor().max(0.0) / 20.0;
    let title = format!("Main metrics with 95% intervals (axis from {floor:.2})");
    let groups = rows.first().map(|r| r.metrics().iter().map(|(n, _)| n.to_string()).collect()).unwrap_or_default();
    let series = labels
        .iter()
        .zip(rows)
        .map(|(l, r)| {
            let m = r.metrics();
            (l.clone(), m.iter().map(|(_, s)| s.mean).collect(), m.iter().map(|(_, s)| s.interval).collect())
        })
        .collect();
    grouped_bars(&GroupedBars { title: &title, y_desc: "value", groups, series, y_range: (floor, 1.0), upright_labels: false })
}

/// One panel of `confusion_grid`: the variant, its counts, and its decision threshold.
pub struct Confusion {
    pub label: String,
    pub counts: [[u64; 2]; 2],
    pub threshold: f64,
}

/// Confusion matrices as heat maps: counts, and rates within each true class (the colour). A threshold
/// other than 0.5 (chosen on held-out data) is named under the variant.
pub fn confusion_grid(items: &[Confusion], class_names: (&str, &str)) -> Result<String> {
    let cols = items.len().clamp(1, 4);
    let rows = items.len().div_ceil(cols).max(1);
    let (cell_w, cell_h) = (225u32, 230u32);
    svg((cell_w * cols as u32, cell_h * rows as u32), |root| {
        let panels = root.split_evenly((rows, cols));
        for (Confusion { label, counts: cm, threshold }, panel) in items.iter().zip(panels.iter()) {
            panel.draw(&Text::new(shorten(label, 28), (10, 8), font(14)))?;
            if *threshold != crate::metrics::THRESHOLD {
                panel.draw(&Text::new(format!("threshold {threshold:.3}"), (10, 27), font(12)))?;
            }
            let (x0, y0, size) = (70i32, 50i32, 70i32);
            let names = [class_names.0, class_names.1];
            for (t, (row, name)) in cm.iter().zip(names).enumerate() {
                let row_total = (row[0] + row[1]).max(1) as f64;
                panel.draw(&Text::new(format!("true {}", shorten(name, 9)), (4, y0 + t as i32 * size + size / 2 - 6), font(12)))?;
                for (p, &count) in row.iter().enumerate() {
                    let rate = count as f64 / row_total;
                    let shade = |c: u8| (255.0 - (255.0 - c as f64) * rate) as u8;
                    let fill = RGBColor(shade(0), shade(90), shade(160));
                    let (cx, cy) = (x0 + p as i32 * size, y0 + t as i32 * size);
                    panel.draw(&Rectangle::new([(cx, cy), (cx + size, cy + size)], fill.filled()))?;
                    panel.draw(&Rectangle::new([(cx, cy), (cx + size, cy + size)], BLACK.stroke_width(1)))?;
                    let ink = if rate > 0.55 { WHITE } else { BLACK };
                    panel.draw(&Text::new(count.to_string(), (cx + 8, cy + 18), font(15).color(&ink)))?;
                    panel.draw(&Text::new(format!("{:.1}%", 100.0 * rate), (cx + 8, cy + 40), font(12).color(&ink)))?;
                }
            }
            for (p, name) in names.iter().enumerate() {
                panel.draw(&Text::new(format!("pred {}", shorten(name, 8)), (x0 + p as i32 * size + 2, y0 + 2 * size + 6), font(12)))?;
            }
        }
        Ok(())
    })
}

/// Keeps at most `max` points of a curve, evenly spaced, always with its last point.
fn thin(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points;
    }
    let step = points.len().div_ceil(max);
    let last = *points.last().expect("non-empty");
    let mut out: Vec<(f64, f64)> = points.into_iter().step_by(step).collect();
    out.push(last);
    out
}

/// A labelled line; its colour is its variant's, the same in every chart.
pub struct Series {
    pub label: String,
    pub color: usize,
    pub points: Vec<(f64, f64)>,
}

/// Lines of several series on common axes, with a legend.
pub struct Lines<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub series: Vec<Series>,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    /// Draw a dashed diagonal (the ROC of a coin).
    pub diagonal: bool,
    pub markers: bool,
    /// Label whole numbers only on the x axis (epochs).
    pub integer_x: bool,
}

/// Whole numbers only; the ticks between them stay unlabelled.
fn whole(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        String::new()
    }
}

pub fn lines(l: &Lines<'_>) -> Result<String> {
    svg((WIDTH, HEIGHT), |root| {
        let (plot, side) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .caption(l.title, font(16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(l.x_range.0..l.x_range.1, l.y_range.0..l.y_range.1)?;
        let x_labels: &dyn Fn(&f64) -> String = if l.integer_x { &whole } else { &human };
        chart.configure_mesh().x_desc(l.x_desc).y_desc(l.y_desc).x_label_formatter(x_labels).label_style(font(12)).axis_desc_style(font(13)).draw()?;
        if l.diagonal {
            let grey = RGBColor(170, 170, 170);
            let dashes = (0..20).map(|i| {
                let a = i as f64 / 20.0;
                PathElement::new(vec![(a, a), (a + 0.025, a + 0.025)], grey.stroke_width(1))
            });
            chart.draw_series(dashes)?;
        }
        for s in &l.series {
            let c = color(s.color);
            let mut pts = thin(s.points.clone(), 400);
            pts.dedup();
            if pts.len() >= 2 {
                chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
            }
            if l.markers {
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
            }
        }
        legend(&side, &l.series.iter().map(|s| (s.label.clone(), s.color)).collect::<Vec<_>>())
    })
}

/// Which curve of the records to overlay.
#[derive(Clone, Copy)]
pub enum Curve {
    Roc,
    PrecisionRecall,
}

/// ROC or precision–recall curves of the variants (the lowest-seed run of each), overlaid, with the
/// area under each (AUROC or average precision) in the legend.
pub fn curves(variants: &[&Variant<'_>], which: Curve) -> Result<String> {
    let series = variants
        .iter()
        .filter_map(|v| {
            let (c, m) = (v.first().curves.as_ref()?, v.first().metrics.as_ref()?);
            let (area, points): (f64, Vec<(f64, f64)>) = match which {
                Curve::Roc => (m.auroc, c.roc.iter().map(|p| (p.fpr, p.tpr)).collect()),
                Curve::PrecisionRecall => (m.average_precision, c.pr.iter().map(|p| (p.recall, p.precision)).collect()),
            };
            Some(Series { label: format!("{} ({area:.3})", v.label), color: v.color, points })
        })
        .collect();
    let (title, x_desc, y_desc) = match which {
        Curve::Roc => ("ROC curves (AUROC in the legend)", "false positive rate", "true positive rate"),
        Curve::PrecisionRecall => ("Precision–recall curves (average precision in the legend)", "recall", "precision"),
    };
    lines(&Lines {
        title,
        x_desc,
        y_desc,
        series,
        x_range: (0.0, 1.0),
        y_range: (0.0, 1.0),
        diagonal: matches!(which, Curve::Roc),
        markers: false,
        integer_x: false,
    })
}

fn range_of(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    // One value, or all equal: a span around it (5% of it, at least 0.01 each side), so that the axis
    // has distinct ticks and the point is not drawn on the axis.
    if hi - lo <= 1e-9 * hi.abs().max(1.0) {
        let half = (lo.abs() * 0.05).max(0.01);
        return (lo - half, hi + half);
    }
    let span = hi - lo;
    (lo - pad * span, hi + pad * span)
}

/// Training loss every N steps of the trained variants.
pub fn training_loss(series: Vec<Series>) -> Result<String> {
    let x = range_of(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)), 0.02);
    let y = range_of(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)), 0.05);
    lines(&Lines {
        title: "Training loss",
        x_desc: "step",
        y_desc: "cross-entropy (mean since the previous point)",
        series,
        x_range: (x.0.max(0.0), x.1),
        y_range: (y.0.max(0.0), y.1),
        diagonal: false,
        markers: false,
        integer_x: false,
    })
}

/// A validation metric after each epoch.
pub fn per_epoch(metric: &str, series: Vec<Series>) -> Result<String> {
    let max_epoch = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).fold(1.0f64, f64::max);
    let y = range_of(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)), 0.15);
    let title = format!("Evaluation {metric} after each epoch");
    lines(&Lines {
        title: &title,
        x_desc: "epoch",
        y_desc: metric,
        series,
        x_range: (0.5, max_epoch + 0.5),
        y_range: (y.0.max(0.0), y.1.min(1.0)),
        diagonal: false,
        markers: true,
        integer_x: true,
    })
}

/// F1 against a cost on a log axis, one point per variant: (label, cost, F1), coloured by position.
pub fn cost_scatter(title: &str, x_desc: &str, points: &[(String, f64, f64)]) -> Result<String> {
    // Costs a run can have (a microsecond to 30 years, one to 10^15 parameters); beyond them a record's
    // value is not a cost, and a log axis across hundreds of decades never finishes its ticks.
    let usable: Vec<(usize, &(String, f64, f64))> = points.iter().enumerate().filter(|(_, p)| (1e-6..=1e15).contains(&p.1) && p.2.is_finite()).collect();
    let (xlo, xhi) = usable.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (_, p)| (a.min(p.1), b.max(p.1)));
    let (xlo, xhi) = if xlo.is_finite() { (xlo / 3.0, xhi * 3.0) } else { (0.1, 10.0) };
    let y = range_of(usable.iter().map(|(_, p)| p.2), 0.2);
    svg((WIDTH, HEIGHT), |root| {
        let (plot, side) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, font(16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((xlo..xhi).log_scale(), y.0.max(0.0)..y.1.min(1.0).max(y.0 + 1e-6))?;
        chart.configure_mesh().x_desc(x_desc).y_desc("F1").x_label_formatter(&human).label_style(font(12)).axis_desc_style(font(13)).draw()?;
        for (i, p) in &usable {
            chart.draw_series(std::iter::once(Circle::new((p.1, p.2), 6, color(*i).filled())))?;
        }
        legend(&side, &points.iter().enumerate().map(|(i, p)| (p.0.clone(), i)).collect::<Vec<_>>())
    })
}

/// Text length in words by class, as each class's share, over both splits.
pub fn length_histogram(profile: &LengthProfile, class_names: (&str, &str)) -> Result<String> {
    let n = profile.edges.len();
    let groups: Vec<String> = (0..n)
        .map(|i| match profile.edges.get(i + 1) {
            Some(next) => format!("{}–{}", profile.edges[i], next - 1),
            None => format!("{}+", profile.edges[i]),
        })
        .collect();
    let share = |a: &[usize], b: &[usize]| -> Vec<f64> {
        let total = (a.iter().sum::<usize>() + b.iter().sum::<usize>()).max(1) as f64;
        a.iter().zip(b).map(|(x, y)| (x + y) as f64 / total).collect()
    };
    let neg = share(&profile.train.negative, &profile.eval.negative);
    let pos = share(&profile.train.positive, &profile.eval.positive);
    // Drop the empty tail so the bins that matter are wide enough to read.
    let last = (0..n).rev().find(|&i| neg[i] > 0.0 || pos[i] > 0.0).unwrap_or(0) + 1;
    let top = neg.iter().chain(&pos).cloned().fold(0.0, f64::max) * 1.1;
    grouped_bars(&GroupedBars {
        title: "Text length in words (share of each class, both splits)",
        y_desc: "share of the class",
        groups: groups[..last].to_vec(),
        series: vec![(class_names.0.to_string(), neg[..last].to_vec(), vec![None; last]), (class_names.1.to_string(), pos[..last].to_vec(), vec![None; last])],
        y_range: (0.0, top.max(0.01)),
        upright_labels: false,
    })
}

/// Examples per class in the training and evaluation splits.
pub fn class_balance(train: (usize, usize), eval: (usize, usize), class_names: (&str, &str)) -> Result<String> {
    let top = [train.0, train.1, eval.0, eval.1].into_iter().max().unwrap_or(1) as f64 * 1.1;
    grouped_bars(&GroupedBars {
        title: "Examples per class",
        y_desc: "examples",
        groups: vec!["training split".into(), "evaluation split".into()],
        series: vec![
            (class_names.0.to_string(), vec![train.0 as f64, eval.0 as f64], vec![None; 2]),
            (class_names.1.to_string(), vec![train.1 as f64, eval.1 as f64], vec![None; 2]),
        ],
        y_range: (0.0, top.max(1.0)),
        upright_labels: false,
    })
}

/// Beyond this many classes the confusion heat map shows colour only (the page lists the top confusions).
pub const HEATMAP_COUNTS_UP_TO: usize = 12;

/// A k×k confusion matrix as a heat map: true classes down the side, predicted ones along the bottom
/// (names turned upright), colour the share of each true class; counts in the cells while they fit.
pub fn confusion_heatmap(label: &str, cm: &[Vec<u64>], names: &[String]) -> Result<String> {
    let k = cm.len().max(1);
    let cell = (560 / k as i32).clamp(22, 70);
    // Room for the longest (shortened) class name, at about 7 pixels a character.
    let longest = names.iter().map(|n| shorten(n, 24).chars().count()).max().unwrap_or(4) as i32;
    let name_room = (longest * 7 + 16).clamp(50, 190);
    let (x0, y0) = (name_room, 40i32);
    let width = (x0 + cell * k as i32 + 20).max(620);
    let size = (width as u32, (y0 + cell * k as i32 + name_room + 10) as u32);
    svg(size, |root| {
        root.draw(&Text::new(format!("{} — confusion matrix (rows: true class; columns: predicted)", shorten(label, 40)), (10, 10), font(15)))?;
        let show_counts = k <= HEATMAP_COUNTS_UP_TO;
        for (t, row) in cm.iter().enumerate() {
            let total = row.iter().sum::<u64>().max(1) as f64;
            let y = y0 + t as i32 * cell;
            let name = names.get(t).map_or("?", String::as_str);
            root.draw(&Text::new(shorten(name, 24), (6, y + cell / 2 - 7), font(12)))?;
            for (p, &count) in row.iter().enumerate() {
                let rate = count as f64 / total;
                let shade = |c: u8| (255.0 - (255.0 - c as f64) * rate) as u8;
                let x = x0 + p as i32 * cell;
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], RGBColor(shade(0), shade(90), shade(160)).filled()))?;
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], RGBColor(200, 200, 200).stroke_width(1)))?;
                if show_counts {
                    let ink = if rate > 0.55 { WHITE } else { BLACK };
                    root.draw(&Text::new(count.to_string(), (x + 4, y + cell / 2 - 7), font(12).color(&ink)))?;
                }
            }
        }
        let bottom = y0 + cell * k as i32 + 6;
        for (p, name) in names.iter().enumerate() {
            let style = font(12).transform(FontTransform::Rotate90).pos(Pos::new(HPos::Left, VPos::Center));
            root.draw(&Text::new(shorten(name, 24), (x0 + p as i32 * cell + cell / 2, bottom), style))?;
        }
        Ok(())
    })
}

/// Bars per class: one group per class, one bar per series (e.g. each method's F1, or the two splits' counts).
pub fn per_class_bars(title: &str, y_desc: &str, classes: &[String], series: Vec<(String, Vec<f64>)>, top: f64) -> Result<String> {
    let upright = classes.len() > 6;
    let groups = classes.iter().map(|c| shorten(c, if upright { 26 } else { 14 })).collect();
    grouped_bars(&GroupedBars {
        title,
        y_desc,
        groups,
        series: series.into_iter().map(|(l, v)| (l, v.clone(), vec![None; v.len()])).collect(),
        y_range: (0.0, top),
        upright_labels: upright,
    })
}

/// One-vs-rest ROC curves drawn at most: beyond, the classes with the lowest AUROC (the table has all).
pub const ROC_CLASSES_DRAWN: usize = 8;

/// One-vs-rest ROC curves of one method, a curve per class (AUROC in the legend); with more than
/// [`ROC_CLASSES_DRAWN`] classes, those with the lowest AUROC.
/// One class's one-vs-rest ROC curve.
pub struct ClassCurve {
    pub class: String,
    pub auroc: f64,
    pub points: Vec<(f64, f64)>,
}

pub fn one_vs_rest_roc(label: &str, mut curves: Vec<ClassCurve>) -> Result<String> {
    let title = if curves.len() > ROC_CLASSES_DRAWN {
        curves.sort_by(|a, b| a.auroc.total_cmp(&b.auroc));
        curves.truncate(ROC_CLASSES_DRAWN);
        format!("One-vs-rest ROC of {}: the {ROC_CLASSES_DRAWN} hardest classes", shorten(label, 30))
    } else {
        format!("One-vs-rest ROC curves of {} (AUROC in the legend)", shorten(label, 40))
    };
    let series = curves
        .into_iter()
        .enumerate()
        .map(|(i, c)| Series { label: format!("{} ({:.3})", shorten(&c.class, 19), c.auroc), color: i, points: c.points })
        .collect();
    lines(&Lines {
        title: &title,
        x_desc: "false positive rate",
        y_desc: "true positive rate",
        series,
        x_range: (0.0, 1.0),
        y_range: (0.0, 1.0),
        diagonal: true,
        markers: false,
        integer_x: false,
    })
}
