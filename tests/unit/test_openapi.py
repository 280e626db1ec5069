"""The OpenAPI document: valid for every schema source, fields with their types; bad
[schema] entries stop start-up with a ConfigError that names them."""
import base64
import textwrap
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from aiges import config
from aiges.engine import Modes
from aiges.python import load as load_wrapper
from aiges.server import create_app, openapi

REPO = Path(__file__).resolve().parents[2]

C_SCHEMA = """
[schema]
description = "Echoes its inputs."
[schema.inputs.input]
type = "text"
encoding = "utf8"
description = "text to echo"
example = "hello aiges"
[schema.inputs.pcm]
type = "audio"
encoding = "raw"
required = false
attrs = { sample_rate = 16000 }
[schema.params.lang]
type = "string"
enum = ["en", "zh"]
default = "en"
[schema.params.speed]
type = "number"
minimum = 0.5
maximum = 2
example = 1.5
[schema.params.beam]
type = "integer"
minimum = 1
maximum = 8
required = true
default = 4
[schema.params.fast]
type = "boolean"
default = false
[schema.outputs.input]
type = "text"
encoding = "utf8"
format = "plain"
"""


class StubEngine:
    """What the document needs of a C engine: no library behind it."""

    path = "build/native_examples/libecho.so"
    modes = Modes(once_sync=True, once_async=False, session=True)
    routes: list[str] = []

    def version(self):
        return "echo/1.0.0"


def write(tmp_path, text):
    path = tmp_path / "aiges.toml"
    path.write_text(textwrap.dedent(text))
    return path


def build(cfg, engine):
    doc = openapi.document(cfg, engine, openapi.routes_of(create_app(cfg, engine)))
    validate(doc)
    return doc


def schemas(doc):
    return doc["components"]["schemas"]


def once_example(doc, service="svcName"):
    return doc["paths"][f"/v1/{service}"]["post"]["requestBody"]["content"][
        "application/json"]["example"]


def test_no_schema_gives_a_generic_valid_document():
    cfg = config.load(None, "svc")
    doc = build(cfg, StubEngine())
    assert doc["openapi"].startswith("3.0.")
    assert schemas(doc)["Payload"]["additionalProperties"] == {"$ref": "#/components/schemas/DataItem"}
    example = once_example(doc, "svc")
    assert base64.b64decode(example["payload"]["input"]["text"]) == b"hello aiges"
    post = doc["paths"]["/v1/svc"]["post"]
    assert {"200", "400", "413", "429", "500", "503", "504"} <= set(post["responses"])
    error = doc["components"]["responses"]["Busy"]
    assert "Retry-After" in error["headers"]
    header = schemas(doc)["ErrorResponse"]["properties"]["header"]
    assert set(header["required"]) == {"code", "message", "sid"}


def test_every_route_of_the_app_is_described():
    cfg = config.load(None, "svc")
    app = create_app(cfg, StubEngine())
    doc = build(cfg, StubEngine())
    for method, path in openapi.routes_of(app):
        operation = doc["paths"][path][method.lower()]
        assert "no description" not in operation.get("description", ""), (method, path)
    assert doc["paths"]["/v1/svc"]["get"]["operationId"] == "websocket"
    assert "101" in doc["paths"]["/v1/svc"]["get"]["responses"]
    sid = doc["paths"]["/v1/svc/sessions/{sid}"]["get"]["parameters"][0]
    assert (sid["name"], sid["in"]) == ("sid", "path")
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_a_route_missing_from_the_table_is_still_listed():
    cfg = config.load(None)
    app = create_app(cfg, StubEngine())

    async def extra(request):
        raise AssertionError

    app.router.add_get("/extra/{thing}", extra)
    doc = openapi.document(cfg, StubEngine(), openapi.routes_of(app))
    validate(doc)
    assert "no description" in doc["paths"]["/extra/{thing}"]["get"]["description"]


