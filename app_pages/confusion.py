"""Confusion matrix: hover for counts, click a cell for the images behind it with their top-5."""
import altair as alt
import pandas as pd
import streamlit as st

from core.confusion import (
    SUBSETS,
    cell_images,
    class_subset,
    confusion_cells,
    disagreement_images,
    disagreements,
    grouped_cells,
    shared_images,
    superclasses,
)
from core.errors import UserError
from core.results import evaluation_labels, most_informative
from ui.charts import confusion_chart
from ui.links import first_run, url_int
from ui.pickers import cached_evaluation, dataset_classes, stored_evaluations

st.title("Confusion matrix")
rows = stored_evaluations()

labels = evaluation_labels(rows)
keys = list(labels)
chosen = st.query_params.get("eval")
if chosen not in keys:
    chosen = most_informative(rows)  # the best model that still makes mistakes, not the newest evaluation
c1, c2 = st.columns([3, 1])
key = c1.selectbox("Evaluation", keys, format_func=labels.get, index=keys.index(chosen), key="cm-eval",
                   help="opens on the best-scoring evaluation that still has errors to show; the link keeps a choice")
st.query_params["eval"] = key
try:
    ev = cached_evaluation(key)
except UserError as e:
    st.error(str(e))
    st.stop()
if ev.meta.labels_assumed:
    st.caption(f"**Class names assumed** - {ev.meta.labels_assumed}")
classes, wnids = dataset_classes(ev.meta.dataset)
scorings = ["all"] + (["restricted"] if ev.restricted is not None else [])
qp = st.query_params
scoring = c2.radio("Scored over", scorings, horizontal=True, key="cm-scoring",
                   help="over the classes the evaluation ranked, or the dataset's classes only (a model with more "
                        "classes than the dataset)",
                   index=scorings.index(qp["scoring"]) if qp.get("scoring") in scorings else 0, format_func=lambda s: {
    "all": ev.meta.scoring, "restricted": "dataset's classes only"}[s])

c1, c2, c3, c4 = st.columns([3, 1, 2, 1.3])
mode = c1.radio("Classes", SUBSETS, horizontal=True, key="cm-classes",
                help="the classes the matrix shows: the first N, the N most confused, a name search, or grouped "
                     "into superclasses",
                index=SUBSETS.index(qp["classes"]) if qp.get("classes") in SUBSETS else 0)
n = c2.number_input("How many", 2, 1000, url_int("n", min(20, len(classes)), 2, 1000), key="cm-n",
                     help="classes in the matrix")
query = c3.text_input("Search class names", value=qp.get("q", ""), disabled=mode != "search", key="cm-q",
                      help="classes whose name contains this text (Classes: search)")
normalise = c4.toggle("Row shares", value=qp.get("rows") == "share", key="cm-rows",
                      help="each row divided by its true class's image count")
qp.update({"scoring": scoring, "classes": mode, "n": str(int(n)), "q": query,
           "rows": "share" if normalise else "count"})
value = "row_share" if normalise else "count"
if mode == "superclass":
    groups = superclasses(ev, wnids)
    if groups is None:
        st.info("Superclass groups need a dataset with 100 or more WordNet classes (ImageNet, Tiny ImageNet).")
        st.stop()
    names = list(groups)
    picked_group = confusion_chart(pd.DataFrame(grouped_cells(ev, groups, scoring)), names, value=value,
                                   key=f"cmg-{key}-{scoring}", what="WordNet superclass")
    st.caption(f"{len(classes)} classes in {len(names)} WordNet superclasses (WordNet 3.0 hypernyms). "
               "Click a cell to open its classes below.")
    if not picked_group:
        st.stop()
    t, p = int(picked_group[0]["true"]), int(picked_group[0]["pred"])
    subset = sorted(set(groups[names[t]]) | (set(groups[names[p]]) if p < len(names) else set()))
    st.subheader(f"{names[t]} -> {names[p] if p < len(names) else 'outside the dataset'}: {len(subset)} classes")
else:
    subset = class_subset(ev, classes, mode, int(n), query, scoring)
if not subset:
    st.info("No class matches the search.")
    st.stop()

