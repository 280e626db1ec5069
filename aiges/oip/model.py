"""The model an aiges service is under the Open Inference Protocol: its metadata and
Triton's model configuration (which perf_analyzer reads), both from the schema that
/openapi.json describes ([schema] in aiges.toml, else a Python wrapper's fields).

Model name = the service name; one version, "1".
"""
from __future__ import annotations

from dataclasses import dataclass

import aiges
from aiges import errors
from aiges.config import Config
from aiges.engine import Engine
from aiges.errors import AigesError
from aiges.schema import EngineSchema, Item

VERSION = "1"
PLATFORM = "aiges"
# What the server offers besides the core protocol (Triton's extension names).
EXTENSIONS = ["binary_tensor_data", "model_configuration", "sequence"]


def check_model(model: "Model", name: str, version: str) -> None:
    """404 (10003) for another model than the service, or another version than 1."""
    if name != model.name:
        raise AigesError(errors.INVALID_OPERATION, f"unknown model {name!r}: this service "
                                                   f"serves {model.name!r}", http_status=404)
    if version not in ("", VERSION):
        raise AigesError(errors.INVALID_OPERATION, f"model {name!r} has version {VERSION} "
                                                   f"only, not {version!r}", http_status=404)


def server_metadata() -> dict:
    return {"name": "aiges", "version": aiges.__version__, "extensions": EXTENSIONS}


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    kind: str  # the DataList node's type: text, audio, image, video


def _tensor(item: Item) -> Tensor:
    shape = list(item.shape) or ([1] if item.datatype == "BYTES" else [-1])
    return Tensor(item.key, item.datatype, shape, item.type)


class Model:
    def __init__(self, config: Config, engine: Engine, schema: EngineSchema | None):
        self.name = config.service
        self.instances = config.instances
        self.sessions = engine.modes.session
        self.inputs = [_tensor(i) for i in schema.inputs.values()] if schema else []
        self.outputs = [_tensor(i) for i in schema.outputs.values()] if schema else []
        self._kinds = {t.name: t.kind for t in self.inputs}
        self._outputs = {t.name: (t.datatype, tuple(t.shape)) for t in self.outputs}

    def kind(self, name: str) -> str:
        return self._kinds.get(name, "text")

    def output(self, name: str) -> tuple[str, tuple[int, ...]]:
        """(datatype, shape) declared for an output; BYTES when undeclared."""
        return self._outputs.get(name, ("BYTES", ()))

    def metadata(self) -> dict:
        return {"name": self.name, "versions": [VERSION], "platform": PLATFORM,
                "inputs": [_meta(t) for t in self.inputs],
                "outputs": [_meta(t) for t in self.outputs]}

    def config(self) -> dict:
        """Triton's model configuration, as JSON (the gRPC ModelConfig message is built
        from the same document)."""
        doc = {"name": self.name, "platform": PLATFORM, "backend": PLATFORM,
               "max_batch_size": 0,
               "input": [_config(t) for t in self.inputs],
               "output": [_config(t) for t in self.outputs],
               "instance_group": [{"name": self.name, "count": self.instances,
                                   "kind": "KIND_CPU"}],
               "version_policy": {"latest": {"num_versions": 1}}}
        return doc


def _meta(t: Tensor) -> dict:
    return {"name": t.name, "datatype": t.datatype, "shape": t.shape}


def _config(t: Tensor) -> dict:
    return {"name": t.name, "data_type": "TYPE_STRING" if t.datatype == "BYTES"
            else f"TYPE_{t.datatype}", "dims": t.shape}


class Models:
    """The Model of the engine serving now: rebuilt when a reload brings another."""

    def __init__(self):
        self._engine: Engine | None = None
        self._model: Model | None = None

    def get(self, config: Config, engine: Engine) -> Model:
        if engine is not self._engine or self._model is None:
            from aiges.server.openapi import engine_schema_of
            self._model = Model(config, engine, engine_schema_of(config, engine))
            self._engine = engine
        return self._model
