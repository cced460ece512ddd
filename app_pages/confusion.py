"""Confusion matrix: hover for counts, click a cell for the images behind it with their top-5."""
import altair as alt
import pandas as pd
import streamlit as st

from core.confusion import SUBSETS, cell_images, class_subset, confusion_cells
from core.errors import UserError
from core.evaluate import load_evaluation
from core.results import evaluation_table

st.title("Confusion matrix")
rows = evaluation_table()
if not rows:
    st.info("No evaluations in the store yet: run the demo or evaluate a model on the Overview page.")
    st.stop()


@st.cache_resource(max_entries=8, show_spinner=False)
def evaluation(key: str):
    return load_evaluation(key)


labels = {r["key"]: f"{r['model_name'] or r['model']} on {r['dataset']}/{r['split']} ({r['n']} images)" for r in rows}
keys = list(labels)
chosen = st.query_params.get("eval")
c1, c2 = st.columns([3, 1])
key = c1.selectbox("Evaluation", keys, format_func=labels.get, index=keys.index(chosen) if chosen in keys else 0)
st.query_params["eval"] = key
try:
    ev = evaluation(key)
except UserError as e:
    st.error(str(e))
    st.stop()
from core.data.registry import load_dataset  # noqa: E402  (class names live with the dataset)

classes = load_dataset(ev.meta["dataset"]).classes
scorings = ["all"] + (["restricted"] if ev.restricted is not None else [])
qp = st.query_params
scoring = c2.radio("Scored over", scorings, horizontal=True,
                   index=scorings.index(qp["scoring"]) if qp.get("scoring") in scorings else 0, format_func=lambda s: {
    "all": ev.meta.get("scoring", "native"), "restricted": "dataset's classes only"}[s])

c1, c2, c3, c4 = st.columns([3, 1, 2, 1.3])
mode = c1.radio("Classes", SUBSETS, horizontal=True,
                index=SUBSETS.index(qp["classes"]) if qp.get("classes") in SUBSETS else 0)
n = c2.number_input("How many", 2, 1000, int(qp["n"]) if qp.get("n", "").isdigit() else min(20, len(classes)))
query = c3.text_input("Search class names", value=qp.get("q", ""), disabled=mode != "search")
normalise = c4.toggle("Row shares", value=qp.get("rows") == "share",
                      help="each row divided by its true class's image count")
qp.update({"scoring": scoring, "classes": mode, "n": str(int(n)), "q": query,
           "rows": "share" if normalise else "count"})
subset = class_subset(ev, classes, mode, int(n), query, scoring)
if not subset:
    st.info("No class matches the search.")
    st.stop()

