"""Figures as Altair specs from plain rows: the pages draw them (ui/charts.py) and the report renders them
(core/report.py), so a chart in a report is the chart on the page. Nothing here draws or imports streamlit."""
from __future__ import annotations

import altair as alt
import pandas as pd

# Each family's hue in shades, its first shade the family's colour: a model's colour says its family on every chart
# (a hybrid is purple wherever it appears), and models of one family still differ.
FAMILY_SHADES = {"cnn": ["#1f77b4", "#6baed6", "#08519c", "#9ecae1", "#3182bd", "#c6dbef"],
                 "vit": ["#d62728", "#fc9272", "#a50f15", "#fb6a4a", "#ef3b2c", "#fcbba1"],
                 "hybrid": ["#9467bd", "#bcbddc", "#54278f", "#807dba", "#6a51a3", "#dadaeb"],
                 "other": ["#7f7f7f", "#bdbdbd", "#525252", "#969696", "#252525", "#d9d9d9"]}
FAMILY_COLORS = alt.Scale(domain=list(FAMILY_SHADES), range=[shades[0] for shades in FAMILY_SHADES.values()])


def _model_scale(df: pd.DataFrame, field: str = "model") -> alt.Scale:
    """Each `field` value (a model or run, in order of appearance) in the next shade of its family (`df["family"]`)."""
    seen: dict[str, int] = {}
    domain, colors = [], []
    for name, family in df[[field, "family"]].drop_duplicates(field).itertuples(index=False):
        shades = FAMILY_SHADES.get(family, FAMILY_SHADES["other"])
        domain.append(name)
        colors.append(shades[seen.get(family, 0) % len(shades)])
        seen[family] = seen.get(family, 0) + 1
    return alt.Scale(domain=domain, range=colors)


def _model_legend(field: str = "model", **kw) -> alt.Legend:
    return alt.Legend(**{"title": f"{field} (hue: family)", "labelLimit": 260, "symbolOpacity": 1, **kw})


def _model_color(df: pd.DataFrame, field: str = "model", legend: alt.Legend | None = None) -> alt.Color:
    """Colour by `field` in its family's shades, legend in order of appearance."""
    return alt.Color(f"{field}:N", sort=None, scale=_model_scale(df, field), legend=legend or _model_legend(field))


def _model_shape(df: pd.DataFrame, field: str = "model", legend: alt.Legend | None = None) -> alt.Shape:
    """A point shape per `field`, in the colour legend's order (one legend: same field, title and order)."""
    return alt.Shape(f"{field}:N", sort=None, scale=alt.Scale(domain=df[field].drop_duplicates().tolist()),
                     legend=legend or _model_legend(field))


def training_curves(history: list[dict]) -> dict[str, alt.Chart]:
    """Loss, top-1, learning rate and (when recorded) per-layer-group gradient norms over epochs: name -> chart,
    in the order of a 2x2 grid."""
    h = pd.DataFrame(history)
    long = lambda cols, names: h.melt("epoch", cols, "curve", "value").replace({"curve": names})  # noqa: E731
    loss = long(["train_loss", "val_loss"], {"train_loss": "train", "val_loss": "validation"})
    acc = long(["train_top1", "val_top1"], {"train_top1": "train", "val_top1": "validation"})
    grads = pd.DataFrame([{"epoch": row["epoch"], "group": g, "norm": v}
                          for row in history for g, v in (row.get("grad_norm") or {}).items()])
    x = alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1), title="epoch")

    def lines(df: pd.DataFrame, y: str, title: str, color: str, fmt: str = "", log: bool = False) -> alt.Chart:
        scale = alt.Scale(type="symlog" if log else "linear")
        legend = alt.Legend(title=None, symbolLimit=0, labelLimit=110, columns=1 if color == "curve" else 2)
        return (alt.Chart(df, title=title).mark_line(point=True)
                .encode(x, alt.Y(f"{y}:Q", title=None, axis=alt.Axis(format=fmt), scale=scale),
                        alt.Color(f"{color}:N", sort=None, scale=alt.Scale(scheme="tableau10"), legend=legend),
                        tooltip=["epoch", color, alt.Tooltip(y, format=fmt or ".4g")])
                .properties(height=300))  # tall enough for a legend of 16 layer groups in two columns

    charts = {"loss": lines(loss, "value", "cross-entropy loss", "curve"),
              "acc": lines(acc, "value", "top-1 accuracy", "curve", fmt=".0%"),
              "lr": lines(h.assign(curve="learning rate"), "lr", "learning rate (first step of each epoch)", "curve",
                          fmt=".2g")}
    if not grads.empty:
        charts["grad"] = lines(grads, "norm", "gradient norm per layer group (mean per step)", "group", log=True)
    return charts


