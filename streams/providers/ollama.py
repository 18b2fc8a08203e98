"""Ollama ``POST /api/chat`` with ``stream: false``, structured output through ``format``
(the JSON schema). Local Ollama needs no key; ollama.com takes a bearer token.
"""

from __future__ import annotations

from typing import Any

import httpx

from streams.errors import ProviderError, ProviderUnavailable
from streams.models import Usage
from streams.providers.base import Answer, EnrichRequest, Health, Provider
from streams.providers.prompt import conversation, system_prompt
from streams.providers.structured import LLAMA_CPP, schema_for

__all__ = ["OllamaProvider"]


class OllamaProvider(Provider):
    name = "ollama"

    def auth_headers(self) -> dict[str, str]:
        if self.config.api_key is None:
            return {}
        return {"Authorization": f"Bearer {self.config.api_key.get_secret_value()}"}

    def build(self, request: EnrichRequest, model: str) -> tuple[str, dict[str, Any]]:
        options: dict[str, Any] = {"num_predict": request.max_tokens}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        body = {
            "model": model,
            "messages": [
                # Ollama's docs: say JSON in the prompt too, or the model may pad with whitespace.
                {
                    "role": "system",
                    "content": system_prompt(with_schema=False, instructions=request.instructions),
                },
                *(
                    {"role": role, "content": text}
                    for role, text in conversation(request.job, request.repair)
                ),
            ],
            "stream": False,  # the default is NDJSON streaming
            "format": schema_for(LLAMA_CPP, grammar=True),
            "options": options,
        }
        return "/api/chat", body

    def read(self, data: Any, *, status: int) -> Answer:
        if data.get("error"):  # an error can arrive with a 200
            raise ProviderUnavailable(
                f"error in answer: {self._clean(str(data['error']))}",
                provider=self.name,
                status_code=status,
            )
        finish = str(data.get("done_reason") or "")
        if finish == "length":
            raise self._invalid("output truncated at num_predict", status=status, truncated=True)
        return Answer(
            text=data["message"].get("content"),
            finish_reason=finish,
            usage=self.usage_of(data),
            model=data.get("model"),
        )

    def usage_of(self, data: Any) -> Usage:
        # counts are omitted when zero (e.g. a fully cached prompt)
        return Usage(
            input_tokens=int(data.get("prompt_eval_count") or 0),
            output_tokens=int(data.get("eval_count") or 0),
        )

    def error_for(self, response: httpx.Response) -> ProviderError:
        # {"error": "model 'llama3.2' not found"}
        text = self._error_object(response).get("message") or response.text
        return self._error(response, str(text or response.reason_phrase))

    async def health(self) -> Health:
        # /api/version says the server runs; /api/tags says whether the model is pulled.
        try:
            version = (await self._get_json("/api/version")).get("version", "?")
            tags = await self._get_json("/api/tags")
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc))
        names = {m.get("name") for m in tags.get("models") or [] if isinstance(m, dict)}
        wanted = self.model if ":" in self.model else f"{self.model}:latest"
        if wanted in names or self.model in names:
            return Health(ok=True, detail=f"ollama {version}, model {self.model} pulled")
        return Health(ok=False, detail=f"ollama {version}: model {self.model} is not pulled")
