"""Class drill-down: one class across models - precision, recall, F1, where its images went, examples."""
import pandas as pd
import streamlit as st

from core.confusion import cell_images, class_report, confusion
from core.results import evaluation_labels
from ui.pickers import cached_evaluation, dataset_classes, stored_evaluations
from ui.tables import show_table

st.title("Class drill-down")
rows = stored_evaluations()

by_data: dict[str, list[dict]] = {}
for r in rows:
    by_data.setdefault(f"{r['dataset']}/{r['split']}", []).append(r)
where = st.selectbox("Dataset and split", list(by_data), help="the evaluated images to drill into")
candidates = by_data[where]
labels = evaluation_labels(candidates, short=True)
keys = st.multiselect("Models", list(labels), default=list(labels)[:3], format_func=labels.get,
                      help="evaluations of this dataset and split to compare on the class")
classes = dataset_classes(candidates[0]["dataset"])[0]
chosen = st.query_params.get("class")
cls = st.selectbox("Class", range(len(classes)), format_func=lambda i: classes[i], key="dd-class",
                   help="the class to look into",
                   index=classes.index(chosen) if chosen in classes else 0)
st.query_params["class"] = classes[cls]
if not keys:
    st.stop()

reports = {k: class_report(cached_evaluation(k), cls, classes) for k in keys}
show_table(pd.DataFrame([{"model": labels[k], **{f: r[f] for f in ("precision", "recall", "f1", "support")},
                         "most often taken for": ", ".join(f"{c} ({n})" for c, n in r["confused_with"][:3])}
                        for k, r in reports.items()]), width="stretch",
          column_config={
    "precision": st.column_config.NumberColumn(format="%.3f"), "recall": st.column_config.NumberColumn(format="%.3f"),
    "f1": st.column_config.NumberColumn("F1", format="%.3f")})

cols = st.columns(len(keys))
for col, k in zip(cols, keys):
    ev = cached_evaluation(k)
    with col:
        st.markdown(f"**{labels[k]}**")
        cm = confusion(ev)
        _, right = cell_images(ev, cls, cls, classes, limit=4)
        st.caption(f"correct ({cm[cls, cls]})")
        if right:
            st.image([i.image for i in right], width=72, caption=[f"{i.top[0][1]:.0%}" for i in right])
        wrong_to = reports[k]["confused_with"][:1]
        if wrong_to:
            name = wrong_to[0][0]
            pred = classes.index(name) if name in classes else len(classes)
            _, wrong = cell_images(ev, cls, pred, classes, limit=4)
            st.caption(f"taken for {name} ({wrong_to[0][1]})")
            st.image([i.image for i in wrong], width=72, caption=[f"{i.top[0][1]:.0%}" for i in wrong])