def curve_overlay(curves: list[dict], metric: str) -> alt.Chart:
    """One training curve (`metric`: val_top1, val_loss or train_loss) per labelled run, overlaid by epoch, in its
    family's hue."""
    df = pd.DataFrame(curves)
    legend = _model_legend("run", labelLimit=320)
    return alt.Chart(df).mark_line(point=alt.OverlayMarkDef(filled=True)).encode(
        alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1)), alt.Y(f"{metric}:Q"), _model_color(df, "label", legend),
        _model_shape(df, "label", legend), tooltip=["label", "family", "epoch", alt.Tooltip(metric, format=".4g")]
    ).properties(height=320)


PARETO_NOTE = ("Dashed: the Pareto front (no other evaluation is both faster and more accurate). Times are end to end "
               "on the device that computed each result; compare like with like.")


def accuracy_vs_speed(rows: list[dict], front: list[dict]) -> alt.Chart | None:
    """Top-1 against milliseconds per image, one point per evaluation coloured by family, the Pareto front as a line."""
    df = pd.DataFrame(rows).dropna(subset=["ms_per_image", "top1"])
    if df.empty:
        return None
    df["label"] = df["model_name"].fillna(df["model"]) + " on " + df["dataset"] + "/" + df["split"]
    base = alt.Chart(df).encode(
        alt.X("ms_per_image:Q", title="milliseconds per image (end to end, as measured)", scale=alt.Scale(type="log")),
        alt.Y("top1:Q", title="top-1 (the evaluation's own scoring)", axis=alt.Axis(format=".0%")))
    points = base.mark_circle(size=120, opacity=0.85).encode(
        alt.Color("family:N", scale=FAMILY_COLORS),
        tooltip=["label", "family", alt.Tooltip("top1", format=".1%"), alt.Tooltip("ms_per_image", format=".2f"),
                 alt.Tooltip("params", format=","), "device", "scoring"])
    line = alt.Chart(pd.DataFrame(front)).mark_line(strokeDash=[4, 3], color="#444").encode(
        x="ms_per_image:Q", y="top1:Q") if front else None
    return (points + line if line is not None else points).properties(height=340)


def compare_bars(rows: list[dict]) -> tuple[alt.Chart, alt.Chart]:
    """Compare's two bar charts, one bar per evaluation (its short name, `bar`; the full `label` in the tooltip)
    coloured by family: top-1 with its 95% interval over the images (top1_lo/top1_hi, core.results.compare_rows)
    as a whisker, and milliseconds per image."""
    df = pd.DataFrame(rows)
    bars = alt.Chart(df).encode(alt.Y("bar:N", title=None, sort=None, axis=alt.Axis(labelLimit=260)),
                                color=alt.Color("family:N", scale=FAMILY_COLORS,
                                                legend=alt.Legend(orient="bottom", title=None, columns=2)))
    tooltip = ["label", alt.Tooltip("top1", format=".2%"), alt.Tooltip("top1_lo", format=".2%", title="95% from"),
               alt.Tooltip("top1_hi", format=".2%", title="to"), "n"]
    x = alt.X("top1:Q", title="top-1, 95% interval (images)",
              axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1]))
    acc = (bars.mark_bar().encode(x, tooltip=tooltip)
           + bars.mark_rule(color="#222").encode(alt.X("top1_lo:Q"), alt.X2("top1_hi:Q"), tooltip=tooltip))
    time = bars.mark_bar().encode(alt.X("ms_per_image:Q", title="ms per image, end to end"),
                                  tooltip=["label", alt.Tooltip("ms_per_image", format=".3f"), "device"])
    return (acc.properties(title="accuracy", height=alt.Step(36)),
            time.properties(title="inference time", height=alt.Step(36)))


