"""The route table: every entry has its handler, and the OpenAPI document is made from it."""

from __future__ import annotations

import inspect

from streams.web import bodies as b
from streams.web.handlers import Handlers
from streams.web.openapi import document
from streams.web.routes import ROUTES


def test_every_route_names_a_handler_method() -> None:
    for route in ROUTES:
        handler = getattr(Handlers, route.handler, None)
        assert handler is not None, route.handler
        assert inspect.iscoroutinefunction(handler), route.handler


def test_no_path_and_method_is_routed_twice() -> None:
    pairs = [(route.path, route.method) for route in ROUTES]
    assert len(pairs) == len(set(pairs))


def test_the_document_has_each_documented_route_with_its_models() -> None:
    spec = document()
    schemas = spec["components"]["schemas"]
    for route in ROUTES:
        if not route.in_docs:
            assert route.path not in spec["paths"]
            continue
        operation = spec["paths"][route.path][route.method]
        answer = operation["responses"][str(route.status)]["content"]
        if isinstance(route.response, str):
            assert route.response in answer
        else:
            assert route.response.__name__ in schemas
            ref = answer["application/json"]["schema"]["$ref"]
            assert ref.endswith("/" + route.response.__name__)
        if route.body is not None:
            assert route.body.__name__ in schemas
        assert ("security" in operation) == route.admin
        if route.admin:
            assert {"401", "403"} <= set(operation["responses"])


def test_process_answers_a_result_or_an_error_body_for_422() -> None:
    responses = document()["paths"]["/process"]["post"]["responses"]
    refs = {
        s["$ref"].rsplit("/", 1)[1]
        for s in responses["422"]["content"]["application/json"]["schema"]["anyOf"]
    }
    assert refs == {b.ProcessResult.__name__, b.ErrorBody.__name__}
