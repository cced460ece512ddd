"""The app through Streamlit's AppTest: app.py (navigation and sidebar) run first, then one page."""
from streamlit.testing.v1 import AppTest

from core.settings import REPO_ROOT


def open_page(page: str | None = None, link: dict | None = None, timeout: float = 120) -> AppTest:
    """app.py opened with `link` as its URL's query, switched to `page` (a path under app_pages/); no exception."""
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=timeout)
    at.query_params.update(link or {})
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart_data(chart) -> list:
    """The data frames an Altair chart was drawn from (Streamlit sends them beside the spec, in Arrow)."""
    import pyarrow as pa

    return [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]


def store_with_run(root, dataset: str):
    """A store in `root` holding a cnn-2layer trained briefly on `dataset` at 32 px: (the store, the run's model
    id)."""
    from core.store import Store
    from core.train.loop import train
    from core.train.recipe import Recipe

    store = Store(root)
    recipe = Recipe(model="cnn-2layer", dataset=dataset, image_size=32, epochs=1, limit=500, val_limit=50,
                    optimizer="adam", lr=3e-3)
    return store, train(recipe, store=store).model_id
