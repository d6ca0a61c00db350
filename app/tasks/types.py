"""Parameter types beyond Python's own that a task's function may take: multi-line text, and the ids
of files uploaded through `POST /api/uploads` (checked to exist and be of the right kind on submit)."""

from typing import Annotated, Any, Literal

from pydantic import Field

from app.core.validation import ERROR, SINGLE_LINE

UPLOAD_KIND = "x-upload-kind"  # the kind of file an upload id stands for, in its JSON Schema
MULTILINE = "x-multiline"  # a string the form edits in a text area

UploadKind = Literal["csv", "image"]


def _upload_id(kind: UploadKind) -> Any:
    return Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", json_schema_extra={
        UPLOAD_KIND: kind, ERROR: "must be an upload id (32 hex digits)"})]


CsvUpload = _upload_id("csv")  # the id of an uploaded CSV file (UTF-8 text)
ImageUpload = _upload_id("image")  # the id of an uploaded image (PNG, JPEG, GIF, WebP, BMP)
Text = Annotated[str, Field(json_schema_extra={MULTILINE: True})]  # any text, line breaks included
Line = Annotated[str, Field(pattern=SINGLE_LINE)]  # a single line (what goes into a mail header, a file name)