order = [classes[i] for i in subset]
cells = pd.DataFrame(confusion_cells(ev, classes, subset, scoring))
# the clicked cell lives in the link, so a shared link opens its images; once a visit, so a double-click clears it.
# The chart draws the link's cell as picked (a link, a story's slide or a click), as a click would
linked = [int(x) for x in qp.get("cell", "").split(",") if x.isdecimal()]
linked = linked if len(linked) == 2 and linked[0] in subset and 0 <= linked[1] <= len(classes) else []  # len: "outside"
drawn = linked and ((cells["true"] == linked[0]) & (cells["pred"] == linked[1])
                    & ((cells["count"] > 0) | cells["correct"])).any()  # an empty error cell has no mark to pick
selected = confusion_chart(cells, order, value=value, key=f"cm-{key}-{scoring}-{mode}",
                           selected=(linked[0], linked[1]) if drawn else None)
first = first_run("cm-cell")
if selected:
    qp["cell"] = f"{int(selected[0]['true'])},{int(selected[0]['pred'])}"
elif linked and first:
    selected = [{"true": linked[0], "pred": linked[1]}]
else:
    qp.pop("cell", None)
st.caption(f"Green: correct ({value.replace('_', ' ')}); red: errors. Top-1 {ev.meta.top1:.1%} over "
           f"{ev.meta.scoring}. Click a cell for its images; double-click to clear.")

if selected:
    true, pred = int(selected[0]["true"]), int(selected[0]["pred"])
    count, images = cell_images(ev, true, pred, classes, scoring=scoring)
    pred_name = classes[pred] if pred < len(classes) else "(outside the dataset)"
    st.subheader(f"true {classes[true]}, predicted {pred_name}: {count} image{'s' * (count != 1)}"
                 + (f" (first {len(images)})" if count > len(images) else ""))
    st.caption(f"Under each image, the top-5 this evaluation stored for it ({ev.meta.precision} on "
               f"{ev.meta.device}): the prediction that put it in this cell. Predict at {ev.meta.precision} gives "
               "the same top-1.")
    cols = st.columns(6)
    for i, item in enumerate(images):
        with cols[i % 6]:
            st.image(item.image, width="stretch", caption=f"#{item.index}")
            st.caption("  \n".join(f"{p:.0%} {lab}" for lab, p in item.top))

others = [k for k, r in zip(keys, rows) if k != key and r["dataset"] == ev.meta.dataset and r["split"] == ev.meta.split]
if others:
    st.divider()
    st.subheader("Two models: where they disagree")
    other = st.selectbox("Model B", others, format_func=labels.get, key="cm_b",
                         help="another evaluation of the same images: where the two disagree")
    ev_b = cached_evaluation(other)
    dis = pd.DataFrame(disagreements(ev, ev_b))
    dis["class"] = [classes[t] for t in dis["true"]]
    dis = dis[dis["true"].isin(subset)]
    pick_b = alt.selection_point(name="dis", fields=["true", "which"], on="click", clear="dblclick")
    bars = (alt.Chart(dis).mark_bar().encode(
        alt.X("class:N", sort=order, title="true class"),
        alt.Y("count:Q", title="images", axis=alt.Axis(tickMinStep=1, format="d")),
        alt.XOffset("which:N"), alt.Color("which:N", scale=alt.Scale(range=["#1f77b4", "#d62728"]), title=None),
        opacity=alt.condition(pick_b, alt.value(1.0), alt.value(0.5)), tooltip=["class", "which", "count"])
        .add_params(pick_b).properties(height=260))
    ev2 = st.altair_chart(bars, on_select="rerun", key=f"dis-{key}-{other}", width="stretch")
    both = shared_images(ev, ev_b)
    st.caption(f"A = {labels[key]}; B = {labels[other]}. Over the {both:,} images both scored"
               + (f" (A scored {ev.meta.n:,}, B {ev_b.meta.n:,})" if both < max(ev.meta.n, ev_b.meta.n) else "")
               + ". Click a bar for its images with both models' top-5.")
    chosen2 = (ev2.selection.get("dis") if ev2 and ev2.selection else None) or []
    if chosen2:
        true, which = int(chosen2[0]["true"]), chosen2[0]["which"]
        count, pairs = disagreement_images(ev, ev_b, true, which, classes)
        st.markdown(f"**{classes[true]}: {which}** - {count} image{'s' * (count != 1)}")
        for a_item, b_item in pairs:
            c1, c2, c3 = st.columns([1, 2, 2])
            c1.image(a_item.image, width=96, caption=f"#{a_item.index}")
            c2.caption("A: " + ", ".join(f"{lab} {p:.0%}" for lab, p in a_item.top[:3]))
            c3.caption("B: " + ", ".join(f"{lab} {p:.0%}" for lab, p in b_item.top[:3]))
