"""The HTTP API's request and response bodies: they are its OpenAPI schema (`/docs`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query
from pydantic import BaseModel, ConfigDict, Field

Row = Annotated[list[Annotated[float, Field(ge=0, le=255)]], Field(min_length=28, max_length=28)]


# An upload's threshold, a form field beside `file` (it was not taken: the server's was used, silently);
# for any request, `?threshold=` in the URL too, where the body gives none.
UploadThreshold = Annotated[float | None, Form(ge=0, le=1, description="Answers under this probability are "
                                               "'unsure' [default: the server's].", examples=[0.5])]
QueryThreshold = Annotated[float | None, Query(alias="threshold", ge=0, le=1, description="As the body's `threshold`, where it gives none.")]


class ImageBody(BaseModel):
    """One image, as exactly one of: an image file in base64, or 28 x 28 grayscale pixels."""

    # extra="forbid": a misspelt "thresold" is a 422 that names it, not ignored. The example, a 28 x 28
    # PNG of a "7", is what /docs' "Try it out" sends: its schema's own sample sent both fields (a 422).
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"image": "iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAASElEQVR42mP8z4AbMDHQX5IFSjOiCv8nrJMRi1cYoRpJdhBcI6k6ERpJ1ImkkTSdyBpJ0omikRSdqBpJ0ImmEWuUDWjqwysJADFFDDWivVGxAAAAAElFTkSuQmCC"}]})

    image: str | None = Field(None, description="An image file (PNG, JPEG, GIF, BMP, WebP, TIFF) in base64; "
                              "a 'data:image/png;base64,' prefix is accepted.")
    pixels: Annotated[list[Row], Field(min_length=28, max_length=28)] | None = Field(
        None, description="28 rows of 28 grayscale values 0-255, either polarity (MNIST is white ink on black).")
    threshold: float | None = Field(None, ge=0, le=1, description="Answers under this probability are 'unsure' "
                                    "[default: the server's].")


class Guess(BaseModel):
    digit: str
    probability: float


class PredictResponse(BaseModel):
    status: str = Field(description="'ok', or 'unsure' when the best probability is under the threshold or the "
                                    "class 'not a digit' wins.")
    digit: str | None = Field(description="The answer; null when unsure.")
    probability: float = Field(description="The top class's: of 'not a digit' when it wins.")
    top: list[Guess] = Field(description="The three most likely classes.")
    probabilities: list[float] = Field(description="Every class's probability, in the order of `classes`.")
    classes: list[str]
    message: str
    prepared: list[list[int]] = Field(description="The 28 x 28 image the model saw (0-255, white ink on black).")


class ReadDigit(PredictResponse):
    box: list[int] = Field(description="top, left, bottom, right in the image's pixels.")


class ReadResponse(BaseModel):
    text: str = Field(description="The number; '?' marks a digit under the threshold.")
    digits: list[ReadDigit]


class Health(BaseModel):
    status: str