def test_c_engine_schema_from_aiges_toml(tmp_path):
    cfg = config.load(write(tmp_path, C_SCHEMA))
    doc = build(cfg, StubEngine())
    payload = schemas(doc)["Payload"]
    assert payload["required"] == ["input"]
    text = payload["properties"]["input"]
    assert text["required"] == ["text"] and text["properties"]["text"]["format"] == "byte"
    assert base64.b64decode(text["properties"]["text"]["example"]) == b"hello aiges"
    pcm = payload["properties"]["pcm"]["properties"]
    assert "audio" in pcm and pcm["sample_rate"] == {"type": "integer", "example": 16000}
    params = schemas(doc)["Parameters"]
    assert params["properties"]["lang"] == {"type": "string", "enum": ["en", "zh"], "default": "en"}
    assert params["properties"]["speed"] == {"type": "number", "example": 1.5,
                                             "minimum": 0.5, "maximum": 2}
    assert params["properties"]["beam"]["type"] == "integer" and params["required"] == ["beam"]
    assert params["properties"]["fast"] == {"type": "boolean", "default": False}
    assert params["properties"]["input"]["properties"]["format"]["default"] == "plain"
    output = schemas(doc)["ResultPayload"]["properties"]["input"]
    assert output["properties"]["text"]["type"] == "string"
    assert "Echoes its inputs." in doc["info"]["description"]
    example = once_example(doc)
    assert example["parameter"]["svcName"] == {
        "lang": "en", "speed": 1.5, "beam": 4, "fast": False,
        "input": {"encoding": "utf8", "format": "plain"}}
    assert example["payload"]["pcm"] == {"encoding": "raw", "status": 3, "audio": "",
                                         "sample_rate": 16000}


def test_example_file_is_read_relative_to_the_config(tmp_path):
    (tmp_path / "sample.bin").write_bytes(bytes(range(8)))
    cfg = config.load(write(tmp_path, """
        [schema.inputs.image]
        type = "image"
        example_file = "sample.bin"
    """))
    example = once_example(build(cfg, StubEngine()))
    assert base64.b64decode(example["payload"]["image"]["image"]) == bytes(range(8))


def test_python_wrapper_fields(tmp_path):
    engine = load_wrapper(REPO / "python_examples" / "echo" / "wrapper.py")
    doc = build(config.load(None), engine)
    payload = schemas(doc)["Payload"]["properties"]
    assert base64.b64decode(payload["input"]["properties"]["text"]["example"]) == \
        b"hello from the python echo"
    assert schemas(doc)["Parameters"]["properties"]["lang"]["default"] == "en"
    assert set(schemas(doc)["ResultPayload"]["properties"]) == {"input", "params"}
    assert "requestCls" in doc["info"]["description"]


def test_python_wrapper_field_kinds(tmp_path):
    path = tmp_path / "wrapper.py"
    (tmp_path / "cat.jpg").write_bytes(b"\xff\xd8jpeg")
    path.write_text(textwrap.dedent("""
        from aiges.sdk import (WrapperBase, StringParamField, NumberParamField,
                               IntegerParamField, BooleanParamField, StringBodyField,
                               ImageBodyField, AudioBodyField, JsonBodyField)

        class Req:
            photo = ImageBodyField(key="photo", path="cat.jpg")
            wav = AudioBodyField(key="wav", path="", encoding="lame")
            doc = JsonBodyField(key="doc", value='{"a": 1}')
            lang = StringParamField(key="lang", enums=["en", "zh"], value="zh", required=True)
            rate = NumberParamField(key="rate", minimum=0.1, maximum=2.0, value=1.0)
            beam = IntegerParamField(key="beam", minimum=1, maximum=10, value=3)
            punct = BooleanParamField(key="punct", default=True)
            odd = IntegerParamField(key="odd", enums=["x", 2], value="nope")

        class Resp:
            text = StringBodyField(key="text")
            mask = ImageBodyField(key="mask")

        class Wrapper(WrapperBase):
            requestCls = Req()
            responseCls = Resp
            def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
                return None
    """))
    doc = build(config.load(None), load_wrapper(path))
    inputs = schemas(doc)["Payload"]["properties"]
    assert base64.b64decode(inputs["photo"]["properties"]["image"]["example"]) == b"\xff\xd8jpeg"
    assert inputs["photo"]["properties"]["encoding"]["example"] == "jpg"
    assert "example" not in inputs["wav"]["properties"]["audio"]
    assert inputs["doc"]["required"] == ["text"]
    params = schemas(doc)["Parameters"]
    assert params["required"] == ["lang"]
    props = params["properties"]
    assert props["lang"] == {"type": "string", "enum": ["en", "zh"], "default": "zh",
                             "minLength": 0, "maxLength": 1024}
    assert props["rate"] == {"type": "number", "default": 1.0, "minimum": 0.1, "maximum": 2.0}
    assert props["beam"] == {"type": "integer", "default": 3, "minimum": 1, "maximum": 10}
    assert props["punct"] == {"type": "boolean", "default": True}
    assert props["odd"]["enum"] == [2] and "default" not in props["odd"]
    outputs = schemas(doc)["ResultPayload"]["properties"]
    assert outputs["mask"]["properties"]["image"]["format"] == "byte"
    assert "format" not in outputs["text"]["properties"]["text"]


