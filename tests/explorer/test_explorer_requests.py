"""The explorer answers requests of the wrong structure harmlessly (issue 27): callback
inputs that parse as JSON but are not what the page sends, and malformed request envelopes,
get a normal answer or HTTP 400, never a 500 with a server traceback."""

import logging

import numpy as np
import pytest

from skastro.explorer import Explorer
from skastro.explorer import _callbacks as cb

WRONG = [None, "x", 5, 10**30, True, [], [1, [2]], {"a": 1}, {"points": "x"},
         {"points": [1, 2]}, {"points": [{"customdata": "abc", "bbox": "x"}]},
         {"points": [{"customdata": [[{}]]}]}, {"index": "abc"}]  # fmt: skip


@pytest.fixture(scope="module")
def explorer():
    images = np.random.default_rng(0).random((30, 1, 8, 8), dtype=np.float32)
    return Explorer(images, labels=np.arange(30) % 2)


@pytest.fixture(scope="module")
def client(explorer):
    app = explorer.make_app()
    return app, app.server.test_client()


@pytest.mark.parametrize("value", WRONG)
def test_callback_helpers_take_any_json(explorer, value):
    assert cb.clicked_index(value) is None or isinstance(cb.clicked_index(value), int)
    assert all(isinstance(i, int) for i in cb.selected_indices(value))
    assert cb.selection_summary(value)
    assert cb.selected_index(value) is None or isinstance(cb.selected_index(value), int)
    show, _bbox, _ = cb.hover_tooltip(explorer, value, lambda i: f"/{i}.png")
    assert show in (True, False)
    options, chosen = cb.color_dropdown(explorer, value, value)
    assert chosen in {option["value"] for option in options}
    assert cb.figure_for(explorer, value, value, value)["data"]
    assert cb.parameter_visibility(value, value)["tsne"] == {"display": "none"}
    assert cb.poll_computation(explorer, value)["done"]
    started = cb.start_computation(explorer, {"projection": value, "n_dims": value})
    assert "status" in started
    stretch, band, _k = cb.display_settings(value, value, value, explorer)
    assert stretch == "asinh" and band in (None, "rgb", 0)


def _post(client, body):
    logging.disable(logging.CRITICAL)
    try:
        return client.post("/_dash-update-component", json=body).status_code
    finally:
        logging.disable(logging.NOTSET)


def _body(app, output, value):
    spec = app.callback_map[output]
    names = output.strip(".").split("...") if output.startswith("..") else [output]
    outputs = [dict(zip(("id", "property"), name.rsplit(".", 1))) for name in names]

    def entry(item):
        return {"id": item["id"], "property": item["property"], "value": value}

    return {
        "output": output,
        "outputs": outputs if output.startswith("..") else outputs[0],
        "inputs": [entry(i) for i in spec["inputs"]],
        "state": [entry(s) for s in spec["state"]],
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in spec["inputs"][:1]],
    }


@pytest.mark.parametrize("value", WRONG)
def test_no_callback_answers_500(client, value):
    app, http = client
    for output, spec in app.callback_map.items():
        if "callback" not in spec or any(isinstance(i["id"], dict) for i in spec["inputs"]):
            continue
        assert _post(http, _body(app, output, value)) < 500, output


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "x",
        {},
        {"output": 5},
        {"output": "scatter.figure"},
        {"output": "scatter.figure", "inputs": "x"},
        {"output": "nope.x", "inputs": [], "state": []},
        {
            "output": "scatter.figure",
            "outputs": {"id": "other", "property": "figure"},
            "inputs": [],
            "state": [],
        },
    ],
)
def test_malformed_requests_get_400(client, body):
    _, http = client
    assert _post(http, body) == 400


def test_well_formed_requests_still_work(client):
    app, http = client
    assert _post(http, _body(app, "selection-summary.children", None)) == 200