cells = pd.DataFrame(confusion_cells(ev, classes, subset, scoring))
value = "row_share" if normalise else "count"
# correct cells green, errors red, each scaled to its own maximum so small error counts stay visible
top_right = float(cells.loc[cells["correct"], value].max() or 1)
top_wrong = float(cells.loc[~cells["correct"], value].max() or 1)
cells["shade"] = (cells[value] / top_right).where(cells["correct"], -cells[value] / top_wrong)
order = [classes[i] for i in subset]
columns = order + (["(outside the dataset)"] if (cells["pred_name"] == "(outside the dataset)").any() else [])
cells = cells[(cells["count"] > 0) | cells["correct"]]  # empty error cells are the grey background: fewer marks
limit = 1.0
side = max(4, min(36, 900 // max(len(order), 1)))
pick = alt.selection_point(name="cell", fields=["true", "pred"], on="click", clear="dblclick")
chart = (alt.Chart(cells).mark_rect(stroke="white", strokeWidth=0.5 if side >= 10 else 0)
         .encode(alt.X("pred_name:N", scale=alt.Scale(domain=columns), title="predicted class",
                       axis=alt.Axis(labels=side >= 10)),
                 alt.Y("true_name:N", scale=alt.Scale(domain=order), title="true class", axis=alt.Axis(labels=side >= 10)),
                 color=alt.condition("datum.count == 0", alt.value("#f4f4f4"),
                                     alt.Color("shade:Q", legend=None, scale=alt.Scale(
                                         domain=[-limit, 0, limit], range=["#c0392b", "#fdf2f0", "#1e8449"]))),
                 opacity=alt.condition(pick, alt.value(1.0), alt.value(0.55)),
                 tooltip=[alt.Tooltip("true_name", title="true"), alt.Tooltip("pred_name", title="predicted"),
                          alt.Tooltip("count", title="images"), alt.Tooltip("row_share", title="share of row", format=".1%")])
         .add_params(pick)
         .properties(width=side * len(columns), height=side * len(order))
         .configure_view(fill="#f4f4f4"))
event = st.altair_chart(chart, on_select="rerun", key=f"cm-{key}-{scoring}")
st.caption(f"Green: correct ({value.replace('_', ' ')}); red: errors. Top-1 {ev.meta['top1']:.1%} over "
           f"{ev.meta.get('scoring', 'native')}. Click a cell for its images; double-click to clear.")

selected = (event.selection.get("cell") if event and event.selection else None) or []
if selected:
    true, pred = int(selected[0]["true"]), int(selected[0]["pred"])
    count, images = cell_images(ev, true, pred, classes, scoring=scoring)
    pred_name = classes[pred] if pred < len(classes) else "(outside the dataset)"
    st.subheader(f"true {classes[true]}, predicted {pred_name}: {count} images"
                 + (f" (first {len(images)})" if count > len(images) else ""))
    cols = st.columns(6)
    for i, item in enumerate(images):
        with cols[i % 6]:
            st.image(item.image, width="stretch", caption=f"#{item.index}")
            st.caption("  \n".join(f"{p:.0%} {lab}" for lab, p in item.top))

others = [k for k, r in zip(keys, rows) if k != key and r["dataset"] == ev.meta["dataset"] and r["split"] == ev.meta["split"]]
if others:
    st.divider()
    st.subheader("Two models: where they disagree")
    other = st.selectbox("Model B", others, format_func=labels.get, key="cm_b")
    from core.confusion import disagreement_images, disagreements  # noqa: E402

    ev_b = evaluation(other)
    dis = pd.DataFrame(disagreements(ev, ev_b))
    dis["class"] = [classes[t] for t in dis["true"]]
    dis = dis[dis["true"].isin(subset)]
    pick_b = alt.selection_point(name="dis", fields=["true", "which"], on="click", clear="dblclick")
    bars = (alt.Chart(dis).mark_bar().encode(
        alt.X("class:N", sort=order, title="true class"), alt.Y("count:Q", title="images"),
        alt.XOffset("which:N"), alt.Color("which:N", scale=alt.Scale(range=["#1f77b4", "#d62728"]), title=None),
        opacity=alt.condition(pick_b, alt.value(1.0), alt.value(0.5)), tooltip=["class", "which", "count"])
        .add_params(pick_b).properties(height=260))
    ev2 = st.altair_chart(bars, on_select="rerun", key=f"dis-{key}-{other}", width="stretch")
    st.caption(f"A = {labels[key]}; B = {labels[other]}. Click a bar for its images with both models' top-5.")
    chosen2 = (ev2.selection.get("dis") if ev2 and ev2.selection else None) or []
    if chosen2:
        true, which = int(chosen2[0]["true"]), chosen2[0]["which"]
        count, pairs = disagreement_images(ev, ev_b, true, which, classes)
        st.markdown(f"**{classes[true]}: {which}** - {count} images")
        for a_item, b_item in pairs:
            c1, c2, c3 = st.columns([1, 2, 2])
            c1.image(a_item.image, width=96, caption=f"#{a_item.index}")
            c2.caption("A: " + ", ".join(f"{lab} {p:.0%}" for lab, p in a_item.top[:3]))
            c3.caption("B: " + ", ".join(f"{lab} {p:.0%}" for lab, p in b_item.top[:3]))