def test_config_schema_overrides_the_wrapper(tmp_path):
    engine = load_wrapper(REPO / "python_examples" / "echo" / "wrapper.py")
    cfg = config.load(write(tmp_path, '[schema.inputs.words]\nexample = "hi"\n'))
    doc = build(cfg, engine)
    assert set(schemas(doc)["Payload"]["properties"]) == {"words"}
    assert "[schema] section" in doc["info"]["description"]


def test_engine_without_sessions_says_so():
    class OnceOnly(StubEngine):
        modes = Modes(once_sync=True, once_async=False, session=False)

    doc = build(config.load(None), OnceOnly())
    assert "no session mode" in doc["paths"]["/v1/svcName/sessions"]["post"]["description"]
    assert "no session mode" not in doc["paths"]["/v1/svcName"]["post"]["description"]


@pytest.mark.parametrize("text, message", [
    ("[schema]\ninput = 1\n", "[schema]: unknown key 'input'"),
    ("[schema.inputs]\ninput = 'text'\n", "[schema.inputs] must hold one table per key"),
    ("[schema.inputs.a]\ntype = 'pdf'\n", "[schema.inputs.a] type must be one of text"),
    ("[schema.inputs.a]\nencodng = 'utf8'\n", "[schema.inputs.a]: unknown key 'encodng'"),
    ("[schema.inputs.a]\nexample = 3\n", "[schema.inputs.a] example must be a string"),
    ("[schema.inputs.a]\nexample_file = 'nope.bin'\n", "example_file"),
    ("[schema.inputs.a]\nexample = 'x'\nexample_file = 'y'\n", "keep one"),
    ("[schema.inputs.a]\nattrs = { x = [1] }\n", "attrs must be a table of plain values"),
    ("[schema.outputs.a]\nexample = 'x'\n", "[schema.outputs.a]: unknown key 'example'"),
    ("[schema.params.p]\ntype = 'float'\n", "type must be one of string, integer"),
    ("[schema.params.p]\nenum = ['a', 1]\n", "enum must be a list of string values"),
    ("[schema.params.p]\nenum = ['a']\ndefault = 'b'\n", "default 'b' is not a valid string"),
    ("[schema.params.p]\ntype = 'integer'\ndefault = 1.5\n", "default 1.5 is not a valid"),
    ("[schema.params.p]\ntype = 'integer'\ndefault = true\n", "default True is not a valid"),
    ("[schema.params.p]\nminimum = 1\n", "minimum applies to integer and number params only"),
    ("[schema.params.p]\ntype = 'number'\nminimum = 3\nmaximum = 2\n", "minimum 3 is above"),
    ("[schema.params.p]\ntype = 'number'\nmaximum = 2\ndefault = 5\n", "default 5"),
    ("[schema.params.p]\nrequired = 'yes'\n", "required must be true or false"),
])
def test_bad_schema_is_a_config_error(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as caught:
        config.load(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_default_toml_example_schema_is_valid(tmp_path):
    """The commented [schema] example of `aiges-load --init`, uncommented, loads as is."""
    example = config.DEFAULT_TOML.split("# [schema]\n", 1)[1]
    lines = [line[2:] for line in example.splitlines()
             if line.startswith("# ") and not line.startswith("# #")]
    cfg = config.load(write(tmp_path, "[schema]\n" + "\n".join(lines)))
    assert set(cfg.schema.inputs) == {"input"} and cfg.schema.params["lang"].enum == ("en", "zh")
    assert set(cfg.schema.outputs) == {"input"}
