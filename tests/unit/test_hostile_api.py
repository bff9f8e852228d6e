"""The Python API as a notebook calls it, each attack of the third outsider's review (2026-12-07)
kept as a test: wrong types and values get one clear error, never a silent wrong answer."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.errors import ConfigError, DigitlabError


def test_a_recognizers_threshold_and_batch_size_are_checked():
    """threshold=None or "0.5" raised a TypeError; predict_iter(batch_size=0) returned no answer for
    an image, silently, and -1 a ValueError from itertools."""
    from digitlab.recognize import Recognizer

    for threshold in (None, "0.5", 2, float("nan"), True):
        with pytest.raises(ConfigError, match="the threshold is a probability"):
            Recognizer.load("reader", threshold=threshold)
    assert Recognizer.load("reader", threshold=np.int64(1)).threshold == 1
    recognizer = Recognizer.load("reader", threshold=np.float32(0.6))
    for batch_size in (0, -1, 2.0):
        with pytest.raises(ConfigError, match="batch_size is a number of images"):
            list(recognizer.predict_iter([np.zeros((28, 28))], batch_size=batch_size))
    assert len(list(recognizer.predict_iter([np.zeros((28, 28))] * 3, batch_size=np.int64(2)))) == 3


def test_names_files_and_folders_of_the_wrong_kind_are_one_error(tmp_path):
    """get_preset([]) raised a TypeError, write_idx into a missing folder a FileNotFoundError, and
    load_model of a run folder "cannot load the model (UnboundLocalError: ... weights_store ...)"."""
    import digitlab
    from digitlab.models.files import load_model

    with pytest.raises(ConfigError, match="is not a preset"):
        digitlab.get_preset([])
    with pytest.raises(DigitlabError, match="missing/x.idx: cannot write"):
        digitlab.write_idx(tmp_path / "missing" / "x.idx", np.zeros(3, np.uint8))
    with pytest.raises(DigitlabError, match="is a folder; name a file") as info:  # its one message, not two
        digitlab.write_idx(tmp_path, np.zeros(3, np.uint8))
    assert "check that the folder exists" not in str(info.value)
    with pytest.raises(DigitlabError, match="a folder; load_model takes a model file"):
        load_model(tmp_path)


def test_plots_given_arrays_that_do_not_fit_say_so():
    """plot_samples with 5 images and 3 labels raised an IndexError from inside the grid, a 1-D
    confusion matrix an AxisError (third review)."""
    from digitlab.reports import plots

    with pytest.raises(ValueError, match="one label each"):
        plots.plot_samples(np.zeros((5, 28, 28), np.uint8), np.zeros(3, int))
    with pytest.raises(ValueError, match="a confusion matrix is square"):
        plots.plot_confusion(np.zeros(3))
    with pytest.raises(ValueError, match="probabilities must be"):
        plots.plot_predictions(np.zeros((2, 28, 28)), np.zeros(2, int), np.zeros(10))


def test_the_http_api_answers_what_the_fourth_review_sent():
    """The review of 2026-12-07: a misspelt `?thresold=` or form field was ignored silently; bad JSON's
    hint never showed (pydantic's location is ["body", position]) and an empty body had none; bytes
    that are not UTF-8 were blamed on nesting or long numbers; HEAD got 405; a 10,000 x 10,000 PNG was
    refused in Pillow's words and with its limit, not the server's; /docs' "Try it out" sent a body
    of both fields (a 422)."""
    import base64
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from digitlab.recognize import Recognizer
    from digitlab.serve.app import ImageBody, Limits, create_app, model_facts
    from tests.conftest import seven

    png = io.BytesIO()
    seven().save(png, "PNG")
    upload = {"file": ("seven.png", png.getvalue(), "image/png")}
    body = {"image": base64.b64encode(png.getvalue()).decode()}
    recognizer = Recognizer.load("reader")
    with TestClient(create_app(recognizer, model_facts(recognizer), Limits(max_pixels=12_000_000))) as client:
        answer = client.post("/api/v1/predict?foo=1&thresold=0.9", json=body)
        assert answer.status_code == 422
        assert answer.json()["detail"] == "'thresold' is not a query parameter of this endpoint; did you mean 'threshold'?"
        answer = client.post("/api/v1/read/upload", files=upload, data={"Threshhold": "1"})
        assert answer.status_code == 422 and "'Threshhold' is not a form field" in answer.json()["detail"]
        assert client.post("/api/v1/predict/upload?threshold=0.5", files=upload, data={"threshold": "0.5"}).status_code == 200
        # names that are no near miss are not ours to refuse (the sixth review): a cache-buster, a submit button
        assert client.post("/api/v1/predict/upload?_=123", files=upload, data={"action": "Send"}).json()["digit"] == "7"
        for sent in ("{bad", ""):
            answer = client.post("/api/v1/predict", content=sent, headers={"content-type": "application/json"})
            assert answer.status_code == 422 and "send a JSON object" in answer.json()["detail"][0]["msg"], sent
        answer = client.post("/api/v1/predict", content=b'{"image": "\xff"}', headers={"content-type": "application/json"})
        assert answer.status_code == 400 and "not UTF-8 JSON" in answer.json()["detail"]
        for path in ("/api/v1/health", "/api/v1/model", "/"):
            assert client.head(path).status_code == 200, path
        ids = [op["operationId"] for item in client.get("/openapi.json").json()["paths"].values() for op in item.values()]
        assert len(ids) == len(set(ids)) and not any(i.endswith("_head") for i in ids)  # HEAD is not in the schema
        huge = io.BytesIO()
        Image.new("1", (10_000, 10_000)).save(huge, "PNG")
        answer = client.post("/api/v1/predict/upload", files={"file": ("huge.png", huge.getvalue(), "image/png")})
        assert answer.status_code == 422
        assert answer.json()["detail"] == "huge.png: 100,000,000 pixels is more than the limit of 12,000,000; scale the image down first."
        example = ImageBody.model_json_schema()["examples"][0]
        assert client.post("/api/v1/predict", json=example).json()["digit"] == "7"
        answer = client.post("/api/v1/predict/upload", files={"file": ("x.heic", b"x", "image/heic")})
        assert answer.status_code == 415 and "is not an image type read here" in answer.json()["detail"]