def confusion_matrix(cells: pd.DataFrame, order: list[str], *, value: str, what: str = "class",
                     selected: tuple[int, int] | None = None) -> alt.Chart:
    """A confusion matrix from cell rows (true/pred index and name, count, row_share, correct): correct cells
    green and errors red, each scaled to its own maximum; empty error cells are the grey background. A click
    selects a cell (the selection parameter `cell`, fields "true" and "pred"). The shades start a fifth of the way
    from white, so a class rarely right is a pale green, not the scale's neutral middle (it read as an error)."""
    cells = cells.copy()
    top_right = float(cells.loc[cells["correct"], value].max() or 1)
    top_wrong = float(cells.loc[~cells["correct"], value].max() or 1)
    cells["shade"] = (0.2 + 0.8 * cells[value] / top_right).where(
        cells["correct"], -(0.2 + 0.8 * cells[value] / top_wrong))
    columns = order + (["(outside the dataset)"] if (cells["pred_name"] == "(outside the dataset)").any() else [])
    cells = cells[(cells["count"] > 0) | cells["correct"]]  # fewer marks: 200 x 200 stays fast
    n = max(len(order), 1)
    side = max(3, min(36, 700 // n), 160 // n)  # square cells; a few classes still get a matrix 160 px across
    labels = alt.Axis(labels=side >= 10)
    pick = alt.selection_point(name="cell", fields=["true", "pred"], on="click", clear="dblclick",
                               **({"value": [{"true": selected[0], "pred": selected[1]}]} if selected else {}))
    return (alt.Chart(cells).mark_rect(stroke="white", strokeWidth=0.5 if side >= 10 else 0)
             .encode(alt.X("pred_name:N", scale=alt.Scale(domain=columns), title=f"predicted {what}", axis=labels),
                     alt.Y("true_name:N", scale=alt.Scale(domain=order), title=f"true {what}", axis=labels),
                     color=alt.condition("datum.count == 0", alt.value("#f4f4f4"),
                                         alt.Color("shade:Q", legend=None, scale=alt.Scale(
                                             domain=[-1, 0, 1], range=["#c0392b", "#ffffff", "#1e8449"]))),
                     opacity=alt.condition(pick, alt.value(1.0), alt.value(0.55)),
                     tooltip=[alt.Tooltip("true_name", title="true"), alt.Tooltip("pred_name", title="predicted"),
                              alt.Tooltip("count", title="images"),
                              alt.Tooltip("row_share", title="share of row", format=".1%")])
             .add_params(pick)
             # "pad": width and height are the cells' area and the axes' labels come on top. Streamlit's default,
             # "fit" within the height, left 2 classes with long names a matrix a few pixels high
             .properties(width=side * len(columns), height=side * len(order), autosize=alt.AutoSizeParams(type="pad"))
             .configure_view(fill="#f4f4f4"))


# --- the arena: rows of core.arena.run.summarize ------------------------------------------------------------
# The interval's ends, clipped to 0..1 for drawing (with 2-3 seeds a 95% interval is often wider than the scale)
_CI_LO = "datum.top1_ci95 == null ? datum.top1_mean : max(0, datum.top1_mean - datum.top1_ci95)"
_CI_HI = "datum.top1_ci95 == null ? datum.top1_mean : min(1, datum.top1_mean + datum.top1_ci95)"
_CI_TEXT = ("format(datum.top1_mean, '.1%') + (datum.top1_ci95 == null ? ' (one seed)' : "
            "' ± ' + format(datum.top1_ci95 * 100, '.1f'))")


def arena_bars(results: list[dict]) -> alt.Chart | None:
    """Mean validation top-1 per model as bars in its family's hue, with the 95% interval over seeds as an error
    bar and the value written beside it."""
    df = pd.DataFrame(results).dropna(subset=["top1_mean"])
    if df.empty:
        return None
    order = df.sort_values("top1_mean", ascending=False)["model"].tolist()
    title = "validation top-1 (mean over seeds, 95% interval)"
    base = (alt.Chart(df).transform_calculate(lo=_CI_LO, hi=_CI_HI, label=_CI_TEXT)
            .encode(alt.Y("model:N", title=None, sort=order)))
    tooltip = ["model", "family", alt.Tooltip("top1_mean:Q", title="mean top-1", format=".2%"),
               alt.Tooltip("top1_ci95:Q", title="± (95% CI)", format=".2%"), alt.Tooltip("runs_done:Q", title="seeds")]
    bars = base.mark_bar(opacity=0.85, height={"band": 0.7}).encode(
        alt.X("top1_mean:Q", title=title, axis=alt.Axis(format=".0%", values=[i / 10 for i in range(11)]),
              scale=alt.Scale(domain=[0, 1.22])),  # room right of 100% for the value written beside an interval
        _model_color(df), tooltip=tooltip)
    interval = base.encode(alt.X("lo:Q", title=title), alt.X2("hi:Q"), tooltip=tooltip)
    caps = [base.mark_tick(color="#222", thickness=1.5, size=14).encode(alt.X(f"{end}:Q", title=title))
            for end in ("lo", "hi")]
    whiskers = interval.mark_rule(color="#222", strokeWidth=1.5) + caps[0] + caps[1]
    labels = base.mark_text(align="left", dx=6, color="#222").encode(alt.X("hi:Q", title=title), text="label:N")
    # Streamlit fits the whole chart, axis title included, into the height
    return (bars + whiskers + labels).properties(height=40 * len(df) + 60)


def arena_learning_curves(curves: list[dict]) -> alt.Chart | None:
    """Validation top-1 against training images seen: the mean over seeds per model as a bold line, each seed's
    run as a faint one."""
    df = pd.DataFrame(curves).dropna(subset=["val_top1"])
    if df.empty:
        return None
    x = alt.X("images_seen:Q", title="training images seen", axis=alt.Axis(format="~s", tickCount=6))
    y = alt.Y("val_top1:Q", title="validation top-1", axis=alt.Axis(format=".0%"))
    color, shape = _model_color(df), _model_shape(df)
    runs = alt.Chart(df).encode(x, y, color, detail="seed:N",
                                tooltip=["model", "family", "seed", "epoch", alt.Tooltip("images_seen:Q", format=","),
                                         alt.Tooltip("val_top1:Q", format=".1%")])
    mean = (alt.Chart(df).transform_aggregate(val_top1="mean(val_top1)", images_seen="mean(images_seen)",
                                              seeds="count()", groupby=["model", "family", "epoch"])
            .encode(x, y, color, shape, tooltip=["model", "family", "epoch", alt.Tooltip("images_seen:Q", format=","),
                                                 alt.Tooltip("val_top1:Q", title="mean top-1", format=".1%"),
                                                 "seeds:Q"]))
    faint = runs.mark_line(opacity=0.3, strokeWidth=1)
    return (faint + mean.mark_line(strokeWidth=2.5, point=alt.OverlayMarkDef(filled=True, size=45))
            ).properties(height=320)


def arena_data_size(results: list[dict], crossovers: list[dict]) -> alt.Chart | None:
    """Mean validation top-1 against training-set size (log scale) per model, with the 95% interval as a band
    and each located crossover as a dashed rule labelled with the two models."""
    df = pd.DataFrame(results).dropna(subset=["top1_mean"])
    if df.empty:
        return None
    sizes = sorted(df["size"].unique().tolist())
    x = alt.X("size:Q", title="training images (log scale)", scale=alt.Scale(type="log", nice=False),
              axis=alt.Axis(values=sizes, format=","))
    base = alt.Chart(df).transform_calculate(lo=_CI_LO, hi=_CI_HI).encode(x, _model_color(df))
    band = base.mark_area(opacity=0.15).encode(alt.Y("lo:Q", title="validation top-1 (mean, 95% band)",
                                                     axis=alt.Axis(format=".0%")), alt.Y2("hi:Q"))
    line = base.mark_line(strokeWidth=2, point=alt.OverlayMarkDef(filled=True, size=50)).encode(
        alt.Y("top1_mean:Q"), _model_shape(df), tooltip=[
            "model", "family", alt.Tooltip("size:Q", format=","), alt.Tooltip("top1_mean:Q", format=".1%"),
            alt.Tooltip("top1_ci95:Q", title="± (95% CI)", format=".1%"), alt.Tooltip("runs_done:Q", title="seeds")])
    chart = band + line
    located = pd.DataFrame([c | {"size": at} for c in crossovers for at in c.get("sizes", [])])  # each change of side
    if not located.empty:
        located["pair"] = located["model"] + " × " + located["versus"] + located["settled"].map(
            {False: " (within seed noise)"}).fillna("")
        rules = alt.Chart(located).encode(alt.X("size:Q"), tooltip=["text"])
        chart += (rules.mark_rule(strokeDash=[5, 4], color="#444")
                  + rules.mark_text(align="left", baseline="top", dx=4, y=4, color="#444")
                  .encode(text="pair:N"))
    return chart.properties(height=320)


def _model_label(r: dict) -> str:
    return r.get("model_name") or r["model"]


def shape_bias_bars(results: list[dict], references: list[dict]) -> alt.Chart:
    """Shape bias per model (bars coloured by family, the published figures as grey marks) beside its coverage."""
    df = pd.DataFrame([{"model": _model_label(r), "family": r["family"], "shape_bias": r["shape_bias"],
                        "coverage": r["coverage"], "shape": r["shape_decisions"], "texture": r["texture_decisions"],
                        "n": r["n"]} for r in results])
    refs = pd.DataFrame([{"label": f"{x['label']} {x['shape_bias']:.1%}", "shape_bias": x["shape_bias"]}
                         for x in references])
    y = alt.Y("model:N", title=None, sort=None, axis=alt.Axis(labelLimit=260))
    tooltip = ["model", "family", alt.Tooltip("shape_bias:Q", format=".1%", title="shape bias"),
               alt.Tooltip("coverage:Q", format=".1%"), alt.Tooltip("shape:Q", title="shape decisions"),
               alt.Tooltip("texture:Q", title="texture decisions"), alt.Tooltip("n:Q", title="images")]
    color = alt.Color("family:N", scale=FAMILY_COLORS, legend=alt.Legend(title="family", orient="bottom"))
    height = 40 * len(df) + 40
    bias = alt.Chart(df).encode(y)
    bias = (bias.mark_bar(opacity=0.85, height={"band": 0.6}).encode(
                alt.X("shape_bias:Q", title="shape bias (0: all texture, 1: all shape)",
                      scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%")), color, tooltip=tooltip)
            + bias.mark_text(align="left", dx=4, color="#222").encode(
                alt.X("shape_bias:Q"), text=alt.Text("shape_bias:Q", format=".1%")))
    if not refs.empty:
        marks = alt.Chart(refs).encode(alt.X("shape_bias:Q"))
        bias = (bias + marks.mark_rule(color="#888", strokeDash=[4, 3], strokeWidth=1.5).encode(tooltip=["label"])
                + marks.mark_text(angle=270, align="left", baseline="middle", dx=4, dy=-4, color="#666",
                                  fontSize=10).encode(alt.Y(value=0), text="label:N"))
    coverage = alt.Chart(df).encode(alt.Y("model:N", sort=None, axis=None))
    coverage = coverage.mark_bar(opacity=0.45, height={"band": 0.6}).encode(
        alt.X("coverage:Q", title="coverage (decided by either cue)", scale=alt.Scale(domain=[0, 1]),
              axis=alt.Axis(format=".0%")), color, tooltip=tooltip)
    return alt.hconcat(bias.properties(width=460, height=height),
                       coverage.properties(width=200, height=height)).resolve_scale(color="shared")


def shape_bias_per_class(results: list[dict]) -> alt.Chart | None:
    """Each class's shape bias, models as symbols coloured by family, each model's overall value as a line
    (the layout of Geirhos et al. 2019's per-category figure). None when no model decided any class by a cue."""
    per = pd.DataFrame([{"model": _model_label(r), "family": r["family"], "class": c["class"],
                         "shape_bias": c["shape_bias"], "coverage": c["coverage"], "n": c["n"]}
                        for r in results for c in r["per_class"]]).dropna(subset=["shape_bias"])
    overall = pd.DataFrame([{"model": _model_label(r), "family": r["family"], "shape_bias": r["shape_bias"]}
                            for r in results if r["shape_bias"] is not None])
    if per.empty:
        return None
    order = [c["class"] for c in results[0]["per_class"]]
    x = alt.X("shape_bias:Q", title="shape bias (0: all texture, 1: all shape)", scale=alt.Scale(domain=[0, 1]),
              axis=alt.Axis(format=".0%"))
    points = alt.Chart(per).mark_point(filled=True, size=90, opacity=0.85).encode(
        x, alt.Y("class:N", sort=order, title=None), alt.Color("family:N", scale=FAMILY_COLORS, legend=None),
        alt.Shape("model:N", legend=alt.Legend(title="model", orient="bottom", columns=2, labelLimit=260)),
        tooltip=["model", "class", alt.Tooltip("shape_bias:Q", format=".1%", title="shape bias"),
                 alt.Tooltip("coverage:Q", format=".1%"), alt.Tooltip("n:Q", title="images")])
    lines = alt.Chart(overall).mark_rule(strokeDash=[5, 3], opacity=0.7).encode(
        x, alt.Color("family:N", scale=FAMILY_COLORS, legend=None), tooltip=["model", alt.Tooltip(
            "shape_bias:Q", format=".1%", title="overall shape bias")])
    return (lines + points).properties(height=34 * len(order) + 90)


# --- robustness: rows of core.robustness.robustness -------------------------------------------------------
def robustness_lines(results: list[dict]) -> alt.Chart | None:
    """Top-1 against severity (0: clean), one panel per corruption, one line per model coloured by family and marked
    by model. A click selects the nearest point (the selection parameter `point`: "corruption" and "severity")."""
    rows = [{"model": _model_label(r), "family": r["family"], "corruption": x["corruption"], "severity": x["severity"],
             "top1": x["top1"], "ece": x["ece"]} for r in results for x in r["results"]]
    rows += [{"model": _model_label(r), "family": r["family"], "corruption": c, "severity": 0, "top1": r["clean_top1"],
              "ece": r["ece"]} for r in results for c in dict.fromkeys(x["corruption"] for x in r["results"])]
    df = pd.DataFrame(rows)
    if df.empty:
        return None
    # nearest: a click anywhere in a panel picks the closest point, not only a click on its few pixels
    pick = alt.selection_point(name="point", fields=["corruption", "severity"], on="click", clear="dblclick",
                               nearest=True)
    order = list(dict.fromkeys(x["corruption"] for r in results for x in r["results"]))
    base = alt.Chart(df).encode(
        alt.X("severity:O", title="severity (0 = clean)"), alt.Y("top1:Q", title="top-1", axis=alt.Axis(format=".0%"),
                                                                 scale=alt.Scale(domain=[0, 1])),
        alt.Color("family:N", scale=FAMILY_COLORS, legend=alt.Legend(title="family", orient="bottom")),
        alt.Detail("model:N"))
    lines = base.mark_line(opacity=0.8)
    points = base.mark_point(filled=True, size=60).encode(
        alt.Shape("model:N", legend=alt.Legend(title="model", orient="bottom", columns=2, labelLimit=260)),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
        tooltip=["model", "family", "corruption", "severity", alt.Tooltip("top1:Q", format=".1%"),
                 alt.Tooltip("ece:Q", format=".3f", title="ECE")]).add_params(pick)
    return (lines + points).properties(width=170, height=150).facet(
        facet=alt.Facet("corruption:N", sort=order, title=None), columns=5)


def reliability_diagrams(results: list[dict]) -> alt.Chart | None:
    """Per model, accuracy against mean confidence in 15 equal-width bins (bars, coloured by family; bar width: the
    bin, opacity: its share of images) under the diagonal of perfect calibration. None when no evaluation's scores
    are probabilities over the dataset's classes."""
    rows = [{"model": _model_label(r), "family": r["family"], "lo": b["lo"], "hi": b["hi"], "n": b["n"],
             "accuracy": b["accuracy"], "confidence": b["confidence"], "share": b["n"] / max(1, r["n"]),
             "ece": r["ece"]} for r in results if r.get("reliability") for b in r["reliability"] if b["n"]]
    if not rows:
        return None
    df = pd.DataFrame(rows)
    unit = alt.Scale(domain=[0, 1])
    bars = alt.Chart().mark_rect(stroke="white").encode(
        alt.X("lo:Q", title="confidence (top-1 probability)", scale=unit, axis=alt.Axis(format=".0%")), alt.X2("hi"),
        alt.Y("accuracy:Q", title="accuracy", scale=unit, axis=alt.Axis(format=".0%")), alt.Y2(datum=0),
        alt.Color("family:N", scale=FAMILY_COLORS, legend=None),
        opacity=alt.Opacity("share:Q", scale=alt.Scale(domain=[0, 0.3], range=[0.35, 1]), legend=None),
        tooltip=["model", alt.Tooltip("lo:Q", format=".2f", title="from"), alt.Tooltip("hi:Q", format=".2f",
                                                                                      title="to"),
                 alt.Tooltip("n:Q", title="images"), alt.Tooltip("confidence:Q", format=".1%", title="mean confidence"),
                 alt.Tooltip("accuracy:Q", format=".1%")])
    diagonal = alt.Chart().mark_rule(color="#888", strokeDash=[4, 3]).encode(
        x=alt.X(datum=0), y=alt.Y(datum=0), x2=alt.X2(datum=1), y2=alt.Y2(datum=1))
    return alt.layer(bars, diagonal, data=df).properties(width=200, height=200).facet(
        facet=alt.Facet("model:N", title=None, header=alt.Header(labelLimit=220)), columns=4)


def faithfulness_bars(rows: list[dict], *, labels: dict[str, str] | None = None) -> alt.Chart | None:
    """Per model and method, deletion and insertion AUC as bars (coloured by family; baselines grey) with the 95%
    interval over the images, one panel per metric, one row of panels per model. `labels`: method -> its name."""
    labels = labels or {}
    long = [{"model": _model_label(r), "family": "other" if r["baseline"] else r["family"],
             "method": labels.get(r["method"], r["method"]),
             "metric": metric.replace("_auc", " AUC") + (" (lower is better)" if metric == "deletion_auc"
                                                         else " (higher is better)"),
             "value": r[metric], "lo": max(0.0, r[metric] - (r[metric + "_ci95"] or 0)),
             "hi": min(1.0, r[metric] + (r[metric + "_ci95"] or 0))}
            for r in rows if "error" not in r for metric in ("deletion_auc", "insertion_auc")]
    if not long:
        return None
    df = pd.DataFrame(long)
    order = list(dict.fromkeys(r["method"] for r in long))
    tooltip = ["model", "method", alt.Tooltip("value:Q", format=".3f", title="mean AUC"),
               alt.Tooltip("lo:Q", format=".3f", title="95% from"), alt.Tooltip("hi:Q", format=".3f", title="to")]
    base = alt.Chart().encode(alt.Y("method:N", sort=order, title=None))
    bars = base.mark_bar(opacity=0.85, height={"band": 0.8}).encode(
        alt.X("value:Q", title="area under P(class)", scale=alt.Scale(domain=[0, 1])),
        alt.Color("family:N", scale=FAMILY_COLORS, legend=alt.Legend(title="family (grey: baseline)",
                                                                      orient="bottom")), tooltip=tooltip)
    whiskers = base.mark_rule(color="#222").encode(alt.X("lo:Q"), alt.X2("hi:Q"), tooltip=tooltip)
    return alt.layer(bars, whiskers, data=df).properties(width=260, height=alt.Step(22)).facet(
        row=alt.Row("model:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=200)),
        column=alt.Column("metric:N", title=None)).resolve_scale(y="independent")  # each model its own methods


def layer_reach(rows: list[dict]) -> alt.Chart | None:
    """How far each layer sees (rows of core.explain.layer_reach: model, family, depth, pixels, share, what) as a
    share of the input side: a colour (its family's hue) and shape per model, filled for attention distance and
    hollow for a convolution's receptive field."""
    if not rows:
        return None
    df = pd.DataFrame(rows)
    legend = _model_legend(orient="bottom")
    base = alt.Chart(df).encode(
        # padded: the first and last layers' points, and a field wider than the image, sat half outside the plot
        alt.X("depth:Q", title="layer (conv, then attention block, in forward order)", axis=alt.Axis(tickMinStep=1),
              scale=alt.Scale(padding=12, zero=False)),
        alt.Y("share:Q", title="reach, % of input side", axis=alt.Axis(format=".0%"), scale=alt.Scale(padding=12)),
        _model_color(df, legend=legend), _model_shape(df, legend=legend),
        tooltip=["model", "family", "what", "depth", alt.Tooltip("pixels", format=".1f", title="pixels"),
                 alt.Tooltip("share", format=".0%", title="share of the side")])
    conv = base.transform_filter("datum.what == 'receptive field'").mark_point(filled=False, size=70, strokeWidth=2)
    attention = base.transform_filter("datum.what != 'receptive field'").mark_point(filled=True, size=70)
    return (conv + attention).properties(height=320)


def deletion_curves(rows: list[dict]) -> alt.Chart | None:
    """P(class) against the fraction of pixels deleted (left) and inserted (right) for the image on screen: one
    solid line per model for the method, a dashed one for its random map."""
    long = [{"model": r["model"], "family": r["family"], "map": m, "kind": kind, "fraction": i / (len(curve) - 1),
             "probability": p}
            for r in rows for m, curves in (("method", r["curves"]), ("random map", r["baseline_curves"]["random"]))
            for kind in ("deletion", "insertion") for curve in [curves[kind]] for i, p in enumerate(curve)]
    if not long:
        return None
    df = pd.DataFrame(long)
    return alt.Chart(df).mark_line().encode(
        alt.X("fraction:Q", title="fraction of pixels changed", axis=alt.Axis(format=".0%")),
        alt.Y("probability:Q", title="P(class)", scale=alt.Scale(domain=[0, 1])),
        _model_color(df, legend=_model_legend(orient="bottom", columns=1)),
        alt.StrokeDash("map:N", sort=["method", "random map"], legend=alt.Legend(title=None, orient="bottom")),
        tooltip=["model", "family", "map", alt.Tooltip("fraction:Q", format=".0%"),
                 alt.Tooltip("probability:Q", format=".3f")]).properties(width=300, height=220).facet(
        column=alt.Column("kind:N", title=None, sort=["deletion", "insertion"]))
