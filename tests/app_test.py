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
